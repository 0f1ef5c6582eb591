/** A copy of the model safe to print: every secret replaced by '[redacted]' (docs/security.md D2). */
import type { Config } from './schema.js'

/** Model fields that hold secrets. `key` is an issuer key's PEM (server.tls.key is a path, kept). */
const SECRET_FIELDS = new Set(['jwtSecret', 'secret', 'password', 'sentinelPassword', 'privateKey', 'encryptionKey', 'hmacSecret'])

export const REDACTED = '[redacted]'

export function redactConfig(config: Config): unknown {
  const walk = (value: unknown, parentKey: string): unknown => {
    if (Array.isArray(value)) return value.map((v) => walk(v, parentKey))
    if (value && typeof value === 'object') {
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(value)) {
        const secret = typeof v === 'string' && (SECRET_FIELDS.has(k) || (k === 'key' && parentKey === 'issuerPrivateKeys'))
        out[k] = secret ? REDACTED : walk(v, k)
      }
      return out
    }
    return value
  }
  return walk(config, '')
}

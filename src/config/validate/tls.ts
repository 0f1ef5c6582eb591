/** Authelia's client `tls` block (`session.redis.tls`; the same shape as the databases'). */
import { X509Certificate, createPrivateKey } from 'node:crypto'
import type { TlsClientConfig, TlsVersion } from '../schema.js'
import type { MapView } from '../reader.js'

const VERSIONS: readonly TlsVersion[] = ['TLS1.0', 'TLS1.1', 'TLS1.2', 'TLS1.3']

/** Reads `v` (the tls map itself); `undefined` when the block is absent. */
export function readTlsClient(v: MapView): TlsClientConfig | undefined {
  if (!v.present) return undefined
  const version = (key: string) =>
    v.oneOf(key, VERSIONS, (x) => `option '${key}' must be one of ${VERSIONS.map((s) => `'${s}'`).join(', ')} but it's configured as '${x}'`, { normalise: (x) => x.toUpperCase() })
  const out: TlsClientConfig = { skipVerify: v.bool('skip_verify') ?? false, minimumVersion: version('minimum_version') ?? 'TLS1.2', maximumVersion: version('maximum_version') ?? 'TLS1.3' }
  if (VERSIONS.indexOf(out.minimumVersion) > VERSIONS.indexOf(out.maximumVersion))
    v.error('minimum_version', `option combination 'minimum_version' and 'maximum_version' is invalid: minimum version ${out.minimumVersion} is greater than the maximum version ${out.maximumVersion}`)
  const serverName = v.str('server_name')
  if (serverName) out.serverName = serverName
  const chain = v.str('certificate_chain')
  const key = v.str('private_key')
  if (chain && !key) v.error('certificate_chain', "option 'certificate_chain' must also be accompanied by option 'private_key'")
  else if (key && !chain) v.error('private_key', "option 'private_key' must also be accompanied by option 'certificate_chain'")
  else if (chain && key) {
    let ok = true
    try {
      new X509Certificate(chain)
    } catch {
      ok = false
      v.error('certificate_chain', "option 'certificate_chain' is not a PEM certificate")
    }
    try {
      createPrivateKey(key)
    } catch {
      ok = false
      // Never echo the value: it is a private key.
      v.error('private_key', "option 'private_key' is not a PEM private key")
    }
    if (ok) {
      out.certificateChain = chain
      out.privateKey = key
    }
  }
  return out
}

import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { ConfigError, formatProblem, loadConfig } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { UsageError } from './args.js'
import type { CliIo } from './io.js'

/**
 * `latchkey doctor --compare A --compare B …`: several instances' configurations (each one or more
 * comma-separated files, merged in order as `--config` merges them) must agree on everything that
 * decides what a cookie, a code, a token or a stored secret means, or a request served by one
 * instance breaks (or is accepted) on another (docs/high-availability.md). Only what is
 * legitimately per machine may differ: where it listens, its TLS files, logging, the local paths of
 * the users file (whose content is compared instead) and the notifier's file.
 */

/** Model paths (camelCase, before listing keys) that may differ between instances. */
const PER_INSTANCE = [/^server\.(host|port|tls)(\.|$)/, /^log(\.|$)/, /^authenticationBackend\.file\.path$/, /^notifier\.filesystem\.filename$/, /^certificatesDirectory$/]
/** The model's secret fields (as src/config/redact.ts): their values are never printed, differing or not. */
const SECRET = /(^|\.)(jwtSecret|secret|password|encryptionKey|hmacSecret|key)$|issuerPrivateKeys/

/** The configuration model as sorted `path → JSON value` leaves; list items keyed by id or domain. */
export function flattenConfig(config: Config): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (value: unknown, path: string): void => {
    if (PER_INSTANCE.some((re) => re.test(path))) return
    if (Array.isArray(value)) {
      if (value.every((v) => v === null || typeof v !== 'object')) return void out.set(path, JSON.stringify(value))
      value.forEach((item, i) => {
        const at = `${path}[${itemKey(item, i)}]`
        // The item itself: an item only some instances have is reported once, not leaf by leaf.
        out.set(at, 'present')
        walk(item, at)
      })
      return
    }
    if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) walk(v, path ? `${path}.${k}` : k)
      return
    }
    if (value !== undefined) out.set(path, JSON.stringify(value))
  }
  walk(config, '')
  return out
}

function itemKey(item: unknown, index: number): string {
  const o = item as Record<string, unknown>
  for (const k of ['id', 'keyId', 'domain', 'name']) if (typeof o?.[k] === 'string') return `${k}=${o[k]}`
  return String(index)
}

/** `identityProviders.oidc.hmacSecret` → `identity_providers.oidc.hmac_secret`: the model's path in configuration words. */
export function configPath(modelPath: string): string {
  return modelPath.replace(/(Seconds|Bytes|KiB)(?=$|[.[])/g, '').replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
}

export interface Difference {
  path: string
  /** Indexes of the instances holding each distinct value (first instance = 0); secrets never carry values. */
  groups: number[][]
  secret: boolean
}

export function compareFlattened(instances: Map<string, string>[]): Difference[] {
  const paths = new Set(instances.flatMap((m) => [...m.keys()]))
  const out: Difference[] = []
  for (const path of [...paths].sort()) {
    const byValue = new Map<string, number[]>()
    instances.forEach((m, i) => {
      const v = m.get(path) ?? '(not set)'
      byValue.set(v, [...(byValue.get(v) ?? []), i])
    })
    if (byValue.size > 1) out.push({ path, groups: [...byValue.values()], secret: SECRET.test(path) })
  }
  const missingItems = out.filter((d) => d.path.endsWith(']')).map((d) => d.path)
  return out.filter((d) => !missingItems.some((item) => d.path !== item && d.path.startsWith(item)))
}

export function compareCommand(specs: string[], io: CliIo): number {
  if (specs.length < 2) throw new UsageError('--compare needs at least two instances (one --compare per instance)')
  const instances = specs.map((spec) => spec.split(',').map((f) => resolve(io.cwd, f.trim())).filter(Boolean))
  io.stdout(`Latchkey doctor: comparing ${instances.length} instances (nothing is started)\n`)
  instances.forEach((files, i) => io.stdout(`  instance ${i + 1}: ${files.join(', ')}\n`))
  io.stdout('\n')
  const flat: Map<string, string>[] = []
  let broken = false
  for (const [i, files] of instances.entries()) {
    try {
      const { config } = loadConfig({ files, env: io.env, cwd: io.cwd })
      const leaves = flattenConfig(config)
      if (config.authenticationBackend.file) leaves.set('authenticationBackend.file (content)', usersFileDigest(config.authenticationBackend.file.path))
      flat.push(leaves)
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      broken = true
      for (const p of err.problems) if (p.severity !== 'warning') io.stdout(`[problem] instance ${i + 1}: ${formatProblem(p)}\n`)
    }
  }
  if (broken) {
    io.stdout('\nThe configurations must load before they can be compared: fix the problems above.\n')
    return 2
  }
  const differences = compareFlattened(flat)
  for (const d of differences) {
    const who = d.groups.map((g) => g.map((i) => i + 1).join('+')).join(' vs ')
    const what = d.path.endsWith(']') ? 'set in some instances only' : 'differs between instances'
    io.stdout(`[problem] ${configPath(d.path)}: ${what} (${who})${d.secret ? '; the value is a secret and is not shown' : ''}\n`)
  }
  if (differences.length === 0) {
    io.stdout(`[ok]      ${flat[0]!.size} settings agree across the ${instances.length} instances (listen address, TLS files, logging and local file paths may differ)\n`)
    return 0
  }
  io.stdout(`\n${differences.length} setting(s) differ: instances behind one load balancer must agree on them (docs/high-availability.md).\n`)
  return 2
}

function usersFileDigest(path: string): string {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex')
  } catch {
    return '(unreadable)'
  }
}

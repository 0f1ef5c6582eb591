/**
 * Environment overrides: `AUTHELIA_` or `LATCHKEY_` + the upper-cased key path with `_` for `.`
 * (`AUTHELIA_TOTP_PERIOD`), and `<VAR>_FILE` for secrets. The variable → key map is derived from the
 * known-key tree, so `AUTHELIA_IDENTITY_PROVIDERS_OIDC_HMAC_SECRET` finds `hmac_secret` without
 * guessing where underscores split.
 */
import { resolve } from 'node:path'
import { KEY_TREE, isSecretSpec, type KeySpec } from './keys.js'
import type { ConfigProblem } from './problems.js'
import { readTextFile } from './read-text.js'
import { getAt, setAt, type RawMap, type RawNode, type Source } from './raw.js'

/** A secret file larger than this is a mistake (a certificate chain is a few KiB). */
export const MAX_SECRET_FILE_BYTES = 1024 * 1024

export const ENV_PREFIXES = ['LATCHKEY_', 'AUTHELIA_'] as const

/**
 * Variables with our prefixes that are not configuration keys (read by the CLI: cli/config-files.ts,
 * cli/serve.ts). Authelia's `X_AUTHELIA_CONFIG` has neither prefix, so it needs no entry.
 */
export const NON_CONFIG_ENV_VARS: ReadonlySet<string> = new Set(['LATCHKEY_CONFIG', 'LATCHKEY_DATA_DIR'])

export interface EnvBinding {
  path: readonly string[]
  spec: KeySpec
  secret: boolean
}

function buildBindings(): { bindings: Map<string, EnvBinding>; opaque: string[]; lists: Map<string, string> } {
  const bindings = new Map<string, EnvBinding>()
  const opaque: string[] = []
  const lists = new Map<string, string>()
  const walk = (spec: KeySpec, path: string[]) => {
    for (const [name, child] of Object.entries(spec.children ?? {})) {
      const p = [...path, name]
      const envName = p.join('_').toUpperCase()
      // Lists of maps (clients, rules, cookies, keys) cannot be set from the environment (docs/authelia-compat.md §1.1).
      if (child.kind === 'list') {
        lists.set(envName, p.join('.'))
        continue
      }
      if (child.kind === 'any') {
        opaque.push(`${envName}_`)
        continue
      }
      if (child.kind === 'map') {
        if (child.open) opaque.push(`${envName}_`)
        walk(child, p)
        continue
      }
      if (bindings.has(envName)) throw new Error(`two configuration keys map to the environment name ${envName}`)
      bindings.set(envName, { path: p, spec: child, secret: isSecretSpec(name, child) })
    }
  }
  walk(KEY_TREE, [])
  return { bindings, opaque, lists }
}

const BUILT = buildBindings()
/** Key: the variable name without its prefix (`TOTP_PERIOD`). */
export const ENV_BINDINGS: ReadonlyMap<string, EnvBinding> = BUILT.bindings
const OPAQUE_PREFIXES = BUILT.opaque
/** Env name (without prefix) of each list of maps → its dotted key path. */
const LIST_NAMES = BUILT.lists

/** The list key a variable tries to set (`IDENTITY_PROVIDERS_OIDC_CLIENTS_0_ID` → clients), if any. */
function listTarget(rest: string): string | undefined {
  for (const [name, path] of LIST_NAMES) if (rest === name || rest === `${name}_FILE` || rest.startsWith(`${name}_`)) return path
  return undefined
}

/** `AUTHELIA_` name for a dotted key path (for docs and messages). */
export function envNameFor(path: string, prefix: (typeof ENV_PREFIXES)[number] = 'AUTHELIA_'): string {
  return prefix + path.replace(/\./g, '_').toUpperCase()
}

interface Candidate {
  variable: string
  prefixRank: number
  fromFile: boolean
  value: string
}

/**
 * Overlays the environment on the merged file tree. Returns the new tree; problems are appended.
 * A `_FILE` secret that the files also set is an error (Authelia's message), a plain variable wins.
 */
export function applyEnv(
  root: RawMap,
  env: Record<string, string | undefined>,
  cwd: string,
  problems: ConfigProblem[],
): RawMap {
  const byKey = new Map<string, Candidate[]>()
  for (const variable of Object.keys(env).sort()) {
    const value = env[variable]
    if (value === undefined) continue
    const prefixRank = ENV_PREFIXES.findIndex((p) => variable.startsWith(p))
    if (prefixRank < 0 || NON_CONFIG_ENV_VARS.has(variable)) continue
    const rest = variable.slice(ENV_PREFIXES[prefixRank]!.length)
    let key = rest
    let fromFile = false
    if (!ENV_BINDINGS.has(rest) && rest.endsWith('_FILE') && ENV_BINDINGS.get(rest.slice(0, -5))?.secret) {
      key = rest.slice(0, -5)
      fromFile = true
    }
    if (!ENV_BINDINGS.has(key)) {
      // Sections Latchkey accepts but ignores (ldap, ntp, duo_api...) take any variable below them.
      if (OPAQUE_PREFIXES.some((p) => rest.startsWith(p))) continue
      const list = listTarget(rest)
      if (list) {
        problems.push({
          env: variable,
          path: list,
          message: `configuration environment variable not expected: ${variable}: '${list}' is a list, and lists cannot be set from the environment (it is ignored)`,
          hint: `set '${list}' in a configuration file`,
          severity: 'warning',
        })
        continue
      }
      problems.push({ env: variable, path: '', message: `configuration environment variable not expected: ${variable}`, severity: 'warning' })
      continue
    }
    const list = byKey.get(key) ?? []
    list.push({ variable, prefixRank, fromFile, value })
    byKey.set(key, list)
  }

  let out = root
  for (const [key, candidates] of byKey) {
    const binding = ENV_BINDINGS.get(key)!
    const dotted = binding.path.join('.')
    const best = Math.min(...candidates.map((c) => c.prefixRank))
    const winners = candidates.filter((c) => c.prefixRank === best)
    const fileForm = winners.find((c) => c.fromFile)
    if (fileForm && winners.length > 1) {
      problems.push({ env: fileForm.variable, path: dotted, message: `secrets: error loading secret into key '${dotted}': it's already defined in other configuration sources`, severity: 'error' })
      continue
    }
    const chosen = winners[0]!
    let value = chosen.value
    if (chosen.fromFile) {
      if (getAt(root, binding.path)) {
        problems.push({ env: chosen.variable, path: dotted, message: `secrets: error loading secret into key '${dotted}': it's already defined in other configuration sources`, severity: 'error' })
        continue
      }
      const file = resolve(cwd, chosen.value)
      try {
        value = readTextFile(file, MAX_SECRET_FILE_BYTES, chosen.value).replace(/\r?\n$/, '')
      } catch (e) {
        problems.push({ env: chosen.variable, path: dotted, message: `secrets: error loading secret path ${chosen.value} into key '${dotted}': ${(e as Error).message}`, severity: 'error' })
        continue
      }
    }
    const src: Source = { env: chosen.variable, baseDir: cwd }
    const node: RawNode =
      binding.spec.kind === 'strings'
        ? { kind: 'seq', items: value.split(',').map((v) => v.trim()).filter((v) => v !== '').map((v) => ({ kind: 'scalar' as const, value: v, src })), src }
        : { kind: 'scalar', value, src }
    out = setAt(out, binding.path, node, src)
  }
  return out
}

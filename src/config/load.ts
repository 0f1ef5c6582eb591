/**
 * loadConfig: files (merged in order, later wins) → environment overlay → unknown-key and rename
 * checks → typed model with defaults → cross-field validation. Every problem is collected; any error
 * throws one ConfigError carrying them all, otherwise the deep-frozen Config and the warnings return.
 */
import { isAbsolute, relative, resolve, sep } from 'node:path'
import { applyEnv } from './env.js'
import { ConfigError, type ConfigProblem } from './problems.js'
import { emptyMap, mergeRaw, parseYaml } from './raw.js'
import { readTextFile } from './read-text.js'
import { MapView, Problems } from './reader.js'
import type { Config } from './schema.js'
import { checkStructure } from './structure.js'
import { readAccessControl } from './validate/access-control.js'
import { readAuthenticationBackend, readPasswordPolicy, readPasswordReset, readRegulation, readTotp } from './validate/authn.js'
import { readCertificatesDirectory, readDefault2faMethod, readDefaultRedirectionUrl, readJwtSecret, readLog, readServer, readTheme } from './validate/core.js'
import { readOidc } from './validate/oidc.js'
import { readSession } from './validate/session.js'
import { readWebauthn } from './validate/webauthn.js'
import { readNotifier, readStorage } from './validate/storage.js'

export { ConfigError, formatProblem, type ConfigProblem } from './problems.js'
export { CONFIG_KEYS, type ConfigKeyEntry } from './keys.js'
export { redactConfig } from './redact.js'

/** A configuration larger than this is refused unread (real ones are a few KiB, PEM keys included; the YAML parser takes about 1 s per MiB). */
export const MAX_CONFIG_BYTES = 1024 * 1024

export interface LoadOptions {
  /** Configuration files in merge order; relative names resolve against `cwd`. */
  files: string[]
  env: Record<string, string | undefined>
  /** Folder for relative file names and environment-set paths (default: process.cwd()). */
  cwd?: string
  /** Clock for certificate validity checks (default: now). */
  now?: Date
}

export interface LoadResult {
  config: Config
  warnings: ConfigProblem[]
}

/** The file name shown in messages: as given, or relative to cwd when it lies below it. */
function displayName(file: string, cwd: string): string {
  if (!isAbsolute(file)) return file
  const rel = relative(cwd, file)
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel.split(sep).join('/') : file
}

export function loadConfig(opts: LoadOptions): LoadResult {
  const cwd = opts.cwd ?? process.cwd()
  const problems = new Problems()
  // Authelia's configuration filters (`template`, `expand-env`) rewrite the files before parsing,
  // e.g. `{{ secret "/run/secrets/key" }}`. Latchkey has none: read literally, that text would
  // become the secret itself, so the configuration is refused instead.
  const filters = opts.env.X_AUTHELIA_CONFIG_FILTERS?.trim()
  if (filters) {
    throw new ConfigError([
      {
        env: 'X_AUTHELIA_CONFIG_FILTERS',
        path: 'X_AUTHELIA_CONFIG_FILTERS',
        message: `configuration filters ('${filters.slice(0, 64)}') are not supported by Latchkey: the files would be read without them`,
        hint: 'unset it, and give secrets through the *_FILE environment variables, e.g. AUTHELIA_STORAGE_ENCRYPTION_KEY_FILE',
        severity: 'error',
      },
    ])
  }
  let root = emptyMap({ baseDir: cwd })
  for (const file of opts.files) {
    const abs = resolve(cwd, file)
    const shown = displayName(file, cwd)
    let text: string
    try {
      text = readTextFile(abs, MAX_CONFIG_BYTES, shown)
    } catch (e) {
      problems.error('', `could not read the configuration file: ${(e as Error).message}`, { file: shown, baseDir: cwd })
      continue
    }
    root = mergeRaw(root, parseYaml(shown, text, problems.list, abs))
  }
  // A file that did not parse would only add a cascade of "required" errors: stop at the syntax.
  if (problems.hasErrors) throw new ConfigError(capped(problems.list))
  root = applyEnv(root, opts.env, cwd, problems.list)
  checkStructure(root, problems)

  const view = new MapView(problems, '', root, undefined)
  const totp = readTotp(view)
  const webauthn = readWebauthn(view)
  const defaultRedirectionUrl = readDefaultRedirectionUrl(view)
  const config: Config = {
    theme: readTheme(view),
    server: readServer(view),
    log: readLog(view),
    totp,
    webauthn,
    // Placeholder only when the backend is broken; that is an error, so it never escapes.
    authenticationBackend: { ...(readAuthenticationBackend(view) ?? { refreshIntervalSeconds: 300 }), passwordReset: readPasswordReset(view) },
    passwordPolicy: readPasswordPolicy(view),
    accessControl: readAccessControl(view),
    session: readSession(view, defaultRedirectionUrl),
    regulation: readRegulation(view),
    storage: readStorage(view),
    notifier: readNotifier(view),
    identityProviders: {},
  }
  // Latchkey signs identity-verification links (TOTP registration) with it; without TOTP nothing does.
  const jwtSecret = readJwtSecret(view, !totp.disable || !webauthn.disable)
  if (jwtSecret) config.jwtSecret = jwtSecret
  // 4.38 moved it into each cookie; the first cookie's value keeps the top-level field meaningful.
  const fallbackRedirect = defaultRedirectionUrl ?? config.session.cookies[0]?.defaultRedirectionUrl
  if (fallbackRedirect) config.defaultRedirectionUrl = fallbackRedirect
  const method = readDefault2faMethod(view, [...(totp.disable ? [] : ['totp']), ...(webauthn.disable ? [] : ['webauthn'])])
  if (method) config.default2faMethod = method
  const certs = readCertificatesDirectory(view)
  if (certs) config.certificatesDirectory = certs
  const oidc = readOidc(view, opts.now ?? new Date())
  if (oidc) config.identityProviders.oidc = oidc

  if (problems.hasErrors) throw new ConfigError(capped(inFileOrder(problems.list, opts.files.map((f) => displayName(f, cwd)))))
  return { config: deepFreeze(config), warnings: problems.list.filter((p) => p.severity === 'warning') }
}

/** Problems listed at most; a file of 100 000 unknown keys must not print 100 000 lines. */
export const MAX_PROBLEMS = 100

function capped(list: ConfigProblem[]): ConfigProblem[] {
  if (list.length <= MAX_PROBLEMS) return list
  const rest = list.length - MAX_PROBLEMS
  return [...list.slice(0, MAX_PROBLEMS), { path: '', message: `... and ${rest} more problem${rest === 1 ? '' : 's'} (fix these first)`, severity: 'error' }]
}

/** Problems sorted by file (in merge order), line and column; those without a position keep their order, last. */
function inFileOrder(list: ConfigProblem[], files: string[]): ConfigProblem[] {
  const rank = (p: ConfigProblem) => (p.file !== undefined && p.line !== undefined ? files.indexOf(p.file) : -1)
  return list
    .map((p, i) => ({ p, i }))
    .sort((a, b) => {
      const ra = rank(a.p)
      const rb = rank(b.p)
      if (ra < 0 || rb < 0) return ra < 0 && rb < 0 ? a.i - b.i : ra < 0 ? 1 : -1
      return ra - rb || a.p.line! - b.p.line! || (a.p.column ?? 0) - (b.p.column ?? 0) || a.i - b.i
    })
    .map(({ p }) => p)
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

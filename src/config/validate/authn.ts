/** `authentication_backend`, `totp`, `regulation`. */
import { DEFAULTS, type AuthenticationBackendConfig, type PasswordHashConfig, type PasswordPolicyConfig, type PasswordResetConfig, type RegulationConfig, type RegulationMode, type TotpAlgorithm, type TotpConfig } from '../schema.js'
import { quoteList, type MapView } from '../reader.js'
import { isAbsoluteUrl } from './core.js'
import { readLdap } from './ldap.js'

const HASH_ALGORITHMS = ['argon2', 'sha2crypt', 'pbkdf2', 'bcrypt', 'scrypt'] as const

export function readAuthenticationBackend(root: MapView): Omit<AuthenticationBackendConfig, 'passwordReset'> | undefined {
  const v = root.map('authentication_backend')
  const hasFile = v.has('file')
  const hasLdap = v.has('ldap')
  if (hasFile && hasLdap) {
    v.problems.error(v.path, "please ensure only one of the 'file' or 'ldap' backend is configured", v.src)
    return undefined
  }
  if (!hasFile && !hasLdap) {
    v.problems.error(v.path, "you must ensure either the 'file' or 'ldap' authentication backend is configured", v.src)
    return undefined
  }
  const refreshIntervalSeconds = readRefreshInterval(v)
  if (hasLdap) {
    // Latchkey resets passwords in the users file only; Authelia requires reset disabled with unauthenticated binds.
    const resetDisabled = v.map('password_reset').bool('disable') ?? v.bool('disable_reset_password') ?? false
    return { ldap: readLdap(v.map('ldap'), { passwordResetDisabled: resetDisabled }), refreshIntervalSeconds }
  }
  const f = v.map('file')
  const path = f.filePath('path')
  if (!path) f.missing('path', "option 'path' is required", 'the users database file, e.g. users_database.yml')
  const search = f.map('search')
  return {
    file: {
      path: path ?? '',
      watch: f.bool('watch') ?? false,
      searchEmail: search.bool('email') ?? false,
      searchCaseInsensitive: search.bool('case_insensitive') ?? false,
      password: readPassword(f.map('password')),
    },
    refreshIntervalSeconds,
  }
}

/** `refresh_interval`: a duration, `always` (0) or `disable` (null); Authelia's default is 5 minutes. */
function readRefreshInterval(v: MapView): number | null {
  const raw = v.str('refresh_interval')?.trim().toLowerCase()
  if (raw === undefined || raw === '') return 300
  if (raw === 'always') return 0
  if (raw === 'disable') return null
  const seconds = v.duration('refresh_interval')
  if (seconds === undefined) return 300
  if (seconds < 0) {
    v.error('refresh_interval', `option 'refresh_interval' is configured to '${raw}' but it must be either in duration common syntax or one of 'disable', or 'always'`)
    return 300
  }
  return seconds
}

function range(v: MapView, key: string, min: number, max: number, fallback: number): number {
  const n = v.int(key)
  if (n === undefined) return fallback
  if (n < min || n > max) {
    v.error(key, `option '${key}' is configured as '${n}' but must be between ${min} and ${max}`)
    return fallback
  }
  return n
}

function readPassword(v: MapView): PasswordHashConfig {
  const d = DEFAULTS.password
  // 4.37 still reads the pre-4.36 flat form (`algorithm: argon2id` + `iterations`, `memory` in MiB…).
  const rawAlgorithm = v.str('algorithm')?.toLowerCase()
  let algorithm: PasswordHashConfig['algorithm'] = d.algorithm
  const legacy = rawAlgorithm === 'argon2id' || rawAlgorithm === 'sha512'
  if (legacy) algorithm = rawAlgorithm === 'argon2id' ? 'argon2' : 'sha2crypt'
  else if (rawAlgorithm !== undefined) {
    if ((HASH_ALGORITHMS as readonly string[]).includes(rawAlgorithm)) algorithm = rawAlgorithm as PasswordHashConfig['algorithm']
    else v.error('algorithm', `option 'algorithm' must be one of ${quoteList(HASH_ALGORITHMS)} but it's configured as '${rawAlgorithm}'`)
  }
  const a = v.map('argon2')
  const s = v.map('sha2crypt')
  const p = v.map('pbkdf2')
  const b = v.map('bcrypt')
  const sc = v.map('scrypt')
  const out: PasswordHashConfig = {
    algorithm,
    argon2: {
      variant: a.oneOf('variant', ['argon2id', 'argon2i', 'argon2d'] as const, (x) => `option 'variant' must be one of 'argon2id', 'argon2i', 'argon2d' but it's configured as '${x}'`) ?? d.argon2.variant,
      iterations: range(a, 'iterations', 1, 2 ** 32 - 1, d.argon2.iterations),
      memoryKiB: range(a, 'memory', 8, 2 ** 32 - 1, d.argon2.memoryKiB),
      parallelism: range(a, 'parallelism', 1, 2 ** 24 - 1, d.argon2.parallelism),
      keyLength: range(a, 'key_length', 4, 2 ** 32 - 1, d.argon2.keyLength),
      saltLength: range(a, 'salt_length', 1, 2 ** 32 - 1, d.argon2.saltLength),
    },
    sha2crypt: {
      variant: s.oneOf('variant', ['sha512', 'sha256'] as const, (x) => `option 'variant' must be one of 'sha256', 'sha512' but it's configured as '${x}'`) ?? d.sha2crypt.variant,
      iterations: range(s, 'iterations', 1000, 999999999, d.sha2crypt.iterations),
      saltLength: range(s, 'salt_length', 1, 16, d.sha2crypt.saltLength),
    },
    pbkdf2: {
      variant: p.oneOf('variant', ['sha1', 'sha224', 'sha256', 'sha384', 'sha512'] as const, (x) => `option 'variant' must be one of 'sha1', 'sha224', 'sha256', 'sha384', 'sha512' but it's configured as '${x}'`) ?? d.pbkdf2.variant,
      iterations: range(p, 'iterations', 100000, 2 ** 31 - 1, d.pbkdf2.iterations),
      saltLength: range(p, 'salt_length', 8, 2 ** 31 - 1, d.pbkdf2.saltLength),
    },
    bcrypt: {
      variant: b.oneOf('variant', ['standard', 'sha256'] as const, (x) => `option 'variant' must be one of 'standard', 'sha256' but it's configured as '${x}'`) ?? d.bcrypt.variant,
      cost: range(b, 'cost', 10, 31, d.bcrypt.cost),
    },
    scrypt: {
      iterations: range(sc, 'iterations', 1, 58, d.scrypt.iterations),
      blockSize: range(sc, 'block_size', 1, 2 ** 31 - 1, d.scrypt.blockSize),
      parallelism: range(sc, 'parallelism', 1, 2 ** 30 - 1, d.scrypt.parallelism),
      keyLength: range(sc, 'key_length', 1, 2 ** 31 - 1, d.scrypt.keyLength),
      saltLength: range(sc, 'salt_length', 8, 1024, d.scrypt.saltLength),
    },
  }
  if (legacy) {
    if (algorithm === 'argon2') {
      out.argon2.variant = 'argon2id'
      out.argon2.iterations = range(v, 'iterations', 1, 2 ** 32 - 1, out.argon2.iterations)
      const mib = v.int('memory')
      if (mib !== undefined) out.argon2.memoryKiB = mib * 1024
      out.argon2.parallelism = range(v, 'parallelism', 1, 2 ** 24 - 1, out.argon2.parallelism)
      out.argon2.keyLength = range(v, 'key_length', 4, 2 ** 32 - 1, out.argon2.keyLength)
      out.argon2.saltLength = range(v, 'salt_length', 1, 2 ** 32 - 1, out.argon2.saltLength)
    } else {
      out.sha2crypt.variant = 'sha512'
      out.sha2crypt.iterations = range(v, 'iterations', 1000, 999999999, out.sha2crypt.iterations)
      out.sha2crypt.saltLength = range(v, 'salt_length', 1, 16, out.sha2crypt.saltLength)
    }
  }
  return out
}

const TOTP_ALGORITHMS: readonly TotpAlgorithm[] = ['SHA1', 'SHA256', 'SHA512']

export function readTotp(root: MapView): TotpConfig {
  const v = root.map('totp')
  const d = DEFAULTS.totp
  const totp: TotpConfig = {
    disable: v.bool('disable') ?? d.disable,
    issuer: v.str('issuer') || d.issuer,
    algorithm:
      v.oneOf('algorithm', TOTP_ALGORITHMS, (x) => `option 'algorithm' must be one of ${quoteList(TOTP_ALGORITHMS)} but it's configured as '${x}'`, { normalise: (x) => x.toUpperCase() }) ??
      (d.algorithm as TotpAlgorithm),
    digits: d.digits,
    periodSeconds: d.periodSeconds,
    skew: d.skew,
    secretSizeBytes: d.secretSizeBytes,
    disableReuseSecurityPolicy: v.bool('disable_reuse_security_policy') ?? d.disableReuseSecurityPolicy,
  }
  const digits = v.int('digits')
  if (digits !== undefined && digits !== 0) {
    if (digits === 6 || digits === 8) totp.digits = digits
    else v.error('digits', `option 'digits' must be 6 or 8 but it's configured as '${digits}'`, 'most authenticator apps only show 6 digits')
  }
  const period = v.int('period')
  if (period !== undefined && period !== 0) {
    if (period >= 15) totp.periodSeconds = period
    else v.error('period', `must be 15 or more, got ${period}`, '30 is the usual value')
  }
  const skew = v.int('skew')
  if (skew !== undefined) {
    if (skew >= 0 && skew <= 10) totp.skew = skew
    else v.error('skew', `option 'skew' must be between 0 and 10 but it's configured as '${skew}'`, '1 is the usual value')
  }
  const secretSize = v.int('secret_size')
  if (secretSize !== undefined && secretSize !== 0) {
    if (secretSize >= 20) totp.secretSizeBytes = secretSize
    else v.error('secret_size', `option 'secret_size' must be 20 or higher but it's configured as '${secretSize}'`, '32 is the default')
  }
  return totp
}

export function readRegulation(root: MapView): RegulationConfig {
  const v = root.map('regulation')
  const d = DEFAULTS.regulation
  const out: RegulationConfig = {
    modes: readRegulationModes(v),
    maxRetries: v.int('max_retries') ?? d.maxRetries,
    findTimeSeconds: v.duration('find_time') ?? d.findTimeSeconds,
    banTimeSeconds: v.duration('ban_time') ?? d.banTimeSeconds,
  }
  if (out.maxRetries < 0) {
    v.error('max_retries', `option 'max_retries' must be 0 or more but it's configured as '${out.maxRetries}'`, '0 disables regulation')
    out.maxRetries = d.maxRetries
  }
  if (out.findTimeSeconds > out.banTimeSeconds)
    v.error('find_time', "option 'find_time' must be less than or equal to option 'ban_time'", `find_time is ${out.findTimeSeconds}s, ban_time ${out.banTimeSeconds}s`)
  return out
}

const REGULATION_MODES: readonly RegulationMode[] = ['user', 'ip']

/** Authelia 4.39: an empty or absent list means `['user']`; anything but `user` and `ip` is an error. */
function readRegulationModes(v: MapView): RegulationMode[] {
  const modes: RegulationMode[] = []
  for (const item of v.stringItems('modes')) {
    if ((REGULATION_MODES as readonly string[]).includes(item.value)) {
      if (!modes.includes(item.value as RegulationMode)) modes.push(item.value as RegulationMode)
    } else {
      v.problems.error(item.path, `option 'modes' must only contain the values ${quoteList(REGULATION_MODES)} but contains the value '${item.value}'`, item.src)
    }
  }
  return modes.length > 0 ? modes : [...DEFAULTS.regulation.modes]
}

/** `authentication_backend.password_reset`, and 4.37's `disable_reset_password` (both set was reported already). */
export function readPasswordReset(root: MapView): PasswordResetConfig {
  const v = root.map('authentication_backend')
  const r = v.map('password_reset')
  const out: PasswordResetConfig = { disable: r.bool('disable') ?? v.bool('disable_reset_password') ?? false }
  const url = r.str('custom_url')
  if (url !== undefined && url !== '') {
    const u = isAbsoluteUrl(url)
    if (!u || !/^https?:$/.test(u.protocol)) r.error('custom_url', `option 'custom_url' must be an absolute http or https URL but it's configured as '${url}'`, 'the page of your own password reset service, e.g. https://accounts.example.com/reset')
    else out.customUrl = u.href
  }
  return out
}

/** `password_policy`: Authelia's keys and defaults; both mechanisms at once is an error, as in Authelia. */
export function readPasswordPolicy(root: MapView): PasswordPolicyConfig {
  const v = root.map('password_policy')
  const s = v.map('standard')
  const z = v.map('zxcvbn')
  const d = DEFAULTS.passwordPolicy
  const out: PasswordPolicyConfig = {
    standard: {
      enabled: s.bool('enabled') ?? d.standard.enabled,
      minLength: s.int('min_length') ?? d.standard.minLength,
      maxLength: s.int('max_length') ?? d.standard.maxLength,
      requireUppercase: s.bool('require_uppercase') ?? d.standard.requireUppercase,
      requireLowercase: s.bool('require_lowercase') ?? d.standard.requireLowercase,
      requireNumber: s.bool('require_number') ?? d.standard.requireNumber,
      requireSpecial: s.bool('require_special') ?? d.standard.requireSpecial,
    },
    zxcvbn: { enabled: z.bool('enabled') ?? d.zxcvbn.enabled, minScore: z.int('min_score') ?? d.zxcvbn.minScore },
  }
  const st = out.standard
  // Authelia: 0 means the default.
  if (st.minLength === 0) st.minLength = d.standard.minLength
  if (st.minLength < 0) s.error('min_length', `option 'min_length' must be 1 or more but it's configured as '${st.minLength}'`)
  if (st.maxLength < 0) s.error('max_length', `option 'max_length' must be 0 (no limit) or more but it's configured as '${st.maxLength}'`)
  else if (st.maxLength > 0 && st.maxLength < st.minLength)
    s.error('max_length', `option 'max_length' must be 0 (no limit) or at least 'min_length' (${st.minLength}) but it's configured as '${st.maxLength}'`)
  if (out.zxcvbn.minScore === 0) out.zxcvbn.minScore = d.zxcvbn.minScore
  if (out.zxcvbn.minScore < 1 || out.zxcvbn.minScore > 4)
    z.error('min_score', `option 'min_score' must be between 1 and 4 but it's configured as '${out.zxcvbn.minScore}'`, '3 is the default; 4 is the strongest')
  if (st.enabled && out.zxcvbn.enabled)
    v.error('zxcvbn', "only one password policy may be enabled: 'standard' and 'zxcvbn' are both enabled", 'disable one of them')
  return out
}

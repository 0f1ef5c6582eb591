import type { PasswordPolicyConfig } from '../config/schema.js'
import { MAX_PASSWORD_BYTES } from './users-file.js'

/**
 * `password_policy` (Authelia's two mechanisms): `standard` counts characters and classes, `zxcvbn`
 * estimates how guessable the password is (score 0-4). A new password must also differ from the
 * username and stay within the bytes every password is held to (docs/security.md B4, G3).
 */

export type PolicyMode = 'disabled' | 'standard' | 'zxcvbn'

/** Why a password was refused, for the log and the page's hint; never the password itself. */
export type PolicyFailure = 'empty' | 'too_long_bytes' | 'min_length' | 'max_length' | 'uppercase' | 'lowercase' | 'number' | 'special' | 'weak' | 'username'

export type PolicyResult = { ok: true } | { ok: false; failures: PolicyFailure[] }

export function policyMode(policy: PasswordPolicyConfig): PolicyMode {
  return policy.standard.enabled ? 'standard' : policy.zxcvbn.enabled ? 'zxcvbn' : 'disabled'
}

/** Authelia 4.38's GET /api/configuration/password-policy body. */
export function policyDescription(policy: PasswordPolicyConfig): {
  mode: PolicyMode
  min_length: number
  max_length: number
  min_score: number
  require_uppercase: boolean
  require_lowercase: boolean
  require_number: boolean
  require_special: boolean
} {
  const mode = policyMode(policy)
  const s = policy.standard
  return {
    mode,
    min_length: mode === 'standard' ? s.minLength : 0,
    max_length: mode === 'standard' ? s.maxLength : 0,
    min_score: mode === 'zxcvbn' ? policy.zxcvbn.minScore : 0,
    require_uppercase: mode === 'standard' && s.requireUppercase,
    require_lowercase: mode === 'standard' && s.requireLowercase,
    require_number: mode === 'standard' && s.requireNumber,
    require_special: mode === 'standard' && s.requireSpecial,
  }
}

type Zxcvbn = { check(password: string, userInputs?: (string | number)[]): { score: number } }
let zxcvbn: Promise<Zxcvbn> | undefined

/** Built once, on first use: the dictionaries take most of a second to load. */
export function loadZxcvbn(): Promise<Zxcvbn> {
  zxcvbn ??= (async () => {
    const [{ ZxcvbnFactory }, common, en] = await Promise.all([import('@zxcvbn-ts/core'), import('@zxcvbn-ts/language-common'), import('@zxcvbn-ts/language-en')])
    return new ZxcvbnFactory({ dictionary: { ...common.dictionary, ...en.dictionary }, graphs: common.adjacencyGraphs, translations: en.translations })
  })()
  return zxcvbn
}

/** Code points, not UTF-16 units: an emoji is one character to the person typing it. */
const length = (s: string): number => [...s].length

export async function checkPasswordPolicy(policy: PasswordPolicyConfig, password: string, user: { username: string; emails?: string[]; displayName?: string }): Promise<PolicyResult> {
  const failures: PolicyFailure[] = []
  if (password.length === 0) return { ok: false, failures: ['empty'] }
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return { ok: false, failures: ['too_long_bytes'] }
  if (password.toLowerCase() === user.username.toLowerCase()) failures.push('username')
  const mode = policyMode(policy)
  if (mode === 'standard') {
    const s = policy.standard
    const n = length(password)
    if (n < s.minLength) failures.push('min_length')
    if (s.maxLength > 0 && n > s.maxLength) failures.push('max_length')
    if (s.requireUppercase && !/\p{Lu}/u.test(password)) failures.push('uppercase')
    if (s.requireLowercase && !/\p{Ll}/u.test(password)) failures.push('lowercase')
    if (s.requireNumber && !/\p{Nd}/u.test(password)) failures.push('number')
    if (s.requireSpecial && !/[^\p{L}\p{Nd}]/u.test(password)) failures.push('special')
  } else if (mode === 'zxcvbn') {
    const z = await loadZxcvbn()
    // The person's own names make a password easier to guess: zxcvbn counts them as dictionary words.
    const inputs = [user.username, ...(user.emails ?? []), ...(user.displayName ? user.displayName.split(/\s+/) : [])].filter((x) => x.length > 0)
    if (z.check(password, inputs).score < policy.zxcvbn.minScore) failures.push('weak')
  }
  return failures.length === 0 ? { ok: true } : { ok: false, failures }
}

/** One sentence naming what the policy asks for, for the reset page (the API gives the policy itself). */
export function policySentence(policy: PasswordPolicyConfig): string | undefined {
  const mode = policyMode(policy)
  if (mode === 'zxcvbn') return 'Choose a password that is hard to guess: a few unrelated words work well.'
  if (mode !== 'standard') return undefined
  const s = policy.standard
  const classes = [s.requireUppercase && 'an upper-case letter', s.requireLowercase && 'a lower-case letter', s.requireNumber && 'a digit', s.requireSpecial && 'a symbol'].filter(Boolean) as string[]
  const len = s.maxLength > 0 ? `${s.minLength} to ${s.maxLength} characters` : `at least ${s.minLength} characters`
  return `Use ${len}${classes.length ? `, with ${classes.length > 1 ? `${classes.slice(0, -1).join(', ')} and ${classes.at(-1)}` : classes[0]}` : ''}.`
}

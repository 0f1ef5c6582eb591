import { describe, expect, test } from 'vitest'
import { DEFAULTS, type PasswordPolicyConfig } from '../config/schema.js'
import { checkPasswordPolicy, policyDescription, policySentence } from './password-policy.js'

const base = DEFAULTS.passwordPolicy
const standard: PasswordPolicyConfig = {
  standard: { enabled: true, minLength: 10, maxLength: 20, requireUppercase: true, requireLowercase: true, requireNumber: true, requireSpecial: true },
  zxcvbn: { ...base.zxcvbn },
}
const zxcvbn: PasswordPolicyConfig = { standard: { ...base.standard }, zxcvbn: { enabled: true, minScore: 3 } }
const john = { username: 'john', emails: ['john.doe@example.com'], displayName: 'John Doe' }

describe('password_policy (docs/security.md G3)', () => {
  test('standard: each rule refuses on its own, and a password meeting them all passes', async () => {
    expect(await checkPasswordPolicy(standard, 'Aa1!aaaaaa', john)).toEqual({ ok: true })
    expect(await checkPasswordPolicy(standard, 'Aa1!aaaa', john)).toEqual({ ok: false, failures: ['min_length'] })
    expect(await checkPasswordPolicy(standard, `Aa1!${'a'.repeat(17)}`, john)).toEqual({ ok: false, failures: ['max_length'] })
    expect(await checkPasswordPolicy(standard, 'aa1!aaaaaa', john)).toEqual({ ok: false, failures: ['uppercase'] })
    expect(await checkPasswordPolicy(standard, 'AA1!AAAAAA', john)).toEqual({ ok: false, failures: ['lowercase'] })
    expect(await checkPasswordPolicy(standard, 'Aab!aaaaaa', john)).toEqual({ ok: false, failures: ['number'] })
    expect(await checkPasswordPolicy(standard, 'Aa1aaaaaaa', john)).toEqual({ ok: false, failures: ['special'] })
    // Characters, not bytes or UTF-16 units: ten emoji-bearing characters are ten.
    expect(await checkPasswordPolicy(standard, 'Ää1🔑ääääää', john)).toEqual({ ok: true })
  })

  test('zxcvbn: common and personal passwords are refused below min_score; a long random one passes', async () => {
    expect(await checkPasswordPolicy(zxcvbn, 'Password1!', john)).toEqual({ ok: false, failures: ['weak'] })
    expect(await checkPasswordPolicy(zxcvbn, 'johndoe2024', john)).toEqual({ ok: false, failures: ['weak'] })
    expect(await checkPasswordPolicy(zxcvbn, 'correct horse battery staple', john)).toEqual({ ok: true })
  }, 20_000)

  test('every mode: empty, over 1024 bytes, or the username itself is refused', async () => {
    for (const policy of [base, standard, zxcvbn]) {
      expect(await checkPasswordPolicy(policy, '', john)).toEqual({ ok: false, failures: ['empty'] })
      expect(await checkPasswordPolicy(policy, 'x'.repeat(1025), john)).toEqual({ ok: false, failures: ['too_long_bytes'] })
    }
    expect(await checkPasswordPolicy(base, 'JOHN', john)).toEqual({ ok: false, failures: ['username'] })
    expect(await checkPasswordPolicy(base, 'a', john)).toEqual({ ok: true })
  })

  test("Authelia 4.38's policy description, and the page's sentence", () => {
    expect(policyDescription(base)).toEqual({ mode: 'disabled', min_length: 0, max_length: 0, min_score: 0, require_uppercase: false, require_lowercase: false, require_number: false, require_special: false })
    expect(policyDescription(standard)).toEqual({ mode: 'standard', min_length: 10, max_length: 20, min_score: 0, require_uppercase: true, require_lowercase: true, require_number: true, require_special: true })
    expect(policyDescription(zxcvbn)).toMatchObject({ mode: 'zxcvbn', min_score: 3, min_length: 0 })
    expect(policySentence(standard)).toBe('Use 10 to 20 characters, with an upper-case letter, a lower-case letter, a digit and a symbol.')
    expect(policySentence(base)).toBeUndefined()
  })
})

/**
 * The encodings password reset sends to a directory (docs/ldap.md#password-reset). Active Directory
 * cannot run here: its `unicodePwd` value is checked byte for byte against Microsoft's rule
 * ("password" in double quotes, UTF-16LE); the other methods run on a real slapd in
 * test/ldap/reset-password.test.ts.
 */
import { describe, expect, test } from 'vitest'
import { ConstraintViolationError, InsufficientAccessError, InvalidCredentialsError, UnavailableError, UnwillingToPerformError } from 'ldapts'
import { PASSWORD_MODIFY_OID, PolicyHintsControl, asRefusal, policyHintsControl, passwordChange, passwordModifyRequestValue, passwordWriteMethod, unicodePwdValue } from './password.js'

describe('which write (as Authelia)', () => {
  test('activedirectory always writes unicodePwd; others use RFC 3062 when the root DSE lists it, else userPassword', () => {
    expect(passwordWriteMethod('activedirectory', [PASSWORD_MODIFY_OID])).toBe('unicodePwd')
    expect(passwordWriteMethod('activedirectory', [])).toBe('unicodePwd')
    for (const impl of ['custom', 'rfc2307bis', 'freeipa', 'lldap', 'glauth']) {
      expect(passwordWriteMethod(impl, ['1.3.6.1.4.1.1466.20037', PASSWORD_MODIFY_OID])).toBe('passwordModify')
      expect(passwordWriteMethod(impl, ['1.3.6.1.4.1.1466.20037'])).toBe('userPassword')
    }
  })
})

describe('Active Directory unicodePwd', () => {
  test('the value is the password in double quotes, UTF-16LE, no BOM', () => {
    expect(unicodePwdValue('Ab1!')).toEqual(Buffer.from([0x22, 0, 0x41, 0, 0x62, 0, 0x31, 0, 0x21, 0, 0x22, 0]))
    // Outside ASCII: é is U+00E9, 日 U+65E5, and 😀 a surrogate pair (U+D83D U+DE00), each little-endian.
    expect(unicodePwdValue('é日😀')).toEqual(Buffer.from([0x22, 0, 0xe9, 0x00, 0xe5, 0x65, 0x3d, 0xd8, 0x00, 0xde, 0x22, 0]))
    // A quote inside the password is sent as it is: the outer quotes are AD's framing, not escaping.
    expect(unicodePwdValue('a"b').toString('utf16le')).toBe('"a"b"')
  })

  test('the modify replaces unicodePwd with exactly that value (one value, binary)', () => {
    const change = passwordChange('unicodePwd', 'Sécret-2026')
    expect(change.operation).toBe('replace')
    expect(change.modification.type).toBe('unicodePwd')
    expect(change.modification.values).toEqual([Buffer.from('"Sécret-2026"', 'utf16le')])
    const plain = passwordChange('userPassword', 'Sécret-2026')
    expect(plain.modification.type).toBe('userPassword')
    expect(plain.modification.values).toEqual(['Sécret-2026'])
  })
})

describe('Active Directory password policy hints', () => {
  test('sent only when supportedControl lists it, the current OID preferred; critical, value SEQUENCE { INTEGER 1 } in an OCTET STRING', () => {
    expect(policyHintsControl(['1.2.840.113556.1.4.319'])).toBeUndefined()
    expect(policyHintsControl(['1.2.840.113556.1.4.2066'])?.type).toBe('1.2.840.113556.1.4.2066')
    const control = policyHintsControl(['1.2.840.113556.1.4.2066', '1.2.840.113556.1.4.2239'])!
    expect(control).toBeInstanceOf(PolicyHintsControl)
    expect(control.type).toBe('1.2.840.113556.1.4.2239')
    expect(control.critical).toBe(true)
    const written: Array<[string, number]> = []
    control.writeControl({ writeBuffer: (b: Buffer, tag: number) => written.push([b.toString('hex'), tag]) })
    expect(written).toEqual([['3003020101', 0x04]])
  })
})

describe('RFC 3062 PasswdModifyRequestValue', () => {
  test('SEQUENCE { [0] userIdentity, [2] newPasswd }, no oldPasswd', () => {
    const v = passwordModifyRequestValue('uid=a,dc=x', 'pw')
    expect(v.toString('hex')).toBe('30' + '10' + '80' + '0a' + Buffer.from('uid=a,dc=x').toString('hex') + '82' + '02' + Buffer.from('pw').toString('hex'))
  })

  test('long values use the long length form (X.690 8.1.3.5)', () => {
    const dn = `cn=${'x'.repeat(300)},dc=x`
    const v = passwordModifyRequestValue(dn, 'é'.repeat(100))
    // Outer: 0x30 0x82 <2 bytes>; the DN: 0x80 0x82 0x01 0x34 (308 bytes); the password: 0x82 0x81 0xc8 (200 bytes).
    expect(v.subarray(0, 2).toString('hex')).toBe('3082')
    expect(v.readUInt16BE(2)).toBe(v.length - 4)
    expect(v.subarray(4, 8).toString('hex')).toBe('80820134')
    expect(v.subarray(8 + 308, 8 + 308 + 3).toString('hex')).toBe('8281c8')
    expect(v.length).toBe(4 + 4 + 308 + 3 + 200)
  })
})

describe('refusals versus outages', () => {
  test('policy and access refusals are told apart; an outage or a wrong password is not a refusal', () => {
    expect(asRefusal(new ConstraintViolationError('Password fails quality checking policy'))).toMatchObject({ kind: 'policy', resultCode: 19 })
    expect(asRefusal(new UnwillingToPerformError('0000052D: Constraint violation'))).toMatchObject({ kind: 'policy', resultCode: 53 })
    expect(asRefusal(new InsufficientAccessError('no write access to parent'))).toMatchObject({ kind: 'access', resultCode: 50 })
    expect(asRefusal(new UnavailableError())).toBeUndefined()
    expect(asRefusal(new InvalidCredentialsError())).toBeUndefined()
    expect(asRefusal(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBeUndefined()
  })
})

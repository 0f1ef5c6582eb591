import { describe, expect, test } from 'vitest'
import { decodeBase32, encodeBase32, generateTotpCode, generateTotpConfiguration, matchTotpCode, newTotpConfiguration, otpauthUri, totpStep, TotpError } from './index.js'

const TOTP = { issuer: 'Authelia', algorithm: 'SHA1' as const, digits: 6 as const, periodSeconds: 30, secretSizeBytes: 32 }

describe('RFC 6238 appendix B vectors', () => {
  const cases = [
    { algorithm: 'SHA1' as const, secret: Buffer.from('12345678901234567890'), time: 59, code: '94287082' },
    { algorithm: 'SHA1' as const, secret: Buffer.from('12345678901234567890'), time: 1111111109, code: '07081804' },
    { algorithm: 'SHA256' as const, secret: Buffer.from('12345678901234567890123456789012'), time: 59, code: '46119246' },
    { algorithm: 'SHA512' as const, secret: Buffer.from('1234567890123456789012345678901234567890123456789012345678901234'), time: 59, code: '90693936' },
    { algorithm: 'SHA512' as const, secret: Buffer.from('1234567890123456789012345678901234567890123456789012345678901234'), time: 20000000000, code: '47863826' },
  ]
  for (const c of cases) {
    test(`${c.algorithm} at ${c.time} gives ${c.code}, and otplib accepts it`, () => {
      const conf = { algorithm: c.algorithm, digits: 8 as const, periodSeconds: 30, secret: c.secret }
      expect(generateTotpCode(conf, c.time)).toBe(c.code)
      expect(matchTotpCode(conf, c.code, c.time, 0)).toBe(totpStep(c.time, 30))
    })
  }
})

describe('matchTotpCode', () => {
  const { configuration } = generateTotpConfiguration(TOTP, 'john', 1_700_000_000)
  const now = 1_700_000_010

  test('accepts the current step and one step either side with skew 1, not two', () => {
    const step = totpStep(now, 30)
    expect(matchTotpCode(configuration, generateTotpCode(configuration, now), now, 1)).toBe(step)
    expect(matchTotpCode(configuration, generateTotpCode(configuration, now - 30), now, 1)).toBe(step - 1)
    expect(matchTotpCode(configuration, generateTotpCode(configuration, now + 30), now, 1)).toBe(step + 1)
    expect(matchTotpCode(configuration, generateTotpCode(configuration, now - 60), now, 1)).toBeUndefined()
    expect(matchTotpCode(configuration, generateTotpCode(configuration, now + 60), now, 1)).toBeUndefined()
  })

  test('skew 0 accepts only the current step', () => {
    expect(matchTotpCode(configuration, generateTotpCode(configuration, now - 30), now, 0)).toBeUndefined()
  })

  test('refuses malformed codes without throwing', () => {
    for (const bad of ['', '12345', '1234567', 'abcdef', ' 123456', '12345678', '１２３４５６']) {
      expect(matchTotpCode(configuration, bad, now, 1)).toBeUndefined()
    }
  })

  test('8 digits and SHA512 follow the configuration', () => {
    const c = generateTotpConfiguration({ ...TOTP, algorithm: 'SHA512', digits: 8 }, 'john', now).configuration
    const code = generateTotpCode(c, now)
    expect(code).toMatch(/^\d{8}$/)
    expect(matchTotpCode(c, code, now, 1)).toBe(totpStep(now, 30))
  })
})

describe('configuration and URI', () => {
  test('a generated secret has secret_size bytes and round-trips through base32', () => {
    const g = generateTotpConfiguration({ ...TOTP, secretSizeBytes: 40 }, 'john', 5)
    expect(g.configuration.secret.length).toBe(40)
    expect(decodeBase32(g.base32Secret).equals(g.configuration.secret)).toBe(true)
    expect(g.base32Secret).toMatch(/^[A-Z2-7]+$/)
    expect(g.configuration).toMatchObject({ username: 'john', issuer: 'Authelia', algorithm: 'SHA1', digits: 6, periodSeconds: 30, createdAt: 5 })
  })

  test('the otpauth URI has Authelia 4.37 shape', () => {
    const secret = decodeBase32('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP')
    const uri = otpauthUri({ issuer: 'Authelia', username: 'john', algorithm: 'SHA1', digits: 6, periodSeconds: 30, secret })
    expect(uri).toBe('otpauth://totp/Authelia:john?algorithm=SHA1&digits=6&issuer=Authelia&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP')
  })

  test('issuer and username are escaped', () => {
    const uri = otpauthUri({ issuer: 'My Co', username: 'a b@x', algorithm: 'SHA256', digits: 8, periodSeconds: 60, secret: Buffer.alloc(20, 1) })
    expect(uri.startsWith('otpauth://totp/My%20Co:a%20b%40x?algorithm=SHA256&digits=8&issuer=My+Co&period=60&secret=')).toBe(true)
  })

  test('an imported secret is used as given (CLI --secret), lower case and spaces accepted', () => {
    const c = newTotpConfiguration(TOTP, 'john', 1, 'jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp')
    expect(encodeBase32(c.secret)).toBe('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP')
  })

  test('a bad or short imported secret is refused with a typed error', () => {
    expect(() => newTotpConfiguration(TOTP, 'john', 1, 'not base32!')).toThrow(TotpError)
    expect(() => newTotpConfiguration(TOTP, 'john', 1, 'JBSWY3DP')).toThrowError(/at least 16 bytes/)
  })
})

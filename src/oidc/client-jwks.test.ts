import { createServer } from 'node:http'
import { afterEach, describe, expect, test } from 'vitest'
import { JWKS_FETCH_LIMITS, fetchJwksDocument, isPrivateAddress, keysFromJwks } from './client-jwks.js'

/** docs/security.md J5: a client jwks_uri never reaches our own host or network unless allowed. */
describe('isPrivateAddress', () => {
  test.each([
    '127.0.0.1', '127.8.9.10', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
    '224.0.0.1', '::1', '[::1]', '::', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', 'localhost', 'not-an-ip',
  ])('%s is refused', (ip) => {
    expect(isPrivateAddress(ip)).toBe(true)
  })
  test.each(['93.184.215.14', '172.32.0.1', '8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8'])('%s is public', (ip) => {
    expect(isPrivateAddress(ip)).toBe(false)
  })
})

describe('fetchJwksDocument without client_jwks_uri_allow_private_networks', () => {
  let close: (() => Promise<void>) | undefined
  afterEach(async () => {
    await close?.()
    close = undefined
  })

  async function listen(): Promise<{ port: number; hits: () => number }> {
    let hits = 0
    const server = createServer((_req, res) => {
      hits++
      res.end('{"keys":[]}')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    close = () => new Promise<void>((resolve) => server.close(() => resolve()))
    const a = server.address()
    return { port: typeof a === 'object' && a ? a.port : 0, hits: () => hits }
  }

  test('a loopback IP literal is refused before any connection', async () => {
    const s = await listen()
    await expect(fetchJwksDocument(`http://127.0.0.1:${s.port}/jwks`, { allowPrivate: false, limits: JWKS_FETCH_LIMITS })).rejects.toThrow(/loopback or private address/)
    expect(s.hits()).toBe(0)
  })

  test('a name that resolves to loopback is refused at connection time (the checked address is the one used)', async () => {
    const s = await listen()
    await expect(fetchJwksDocument(`http://localhost:${s.port}/jwks`, { allowPrivate: false, limits: JWKS_FETCH_LIMITS })).rejects.toThrow(/resolves to .*loopback or private address/)
    expect(s.hits()).toBe(0)
  })

  test('with the option the same server is read', async () => {
    const s = await listen()
    await expect(fetchJwksDocument(`http://localhost:${s.port}/jwks`, { allowPrivate: true, limits: JWKS_FETCH_LIMITS })).resolves.toEqual({ keys: [] })
    expect(s.hits()).toBe(1)
  })
})

describe('keysFromJwks', () => {
  test('skips private, symmetric, encryption, weak and broken entries', () => {
    const keys = keysFromJwks({
      keys: [
        { kty: 'oct', k: 'c2VjcmV0', kid: 'sym' },
        { kty: 'RSA', n: 'xx', e: 'AQAB', kid: 'broken' },
        { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid: 'enc', use: 'enc' },
        { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid: 'sig', alg: 'ES256' },
      ],
    })
    expect(keys.map((k) => k.kid)).toEqual(['sig'])
    expect(() => keysFromJwks({ nokeys: true })).toThrow(/no 'keys' array/)
  })
})

import { afterEach, beforeAll, describe, expect, test } from 'vitest'
import { generatePbkdf2 } from '../../src/authn/hashes/pbkdf2.js'
import { buildTestApp, type TestApp } from '../support/app.js'
import { addTestClients, basic, getCode, postForm, redeem, signedInCookie } from '../support/oidc.js'

/**
 * Client authentication as relying parties really send it (issue #13) and under floods (issue #9
 * point 4, docs/security.md A2–A4). Client-credentials requests keep each check to one request.
 */

/** The secrets of issue #13: what secret generators print, every reserved character, a valid escape. */
const SECRETS = ['Zm9v+YmFy/YmF6=', 'a+b/c=d:e%f&g h~', 'p%41ss']
/** Same characters, one changed: wrong in every reading. */
const wrongOf = (s: string) => s.slice(0, -1) + (s.endsWith('x') ? 'y' : 'x')

/** What Python's requests-oauthlib sends: `id:secret` base64-encoded as it is, no form-encoding. */
const rawBasic = (id: string, secret: string) => 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64')

const clientCredentials = (t: TestApp, authorization: string) => postForm(t, '/api/oidc/token', { grant_type: 'client_credentials' }, { authorization })

let digests: string[] = []
beforeAll(async () => {
  digests = await Promise.all(SECRETS.map((s) => generatePbkdf2(s, { variant: 'sha512', iterations: 10_000 })))
})

const machine = (id: string, secret: string) => ({
  id,
  secret,
  authorization_policy: 'one_factor',
  consent_mode: 'implicit',
  redirect_uris: ['https://m.example.com/cb'],
  scopes: ['openid'],
  grant_types: ['client_credentials'],
})

function patch(yaml: any): void {
  addTestClients(yaml)
  const clients = yaml.identity_providers.oidc.clients as any[]
  SECRETS.forEach((s, i) => clients.push(machine(`plain-${i}`, s), machine(`hashed-${i}`, digests[i]!)))
  // Ids that read differently encoded and raw: each keeps its own secret.
  clients.push(machine('rp+1', 'secret-of-plus'), machine('rp 1', 'secret-of-space'), machine('p%41', 'secret-of-percent'), machine('pA', 'secret-of-pA'))
}

let t: TestApp | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

function logLines(app: TestApp): Array<{ level: number; msg: string; client_id?: string }> {
  return app
    .logs()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
}

describe('issue #13: Basic credentials with and without form-encoding', () => {
  test('each secret is accepted encoded (RFC 6749 App. B), raw (as requests-oauthlib sends it) and posted, plaintext and hashed', async () => {
    t = await buildTestApp({ patch })
    for (const [i, secret] of SECRETS.entries()) {
      for (const id of [`plain-${i}`, `hashed-${i}`]) {
        const encoded = await clientCredentials(t, basic(id, secret))
        expect(encoded.statusCode, `${id} encoded`).toBe(200)
        const raw = await clientCredentials(t, rawBasic(id, secret))
        expect(raw.statusCode, `${id} raw`).toBe(200)
        expect(raw.json().token_type).toBe('Bearer')
        const post = await postForm(t, '/api/oidc/token', { grant_type: 'client_credentials', client_id: id, client_secret: secret })
        expect(post.statusCode, `${id} post`).toBe(200)
      }
    }
    // Logged once per client, at info, naming the client and never the secret.
    const notes = logLines(t).filter((l) => l.msg.includes('without the form-encoding'))
    expect(notes.map((l) => l.client_id).sort()).toEqual(['hashed-0', 'hashed-1', 'hashed-2', 'plain-0', 'plain-1', 'plain-2'])
    expect(notes[0]).toMatchObject({ level: 30, msg: "client 'plain-0' sends its Basic credentials without the form-encoding of RFC 6749 §2.3.1; they were accepted as sent" })
    for (const s of SECRETS) expect(t.logs()).not.toContain(s)
  })

  test('a wrong secret with the same characters is refused in every reading, and says which characters to suspect', async () => {
    t = await buildTestApp({ patch })
    for (const [i, secret] of SECRETS.entries()) {
      const wrong = wrongOf(secret)
      for (const id of [`plain-${i}`, `hashed-${i}`]) {
        for (const authorization of [basic(id, wrong), rawBasic(id, wrong)]) {
          const res = await clientCredentials(t, authorization)
          expect(res.statusCode, `${id} ${authorization}`).toBe(401)
          expect(res.json().error).toBe('invalid_client')
        }
        // The secret that is right when form-decoded, sent encoded twice, is wrong too.
        expect((await clientCredentials(t, rawBasic(id, encodeURIComponent(encodeURIComponent(secret))))).statusCode).toBe(401)
        expect((await postForm(t, '/api/oidc/token', { grant_type: 'client_credentials', client_id: id, client_secret: wrong })).statusCode).toBe(401)
      }
    }
    const failures = logLines(t).filter((l) => l.msg.startsWith("client authentication failed for client 'plain-1'"))
    expect(failures[1]!.msg).toBe(
      "client authentication failed for client 'plain-1': secret mismatch (the secret contains '+', '%' or ':', which clients often send without the form-encoding of RFC 6749 §2.3.1: it was compared both as sent and form-decoded, and neither matched)",
    )
    expect(logLines(t).some((l) => l.msg.includes('without the form-encoding of RFC 6749 §2.3.1; they were accepted'))).toBe(false)
  })

  test('both readings of one request count as one failure for the throttle', async () => {
    t = await buildTestApp({ patch })
    // Ten wrong raw requests, each tried in two readings: all ten are checked (401), the eleventh is throttled.
    for (let n = 0; n < 10; n++) expect((await clientCredentials(t, rawBasic('plain-0', `Zm9v+wrong${n}`))).statusCode).toBe(401)
    expect((await clientCredentials(t, rawBasic('plain-0', 'Zm9v+wrong-again'))).statusCode).toBe(429)
  })

  test('client ids with % and + follow the same rule and are never confused with another client', async () => {
    t = await buildTestApp({ patch })
    const clientOf = async (authorization: string) => {
      const res = await clientCredentials(t!, authorization)
      if (res.statusCode !== 200) return res.statusCode
      const info = await postForm(t!, '/api/oidc/introspection', { token: res.json().access_token }, { authorization })
      return info.json().client_id as string
    }
    expect(await clientOf(basic('rp+1', 'secret-of-plus'))).toBe('rp+1')
    expect(await clientOf(rawBasic('rp+1', 'secret-of-plus'))).toBe('rp+1')
    expect(await clientOf(basic('rp 1', 'secret-of-space'))).toBe('rp 1')
    // Raw `rp+1` form-decodes to `rp 1`: that client's own secret makes it `rp 1`, as the RFC reads it.
    expect(await clientOf(rawBasic('rp+1', 'secret-of-space'))).toBe('rp 1')
    // Never one client's id with the other's secret.
    expect(await clientOf(rawBasic('rp 1', 'secret-of-plus'))).toBe(401)
    // `rp 1` encoded is the very bytes of `rp+1` raw: the secret says whose they are.
    expect(await clientOf(basic('rp 1', 'secret-of-plus'))).toBe('rp+1')
    expect(await clientOf(basic('rp 1', 'secret-of-percent'))).toBe(401)
    expect(await clientOf(basic('rp+1', 'secret-of-space'))).toBe(401)
    expect(await clientOf(rawBasic('p%41', 'secret-of-percent'))).toBe('p%41')
    expect(await clientOf(basic('p%41', 'secret-of-percent'))).toBe('p%41')
    expect(await clientOf(basic('pA', 'secret-of-pA'))).toBe('pA')
    expect(await clientOf(rawBasic('p%41', 'secret-of-pA'))).toBe('pA')
    expect(await clientOf(basic('p%41', 'secret-of-pA'))).toBe(401)
    expect(await clientOf(rawBasic('pA', 'secret-of-percent'))).toBe(401)
  })

  test('raw credentials work at the introspection and revocation endpoints too', async () => {
    t = await buildTestApp({ patch })
    const auth = rawBasic('plain-1', SECRETS[1]!)
    const token = (await clientCredentials(t, auth)).json().access_token
    const info = await postForm(t, '/api/oidc/introspection', { token }, { authorization: auth })
    expect(info.json()).toMatchObject({ active: true, client_id: 'plain-1' })
    expect((await postForm(t, '/api/oidc/revocation', { token }, { authorization: auth })).statusCode).toBe(200)
    expect((await postForm(t, '/api/oidc/introspection', { token }, { authorization: auth })).json()).toEqual({ active: false })
    expect((await postForm(t, '/api/oidc/introspection', { token }, { authorization: rawBasic('plain-1', wrongOf(SECRETS[1]!)) })).statusCode).toBe(401)
  })
})

describe('issue #9 point 4: floods of bad credentials never lock out the client that holds its secret (security.md A4)', () => {
  test('40 unknown client_ids from the one proxy address, then the right client still redeems its code', async () => {
    t = await buildTestApp({ patch })
    const cookie = await signedInCookie(t)
    const code = await getCode(t, cookie)
    const proxied = { 'x-forwarded-for': '198.51.100.9' }
    const flood = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        postForm(t!, '/api/oidc/token', { grant_type: 'authorization_code', code, redirect_uri: 'https://kasm.example.com/api/oidc_callback', client_id: `nobody-${i}`, client_secret: 'guess' }, proxied),
      ),
    )
    expect(new Set(flood.map((r) => r.statusCode))).toEqual(new Set([401]))
    expect(new Set(flood.map((r) => r.body)).size).toBe(1)
    // And 40 more one by one: still the same answer, nothing is throttled by address.
    for (let i = 0; i < 40; i++) {
      expect((await postForm(t, '/api/oidc/token', { grant_type: 'client_credentials', client_id: `again-${i}`, client_secret: 'guess' }, proxied)).statusCode).toBe(401)
    }
    const ok = await redeem(t, code, {}, proxied)
    expect(ok.statusCode).toBe(200)
    // The peer sent X-Forwarded-For without being a trusted proxy: one warning says what to configure.
    const warnings = logLines(t).filter((l) => l.level >= 40)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]!.msg).toContain('is not in server.trusted_proxies')
    expect(warnings[0]!.msg).toContain('each client is known by its own address')
  })

  test('a burst of wrong secrets for a client throttles guessing, but its own code exchange still goes through', async () => {
    t = await buildTestApp({ patch })
    const cookie = await signedInCookie(t)
    for (let i = 0; i < 10; i++) expect((await redeem(t, 'authelia_ac_x', { client_id: 'kasm', client_secret: `wrong${i}` })).statusCode).toBe(401)
    // Guesses without a live code of the client: 429 before any check, even with the right secret.
    const guess = await redeem(t, 'authelia_ac_x', { client_id: 'kasm', client_secret: 'insecure-secret' })
    expect(guess.statusCode).toBe(429)
    expect(Number(guess.headers['retry-after'])).toBeGreaterThan(0)
    // The relying party holds a fresh code issued to it: its request is checked, and accepted.
    expect((await redeem(t, await getCode(t, cookie))).statusCode).toBe(200)
    // A live code vouches for one failed guess only; then that code is throttled like the rest.
    const stolen = await getCode(t, cookie)
    expect((await redeem(t, stolen, { client_id: 'kasm', client_secret: 'wrong-with-code' })).statusCode).toBe(401)
    expect((await redeem(t, stolen, { client_id: 'kasm', client_secret: 'wrong-again' })).statusCode).toBe(429)
    // Another client is not affected at all.
    expect((await postForm(t, '/api/oidc/token', { grant_type: 'client_credentials' }, { authorization: basic('plain-0', SECRETS[0]!) })).statusCode).toBe(200)
    t.clock.advance(61)
    expect((await redeem(t, 'authelia_ac_x', { client_id: 'kasm', client_secret: 'wrong' })).statusCode).toBe(401)
  })
})

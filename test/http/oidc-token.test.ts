import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { randomUUID } from 'node:crypto'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { hashArtifact, TokenFactory } from '../../src/oidc/tokens.js'
import { buildTestApp, type TestApp } from '../support/app.js'
import {
  HOST, ISSUER, KASM, NONCE, STATE, addTestClients, basic, decodeJwtPayload, getCode, pkcePair, postForm, redeem,
  signedInCookie, userinfo,
} from '../support/oidc.js'

let t: TestApp
let cookie: string
beforeEach(async () => {
  t = await buildTestApp({ patch: addTestClients })
  cookie = await signedInCookie(t)
})
afterEach(async () => t.close())

const A = { id: 'app-a', secret: 'secret-a:%+ x', redirectUri: 'https://a.example.com/cb' }
const B = { id: 'app-b', secret: 'insecure_secret', redirectUri: 'https://b.example.com/cb' }

function expectTokError(res: Awaited<ReturnType<typeof redeem>>, status: number, error: string) {
  expect(res.statusCode).toBe(status)
  expect(res.json().error).toBe(error)
  expect(res.headers['cache-control']).toBe('no-store')
  expect(res.headers.pragma).toBe('no-cache')
}

async function codeFor(client: { id: string; redirectUri: string }, extra: Record<string, string> = {}) {
  return getCode(t, cookie, { client_id: client.id, redirect_uri: client.redirectUri, response_type: 'code', scope: 'openid profile email groups offline_access', state: STATE, nonce: NONCE, ...extra })
}
const redeemA = (code: string, extra: Record<string, string> = {}) =>
  postForm(t, '/api/oidc/token', { grant_type: 'authorization_code', code, redirect_uri: A.redirectUri, ...extra }, { authorization: basic(A.id, A.secret) })
const refreshA = (rt: string, extra: Record<string, string> = {}) =>
  postForm(t, '/api/oidc/token', { grant_type: 'refresh_token', refresh_token: rt, ...extra }, { authorization: basic(A.id, A.secret) })

describe('the Kasm client, unchanged', () => {
  test('client_secret_post and client_secret_basic both work; no refresh token; a strict ID token', async () => {
    const post = await redeem(t, await getCode(t, cookie))
    expect(post.statusCode).toBe(200)
    expect(post.headers['cache-control']).toBe('no-store')
    expect(post.headers.pragma).toBe('no-cache')
    const body = post.json()
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'id_token', 'scope', 'token_type'])
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 3600, scope: 'openid profile groups email' })
    expect(body.access_token).toMatch(/^authelia_at_[A-Za-z0-9_-]{43}/)

    const jwks = createLocalJWKSet((await t.app.inject({ method: 'GET', url: '/jwks.json', headers: { host: HOST } })).json())
    const { payload, protectedHeader } = await jwtVerify(body.id_token, jwks, { issuer: ISSUER, audience: 'kasm', algorithms: ['RS256'] })
    expect(protectedHeader).toMatchObject({ alg: 'RS256', typ: 'JWT' })
    expect(payload).toMatchObject({
      iss: ISSUER, aud: ['kasm'], azp: 'kasm', nonce: NONCE, amr: ['pwd', 'otp', 'mfa'],
      name: 'John Doe', preferred_username: 'john', email: 'john.doe@example.com', email_verified: true, groups: ['admins', 'dev'],
    })
    expect(payload.exp! - payload.iat!).toBe(3600)
    expect(payload.iat).toBe(t.clock.now())
    expect(typeof payload.at_hash).toBe('string')
    expect(typeof payload.jti).toBe('string')
    expect(payload.sub).toMatch(/^[0-9a-f-]{36}$/)

    const viaBasic = await redeem(t, await getCode(t, cookie), {}, { authorization: basic(KASM.id, KASM.secret) })
    expect(viaBasic.statusCode).toBe(200)
    expect(decodeJwtPayload(viaBasic.json().id_token).sub).toBe(payload.sub)

    const info = await userinfo(t, body.access_token)
    expect(info.statusCode).toBe(200)
    expect(info.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(info.json()).toMatchObject({ sub: payload.sub, preferred_username: 'john', name: 'John Doe', email: 'john.doe@example.com', groups: ['admins', 'dev'] })
  })

  test('K2: sub is stable across restarts', async () => {
    const first = decodeJwtPayload((await redeem(t, await getCode(t, cookie))).json().id_token).sub
    const dir = t.dir
    await t.app.close()
    const t2 = await buildTestApp({ dir, keepDir: true })
    const c2 = await signedInCookie(t2)
    const second = decodeJwtPayload((await redeem(t2, await getCode(t2, c2))).json().id_token).sub
    expect(second).toBe(first)
    await t2.close()
  })
})

describe('R4: redirect_uri bound to the code', () => {
  test.each([
    ['omitted', undefined],
    ['the other registered URI', 'https://a.example.com/cb2'],
    ['a trailing slash', 'https://a.example.com/cb/'],
  ])('%s gives invalid_grant', async (_n, uri) => {
    const code = await codeFor(A)
    const form: Record<string, string> = { grant_type: 'authorization_code', code }
    if (uri) form.redirect_uri = uri
    expectTokError(await postForm(t, '/api/oidc/token', form, { authorization: basic(A.id, A.secret) }), 400, 'invalid_grant')
  })
})

describe('a failed redemption does not spend the code', () => {
  test('a wrong redirect_uri or PKCE verifier is invalid_grant, and the rightful request still gets its tokens', async () => {
    const { verifier, challenge } = pkcePair()
    const code = await codeFor(A, { code_challenge: challenge, code_challenge_method: 'S256' })
    expectTokError(await redeemA(code, { code_verifier: pkcePair().verifier }), 400, 'invalid_grant')
    expectTokError(await redeemA(code), 400, 'invalid_grant')
    expectTokError(await redeemA(code, { code_verifier: verifier, redirect_uri: 'https://a.example.com/cb2' }), 400, 'invalid_grant')
    expect(t.logs()).toContain("the 'redirect_uri' differs from the one of the authorization request")
    const ok = await redeemA(code, { code_verifier: verifier })
    expect(ok.statusCode).toBe(200)
    // Then it is spent: a replay is refused and revokes what it gave.
    expectTokError(await redeemA(code, { code_verifier: verifier }), 400, 'invalid_grant')
    expect((await userinfo(t, ok.json().access_token)).statusCode).toBe(401)
  })
})

describe('P1, P3: PKCE at the token endpoint', () => {
  test('good verifier passes; wrong, missing and malformed (42, 129) fail', async () => {
    const { verifier, challenge } = pkcePair()
    const withPkce = { code_challenge: challenge, code_challenge_method: 'S256' }
    expect((await redeemA(await codeFor(A, withPkce), { code_verifier: verifier })).statusCode).toBe(200)
    expectTokError(await redeemA(await codeFor(A, withPkce), { code_verifier: pkcePair().verifier }), 400, 'invalid_grant')
    expectTokError(await redeemA(await codeFor(A, withPkce)), 400, 'invalid_grant')
    expectTokError(await redeemA(await codeFor(A, withPkce), { code_verifier: 'a'.repeat(42) }), 400, 'invalid_grant')
    expectTokError(await redeemA(await codeFor(A, withPkce), { code_verifier: 'a'.repeat(129) }), 400, 'invalid_grant')
  })
  test('P3: a verifier for a code issued without a challenge is refused', async () => {
    expectTokError(await redeemA(await codeFor(A), { code_verifier: pkcePair().verifier }), 400, 'invalid_grant')
  })
})

describe('C1–C6: codes', () => {
  test('C1: a reused code is refused and the first tokens stop working', async () => {
    const code = await codeFor(A)
    const first = await redeemA(code)
    expect(first.statusCode).toBe(200)
    expectTokError(await redeemA(code), 400, 'invalid_grant')
    expect((await userinfo(t, first.json().access_token)).statusCode).toBe(401)
    const intro = await postForm(t, '/api/oidc/introspection', { token: first.json().access_token }, { authorization: basic(A.id, A.secret) })
    expect(intro.json()).toEqual({ active: false })
    expectTokError(await refreshA(first.json().refresh_token), 400, 'invalid_grant')
  })
  test('C1: reuse after 30 seconds too', async () => {
    const code = await codeFor(A)
    const first = await redeemA(code)
    t.clock.advance(30)
    expectTokError(await redeemA(code), 400, 'invalid_grant')
    expect((await userinfo(t, first.json().access_token)).statusCode).toBe(401)
  })
  test('C2: twenty concurrent redemptions of one code give exactly one 200', async () => {
    const code = await codeFor(A)
    const results = await Promise.all(Array.from({ length: 20 }, () => redeemA(code)))
    expect(results.filter((r) => r.statusCode === 200)).toHaveLength(1)
    for (const r of results.filter((r) => r.statusCode !== 200)) expect(r.json().error).toBe('invalid_grant')
  })
  test('C3: codes live authorize_code_lifespan (1 min)', async () => {
    const ok = await codeFor(A)
    t.clock.advance(59)
    expect((await redeemA(ok)).statusCode).toBe(200)
    const stale = await codeFor(A)
    t.clock.advance(61)
    expectTokError(await redeemA(stale), 400, 'invalid_grant')
  })
  test("C4: another authenticated client cannot redeem A's code, and A still can", async () => {
    const code = await codeFor(A)
    const byB = await postForm(t, '/api/oidc/token', { grant_type: 'authorization_code', code, redirect_uri: A.redirectUri, client_id: B.id, client_secret: B.secret })
    expectTokError(byB, 400, 'invalid_grant')
    expect((await redeemA(code)).statusCode).toBe(200)
  })
  test('C5: artifacts carry 256 random bits and the database holds only their hashes', async () => {
    const code = await codeFor(A)
    const tokens = (await redeemA(code)).json()
    const { readFileSync, readdirSync } = await import('node:fs')
    const dump = readdirSync(t.dir)
      .filter((f) => f.startsWith('db.sqlite3'))
      .map((f) => readFileSync(`${t.dir}/${f}`).toString('latin1'))
      .join('')
    for (const v of [code, tokens.access_token, tokens.refresh_token]) {
      expect(dump.includes(v)).toBe(false)
      expect(dump.includes(v.split('.')[0])).toBe(false)
    }
    const { TokenFactory } = await import('../../src/oidc/tokens.js')
    const factory = new TokenFactory('k')
    const seen = new Set<string>()
    for (let i = 0; i < 10_000; i++) {
      const random = factory.issue('at').value.slice('authelia_at_'.length).split('.')[0]!
      expect(Buffer.from(random, 'base64url')).toHaveLength(32)
      seen.add(random)
    }
    expect(seen.size).toBe(10_000)
  })
  test('C6: unknown grant, a grant the client lacks, an RT used as a code', async () => {
    expectTokError(await postForm(t, '/api/oidc/token', { grant_type: 'password', username: 'john', password: 'password' }, { authorization: basic(A.id, A.secret) }), 400, 'unsupported_grant_type')
    expectTokError(await redeem(t, 'x', { grant_type: 'client_credentials' }), 400, 'unauthorized_client')
    expectTokError(await redeem(t, 'x', { grant_type: 'refresh_token', refresh_token: 'authelia_rt_x' }), 400, 'unauthorized_client')
    const tokens = (await redeemA(await codeFor(A))).json()
    expectTokError(await redeemA(tokens.refresh_token), 400, 'invalid_grant')
    expectTokError(await redeemA(tokens.access_token), 400, 'invalid_grant')
    expectTokError(await postForm(t, '/api/oidc/token', { redirect_uri: A.redirectUri }, { authorization: basic(A.id, A.secret) }), 400, 'invalid_request')
  })
})

/**
 * Holds the request whose consume wins between its consume and its save (where a replay can slip
 * in on a busy server or another instance), until `release`: a deterministic interleaving on the
 * real storage, not a stand-in for it.
 */
function pauseWinnerAfterConsume(method: 'consumeAuthorizationCode' | 'consumeRefreshToken' | 'redeemAuthorizationCode') {
  const storage = t.storage as unknown as Record<string, (...args: unknown[]) => Promise<{ kind: string }>>
  const original = storage[method]!
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  let consumed!: () => void
  const winnerConsumed = new Promise<void>((resolve) => (consumed = resolve))
  storage[method] = async (...args) => {
    const found = await original(...args)
    if (found.kind === 'ok') {
      consumed()
      await gate
    }
    return found
  }
  return { winnerConsumed, release }
}

/**
 * A code of the opaque form Latchkey issued before codes were sealed (a rolling upgrade can still
 * bring one): the same grant as a fresh code, saved under an `authelia_ac_<random>.<hmac>` value.
 */
async function opaqueCodeFor(client: { id: string; redirectUri: string }): Promise<string> {
  const sealed = await codeFor(client)
  const peek = await t.storage.consumeAuthorizationCode(hashArtifact(sealed), client.id, t.clock.now(), () => false)
  if (peek.kind !== 'refused') throw new Error(`peek: ${peek.kind}`)
  const opaque = new TokenFactory(t.deps.config.identityProviders.oidc!.hmacSecret).issue('ac')
  expect(opaque.value).toMatch(/^authelia_ac_[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/)
  await t.storage.saveAuthorizationCode({ ...peek.record, grantId: randomUUID(), codeHash: opaque.hash })
  return opaque.value
}

describe('C1, T1: a replay racing the winner revokes what the winner issues', () => {
  test('C1: a replay landing right after the one-step redemption of a sealed code revokes what the winner is handing out: it gets invalid_grant, the winner\'s tokens are dead', async () => {
    const code = await codeFor(A)
    const { winnerConsumed, release } = pauseWinnerAfterConsume('redeemAuthorizationCode')
    const winner = redeemA(code)
    await winnerConsumed
    expectTokError(await redeemA(code), 400, 'invalid_grant')
    release()
    const won = await winner
    expect(won.statusCode).toBe(200)
    expect((await userinfo(t, won.json().access_token)).statusCode).toBe(401)
    expectTokError(await refreshA(won.json().refresh_token), 400, 'invalid_grant')
    expect(t.logs()).toContain('the authorization code was already used; every token issued from it is revoked')
  })

  test("C1: an opaque code's replay that revokes the grant before the first redemption's tokens are saved: both get invalid_grant", async () => {
    const code = await opaqueCodeFor(A)
    const { winnerConsumed, release } = pauseWinnerAfterConsume('consumeAuthorizationCode')
    const winner = redeemA(code)
    await winnerConsumed
    expectTokError(await redeemA(code), 400, 'invalid_grant')
    release()
    expectTokError(await winner, 400, 'invalid_grant')
    expect(t.logs()).toContain('the grant was revoked while its authorization code was being redeemed')
  })

  test('T1: a refresh token replay that revokes the grant before the rotation is saved: both get invalid_grant, and the family is dead', async () => {
    const first = (await redeemA(await codeFor(A))).json()
    const { winnerConsumed, release } = pauseWinnerAfterConsume('consumeRefreshToken')
    const winner = refreshA(first.refresh_token)
    await winnerConsumed
    expectTokError(await refreshA(first.refresh_token), 400, 'invalid_grant')
    release()
    expectTokError(await winner, 400, 'invalid_grant')
    expect(t.logs()).toContain('the grant was revoked while its refresh token was being redeemed')
    expect((await userinfo(t, first.access_token)).statusCode).toBe(401)
  })

  test('T1: twenty racing uses of one refresh token: at most one 200, and afterwards no token of the family works', async () => {
    const first = (await redeemA(await codeFor(A))).json()
    const results = await Promise.all(Array.from({ length: 20 }, () => refreshA(first.refresh_token)))
    const ok = results.filter((r) => r.statusCode === 200)
    expect(ok.length).toBeLessThanOrEqual(1)
    for (const r of results.filter((r) => r.statusCode !== 200)) expect(r.json().error).toBe('invalid_grant')
    for (const tokens of [first, ...ok.map((r) => r.json())]) {
      expect((await userinfo(t, tokens.access_token)).statusCode).toBe(401)
      expectTokError(await refreshA(tokens.refresh_token), 400, 'invalid_grant')
    }
  })
})

describe('A1–A4: client authentication', () => {
  test('A1: wrong secret, unknown id, empty secret, none: 401 invalid_client, Basic challenge when Basic was used', async () => {
    const code = await getCode(t, cookie)
    const wrongBasic = await redeem(t, code, {}, { authorization: basic('kasm', 'wrong') })
    expectTokError(wrongBasic, 401, 'invalid_client')
    expect(String(wrongBasic.headers['www-authenticate'])).toMatch(/^Basic /)
    const unknownBasic = await redeem(t, code, {}, { authorization: basic('nobody', 'wrong') })
    expectTokError(unknownBasic, 401, 'invalid_client')
    expect(unknownBasic.body).toBe(wrongBasic.body)
    const wrongPost = await redeem(t, code, { client_id: 'kasm', client_secret: 'wrong' })
    expectTokError(wrongPost, 401, 'invalid_client')
    expect(wrongPost.headers['www-authenticate']).toBeUndefined()
    expectTokError(await redeem(t, code, { client_id: 'kasm', client_secret: '' }), 401, 'invalid_client')
    expectTokError(await redeem(t, code, { client_id: 'kasm' }), 401, 'invalid_client')
    expectTokError(await postForm(t, '/api/oidc/token', { grant_type: 'authorization_code', code }), 401, 'invalid_client')
    // The code survived every failed attempt.
    expect((await redeem(t, code)).statusCode).toBe(200)
    expect(t.logs()).toContain("client authentication failed for client 'kasm': secret mismatch")
    expect(t.logs()).toContain("client authentication failed for client 'nobody': client 'nobody' is not registered")
  })
  test('A2: the pinned method is enforced; Basic is form-decoded (RFC 6749 App. B)', async () => {
    // A is pinned to client_secret_basic; its secret contains ':%+ ' which survives form encoding.
    expect((await redeemA(await codeFor(A))).statusCode).toBe(200)
    const asPost = await postForm(t, '/api/oidc/token', { grant_type: 'authorization_code', code: await codeFor(A), redirect_uri: A.redirectUri, client_id: A.id, client_secret: A.secret })
    expectTokError(asPost, 401, 'invalid_client')
    // B is pinned to client_secret_post.
    const bCode = await codeFor(B)
    expectTokError(await postForm(t, '/api/oidc/token', { grant_type: 'authorization_code', code: bCode, redirect_uri: B.redirectUri }, { authorization: basic(B.id, B.secret) }), 401, 'invalid_client')
    expect((await postForm(t, '/api/oidc/token', { grant_type: 'authorization_code', code: bCode, redirect_uri: B.redirectUri, client_id: B.id, client_secret: B.secret })).statusCode).toBe(200)
  })
  test('A2: header and body secret together, a differing body client_id, a malformed header: 400 invalid_request', async () => {
    const code = await getCode(t, cookie)
    expectTokError(await redeem(t, code, { client_secret: KASM.secret }, { authorization: basic(KASM.id, KASM.secret) }), 400, 'invalid_request')
    expectTokError(await redeem(t, code, { client_id: 'other' }, { authorization: basic(KASM.id, KASM.secret) }), 400, 'invalid_request')
    expectTokError(await redeem(t, code, {}, { authorization: 'Basic !!!notbase64' }), 400, 'invalid_request')
    expectTokError(await redeem(t, code, {}, { authorization: 'Basic ' + Buffer.from('no-colon').toString('base64') }), 400, 'invalid_request')
    // A percent-escape that does not decode is read as sent (issue #13): a wrong secret, not a malformed header.
    expectTokError(await redeem(t, code, {}, { authorization: 'Basic ' + Buffer.from('kasm:%zz').toString('base64') }), 401, 'invalid_client')
  })
  test('A2: credentials in the query string are never read', async () => {
    const code = await getCode(t, cookie)
    const res = await t.app.inject({
      method: 'POST',
      url: `/api/oidc/token?client_id=kasm&client_secret=insecure-secret`,
      headers: { host: HOST, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: KASM.redirectUri }).toString(),
    })
    expectTokError(res, 401, 'invalid_client')
  })
  test('A3: a PBKDF2 digest secret verifies with its KDF', async () => {
    const res = await postForm(t, '/api/oidc/token', { grant_type: 'client_credentials', client_id: B.id, client_secret: B.secret })
    expect(res.statusCode).toBe(200)
    expectTokError(await postForm(t, '/api/oidc/token', { grant_type: 'client_credentials', client_id: B.id, client_secret: 'insecure-secret' }), 401, 'invalid_client')
  })
  test('A4: a burst of wrong secrets is throttled, even for the right secret without a live code, until the window passes', async () => {
    for (let i = 0; i < 10; i++) expectTokError(await redeem(t, 'authelia_ac_x', { client_id: 'kasm', client_secret: `wrong${i}` }), 401, 'invalid_client')
    const throttled = await redeem(t, 'authelia_ac_y')
    expect(throttled.statusCode).toBe(429)
    expect(throttled.json().error).toBe('invalid_client')
    expect(Number(throttled.headers['retry-after'])).toBeGreaterThan(0)
    t.clock.advance(61)
    expectTokError(await redeem(t, 'authelia_ac_y'), 400, 'invalid_grant')
  })
  test('A4: wrong secrets sent all at once cannot outrun the limit: at most 10 are checked, the rest get 429', async () => {
    // PBKDF2 (310000 rounds) verifies off the event loop, so without the gate all 25 would be checked.
    const burst = await Promise.all(
      Array.from({ length: 25 }, (_, i) => postForm(t, '/api/oidc/token', { grant_type: 'client_credentials', client_id: B.id, client_secret: `guess-${i}` })),
    )
    const statuses = burst.map((r) => r.statusCode)
    expect(statuses.filter((s) => s === 401)).toHaveLength(10)
    expect(statuses.filter((s) => s === 429)).toHaveLength(15)
    expect(t.logs().match(/secret mismatch/g)).toHaveLength(10)
  })
  test('a public client authenticates with client_id only and must not send a secret', async () => {
    const { verifier, challenge } = pkcePair()
    const code = await getCode(t, cookie, { client_id: 'public-app', redirect_uri: 'https://spa.example.com/cb', response_type: 'code', scope: 'openid', state: STATE, code_challenge: challenge, code_challenge_method: 'S256' })
    const withSecret = await postForm(t, '/api/oidc/token', { grant_type: 'authorization_code', code, redirect_uri: 'https://spa.example.com/cb', client_id: 'public-app', client_secret: 'x', code_verifier: verifier })
    expectTokError(withSecret, 401, 'invalid_client')
    const ok = await postForm(t, '/api/oidc/token', { grant_type: 'authorization_code', code, redirect_uri: 'https://spa.example.com/cb', client_id: 'public-app', code_verifier: verifier })
    expect(ok.statusCode).toBe(200)
  })
})

describe('T1–T3: refresh tokens', () => {
  test('T1: rotation; reuse of a spent token revokes the family, the newest included', async () => {
    const first = (await redeemA(await codeFor(A))).json()
    expect(first.refresh_token).toMatch(/^authelia_rt_/)
    const second = await refreshA(first.refresh_token)
    expect(second.statusCode).toBe(200)
    const s = second.json()
    expect(s.refresh_token).not.toBe(first.refresh_token)
    expect(decodeJwtPayload(s.id_token).sub).toBe(decodeJwtPayload(first.id_token).sub)
    // The previous access token stopped working at rotation.
    expect((await userinfo(t, first.access_token)).statusCode).toBe(401)
    expect((await userinfo(t, s.access_token)).statusCode).toBe(200)
    expectTokError(await refreshA(first.refresh_token), 400, 'invalid_grant')
    expectTokError(await refreshA(s.refresh_token), 400, 'invalid_grant')
    expect((await userinfo(t, s.access_token)).statusCode).toBe(401)
  })
  test('T1: two racing uses: at most one 200', async () => {
    const first = (await redeemA(await codeFor(A))).json()
    const results = await Promise.all([refreshA(first.refresh_token), refreshA(first.refresh_token), refreshA(first.refresh_token)])
    expect(results.filter((r) => r.statusCode === 200).length).toBeLessThanOrEqual(1)
  })
  test('T2: another client gets invalid_grant; a wider scope gets invalid_scope and the token still works', async () => {
    const first = (await redeemA(await codeFor(A, { scope: 'openid profile offline_access' }))).json()
    expectTokError(await postForm(t, '/api/oidc/token', { grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: B.id, client_secret: B.secret }), 400, 'invalid_grant')
    expectTokError(await refreshA(first.refresh_token, { scope: 'openid profile email' }), 400, 'invalid_scope')
    const narrowed = await refreshA(first.refresh_token, { scope: 'openid' })
    expect(narrowed.statusCode).toBe(200)
    expect(narrowed.json().scope).toBe('openid')
    // The rotated refresh token keeps the original scopes.
    expect((await refreshA(narrowed.json().refresh_token, { scope: 'openid profile' })).statusCode).toBe(200)
  })
  test('T3: expired refresh tokens and removed users give invalid_grant', async () => {
    const first = (await redeemA(await codeFor(A))).json()
    t.clock.advance(90 * 60 + 1)
    expectTokError(await refreshA(first.refresh_token), 400, 'invalid_grant')
    const c2 = await signedInCookie(t)
    cookie = c2
    const again = (await redeemA(await codeFor(A))).json()
    const { readFileSync, writeFileSync } = await import('node:fs')
    const users = `${t.dir}/users_database.yml`
    writeFileSync(users, readFileSync(users, 'utf8').replace(/^  john:[\s\S]*?(?=^  harry:)/m, ''))
    expect((t.deps.users as unknown as { reload: () => boolean }).reload()).toBe(true)
    expect(await t.deps.users.findUser('john')).toBeUndefined()
    expect((await userinfo(t, again.access_token)).statusCode).toBe(401)
    expectTokError(await refreshA(again.refresh_token), 400, 'invalid_grant')
  })
  test('T3: a password change in the users file ends the grant: the refresh token gives invalid_grant', async () => {
    const first = (await redeemA(await codeFor(A))).json()
    const { readFileSync, writeFileSync } = await import('node:fs')
    const users = `${t.dir}/users_database.yml`
    const before = readFileSync(users, 'utf8')
    // john gets another password digest (argon2id of "changed", made for this test).
    const { generateDigest } = await import('../../src/authn/hashes/index.js')
    const digest = await generateDigest('changed', 'argon2', { memory: 1024, iterations: 1, parallelism: 1 })
    // A replacer function: the digest holds '$' followed by digits, which a replacement string would expand.
    writeFileSync(users, before.replace(/(  john:[\s\S]*?password: )"[^"]+"/, (_m, head: string) => `${head}"${digest}"`))
    expect((t.deps.users as unknown as { reload: () => boolean }).reload()).toBe(true)
    expectTokError(await refreshA(first.refresh_token), 400, 'invalid_grant')
    expect(t.logs()).toContain("the password of user 'john' changed after the grant was made; the grant is revoked")
    // The whole grant is gone, its access token included.
    expect((await userinfo(t, first.access_token)).statusCode).toBe(401)
  })
  test.each([
    ['a password change', (text: string, digest: string) => text.replace(/(  john:[\s\S]*?password: )"[^"]+"/, (_m, head: string) => `${head}"${digest}"`), 'changed after the grant was made'],
    ['disabling the user', (text: string) => text.replace(/^  john:\n/m, '  john:\n    disabled: true\n'), 'no longer exists or is disabled'],
  ])('T3/I3: after %s, introspection and userinfo call the tokens dead, before any refresh', async (_what, edit, reason) => {
    // Two grants: one is looked at by userinfo first, the other by introspection first.
    const first = (await redeemA(await codeFor(A))).json()
    const second = (await redeemA(await codeFor(A))).json()
    const introspect = (token: string) => postForm(t, '/api/oidc/introspection', { token }, { authorization: basic(A.id, A.secret) })
    expect((await introspect(second.access_token)).json().active).toBe(true)
    const { readFileSync, writeFileSync } = await import('node:fs')
    const { generateDigest } = await import('../../src/authn/hashes/index.js')
    const users = `${t.dir}/users_database.yml`
    writeFileSync(users, edit(readFileSync(users, 'utf8'), await generateDigest('changed', 'argon2', { memory: 1024, iterations: 1, parallelism: 1 })))
    expect((t.deps.users as unknown as { reload: () => boolean }).reload()).toBe(true)
    const ui = await userinfo(t, first.access_token)
    expect(ui.statusCode).toBe(401)
    expect(ui.json().error).toBe('invalid_token')
    expect(t.logs()).toContain(reason)
    expect(t.logs()).not.toContain('introspection of a token')
    expect((await introspect(second.access_token)).json()).toEqual({ active: false })
    expect(t.logs()).toMatch(new RegExp(`introspection of a token of client 'app-a' answered inactive: .*${reason}`))
    expect((await introspect(second.refresh_token)).json()).toEqual({ active: false })
  })
  test('T3: no refresh token without offline_access', async () => {
    const res = (await redeemA(await codeFor(A, { scope: 'openid profile' }))).json()
    expect(res.refresh_token).toBeUndefined()
  })
})

describe('client_credentials', () => {
  test('issues an access token without ID token or refresh token; openid is refused', async () => {
    const res = await postForm(t, '/api/oidc/token', { grant_type: 'client_credentials', client_id: B.id, client_secret: B.secret, scope: 'groups' })
    expect(res.statusCode).toBe(200)
    expect(Object.keys(res.json()).sort()).toEqual(['access_token', 'expires_in', 'scope', 'token_type'])
    expectTokError(await postForm(t, '/api/oidc/token', { grant_type: 'client_credentials', client_id: B.id, client_secret: B.secret, scope: 'openid' }), 400, 'invalid_scope')
  })
})

describe('X1–X3 at the token endpoint', () => {
  test('X2: a repeated parameter is invalid_request', async () => {
    const code = await getCode(t, cookie)
    const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: KASM.redirectUri, client_id: 'kasm', client_secret: KASM.secret }).toString() + '&code=y'
    expectTokError(await postForm(t, '/api/oidc/token', form), 400, 'invalid_request')
    expectTokError(await postForm(t, '/api/oidc/token', 'grant_type=authorization_code&code[]=x&client_id=kasm&client_secret=insecure-secret'), 400, 'invalid_request')
  })
  test('X3: bad escapes, JSON and multipart are invalid_request; GET is 405', async () => {
    for (const bad of ['%FF', '%C3%28', '%zz']) expectTokError(await postForm(t, '/api/oidc/token', `grant_type=authorization_code&code=${bad}`), 400, 'invalid_request')
    const json = await t.app.inject({ method: 'POST', url: '/api/oidc/token', headers: { host: HOST, 'content-type': 'application/json' }, payload: { grant_type: 'authorization_code' } })
    expectTokError(json, 400, 'invalid_request')
    const proto = await t.app.inject({ method: 'POST', url: '/api/oidc/token', headers: { host: HOST, 'content-type': 'application/json' }, payload: '{"__proto__":{"x":1}}' })
    expect(proto.statusCode).toBe(400)
    const multipart = await t.app.inject({ method: 'POST', url: '/api/oidc/token', headers: { host: HOST, 'content-type': 'multipart/form-data; boundary=x' }, payload: '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--\r\n' })
    expectTokError(multipart, 400, 'invalid_request')
    const get = await t.app.inject({ method: 'GET', url: '/api/oidc/token', headers: { host: HOST } })
    expect(get.statusCode).toBe(405)
    expect(get.headers.allow).toBe('POST')
  })
  test('X1: an oversized body gets 413 JSON and the server keeps serving', async () => {
    const res = await postForm(t, '/api/oidc/token', 'a=' + 'x'.repeat(10 * 1024 * 1024))
    expect(res.statusCode).toBe(413)
    expect(res.json().error).toBe('invalid_request')
    expect((await redeem(t, await getCode(t, cookie))).statusCode).toBe(200)
  })
})

describe('diagnostics (D2)', () => {
  test('refusals log one line with the reason and client, and no secret or issued value', async () => {
    const code = await getCode(t, cookie)
    const tokens = (await redeem(t, code)).json()
    await redeem(t, code)
    await redeem(t, 'authelia_ac_zzz', { client_id: 'kasm', client_secret: 'not-the-secret' })
    const logs = t.logs()
    expect(logs).toMatch(/oidc token refused for client 'kasm': invalid_grant: the authorization code was already used/)
    for (const secret of [KASM.secret, 'not-the-secret', code, tokens.access_token, tokens.id_token, cookie.split('=')[1]!]) {
      expect(logs.includes(secret)).toBe(false)
    }
  })
  test('enable_client_debug_messages appends the detail to error_description', async () => {
    await t.close()
    t = await buildTestApp({ patch: (y) => (y.identity_providers.oidc.enable_client_debug_messages = true) })
    const res = await redeem(t, 'authelia_ac_x', { client_id: 'kasm', client_secret: 'nope' })
    expect(res.json().error_description).toMatch(/secret mismatch$/)
  })
})

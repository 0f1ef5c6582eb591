import { readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import * as client from 'openid-client'
import { describe, expect, test } from 'vitest'
import { startTestServer } from '../support/app.js'
import {
  KASM_REDIRECT_URI,
  PASSWORD,
  kasmFields,
  pythonRpAvailable,
  runKasmRp,
  signInWithFetch,
  useProductionHarness,
  type FollowingClock,
  type Latchkey,
} from '../support/rp/harness.js'

/**
 * Every row of the troubleshooting table in docs/integrations/kasm.md, produced for real: the
 * mistake is made (on the Kasm side with the Kasm-shaped Python relying party, or in Latchkey's
 * configuration), and the test checks what the admin then sees: the line in Latchkey's log (and,
 * where Kasm shows something, what the relying party got). When a message changes, the guide must
 * change with it.
 */

interface LogLine {
  level: number
  msg: string
  [key: string]: unknown
}

function logLines(latchkey: { logs(): string }): LogLine[] {
  return latchkey
    .logs()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine)
}

/** The one log line whose message starts with `prefix` (fails listing the messages otherwise). */
function findLog(latchkey: { logs(): string }, prefix: string): LogLine {
  const lines = logLines(latchkey)
  const found = lines.filter((l) => l.msg.startsWith(prefix))
  if (found.length === 0) throw new Error(`no log line starting with ${JSON.stringify(prefix)}; messages:\n${lines.map((l) => l.msg).join('\n')}`)
  return found.at(-1)!
}

/**
 * A TLS-terminating reverse proxy in front of plain-HTTP Latchkey, as fetch: https://auth.example.com
 * requests reach `upstream` over HTTP with Host: auth.example.com and X-Forwarded-Proto: https.
 */
function behindProxy(upstream: string): (url: string | URL, init?: RequestInit) => Promise<Response> {
  const target = new URL(upstream)
  return (url, init = {}) =>
    new Promise((resolve, reject) => {
      const u = new URL(String(url))
      const headers = { ...Object.fromEntries(new Headers(init.headers).entries()), host: u.host, 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.7' }
      const req = httpRequest({ host: target.hostname, port: target.port, path: u.pathname + u.search, method: init.method ?? 'GET', headers }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve(new Response(Buffer.concat(chunks), { status: res.statusCode, headers: res.headers as Record<string, string> })))
      })
      req.on('error', reject)
      req.end(typeof init.body === 'string' ? init.body : init.body ? String(init.body) : undefined)
    })
}

const DEBUG = 20
const INFO = 30
const WARN = 40
const runPython = process.env.CI || pythonRpAvailable() ? describe : describe.skip

describe('Kasm troubleshooting table, row by row', () => {
  const harness = useProductionHarness()

  /** What Kasm's browser does with its configured fields: follow the authorization URL it builds. */
  async function authorize(l: Latchkey, params: Record<string, string>): Promise<Response> {
    const query = new URLSearchParams({ response_type: 'code', client_id: 'kasm', redirect_uri: KASM_REDIRECT_URI, scope: 'openid profile groups email', state: 'kasm-state-0123456789', ...params })
    return l.fetch(`${l.issuer}/api/oidc/authorization?${query}`)
  }

  runPython('at the token endpoint (Kasm-shaped Python relying party)', () => {
    test('row "client secret differs": Kasm holds insecure_secret, Latchkey insecure-secret', async () => {
      const latchkey = await harness.start()
      const fields = kasmFields(latchkey, harness.proxy.url, { clientSecret: 'insecure_secret' })
      const start = await runKasmRp(fields, ['authorize'])
      const secret = await latchkey.registerTotp('john')
      const callback = await signInWithFetch(latchkey, start.out.url, 'john', secret)
      const done = await runKasmRp(fields, ['callback', callback.href, start.out.state])
      expect(done.code).toBe(1)
      expect(done.out.error).toBe('invalid_client')
      const line = findLog(latchkey, 'client authentication failed')
      expect(line).toMatchObject({ level: INFO, client_id: 'kasm', error: 'invalid_client', msg: "client authentication failed for client 'kasm': secret mismatch" })
    })

    test('row "secret with +, % or :": Kasm sends it without form-encoding; accepted, logged once, and a wrong one says which characters to suspect', async () => {
      const latchkey = await harness.start({
        patch: (yaml) => {
          yaml.identity_providers.oidc.clients[0].secret = 'Zm9v+YmFy/YmF6='
        },
      })
      const secret = await latchkey.registerTotp('john')
      const jar = { cookie: '' }
      for (const clientSecret of ['Zm9v+YmFy/YmF6=', 'Zm9v+YmFy/YmF6=', 'Zm9v+YmFy/YmF7=']) {
        const fields = kasmFields(latchkey, harness.proxy.url, { clientSecret })
        const start = await runKasmRp(fields, ['authorize'])
        const callback = await signInWithFetch(latchkey, start.out.url, 'john', secret, jar)
        const done = await runKasmRp(fields, ['callback', callback.href, start.out.state])
        if (clientSecret.endsWith('6=')) expect(done.out.username).toBe('john')
        else expect(done.out.error).toBe('invalid_client')
      }
      const noted = logLines(latchkey).filter((l) => l.msg.includes('without the form-encoding of RFC 6749 §2.3.1; they were accepted as sent'))
      expect(noted).toEqual([
        expect.objectContaining({ level: INFO, client_id: 'kasm', msg: "client 'kasm' sends its Basic credentials without the form-encoding of RFC 6749 §2.3.1; they were accepted as sent" }),
      ])
      expect(findLog(latchkey, 'client authentication failed')).toMatchObject({
        level: INFO,
        client_id: 'kasm',
        msg: "client authentication failed for client 'kasm': secret mismatch (the secret contains '+', '%' or ':', which clients often send without the form-encoding of RFC 6749 §2.3.1: it was compared both as sent and form-decoded, and neither matched)",
      })
      expect(latchkey.logs()).not.toContain('YmF6')
    })

    test('row "digest pasted into Kasm": the $pbkdf2… value goes into Latchkey only, never into Kasm', async () => {
      const digest = '$pbkdf2-sha512$310000$c8p78n7pUMln0jzvd4aK4Q$JNRBzwAo0ek5qKn50cFzzvE9RXV88h1wJn5KGiHrD0YKtZaR/nCb2CJPOsKaPK0hjf.9yHxzQGZziziccp6Yng'
      const latchkey = await harness.start({
        patch: (yaml) => {
          yaml.identity_providers.oidc.clients[0].secret = digest
        },
      })
      const fields = kasmFields(latchkey, harness.proxy.url, { clientSecret: digest })
      const start = await runKasmRp(fields, ['authorize'])
      const secret = await latchkey.registerTotp('john')
      const callback = await signInWithFetch(latchkey, start.out.url, 'john', secret)
      const done = await runKasmRp(fields, ['callback', callback.href, start.out.state])
      expect(done.out.error).toBe('invalid_client')
      expect(findLog(latchkey, 'client authentication failed').msg).toBe("client authentication failed for client 'kasm': secret mismatch")
    })

    test('row "authentication method pinned": the 4.38 block pins client_secret_basic, the relying party posts the secret', async () => {
      const latchkey = await harness.start({
        patch: (yaml) => {
          yaml.identity_providers.oidc.clients[0].token_endpoint_auth_method = 'client_secret_basic'
        },
      })
      const fields = kasmFields(latchkey, harness.proxy.url, { tokenAuth: 'client_secret_post' })
      const start = await runKasmRp(fields, ['authorize'])
      const secret = await latchkey.registerTotp('john')
      const callback = await signInWithFetch(latchkey, start.out.url, 'john', secret)
      const done = await runKasmRp(fields, ['callback', callback.href, start.out.state])
      expect(done.out.error).toBe('invalid_client')
      expect(findLog(latchkey, 'client authentication failed').msg).toBe(
        "client authentication failed for client 'kasm': the client is registered with token_endpoint_auth_method 'client_secret_basic' but used 'client_secret_post'",
      )
    })

    test('row "userinfo is a JWT": userinfo_signing_algorithm RS256 breaks a client that reads JSON', async () => {
      const latchkey = await harness.start({
        patch: (yaml) => {
          yaml.identity_providers.oidc.clients[0].userinfo_signing_algorithm = 'RS256'
        },
      })
      const fields = kasmFields(latchkey, harness.proxy.url)
      const start = await runKasmRp(fields, ['authorize'])
      const secret = await latchkey.registerTotp('john')
      const callback = await signInWithFetch(latchkey, start.out.url, 'john', secret)
      const done = await runKasmRp(fields, ['callback', callback.href, start.out.state])
      expect(done.out).toEqual({ error: 'userinfo', detail: 'not JSON: application/jwt' })
      // Latchkey itself served it fine: nothing refused; at log.level debug, the successful token and
      // userinfo calls show as `request served` lines (also what the "non OIDC user" note points to).
      expect(latchkey.logs()).toContain('"method":"GET","path":"/api/oidc/userinfo","status":200')
      const served = logLines(latchkey).filter((l) => l.msg === 'request served')
      expect(served.find((l) => l.path === '/api/oidc/userinfo')).toMatchObject({ level: DEBUG, method: 'GET', status: 200 })
      expect(served.find((l) => l.path === '/api/oidc/token')).toMatchObject({ level: DEBUG, method: 'POST', status: 200 })
      expect(logLines(latchkey).filter((l) => l.level >= INFO && /refused|failed/.test(l.msg))).toEqual([])
    })
  })

  test('row "redirect URI mismatch": Kasm was set up through its IP address, so it sends https://192.168.1.20/api/oidc_callback', async () => {
    const latchkey = await harness.start()
    const res = await authorize(latchkey, { redirect_uri: 'https://192.168.1.20/api/oidc_callback' })
    // Shown to the user on Latchkey's page; nothing is sent to the unverified URI.
    expect(res.status).toBe(400)
    expect(res.headers.get('location')).toBeNull()
    expect(await res.text()).toContain('<p>The &#39;redirect_uri&#39; parameter does not match any of the OAuth 2.0 Client&#39;s pre-registered redirect urls.</p>')
    expect(findLog(latchkey, 'oidc authorization refused')).toMatchObject({
      client_id: 'kasm',
      error: 'invalid_request',
      msg: "oidc authorization refused for client 'kasm': invalid_request: redirect_uri is compared by exact string",
    })
  })

  test('row "scope not allowed": a scope in Kasm\'s list that the client block does not allow', async () => {
    const latchkey = await harness.start()
    const res = await authorize(latchkey, { scope: 'openid profile groups email offline_access' })
    expect(res.status).toBe(303)
    const back = new URL(res.headers.get('location')!)
    expect(back.origin + back.pathname).toBe(KASM_REDIRECT_URI)
    expect(back.searchParams.get('error')).toBe('invalid_scope')
    expect(findLog(latchkey, 'oidc authorization refused').msg).toBe(
      "oidc authorization refused for client 'kasm': invalid_scope: The OAuth 2.0 Client is not allowed to request scope 'offline_access'.",
    )
  })

  test('row "state too short": a relying party that sends no state or fewer than 8 characters', async () => {
    const latchkey = await harness.start()
    const res = await authorize(latchkey, { state: 'abc' })
    expect(res.status).toBe(303)
    expect(new URL(res.headers.get('location')!).searchParams.get('error')).toBe('invalid_state')
    expect(findLog(latchkey, 'oidc authorization refused').msg).toBe("oidc authorization refused for client 'kasm': invalid_state: state is too short")
  })

  test('row "clock skew": the server clock is 5 minutes off, so every code from the phone is refused', async () => {
    const latchkey = await harness.start()
    const secret = await latchkey.registerTotp('john')
    ;(latchkey.clock as FollowingClock).offsetSeconds = 300
    const res = await authorize(latchkey, {})
    const portal = new URL(res.headers.get('location')!)
    // Password first (JSON API, as the portal's script does), then the phone's code: computed on real time.
    const first = await latchkey.fetch(`${latchkey.issuer}/api/firstfactor`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'john', password: PASSWORD, targetURL: portal.searchParams.get('rd') }),
    })
    expect(first.status).toBe(200)
    const cookie = first.headers.getSetCookie()[0]!.split(';')[0]!
    const { generate } = await import('otplib')
    const phoneCode = await generate({ secret, epoch: Math.floor(Date.now() / 1000), algorithm: 'sha1', digits: 6, period: 30 })
    const second = await latchkey.fetch(`${latchkey.issuer}/api/secondfactor/totp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie },
      body: JSON.stringify({ token: phoneCode }),
    })
    expect(second.status).toBe(403)
    expect(findLog(latchkey, 'second factor failed')).toMatchObject({ level: INFO, username: 'john', reason: 'wrong_code', msg: 'second factor failed: wrong_code' })
  })

  test('row "code used twice": a code that was just accepted is refused when typed again within its period', async () => {
    const latchkey = await harness.start()
    const secret = await latchkey.registerTotp('john')
    const code = await latchkey.totpCode(secret)
    // Two sign-ins (two tabs, or signing in again at once), each with its own session, the same code.
    const secondFactor = async () => {
      const first = await latchkey.fetch(`${latchkey.issuer}/api/firstfactor`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'john', password: PASSWORD }),
      })
      expect(first.status).toBe(200)
      const cookie = first.headers.getSetCookie()[0]!.split(';')[0]!
      return latchkey.fetch(`${latchkey.issuer}/api/secondfactor/totp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie },
        body: JSON.stringify({ token: code }),
      })
    }
    expect((await secondFactor()).status).toBe(200)
    expect((await secondFactor()).status).toBe(403)
    expect(findLog(latchkey, 'second factor failed')).toMatchObject({ level: INFO, username: 'john', reason: 'replayed_code', msg: 'second factor failed: replayed_code' })
  })

  test('row "TOTP not registered": the first sign-in asks to register; the link goes through the notifier', async () => {
    const latchkey = await harness.start()
    const first = await latchkey.fetch(`${latchkey.issuer}/api/firstfactor`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'harry', password: PASSWORD }),
    })
    const cookie = first.headers.getSetCookie()[0]!.split(';')[0]!
    const code = await latchkey.fetch(`${latchkey.issuer}/api/secondfactor/totp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie },
      body: JSON.stringify({ token: '123456' }),
    })
    expect(code.status).toBe(403)
    expect(findLog(latchkey, 'second factor failed').msg).toBe('second factor failed: no_totp_configuration')
    const start = await latchkey.fetch(`${latchkey.issuer}/api/secondfactor/totp/identity/start`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie },
      body: '{}',
    })
    expect(start.status).toBe(200)
    expect(findLog(latchkey, 'identity verification sent')).toMatchObject({ username: 'harry', msg: 'identity verification sent for TOTP registration' })
    // The notifier file holds the one-time code to type into the page that asked for it.
    expect(readFileSync(latchkey.notificationsFile, 'utf8')).toMatch(/^ {4}[A-Z0-9]{8}$/m)
  })

  test('row "plain HTTP behind a proxy": the proxy\'s X-Forwarded-Proto is ignored, so the issuer becomes http://', async () => {
    // Latchkey on plain HTTP behind a TLS-terminating proxy at 127.0.0.1 that is not in server.trusted_proxies.
    const plain = await startTestServer()
    try {
      const viaProxy = behindProxy(plain.url)
      const doc = (await (await viaProxy('https://auth.example.com/.well-known/openid-configuration')).json()) as { issuer: string }
      expect(doc.issuer).toBe('http://auth.example.com')
      // A relying party that uses discovery refuses the mismatch with the https URL it was given.
      await expect(client.discovery(new URL('https://auth.example.com'), 'kasm', 'insecure-secret', undefined, { [client.customFetch]: viaProxy as typeof fetch })).rejects.toThrow(
        /discovered metadata issuer does not match the expected issuer/,
      )
      // Latchkey warns once, naming the peer and the setting.
      const warnings = logLines(plain).filter((l) => l.level >= WARN)
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toMatchObject({ peer: '127.0.0.1' })
      expect(String(warnings[0]!.msg)).toBe(
        "X-Forwarded-* headers from 127.0.0.1 are ignored because it is not in server.trusted_proxies: if a reverse proxy runs there, add its address so the issuer and cookies follow the public https URL and each client is known by its own address, not the proxy's",
      )
    } finally {
      await plain.close()
    }
    // The fix: trust the proxy (or set identity_providers.oidc.issuer).
    const trusted = await startTestServer({ patch: (yaml) => (yaml.server = { ...yaml.server, trusted_proxies: ['127.0.0.1'] }) })
    try {
      const doc = (await (await behindProxy(trusted.url)('https://auth.example.com/.well-known/openid-configuration')).json()) as { issuer: string }
      expect(doc.issuer).toBe('https://auth.example.com')
    } finally {
      await trusted.close()
    }
  })

  describe('sign-out (step 6)', () => {
    const POST_LOGOUT = 'https://kasm.example.com/'
    const withLogout = (extra: Record<string, unknown> = {}) => (yaml: any) => {
      Object.assign(yaml.identity_providers.oidc, { backchannel_logout_allow_private_networks: true })
      Object.assign(yaml.identity_providers.oidc.clients.find((c: any) => c.id === 'kasm'), { post_logout_redirect_uris: [POST_LOGOUT], ...extra })
    }
    async function signIn(latchkey: Latchkey, username: string): Promise<{ cookie: string }> {
      const jar = { cookie: '' }
      const query = new URLSearchParams({ response_type: 'code', client_id: 'kasm', redirect_uri: KASM_REDIRECT_URI, scope: 'openid profile groups email', state: 'kasm-state-0123456789' })
      await signInWithFetch(latchkey, `${latchkey.issuer}/api/oidc/authorization?${query}`, username, await latchkey.registerTotp(username), jar)
      return jar
    }
    const level = async (latchkey: Latchkey, jar: { cookie: string }) =>
      ((await (await latchkey.fetch(`${latchkey.issuer}/api/state`, { headers: { cookie: jar.cookie } })).json()) as { data: { authentication_level: number } }).data.authentication_level

    test('row "post_logout_redirect_uri not registered": Kasm returns to an address the client block does not list', async () => {
      const latchkey = await harness.start({ patch: withLogout() })
      const jar = await signIn(latchkey, 'john')
      const query = new URLSearchParams({ client_id: 'kasm', post_logout_redirect_uri: 'https://kasm.example.com/#/login' })
      const res = await latchkey.fetch(`${latchkey.issuer}/api/oidc/logout?${query}`, { headers: { cookie: jar.cookie } })
      expect(res.status).toBe(400)
      expect(res.headers.get('location')).toBeNull()
      expect(await res.text()).toContain('The post_logout_redirect_uri is not registered for this client.')
      expect(findLog(latchkey, 'oidc logout refused')).toMatchObject({
        level: INFO,
        client_id: 'kasm',
        msg: "oidc logout refused for client 'kasm': invalid_request: post_logout_redirect_uri 'https://kasm.example.com/#/login' is not one of the client's post_logout_redirect_uris (compared by exact string)",
      })
      expect(await level(latchkey, jar)).toBe(2)
    })

    test('row "Logout with OIDC provider off": Kasm signs out by itself, Latchkey never hears of it', async () => {
      const latchkey = await harness.start({ patch: withLogout() })
      const jar = await signIn(latchkey, 'harry')
      // What Kasm does with the switch off: its own session ends, no request reaches Latchkey.
      expect(logLines(latchkey).filter((l) => l.msg.startsWith('oidc logout') || l.msg.startsWith('signed out'))).toEqual([])
      expect(await level(latchkey, jar)).toBe(2)
      // With the switch on, the same sign-out is the end-session request, and it shows in the log.
      const query = new URLSearchParams({ client_id: 'kasm', post_logout_redirect_uri: POST_LOGOUT })
      const page = await latchkey.fetch(`${latchkey.issuer}/api/oidc/logout?${query}`, { headers: { cookie: jar.cookie } })
      expect(page.status).toBe(200)
      expect(await page.text()).toContain('asks to sign you out')
    })

    test('row "signing out of Latchkey leaves Kasm signed in": the back-channel URI does not answer', async () => {
      const closed = await import('../support/tls.js').then((m) => m.freePort())
      const latchkey = await harness.start({ patch: withLogout({ backchannel_logout_uri: `http://127.0.0.1:${closed}/api/oidc_backchannel_logout` }) })
      const jar = await signIn(latchkey, 'mary')
      const out = await latchkey.fetch(`${latchkey.issuer}/api/logout`, { method: 'POST', headers: { cookie: jar.cookie, 'content-type': 'application/json' }, body: '{}' })
      expect(out.status).toBe(200)
      // Three attempts (now, after 1 s, after 4 s), then one warning.
      await expect.poll(() => logLines(latchkey).some((l) => l.msg.startsWith("back-channel logout to client 'kasm' failed")), { timeout: 15_000, interval: 500 }).toBe(true)
      const line = findLog(latchkey, "back-channel logout to client 'kasm' failed")
      expect(line.level).toBe(WARN)
      expect(line.msg).toMatch(/^back-channel logout to client 'kasm' failed: request failed: connect ECONNREFUSED 127\.0\.0\.1:\d+$/)
      expect(logLines(latchkey).filter((l) => l.msg.startsWith('back-channel logout'))).toHaveLength(1)
    }, 30_000)
  })
})

import { afterEach, describe, expect, test } from 'vitest'
import type { TestApp } from '../support/app.js'
import { Client, codeFor, lastOneTimeCode, lastRegistrationLink, portalTestApp, registerTotp } from './portal-helpers.js'

let t: TestApp | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

async function start(opts: Parameters<typeof portalTestApp>[0] = {}): Promise<TestApp> {
  t = await portalTestApp(opts)
  return t
}

const csrfOf = (body: string): string => /name="csrf" value="([^"]+)"/.exec(body)![1]!
/** What the page says (not its stylesheet). */
const mainOf = (body: string): string => /<main[^>]*>([\s\S]*)<\/main>/.exec(body)![1]!

describe('sign-in page', () => {
  test('renders an accessible form without scripts or external assets, with a CSRF token and no-store', async () => {
    const { app } = await start()
    const c = new Client(app)
    const res = await c.get('/')
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(res.headers['cache-control']).toBe('no-store')
    expect(res.headers['x-frame-options']).toBe('DENY')
    expect(res.headers['referrer-policy']).toBe('no-referrer')
    expect(res.headers['content-security-policy']).toContain("script-src 'none'")
    expect(res.headers['set-cookie']).toMatch(/^authelia_session=[A-Za-z0-9]{32}; Max-Age=900; Domain=example\.com; Path=\/; HttpOnly; Secure; SameSite=Lax$/)
    const body = res.body
    expect(body).toContain('<label for="username">Username</label>')
    expect(body).toContain('<input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus>')
    expect(body).toContain('<label for="password">Password</label>')
    expect(body).toContain('autocomplete="current-password"')
    expect(body).toContain('<label for="remember_me">Remember me</label>')
    expect(body).toMatch(/name="csrf" value="[\w-]{32}"/)
    expect(body).not.toMatch(/<script|src="http|href="http/)
    expect(body).toContain('<html lang="en" class="theme-light">')
    // The stylesheet is raw text: an entity inside <style> would break the declaration around it.
    const style = /<style>([\s\S]*?)<\/style>/.exec(body)![1]!
    expect(style).toContain('"Segoe UI"')
    expect(style).not.toMatch(/&(quot|amp|gt|lt|#39);/)
  })

  test('the dark theme is applied from configuration', async () => {
    const { app } = await start({ patch: (y) => (y.theme = 'dark') })
    expect((await new Client(app).get('/')).body).toContain('<html lang="en" class="theme-dark">')
  })

  test('a reflected rd is escaped, and an unsafe one dropped', async () => {
    const { app } = await start()
    const safe = await new Client(app).get(`/?rd=${encodeURIComponent('https://kasm.example.com/?a="><script>x</script>')}`)
    expect(safe.body).not.toContain('<script>x')
    expect(safe.body).toContain('name="rd" value="https://kasm.example.com/?a=%22%3E%3Cscript%3Ex%3C/script%3E"')
    const evil = await new Client(app).get(`/?rd=${encodeURIComponent('https://evil.com/"><b>')}`)
    expect(evil.body).not.toContain('name="rd"')
    expect(evil.body).not.toContain('evil.com')
  })

  test('sign in by form: 303 to the one-time code page; the session is level 1', async () => {
    const { app } = await start()
    const c = new Client(app)
    const csrf = csrfOf((await c.get('/')).body)
    const res = await c.form('/', { csrf, username: 'john', password: 'password' })
    expect(res.statusCode).toBe(303)
    expect(res.headers.location).toBe('/2fa/one-time-password')
    expect((await c.state()).authentication_level).toBe(1)
  })

  test('with rd, sign-in continues to rd (the authorization endpoint decides what comes next)', async () => {
    const { app } = await start()
    const c = new Client(app)
    const rd = 'https://auth.example.com/api/oidc/authorization?client_id=kasm&response_type=code&state=abcdefgh'
    const csrf = csrfOf((await c.get(`/?rd=${encodeURIComponent(rd)}`)).body)
    const res = await c.form('/', { csrf, username: 'john', password: 'password', rd })
    expect(res.statusCode).toBe(303)
    expect(res.headers.location).toBe(rd)
    // Already signed in: visiting /?rd= goes straight on.
    const again = await c.get(`/?rd=${encodeURIComponent(rd)}`)
    expect(again.statusCode).toBe(303)
    expect(again.headers.location).toBe(rd)
  })

  test('wrong credentials: 303 back with a fixed message; the username stays in its field, escaped, the password does not', async () => {
    const { app } = await start()
    const c = new Client(app)
    const csrf = csrfOf((await c.get('/')).body)
    const res = await c.form('/', { csrf, username: '<b>john"', password: 'nope' })
    expect(res.statusCode).toBe(303)
    expect(res.headers.location).toBe('/?error=credentials&username=%3Cb%3Ejohn%22')
    const page = await c.get(res.headers.location as string)
    expect(page.body).toContain('<p class="error" role="alert">Authentication failed. Check your credentials.</p>')
    expect(page.body).toContain('name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required value="&lt;b&gt;john&quot;">')
    expect(page.body).toContain('name="password" autocomplete="current-password" required autofocus>')
    expect(page.body).not.toContain('<b>john')
    expect(page.body).not.toContain('nope')
  })

  test('issue 9.12: during a ban the page says sign-in is paused and for how long, keeps the username, and a made-up name reads the same', async () => {
    const { app, clock } = await start()
    const c = new Client(app)
    const attempt = async (username: string, password: string) => c.form('/', { csrf: csrfOf((await c.get('/')).body), username, password })
    for (let i = 0; i < 2; i++) expect((await attempt('john', 'nope')).headers.location).toBe('/?error=credentials&username=john')
    const third = await attempt('john', 'nope')
    expect(third.headers.location).toBe(`/?error=paused&until=${clock.now() + 300}&username=john`)
    clock.advance(130)
    const right = await attempt('john', 'password')
    expect(right.headers.location).toBe(`/?error=paused&until=${clock.now() + 170}&username=john`)
    const page = await c.get(right.headers.location as string)
    expect(page.body).toContain('<p class="error" role="alert">Sign-in is paused after too many failed attempts. Try again in 3 minutes.</p>')
    expect(page.body).toContain('value="john"')
    // A made-up name banned by its own failures gets the same page (security.md B2).
    for (let i = 0; i < 3; i++) await attempt('nobody', 'nope')
    clock.advance(130)
    const ghost = await c.get((await attempt('nobody', 'password')).headers.location as string)
    expect(ghost.body.replace('value="nobody"', 'value="john"')).toBe(page.body.replace(csrfOf(page.body), csrfOf(ghost.body)))
    // An edited `until` cannot make the page claim more than ban_time.
    const edited = await c.get(`/?error=paused&until=${clock.now() + 99999}`)
    expect(edited.body).toContain('Try again in 5 minutes.')
    clock.advance(300)
    expect((await attempt('john', 'password')).statusCode).toBe(303)
    expect((await c.state()).authentication_level).toBe(1)
  })

  test('loading the sign-in page writes nothing to the database; its cookie and token are tied by a MAC', async () => {
    const t = await start()
    const Database = (await import('better-sqlite3')).default
    const rows = () => {
      const db = new Database(`${t.dir}/db.sqlite3`, { readonly: true })
      const n = (db.prepare('SELECT count(*) AS n FROM sessions').get() as { n: number }).n
      db.close()
      return n
    }
    const before = rows()
    for (let i = 0; i < 50; i++) expect((await new Client(t.app).get('/')).statusCode).toBe(200)
    expect(rows()).toBe(before)
    // The same browser keeps its cookie and token across loads; the token only works with that cookie.
    const c = new Client(t.app)
    const first = csrfOf((await c.get('/')).body)
    const cookie = c.cookie
    expect(csrfOf((await c.get('/')).body)).toBe(first)
    expect(c.cookie).toBe(cookie)
    const other = new Client(t.app)
    await other.get('/')
    expect((await other.form('/', { csrf: first, username: 'john', password: 'password' })).headers.location).toBe('/?error=expired')
    // A made-up cookie of the right shape is replaced, not adopted.
    expect(cookie).toMatch(/^[A-Za-z0-9]{32}$/)
    const made = cookie!.slice(0, 20) + (cookie!.endsWith('AAAAAAAAAAAA') ? 'B' : 'A').repeat(12)
    const forged = new Client(t.app)
    forged.cookie = made
    await forged.get('/')
    expect(forged.cookie).not.toBe(made)
    expect((await c.form('/', { csrf: first, username: 'john', password: 'password' })).statusCode).toBe(303)
    expect((await c.state()).authentication_level).toBe(1)
    expect(c.cookie).not.toBe(cookie)
  })

  test('the anonymous cookie and its token expire after 15 minutes on the server too', async () => {
    const t = await start()
    const c = new Client(t.app)
    const csrf = csrfOf((await c.get('/')).body)
    const cookie = c.cookie
    t.clock.advance(15 * 60)
    expect((await c.form('/', { csrf, username: 'john', password: 'password' })).headers.location).toBe('/?error=expired')
    expect((await c.state()).authentication_level).toBe(0)
    await c.get('/')
    expect(c.cookie).not.toBe(cookie)
  })

  test('a host outside every session cookie domain gets a page that says so, and a log line', async () => {
    const t = await start()
    const res = await new Client(t.app, 'localhost:9091').get('/')
    expect(res.statusCode).toBe(400)
    expect(res.body).toContain('This sign-in portal is not served at this address')
    expect(res.headers['set-cookie']).toBeUndefined()
    expect(t.logs()).toContain('sign-in page refused: the host matches no session cookie domain')
  })

  test('issue 9.13: on the 127.0.0.1 demo, the localhost page links to the portal address (with the target), which serves the sign-in', async () => {
    t = await portalTestApp({ patch: (y) => ((y.session.domain = '127.0.0.1'), (y.server = { host: '127.0.0.1', port: 9091 })) })
    const res = await new Client(t.app, 'localhost:9091').get('/?rd=http%3A%2F%2F127.0.0.1%3A9091%2Fapi%2Foidc%2Fauthorization%3Fclient_id%3Dkasm')
    expect(res.statusCode).toBe(400)
    const href = /<a class="button" href="([^"]+)">Go to http:\/\/127\.0\.0\.1:9091<\/a>/.exec(res.body)?.[1]
    expect(href).toBe('http://127.0.0.1:9091/?rd=http%3A%2F%2F127.0.0.1%3A9091%2Fapi%2Foidc%2Fauthorization%3Fclient_id%3Dkasm')
    const there = new URL(href!)
    const signIn = await new Client(t.app, there.host).get(there.pathname + there.search)
    expect(signIn.statusCode).toBe(200)
    expect(signIn.body).toContain('<input type="hidden" name="rd" value="http://127.0.0.1:9091/api/oidc/authorization?client_id=kasm">')
  })

  test('a form without the CSRF token, with a wrong one, or from another site is refused', async () => {
    const { app } = await start()
    const c = new Client(app)
    await c.get('/')
    const missing = await c.form('/', { username: 'john', password: 'password' })
    expect(missing.statusCode).toBe(303)
    expect(missing.headers.location).toBe('/?error=expired')
    const wrong = await c.form('/', { csrf: 'x'.repeat(32), username: 'john', password: 'password' })
    expect(wrong.headers.location).toBe('/?error=expired')
    const csrf = csrfOf((await c.get('/')).body)
    const cross = await c.form('/', { csrf, username: 'john', password: 'password' }, { origin: 'https://evil.com' })
    expect(cross.statusCode).toBe(403)
    expect(cross.body).toContain('This form was sent from another site, so it was refused.')
    const fetchMeta = await c.form('/', { csrf, username: 'john', password: 'password' }, { 'sec-fetch-site': 'cross-site' })
    expect(fetchMeta.statusCode).toBe(403)
    expect((await c.state()).authentication_level).toBe(0)
    // Repeated fields are not accepted as values.
    const repeated = await c.request({
      method: 'POST',
      url: '/',
      payload: `csrf=${csrf}&username=john&username=harry&password=password`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
    expect(repeated.headers.location).toBe('/?error=credentials')
  })
})

describe('one-time code pages', () => {
  test('without a device: ask for a code, type it in this tab, see the QR code, confirm with a code', async () => {
    const tapp = await start()
    const c = new Client(tapp.app)
    let csrf = csrfOf((await c.get('/')).body)
    await c.form('/', { csrf, username: 'john', password: 'password' })
    const otp = await c.get('/2fa/one-time-password')
    expect(otp.body).toContain('Register your device')
    expect(otp.body).not.toContain('id="token"')
    // The filesystem notifier: the page does not speak of email.
    expect(otp.body).toContain("we will write a one-time code to this server&#39;s notification file to confirm it is you")
    expect(mainOf(otp.body)).not.toMatch(/e-?mail/i)
    csrf = csrfOf(otp.body)
    const started = await c.form('/2fa/one-time-password/register', { csrf })
    expect(started.statusCode).toBe(303)
    expect(started.headers.location).toBe('/one-time-password/identity')
    const codePage = await c.get('/one-time-password/identity')
    expect(codePage.body).toContain('A one-time code was written to this server&#39;s notification file (notifier.filesystem): ask its administrator for it.')
    expect(mainOf(codePage.body)).not.toMatch(/e-?mail/i)
    expect(codePage.body).toContain('<input type="text" id="code" name="code" autocomplete="one-time-code"')

    const wrongCode = await c.form('/one-time-password/identity', { csrf: csrfOf(codePage.body), code: 'AAAAAAAA' })
    expect(wrongCode.headers.location).toBe('/one-time-password/identity?error=otc')
    const typed = await c.form('/one-time-password/identity', { csrf: csrfOf(codePage.body), code: lastOneTimeCode(tapp) })
    expect(typed.statusCode).toBe(303)
    expect(typed.headers.location).toBe('/one-time-password/register')
    const shown = await c.get('/one-time-password/register')
    expect(shown.body).toMatch(/<div class="qr"><svg role="img" aria-label="QR code of the setup link" [^>]*>/)
    const secret = /<code class="secret" id="secret">([A-Z2-7]+)<\/code>/.exec(shown.body)![1]!
    expect(shown.body).toContain('autocomplete="one-time-code"')
    // Still pending: the code page offers no code form, the state is level 1.
    expect((await c.get('/2fa/one-time-password')).body).not.toContain('id="token"')

    const wrong = await c.form('/2fa/one-time-password', { csrf: csrfOf(shown.body), token: '000000' })
    expect(wrong.headers.location).toBe('/one-time-password/register?error=code')
    const ok = await c.form('/2fa/one-time-password', { csrf: csrfOf(shown.body), token: codeFor(secret, tapp.clock.now()) })
    expect(ok.statusCode).toBe(303)
    expect(ok.headers.location).toBe('https://www.example.com/')
    expect((await c.state()).authentication_level).toBe(2)
    const signedIn = await c.get('/')
    expect(signedIn.body).toContain('with your password and a one-time code')
    // The secret is no longer shown once the device is confirmed.
    expect((await c.get('/one-time-password/register')).statusCode).toBe(303)
  })

  test('with SMTP configured the pages speak of email', async () => {
    const tapp = await start({ patch: (y) => (y.notifier = { smtp: { host: '127.0.0.1', port: 2525, sender: 'auth@example.com', disable_require_tls: true } }) })
    const c = new Client(tapp.app)
    await c.signIn()
    expect((await c.get('/2fa/one-time-password')).body).toContain('we will email you a one-time code to confirm it is you')
    expect((await c.get('/one-time-password/identity')).body).toContain('We sent a one-time code to your email address.')
  })

  test('too many requests: the code page says so and an earlier code still works', async () => {
    const tapp = await start()
    const c = new Client(tapp.app)
    await c.signIn()
    const csrf = csrfOf((await c.get('/2fa/one-time-password')).body)
    for (let i = 0; i < 3; i++) expect((await c.form('/2fa/one-time-password/register', { csrf })).headers.location).toBe('/one-time-password/identity')
    const code = lastOneTimeCode(tapp)
    const limited = await c.form('/2fa/one-time-password/register', { csrf })
    expect(limited.headers.location).toBe('/one-time-password/identity?error=too-many')
    expect((await c.get(limited.headers.location as string)).body).toContain('Too many codes were requested.')
    expect((await c.form('/one-time-password/identity', { csrf, code })).headers.location).toBe('/one-time-password/register')
  })

  test('with authelia_url: the link page says at once when a link is used, expired or from another sign-in', async () => {
    const tapp = await start({
      patch: (y) => {
        delete y.session.domain
        y.session.cookies = [{ domain: 'example.com', authelia_url: 'https://auth.example.com' }]
      },
    })
    const c = new Client(tapp.app)
    await c.signIn()
    let csrf = csrfOf((await c.get('/2fa/one-time-password')).body)
    await c.form('/2fa/one-time-password/register', { csrf })
    const link = new URL(lastRegistrationLink(tapp))
    const path = `${link.pathname}${link.search}`
    const confirm = await c.get(path)
    expect(confirm.statusCode).toBe(200)
    expect(confirm.body).toContain('Show my QR code')
    // Showing the confirmation does not spend the token: a mail scanner fetching the link is harmless.
    expect((await c.get(path)).statusCode).toBe(200)
    // Another sign-in of the same user: refused before any click.
    const other = new Client(tapp.app)
    await other.signIn()
    const foreign = await other.get(path)
    expect(foreign.statusCode).toBe(400)
    expect(foreign.body).toContain('This link belongs to another sign-in')
    const finish = await c.form('/one-time-password/register', { csrf: csrfOf(confirm.body), token: link.searchParams.get('token')! })
    expect(finish.headers.location).toBe('/one-time-password/register')
    // Used: said on the GET, not only after a click.
    const used = await c.get(path)
    expect(used.statusCode).toBe(400)
    expect(used.body).toContain('This registration link was already used.')
    expect(used.body).not.toContain('Show my QR code')
    // Expired: likewise.
    csrf = csrfOf(used.body)
    tapp.clock.advance(31) // a new code from the same session
    await c.form('/2fa/one-time-password/register', { csrf })
    const second = new URL(lastRegistrationLink(tapp))
    tapp.clock.advance(250)
    await c.state()
    tapp.clock.advance(50)
    const expired = await c.get(`${second.pathname}${second.search}`)
    expect(expired.statusCode).toBe(400)
    expect(expired.body).toContain('This registration link has expired.')
  })

  test('with a device and rd: the code form continues to rd', async () => {
    const tapp = await start()
    const c = new Client(tapp.app)
    await c.signIn()
    const secret = await registerTotp(tapp, c)
    const rd = 'https://auth.example.com/api/oidc/authorization?client_id=kasm&state=abcdefgh'
    const page = await c.get(`/2fa/one-time-password?rd=${encodeURIComponent(rd)}`)
    expect(page.body).toContain('<input type="text" id="token" name="token" inputmode="numeric" pattern="[0-9]*" maxlength="6" autocomplete="one-time-code" required autofocus>')
    const res = await c.form('/2fa/one-time-password', { csrf: csrfOf(page.body), token: codeFor(secret, tapp.clock.now()), rd })
    expect(res.statusCode).toBe(303)
    expect(res.headers.location).toBe(rd)
  })

  test('a target needing two factors: sign-in goes to the code page keeping rd, then on to rd', async () => {
    const tapp = await start()
    const c = new Client(tapp.app)
    await c.signIn()
    const secret = await registerTotp(tapp, c)
    await c.post('/api/logout', {})
    const rd = 'https://kasm.example.com/x'
    const csrf = csrfOf((await c.get(`/?rd=${encodeURIComponent(rd)}`)).body)
    const first = await c.form('/', { csrf, username: 'john', password: 'password', rd })
    expect(first.headers.location).toBe(`/2fa/one-time-password?rd=${encodeURIComponent(rd)}`)
    // Visiting /?rd= at level 1 also goes to the code page rather than to rd.
    expect((await c.get(`/?rd=${encodeURIComponent(rd)}`)).headers.location).toBe(`/2fa/one-time-password?rd=${encodeURIComponent(rd)}`)
    const page = await c.get(first.headers.location as string)
    const res = await c.form('/2fa/one-time-password', { csrf: csrfOf(page.body), token: codeFor(secret, tapp.clock.now()), rd })
    expect(res.headers.location).toBe(rd)
  })

  test('anonymous visitors are sent to sign in, keeping rd', async () => {
    const { app } = await start()
    const rd = 'https://kasm.example.com/x'
    const res = await new Client(app).get(`/2fa/one-time-password?rd=${encodeURIComponent(rd)}`)
    expect(res.statusCode).toBe(303)
    expect(res.headers.location).toBe(`/?rd=${encodeURIComponent(rd)}`)
  })
})

describe('sign out and error pages', () => {
  test('the sign-out page asks, the form signs out and comes back with a notice', async () => {
    const { app } = await start()
    const c = new Client(app)
    await c.signIn()
    const page = await c.get('/logout')
    expect(page.body).toContain('Sign out of <strong>john</strong>?')
    const res = await c.form('/logout', { csrf: csrfOf(page.body) })
    expect(res.statusCode).toBe(303)
    expect(res.headers.location).toBe('/?notice=signed-out')
    expect((await c.state()).authentication_level).toBe(0)
    expect((await c.get('/?notice=signed-out')).body).toContain('You have been signed out.')
  })

  test('sign-out needs the CSRF token', async () => {
    const { app } = await start()
    const c = new Client(app)
    await c.signIn()
    const res = await c.form('/logout', { csrf: 'nope' })
    expect(res.headers.location).toBe('/logout')
    expect((await c.state()).authentication_level).toBe(1)
  })

  test('the error page shows only fixed messages', async () => {
    const { app } = await start()
    const res = await new Client(app).get('/error?code=<script>')
    expect(res.statusCode).toBe(400)
    expect(res.body).toContain('Something went wrong. Please try again.')
    expect(res.body).not.toContain('<script>')
  })
})

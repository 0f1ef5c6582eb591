import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generate } from 'otplib'
import { chromium, type Browser, type Page } from 'playwright-core'
import { parse, stringify } from 'yaml'
import { ManualClock } from '../../../src/common/clock.js'
import { decodeBase32 } from '../../../src/totp/index.js'
import { generatePbkdf2 } from '../../../src/authn/hashes/pbkdf2.js'
import { KASM_CONFIG, ROOT, startTestServer, type TestApp, type TestAppOptions } from '../app.js'
import { CHROMIUM_PATH } from '../browser.js'
import { afterAll, afterEach, beforeAll } from 'vitest'
import { createTestPki, startLoopbackProxy, testFetch, type LoopbackProxy, type TestPki } from '../tls.js'

/**
 * The production-shaped harness of issue #5: Latchkey over HTTPS as auth.example.com (a certificate
 * from a CA made at run time), reached by relying parties through real host names that each client
 * maps to loopback by itself. The server listens on a random port, so every URL carries it
 * (https://auth.example.com:PORT) and the issuer follows the request's host, as in Authelia 4.37.
 */

/** A clock that follows real time, plus an offset a test may set (clock-skew scenarios). */
export class FollowingClock extends ManualClock {
  offsetSeconds = 0
  override now(): number {
    return Math.floor(Date.now() / 1000) + this.offsetSeconds
  }
}

export const PASSWORD = 'password'

/**
 * Client secrets of issue #13: what secret generators print, every reserved character, a valid
 * escape. Relying parties that skip the form-encoding of RFC 6749 §2.3.1 send them as they are.
 */
export const ENCODING_TRAP_SECRETS = ['Zm9v+YmFy/YmF6=', 'a+b/c=d:e%f&g h~', 'p%41ss'] as const

/**
 * Copies of the Kasm client, one per trap secret in plaintext (`kasm-plain-N`) and one per digest
 * (`kasm-hashed-N`, `$pbkdf2-sha512$` made by src/authn/hashes), with no pinned auth method.
 */
export async function trapSecretClients(): Promise<{ patch: (yaml: any) => void; clients: Array<{ id: string; secret: string }> }> {
  const digests = await Promise.all(ENCODING_TRAP_SECRETS.map((s) => generatePbkdf2(s, { variant: 'sha512', iterations: 10_000 })))
  const clients = ENCODING_TRAP_SECRETS.flatMap((secret, i) => [
    { id: `kasm-plain-${i}`, secret, stored: secret },
    { id: `kasm-hashed-${i}`, secret, stored: digests[i]! },
  ])
  return {
    clients: clients.map(({ id, secret }) => ({ id, secret })),
    patch: (yaml) => {
      const list = yaml.identity_providers.oidc.clients as any[]
      const kasm = list.find((c) => c.id === 'kasm')
      for (const c of clients) {
        const copy = { ...kasm, id: c.id, secret: c.stored }
        delete copy.token_endpoint_auth_method
        list.push(copy)
      }
    },
  }
}
export const KASM_SECRET = 'insecure-secret'
export const KASM_REDIRECT_URI = 'https://kasm.example.com/api/oidc_callback'

/**
 * Extra users beside the fixture's john and harry, same password ("password"), so each full sign-in
 * in a file uses a fresh user: a TOTP code is accepted once per user and step (replay protection).
 */
export const EXTRA_USERS: Record<string, { displayname: string; email: string; groups: string[] }> = {
  mary: { displayname: 'Mary Major', email: 'mary@example.com', groups: ['kasm-users', 'dev'] },
  peter: { displayname: 'Peter Parker', email: 'peter@example.com', groups: ['kasm-users'] },
  susan: { displayname: 'Susan Storm', email: 'susan@example.com', groups: ['admins', 'kasm-users'] },
  tom: { displayname: 'Tom Thumb', email: 'tom@example.com', groups: ['kasm-users'] },
  ursula: { displayname: 'Ursula Ulm', email: 'ursula@example.com', groups: ['kasm-users'] },
  victor: { displayname: 'Victor Vale', email: 'victor@example.com', groups: ['kasm-users'] },
}

export interface Latchkey extends TestApp {
  /** https://auth.example.com:PORT: the issuer relying parties see. */
  issuer: string
  port: number
  pki: TestPki
  /** fetch over the test CA and resolver (real names on the wire). */
  fetch: (url: string | URL, init?: RequestInit) => Promise<Response>
  /** Registers a TOTP device for the user (as `latchkey storage user totp generate` would) and returns its base32 secret. */
  registerTotp(username: string): Promise<string>
  /** The current TOTP code by the server's clock (otplib, independent of Latchkey's own TOTP code). */
  totpCode(base32Secret: string): Promise<string>
}

const TOTP_SECRET_BASE32 = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'

export async function startLatchkey(opts: { pki?: TestPki; patch?: TestAppOptions['patch'] } = {}): Promise<Latchkey> {
  const pki = opts.pki ?? createTestPki()
  const clock = new FollowingClock()
  const fixtureUsers = parse(readFileSync(join(ROOT, 'fixtures/config/users_database.yml'), 'utf8')) as { users: Record<string, any> }
  const t = await startTestServer({
    configFile: KASM_CONFIG,
    clock,
    https: { key: pki.key, cert: pki.cert },
    patch: opts.patch,
  })
  // More users in the copied users file; the provider is reloaded so they count at once.
  const usersFile = join(t.dir, 'users_database.yml')
  if (existsSync(usersFile)) {
    const doc = parse(readFileSync(usersFile, 'utf8')) as { users: Record<string, any> }
    for (const [name, u] of Object.entries(EXTRA_USERS)) doc.users[name] ??= { ...u, password: fixtureUsers.users.john.password }
    writeFileSync(usersFile, stringify(doc))
    const provider = t.deps.users as { reload?: () => boolean }
    if (!provider.reload?.()) throw new Error('the users file did not reload')
  }
  const port = Number(new URL(t.url).port)
  const issuer = `https://auth.example.com:${port}`
  return {
    ...t,
    issuer,
    port,
    pki,
    fetch: testFetch(pki),
    async registerTotp(username) {
      await t.storage.saveTotpConfiguration({
        username,
        issuer: 'example.com',
        algorithm: 'SHA1',
        digits: 6,
        periodSeconds: 30,
        secret: decodeBase32(TOTP_SECRET_BASE32),
        createdAt: clock.now(),
      })
      return TOTP_SECRET_BASE32
    },
    totpCode: (secret) => generate({ secret, epoch: clock.now(), algorithm: 'sha1', digits: 6, period: 30 }),
  }
}

/**
 * Headless Chromium that resolves *.example.com to loopback (--host-resolver-rules) and accepts
 * exactly the test leaf certificate (by its public key hash): nothing else is trusted or remapped.
 */
export async function launchProductionBrowser(pki: TestPki): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--host-resolver-rules=MAP *.example.com 127.0.0.1',
      `--ignore-certificate-errors-spki-list=${pki.leafSpkiSha256}`,
    ],
  })
}

/**
 * On Latchkey's portal (the page the relying party sent the browser to): password, then TOTP.
 * Returns when the browser has left the portal.
 */
export async function signInOnPortal(page: Page, latchkey: Latchkey, username: string, totpSecret: string): Promise<void> {
  const origin = new URL(latchkey.issuer).origin
  await page.waitForURL((u) => u.origin === origin && u.pathname === '/')
  await page.fill('#username', username)
  await page.fill('#password', PASSWORD)
  await Promise.all([page.waitForURL((u) => u.pathname === '/2fa/one-time-password'), page.click('button[type=submit]')])
  await page.fill('#token', await latchkey.totpCode(totpSecret))
  // 'commit': the relying party's callback usually redirects again at once (Apache → the page).
  await Promise.all([page.waitForURL((u) => u.origin !== origin, { waitUntil: 'commit' }), page.click('form[action$="/2fa/one-time-password"] button[type=submit]')])
}

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM_PATH)
}

/**
 * A browser's part without a browser: follows the authorization request through Latchkey's portal
 * JSON API (POST /api/firstfactor, POST /api/secondfactor/totp) carrying the session cookie, over
 * HTTPS with real names, until Latchkey redirects off its own origin. Returns that URL: the relying
 * party's callback with `code` and `state` (or `error`). For relying parties whose own HTTP client
 * does the back channel (Python requests, openid-client); Apache's run uses Chromium.
 */
export async function signInWithFetch(
  latchkey: Latchkey,
  authorizationUrl: string,
  username: string,
  totpSecret: string | undefined,
  /** Pass the same jar to reuse the signed-in session across authorizations (one sign-in, many clients). */
  jar: { cookie: string } = { cookie: '' },
): Promise<URL> {
  const origin = new URL(latchkey.issuer).origin
  const call = async (url: string, init: RequestInit = {}): Promise<Response> => {
    const headers = new Headers(init.headers)
    if (jar.cookie) headers.set('cookie', jar.cookie)
    const res = await latchkey.fetch(url, { ...init, headers })
    for (const c of res.headers.getSetCookie()) {
      const m = /^authelia_session=([^;]*)/.exec(c)
      if (m) jar.cookie = m[1] ? `authelia_session=${m[1]}` : ''
    }
    return res
  }
  const postJson = async (path: string, body: unknown): Promise<{ status: string; data?: { redirect?: string }; message?: string }> => {
    const res = await call(`${origin}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return (await res.json()) as { status: string; data?: { redirect?: string }; message?: string }
  }
  let next = authorizationUrl
  for (let hop = 0; hop < 12; hop++) {
    const url = new URL(next)
    if (url.origin !== origin) return url
    if (url.pathname === '/' || url.pathname === '/2fa/one-time-password') {
      // The portal: what the SPA would do with ?rd=…&workflow=…&workflow_id=….
      const rd = url.searchParams.get('rd') ?? undefined
      const workflow = url.searchParams.get('workflow') ?? undefined
      const workflowID = url.searchParams.get('workflow_id') ?? undefined
      const state = (await (await call(`${origin}/api/state`)).json()) as { data: { authentication_level: number } }
      let answer: { status: string; data?: { redirect?: string }; message?: string }
      if (state.data.authentication_level < 1) {
        answer = await postJson('/api/firstfactor', { username, password: PASSWORD, keepMeLoggedIn: false, targetURL: rd, workflow, workflowID })
      } else {
        if (!totpSecret) throw new Error(`signInWithFetch: ${username} needs a second factor but has no TOTP secret`)
        answer = await postJson('/api/secondfactor/totp', { token: await latchkey.totpCode(totpSecret), targetURL: rd, workflow, workflowID })
      }
      if (answer.status !== 'OK') throw new Error(`signInWithFetch: portal answered ${JSON.stringify(answer)} at ${url.pathname}`)
      next = answer.data?.redirect ?? rd ?? `${origin}/`
      if (!next.startsWith('http')) next = `${origin}${next}`
      continue
    }
    const res = await call(next)
    const location = res.headers.get('location')
    if (res.status < 300 || res.status > 399 || !location) {
      throw new Error(`signInWithFetch: ${url.pathname} answered ${res.status} without a redirect: ${(await res.text()).slice(0, 500)}`)
    }
    next = new URL(location, next).href
  }
  throw new Error('signInWithFetch: too many redirects')
}

/** Debian's interpreter: python3-requests-oauthlib lives in its dist-packages, not in a pyenv one. */
export const DEBIAN_PYTHON = '/usr/bin/python3'
export const KASM_RP_SCRIPT = join(ROOT, 'test/support/rp/kasm_rp.py')

export function pythonRpAvailable(): boolean {
  if (!existsSync(DEBIAN_PYTHON)) return false
  return spawnSync(DEBIAN_PYTHON, ['-c', 'import requests_oauthlib'], { stdio: 'ignore' }).status === 0
}

export interface KasmRpFields {
  authorizationUrl: string
  tokenUrl: string
  userinfoUrl: string
  clientId: string
  clientSecret: string
  redirectUrl: string
  /** One per line, as typed into Kasm's Scope field. */
  scope: string
  caBundle: string
  /** http://127.0.0.1:PORT of the loopback CONNECT proxy. */
  proxy: string
  tokenAuth?: 'client_secret_basic' | 'client_secret_post'
}

/** Runs the Kasm-shaped Python relying party; resolves its JSON answer and exit code. */
export async function runKasmRp(fields: KasmRpFields, args: string[]): Promise<{ code: number; out: any; stderr: string }> {
  const env: Record<string, string> = {
    PATH: '/usr/bin:/bin',
    KASM_AUTHORIZATION_URL: fields.authorizationUrl,
    KASM_TOKEN_URL: fields.tokenUrl,
    KASM_USERINFO_URL: fields.userinfoUrl,
    KASM_CLIENT_ID: fields.clientId,
    KASM_CLIENT_SECRET: fields.clientSecret,
    KASM_REDIRECT_URL: fields.redirectUrl,
    KASM_SCOPE: fields.scope,
    KASM_CA_BUNDLE: fields.caBundle,
    KASM_TOKEN_AUTH: fields.tokenAuth ?? 'client_secret_basic',
    HTTPS_PROXY: fields.proxy,
    https_proxy: fields.proxy,
    NO_PROXY: '',
    no_proxy: '',
  }
  return new Promise((resolve, reject) => {
    const child = spawn(DEBIAN_PYTHON, [KASM_RP_SCRIPT, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      try {
        resolve({ code: code ?? -1, out: JSON.parse(stdout), stderr })
      } catch {
        reject(new Error(`kasm_rp.py printed no JSON (exit ${code}):\n${stdout}\n${stderr}`))
      }
    })
  })
}

/** Kasm's fields for this Latchkey, as docs/integrations/kasm.md tells an admin to fill them. */
export function kasmFields(latchkey: Latchkey, proxy: string, overrides: Partial<KasmRpFields> = {}): KasmRpFields {
  return {
    authorizationUrl: `${latchkey.issuer}/api/oidc/authorization`,
    tokenUrl: `${latchkey.issuer}/api/oidc/token`,
    userinfoUrl: `${latchkey.issuer}/api/oidc/userinfo`,
    clientId: 'kasm',
    clientSecret: KASM_SECRET,
    redirectUrl: KASM_REDIRECT_URI,
    scope: 'openid\nprofile\ngroups\nemail',
    caBundle: latchkey.pki.caFile,
    proxy,
    ...overrides,
  }
}

export interface ProductionHarness {
  readonly pki: TestPki
  readonly proxy: LoopbackProxy
  /** Latchkey on the harness's CA; closed after the test that started it. */
  start(opts?: { patch?: TestAppOptions['patch'] }): Promise<Latchkey>
}

/**
 * The per-file lifecycle every production-shaped test shares: a test CA and the loopback CONNECT
 * proxy for the whole file, and each test's Latchkey stopped after that test, even on failure.
 */
export function useProductionHarness(): ProductionHarness {
  let pki: TestPki | undefined
  let proxy: LoopbackProxy | undefined
  let running: Latchkey | undefined
  beforeAll(async () => {
    pki = createTestPki()
    proxy = await startLoopbackProxy()
  })
  afterEach(async () => {
    await running?.close()
    running = undefined
  })
  afterAll(async () => {
    await proxy?.close()
    pki?.dispose()
  })
  return {
    get pki() {
      return pki!
    },
    get proxy() {
      return proxy!
    },
    async start(opts = {}) {
      running = await startLatchkey({ pki: pki!, ...opts })
      return running
    },
  }
}

export interface KasmApp {
  /** https://kasm.example.com:PORT: what the browser sees (the test CA's leaf covers *.example.com). */
  origin: string
  /** http://127.0.0.1:PORT/api/oidc_backchannel_logout: where Latchkey POSTs logout tokens. */
  backchannelUri: string
  /** Writes the application's OIDC settings (read per request), as an admin fills Kasm's form. */
  configure(latchkey: Latchkey, opts?: { logoutWithOidcProvider?: boolean }): void
  close(): Promise<void>
}

/**
 * The Kasm-shaped application running (`kasm_rp.py serve`): sign-in through the browser, "Logout
 * with OIDC provider", and Kasm's back- and front-channel logout endpoints. Start it before
 * Latchkey (Latchkey's client needs its ports), then `configure` it with Latchkey's URLs.
 */
export async function startKasmApp(pki: TestPki, proxy: string): Promise<KasmApp> {
  const configFile = join(pki.dir, `kasm-serve-${process.pid}-${Math.random().toString(36).slice(2)}.json`)
  writeFileSync(configFile, '{}')
  const child = spawn(DEBIAN_PYTHON, [KASM_RP_SCRIPT, 'serve'], {
    env: { PATH: '/usr/bin:/bin', KASM_SERVE_CONFIG: configFile, KASM_TLS_CERT: pki.certFile, KASM_TLS_KEY: pki.keyFile, HTTPS_PROXY: proxy, https_proxy: proxy, NO_PROXY: '', no_proxy: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  // Never outlive the test run, even when it stops without reaching close().
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  const ports = await new Promise<{ https_port: number; http_port: number }>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString()
      const line = out.split('\n')[0]
      if (out.includes('\n')) resolve(JSON.parse(line!))
    })
    child.on('exit', (code) => reject(new Error(`kasm_rp.py serve exited ${code}: ${stderr}`)))
  })
  const origin = `https://kasm.example.com:${ports.https_port}`
  return {
    origin,
    backchannelUri: `http://127.0.0.1:${ports.http_port}/api/oidc_backchannel_logout`,
    configure(latchkey, opts = {}) {
      writeFileSync(
        configFile,
        JSON.stringify({
          issuer: latchkey.issuer,
          client_id: 'kasm',
          client_secret: KASM_SECRET,
          redirect_url: `${origin}/api/oidc_callback`,
          scope: 'openid profile groups email',
          ca_bundle: latchkey.pki.caFile,
          logout_with_oidc_provider: opts.logoutWithOidcProvider ?? false,
          post_logout_url: `${origin}/`,
        }),
      )
    },
    async close() {
      process.off('exit', killOnExit)
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await exited
      }
    },
  }
}

/** The Kasm client of the fixture made to know the running application: its callback, logout URIs and channels. */
export function kasmLogoutPatch(app: KasmApp, channels: { back?: boolean; front?: boolean }): (yaml: any) => void {
  return (yaml) => {
    yaml.identity_providers.oidc.backchannel_logout_allow_private_networks = true
    const kasm = yaml.identity_providers.oidc.clients.find((c: any) => c.id === 'kasm')
    kasm.redirect_uris = [...kasm.redirect_uris, `${app.origin}/api/oidc_callback`]
    kasm.post_logout_redirect_uris = [`${app.origin}/`]
    if (channels.back) kasm.backchannel_logout_uri = app.backchannelUri
    if (channels.front) kasm.frontchannel_logout_uri = `${app.origin}/api/oidc_frontchannel_logout`
  }
}

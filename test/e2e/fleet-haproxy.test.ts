/**
 * Issue 8's acceptance from outside: two Latchkey processes (the built binary) behind Debian's
 * haproxy running docs/high-availability.md's configuration, round robin, so consecutive steps of
 * one sign-in land on different instances. A relying party (openid-client) drives the Kasm-shaped
 * flow over HTTPS with real names; haproxy terminates TLS with a test CA's certificate.
 *
 * Substituted in the doc's block, and only these: the listen address (a free loopback port and the
 * test certificate instead of :443 and /etc/haproxy/certs), the two instances' addresses (loopback
 * ports), and one response header naming the instance that answered (`x-served-by`), which the
 * test reads to show where each step ran.
 *
 * Sessions live in a redis-server of the test's own (session.redis; stopped and restarted for the
 * Redis outage; LATCHKEY_FLEET_SESSIONS=storage keeps them in the database instead).
 * The instances share one PostgreSQL schema created for the run, reached through a TCP proxy of the
 * test that can be cut to simulate the database going away (the machine's PostgreSQL server is
 * never stopped: other tests use it). LATCHKEY_FLEET_STORAGE=sqlite runs the same file on one
 * shared SQLite file instead (WAL across processes); without a reachable PostgreSQL (not on CI, where
 * it is required) that is the fallback, and the outage test is skipped.
 * Run `npm run build` before this file alone. Needs haproxy (.ci/run installs it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as client from 'openid-client'
import { generate } from 'otplib'
import { parse, stringify } from 'yaml'
import { request as httpRequest } from 'node:http'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { loadConfig } from '../../src/config/load.js'
import { openStorage } from '../../src/storage/index.js'
import { decodeBase32 } from '../../src/totp/index.js'
import { fleetBlock } from '../../bench/fleet.js'
import { KASM_CONFIG, ROOT } from '../support/app.js'
import { chromiumAvailable, EXTRA_USERS, KASM_REDIRECT_URI, KASM_SECRET, launchProductionBrowser, PASSWORD, signInWithFetch, type Latchkey } from '../support/rp/harness.js'
import { createTestPki, freePort, testFetch, type TestPki } from '../support/tls.js'
import { redisProgramsAvailable, startOwnRedis, type OwnRedis } from '../support/redis.js'
import { createTestSchema, PG_DATABASE, PG_HOST, PG_PORT, PG_USER, postgresAvailable, type TestSchema } from '../support/postgres.js'

const STORAGE = process.env.LATCHKEY_FLEET_STORAGE ?? ((await postgresAvailable()) ? 'postgres' : 'sqlite')

/** Sessions in a redis-server of the test's own (session.redis) when the program is installed (CI installs it). */
const REDIS = process.env.LATCHKEY_FLEET_SESSIONS !== 'storage' && (redisProgramsAvailable('redis-server') || process.env.CI === 'true')

/** A TCP proxy to PostgreSQL that the test can cut (every connection dropped, new ones refused) and restore. */
class CuttableProxy {
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()
  constructor(readonly port: number) {}

  get isOpen(): boolean {
    return this.server?.listening ?? false
  }

  async open(): Promise<void> {
    if (this.isOpen) return
    this.server = createServer((client) => {
      const upstream = connect(PG_PORT, PG_HOST)
      for (const s of [client, upstream]) {
        this.sockets.add(s)
        s.on('close', () => this.sockets.delete(s))
        s.on('error', () => undefined)
      }
      client.pipe(upstream).pipe(client)
    })
    await new Promise<void>((resolve, reject) => this.server!.once('error', reject).listen(this.port, '127.0.0.1', resolve))
  }

  async cut(): Promise<void> {
    const closed = new Promise((r) => this.server?.close(r))
    for (const s of this.sockets) s.destroy()
    await closed
  }
}

const HAPROXY = '/usr/sbin/haproxy'
const NGINX = '/usr/sbin/nginx'
const MAIN = join(ROOT, 'dist/latchkey.mjs')
const TOTP_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'
const NAMES = ['latchkey1', 'latchkey2'] as const
/** One user per full sign-in: a TOTP code is accepted once per user and 30-second step. */
const MORE_USERS = {
  ...EXTRA_USERS,
  rita: { displayname: 'Rita Reed', email: 'rita@example.com', groups: ['kasm-users'] },
  sam: { displayname: 'Sam Stone', email: 'sam@example.com', groups: ['kasm-users'] },
}

interface Proc {
  child: ChildProcess
  out: () => string
  exited: Promise<void>
}

function start(cmd: string, args: string[], cwd: string): Proc {
  let out = ''
  const child = spawn(cmd, args, { cwd, env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  return { child, out: () => out, exited }
}

async function stop(p: Proc | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return
  p.child.kill('SIGTERM')
  await Promise.race([p.exited, new Promise((r) => setTimeout(r, 5000))])
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
}

async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

const skip = !existsSync(HAPROXY) ? `needs haproxy (${HAPROXY})` : !existsSync(MAIN) ? 'needs npm run build' : undefined

describe.skipIf(skip !== undefined)(`two instances behind haproxy (docs/high-availability.md)${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let dir: string
  let pki: TestPki
  const ports: number[] = []
  let haPort: number
  let issuer: string
  const instances: Proc[] = []
  let haproxy: Proc | undefined
  let https: ReturnType<typeof testFetch>

  /** A request through haproxy; `servedBy` names the instance that answered. */
  async function lb(path: string, init: RequestInit = {}): Promise<Response & { servedBy: string }> {
    const res = (await https(`${issuer}${path}`, init)) as Response & { servedBy: string }
    res.servedBy = res.headers.get('x-served-by') ?? '(none)'
    return res
  }

  /** Round robin with two instances: after a request served by the other one, the next goes to `name`. */
  async function nextOn(name: string): Promise<void> {
    for (let i = 0; i < 4; i++) if ((await lb('/api/health')).servedBy !== name) return
    throw new Error(`haproxy sends everything to ${name}`)
  }

  const totpCode = async () => generate({ secret: TOTP_SECRET, epoch: Math.floor(Date.now() / 1000), algorithm: 'sha1', digits: 6, period: 30 })
  /** What signInWithFetch needs of a Latchkey: the public URL, the fetch and the TOTP codes. */
  const viaHaproxy = () => ({ issuer, fetch: https, totpCode }) as unknown as Latchkey

  function configFor(port: number): any {
    const yaml = parse(readFileSync(KASM_CONFIG, 'utf8'))
    yaml.server = { host: '127.0.0.1', port, trusted_proxies: ['127.0.0.1'] }
    yaml.log = { level: 'info', format: 'json' }
    yaml.authentication_backend.file.path = join(dir, 'users_database.yml')
    yaml.storage = { encryption_key: yaml.storage.encryption_key, ...storageFor() }
    if (redis) yaml.session.redis = { host: '127.0.0.1', port: redis.port }
    yaml.notifier = { filesystem: { filename: join(dir, 'notification.txt') } }
    return yaml
  }

  let redis: OwnRedis | undefined
  let schema: TestSchema | undefined
  let pgProxy: CuttableProxy | undefined

  /** The shared database: a PostgreSQL schema of this run through the cuttable proxy, or one SQLite file. */
  function storageFor(): Record<string, unknown> {
    if (STORAGE === 'sqlite') return { local: { path: join(dir, 'db.sqlite3') } }
    return { postgres: { address: `tcp://127.0.0.1:${pgProxy!.port}`, database: PG_DATABASE, schema: schema!.name, username: PG_USER, timeout: '2s' } }
  }

  async function discover(): Promise<client.Configuration> {
    return client.discovery(new URL(issuer), 'kasm', KASM_SECRET, client.ClientSecretPost(KASM_SECRET), { [client.customFetch]: https as typeof fetch })
  }

  /** One authorization request with PKCE from the relying party. */
  async function authorizationRequest(config: client.Configuration) {
    const verifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const nonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: KASM_REDIRECT_URI,
      scope: 'openid profile groups email',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    })
    return { url, verifier, state, nonce }
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-fleet-'))
    pki = createTestPki()
    https = testFetch(pki)
    haPort = await freePort()
    ports.push(await freePort(), await freePort())
    issuer = `https://auth.example.com:${haPort}`
    if (REDIS) redis = await startOwnRedis()
    if (STORAGE === 'postgres') {
      schema = await createTestSchema()
      pgProxy = new CuttableProxy(await freePort())
      await pgProxy.open()
    }

    const users = parse(readFileSync(join(ROOT, 'fixtures/config/users_database.yml'), 'utf8'))
    for (const [name, u] of Object.entries(MORE_USERS)) users.users[name] = { ...u, password: users.users.john.password }
    writeFileSync(join(dir, 'users_database.yml'), stringify(users))
    ports.forEach((port, i) => writeFileSync(join(dir, `instance-${i + 1}.yml`), stringify(configFor(port))))

    // The operator's check before a rollout: the two configurations agree.
    const compare = spawnSync(process.execPath, [MAIN, 'doctor', '--compare', 'instance-1.yml', '--compare', 'instance-2.yml'], { cwd: dir, encoding: 'utf8' })
    expect(compare.stdout).toMatch(/\[ok\] +\d+ settings agree across the 2 instances/)
    expect(compare.status).toBe(0)

    // Devices registered as `latchkey storage user totp generate --secret` would, before the start.
    const { config } = loadConfig({ files: [join(dir, 'instance-1.yml')], env: {} })
    const storage = await openStorage(config.storage)
    for (const username of ['john', 'harry', ...Object.keys(MORE_USERS)]) {
      await storage.saveTotpConfiguration({ username, issuer: 'example.com', algorithm: 'SHA1', digits: 6, periodSeconds: 30, secret: decodeBase32(TOTP_SECRET), createdAt: Math.floor(Date.now() / 1000) })
    }
    await storage.close()

    for (let i = 0; i < 2; i++) instances.push(start(process.execPath, [MAIN, 'serve', '--config', `instance-${i + 1}.yml`], dir))
    for (const [i, port] of ports.entries()) {
      await until(`instance ${i + 1} to be healthy`, async () => {
        if (instances[i]!.child.exitCode !== null) throw new Error(`instance ${i + 1} exited: ${instances[i]!.out()}`)
        return (await fetch(`http://127.0.0.1:${port}/api/health`)).ok
      })
    }

    writeFileSync(join(dir, 'haproxy.pem'), Buffer.concat([pki.cert, Buffer.from('\n'), pki.key]))
    const cfg = fleetBlock('haproxy')
      .replace('bind :443 ssl crt /etc/haproxy/certs/auth.example.com.pem', `bind 127.0.0.1:${haPort} ssl crt ${join(dir, 'haproxy.pem')}`)
      .replace('10.0.0.11:9091', `127.0.0.1:${ports[0]}`)
      .replace('10.0.0.12:9091', `127.0.0.1:${ports[1]}`)
      .replace('    balance roundrobin\n', '    balance roundrobin\n    http-response set-header x-served-by %s\n')
    expect(cfg).toContain(`127.0.0.1:${ports[1]}`)
    writeFileSync(join(dir, 'haproxy.cfg'), cfg)
    const check = spawnSync(HAPROXY, ['-c', '-f', join(dir, 'haproxy.cfg')], { encoding: 'utf8' })
    expect(check.status, check.stdout + check.stderr).toBe(0)
    haproxy = start(HAPROXY, ['-db', '-f', join(dir, 'haproxy.cfg')], dir)
    await until('haproxy to serve both instances', async () => {
      const seen = new Set<string>()
      for (let i = 0; i < 4; i++) {
        const res = await lb('/api/health')
        if (res.ok) seen.add(res.servedBy)
      }
      return seen.size === 2
    })
  }, 60_000)

  afterAll(async () => {
    await stop(haproxy)
    for (const p of instances) await stop(p)
    await pgProxy?.cut()
    await schema?.drop()
    await redis?.dispose()
    pki?.dispose()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('the Kasm-shaped flow completes with its steps spread over both instances', async () => {
    const config = await discover()
    expect(config.serverMetadata().issuer).toBe(issuer)
    const seen: string[] = []
    const recording = (async (url: string | URL, init?: RequestInit) => {
      const res = await https(url, init)
      seen.push(res.headers.get('x-served-by') ?? '(none)')
      return res
    }) as typeof fetch
    const req = await authorizationRequest(config)
    const callback = await signInWithFetch({ ...viaHaproxy(), fetch: recording } as unknown as Latchkey, req.url.href, 'mary', TOTP_SECRET)
    expect(callback.origin + callback.pathname).toBe(KASM_REDIRECT_URI)
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce })
    expect(tokens.claims()).toMatchObject({ iss: issuer, preferred_username: 'mary', amr: expect.arrayContaining(['pwd', 'otp']) })
    const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub)
    expect(info).toMatchObject({ preferred_username: 'mary', email: 'mary@example.com', groups: ['kasm-users', 'dev'] })
    // Authorization, state, first factor, second factor, authorization again: consecutive steps alternate.
    expect(new Set(seen)).toEqual(new Set(NAMES))
    for (let i = 1; i < seen.length; i++) expect(seen[i]).not.toBe(seen[i - 1])
  })

  test('a sign-out on one instance is refused on the other at once, also right after the other served it', async () => {
    const config = await discover()
    const jar = { cookie: '' }
    await signInWithFetch(viaHaproxy(), (await authorizationRequest(config)).url.href, 'peter', TOTP_SECRET, jar)
    const state = async () => {
      const res = await lb('/api/state', { headers: { cookie: jar.cookie } })
      return { servedBy: res.servedBy, level: ((await res.json()) as any).data.authentication_level as number }
    }
    const before = [await state(), await state()]
    expect(before.map((s) => s.level)).toEqual([2, 2])
    expect(new Set(before.map((s) => s.servedBy))).toEqual(new Set(NAMES))

    const logout = await lb('/api/logout', { method: 'POST', headers: { cookie: jar.cookie, 'content-type': 'application/json' }, body: '{}' })
    expect(logout.status).toBe(200)
    const after = await state()
    expect(after.servedBy).not.toBe(logout.servedBy)
    expect(after.level).toBe(0)
    // Past the 5 s touch interval, the other instance still refuses it (nothing was written back).
    await new Promise((r) => setTimeout(r, 5500))
    expect([(await state()).level, (await state()).level]).toEqual([0, 0])
  }, 30_000)

  test('a code replayed on the other instance fails and revokes the grant it gave', async () => {
    const config = await discover()
    const req = await authorizationRequest(config)
    const callback = await signInWithFetch(viaHaproxy(), req.url.href, 'victor', TOTP_SECRET)
    const code = callback.searchParams.get('code')!
    const redeem = async () =>
      lb('/api/oidc/token', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: KASM_REDIRECT_URI, code_verifier: req.verifier, client_id: 'kasm', client_secret: KASM_SECRET }).toString(),
      })
    const first = await redeem()
    expect(first.status).toBe(200)
    const tokens = (await first.json()) as { access_token: string }
    const replay = await redeem()
    expect(replay.servedBy).not.toBe(first.servedBy)
    expect(replay.status).toBe(400)
    expect(await replay.json()).toMatchObject({ error: 'invalid_grant' })
    for (let i = 0; i < 2; i++) {
      const info = await lb('/api/oidc/userinfo', { headers: { authorization: `Bearer ${tokens.access_token}` } })
      expect(info.status).toBe(401)
    }
  })

  test('a ban earned on one instance holds on the other', async () => {
    const signIn = (password: string) =>
      lb('/api/firstfactor', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'tom', password, keepMeLoggedIn: false }) })
    const failures = [await signIn('nope'), await signIn('nope'), await signIn('nope')]
    expect(failures.map((r) => r.status)).toEqual([401, 401, 401])
    expect(new Set(failures.map((r) => r.servedBy))).toEqual(new Set(NAMES))
    for (const name of NAMES) {
      await nextOn(name)
      const res = await signIn(PASSWORD)
      expect(res.servedBy).toBe(name)
      expect(res.status).toBe(401)
    }
  })

  test.skipIf(!chromiumAvailable())('a browser signs in through haproxy, its page loads answered by both instances', async () => {
    const config = await discover()
    const req = await authorizationRequest(config)
    const browser = await launchProductionBrowser(pki)
    try {
      const page = await browser.newPage()
      const servedBy: string[] = []
      page.on('response', (res) => {
        if (new URL(res.url()).origin === issuer) servedBy.push(res.headers()['x-served-by'] ?? '(none)')
      })
      await page.goto(req.url.href)
      // The portal's own forms (no script needed): password, then the TOTP code.
      await page.waitForURL((u) => u.origin === issuer && u.pathname === '/')
      await page.fill('#username', 'john')
      await page.fill('#password', PASSWORD)
      await Promise.all([page.waitForURL((u) => u.pathname === '/2fa/one-time-password'), page.click('button[type=submit]')])
      await page.fill('#token', await totpCode())
      // Nothing listens for kasm.example.com here: the browser's request to the callback is what counts.
      const [callback] = await Promise.all([
        page.waitForRequest((r) => r.url().startsWith(KASM_REDIRECT_URI)),
        page.click('form[action$="/2fa/one-time-password"] button[type=submit]'),
      ])
      const tokens = await client.authorizationCodeGrant(config, new URL(callback.url()), { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce })
      expect(tokens.claims()).toMatchObject({ iss: issuer, preferred_username: 'john' })
      expect(new Set(servedBy)).toEqual(new Set(NAMES))
    } finally {
      await browser.close()
    }
  }, 60_000)

  test.skipIf(!existsSync(NGINX))("the nginx example: the Kasm-shaped flow through it, answered by both instances", async () => {
    const nginxPort = await freePort()
    const nginxDir = join(dir, 'nginx')
    mkdirSync(nginxDir)
    writeFileSync(join(nginxDir, 'tls.crt'), pki.cert)
    writeFileSync(join(nginxDir, 'tls.key'), pki.key)
    const site = fleetBlock('nginx')
      .replace('listen 443 ssl;', `listen 127.0.0.1:${nginxPort} ssl;`)
      .replace('/etc/nginx/tls/auth.example.com.crt', join(nginxDir, 'tls.crt'))
      .replace('/etc/nginx/tls/auth.example.com.key', join(nginxDir, 'tls.key'))
      .replace('10.0.0.11:9091', `127.0.0.1:${ports[0]}`)
      .replace('10.0.0.12:9091', `127.0.0.1:${ports[1]}`)
      .replace('        proxy_pass http://latchkeys;\n', '        proxy_pass http://latchkeys;\n        add_header x-served-by $upstream_addr always;\n')
    expect(site).toContain('x-served-by')
    writeFileSync(join(nginxDir, 'latchkey.conf'), site)
    // The parts a packaged nginx.conf has around sites-enabled/.
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${nginxDir}/${t};`).join('\n')
    writeFileSync(join(nginxDir, 'nginx.conf'), `pid ${nginxDir}/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n  access_log off;\n${temp}\n  include ${nginxDir}/latchkey.conf;\n}\n`)
    const args = ['-e', 'stderr', '-p', nginxDir, '-c', join(nginxDir, 'nginx.conf')]
    const check = spawnSync(NGINX, [...args, '-t'], { encoding: 'utf8' })
    expect(check.stderr).toContain('test is successful')
    const nginx = start(NGINX, [...args, '-g', 'daemon off;'], nginxDir)
    try {
      const base = `https://auth.example.com:${nginxPort}`
      await until('nginx to answer', async () => (await https(`${base}/api/health`)).ok)
      const seen: string[] = []
      const recording = (async (url: string | URL, init?: RequestInit) => {
        const res = await https(url, init)
        seen.push(res.headers.get('x-served-by') ?? '(none)')
        return res
      }) as typeof fetch
      const config = await client.discovery(new URL(base), 'kasm', KASM_SECRET, client.ClientSecretPost(KASM_SECRET), { [client.customFetch]: recording })
      expect(config.serverMetadata().issuer).toBe(base)
      const req = await authorizationRequest(config)
      const callback = await signInWithFetch({ issuer: base, fetch: recording, totpCode } as unknown as Latchkey, req.url.href, 'ursula', TOTP_SECRET)
      const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce })
      expect(tokens.claims()).toMatchObject({ iss: base, preferred_username: 'ursula' })
      expect(new Set(seen)).toEqual(new Set(ports.map((p) => `127.0.0.1:${p}`)))
    } finally {
      await stop(nginx)
    }
  })

  test.skipIf(STORAGE !== 'postgres')('PostgreSQL going away: clean 503s from both instances, one log line each, and recovery without a restart', async () => {
    const logLines = (i: number) => instances[i]!.out().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
    const config = await discover()
    const jar = { cookie: '' }
    await signInWithFetch(viaHaproxy(), (await authorizationRequest(config)).url.href, 'harry', TOTP_SECRET, jar)

    // As haproxy forwards it (fetch cannot set Host: node:http).
    const direct = (port: number, method: string, path: string, headers: Record<string, string>, body?: string) =>
      new Promise<{ status: number; json: any }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, method, path, agent: false, headers: { host: `auth.example.com:${haPort}`, 'x-forwarded-proto': 'https', ...headers } }, (res) => {
          let data = ''
          res.on('data', (c) => (data += c))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: /json/.test(String(res.headers['content-type'])) ? JSON.parse(data) : data }))
        })
        req.on('error', reject)
        req.end(body)
      })
    // A code issued before the outage: refused with 503 during it, redeemable after it.
    const pending = await authorizationRequest(config)
    const issued = await https(pending.url, { headers: { cookie: jar.cookie } })
    const code = new URL(issued.headers.get('location')!).searchParams.get('code')!
    const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: KASM_REDIRECT_URI, code_verifier: pending.verifier, client_id: 'kasm', client_secret: KASM_SECRET }).toString()
    const before = [0, 1].map((i) => logLines(i).length)
    await pgProxy!.cut()
    try {
      // Each instance directly: the answers a load balancer or a user would get from it.
      for (const port of ports) {
        expect(await direct(port, 'GET', '/api/health', {})).toEqual({ status: 503, json: { status: 'KO', message: 'Storage is unavailable.' } })
        // Sessions may live in Redis (still up): the authorization endpoint needs the database for its code.
        const authorize = await direct(port, 'GET', `${pending.url.pathname}${pending.url.search}`, { cookie: jar.cookie, accept: 'text/html' })
        expect(authorize.status).toBe(503)
        expect(authorize.json).toContain('temporarily_unavailable')
        if (!REDIS) {
          const state = await direct(port, 'GET', '/api/state', { cookie: jar.cookie })
          expect(state).toEqual({ status: 503, json: { status: 'KO', message: 'The service is temporarily unavailable. Please try again in a moment.' } })
        }
        const token = await direct(port, 'POST', '/api/oidc/token', { 'content-type': 'application/x-www-form-urlencoded' }, form)
        expect(token.status).toBe(503)
        expect(token.json).toMatchObject({ error: 'temporarily_unavailable' })
      }
      // Through haproxy: a 503 too (from an instance, or from haproxy once both are marked down).
      expect((await lb('/api/health')).status).toBe(503)
      for (const i of [0, 1]) {
        const down = logLines(i).filter((l) => /^storage unavailable/.test(l.msg))
        expect(down).toHaveLength(1)
        expect(down[0]).toMatchObject({ dependency: 'storage', reason: expect.stringMatching(/ECONNREFUSED|terminated|timeout|closed/i) })
        expect(instances[i]!.out()).not.toContain('unhandled error')
      }
    } finally {
      // Back, also when an assertion above failed: the tests after this one need the database.
      await pgProxy!.open()
    }
    await until('haproxy to serve again', async () => (await lb('/api/health')).status === 200 && (await lb('/api/health')).status === 200)
    expect((await (await lb('/api/state', { headers: { cookie: jar.cookie } })).json()) as any).toMatchObject({ data: { username: 'harry', authentication_level: 2 } })
    const redeemed = await lb('/api/oidc/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form })
    expect(redeemed.status).toBe(200)
    const req = await authorizationRequest(config)
    const callback = await signInWithFetch(viaHaproxy(), req.url.href, 'harry', TOTP_SECRET, jar)
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce })
    expect(tokens.claims()).toMatchObject({ preferred_username: 'harry' })
    for (const i of [0, 1]) {
      await until(`instance ${i + 1} to log its recovery`, async () => logLines(i).some((l) => l.msg === 'storage available again'))
      expect(logLines(i).filter((l) => /^storage unavailable/.test(l.msg))).toHaveLength(1)
      expect(logLines(i).filter((l) => l.msg === 'storage available again')).toHaveLength(1)
      // The one line an admin acts on: nothing else at warn or above (dropped pool connections are debug).
      expect(logLines(i).slice(before[i]).filter((l) => l.level >= 40).map((l) => l.msg)).toEqual([expect.stringMatching(/^storage unavailable/)])
    }
  }, 60_000)

  test.skipIf(!REDIS)('Redis going away: clean 503s, one log line each, and service again without restarting Latchkey', async () => {
    const logLines = (i: number) => instances[i]!.out().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
    const config = await discover()
    const jar = { cookie: '' }
    await signInWithFetch(viaHaproxy(), (await authorizationRequest(config)).url.href, 'rita', TOTP_SECRET, jar)
    const before = [0, 1].map((i) => logLines(i).length)
    await redis!.stop()
    try {
      for (const port of ports) {
        const health = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = httpRequest({ host: '127.0.0.1', port, path: '/api/health', agent: false }, (res) => {
            let body = ''
            res.on('data', (c) => (body += c))
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
          })
          req.on('error', reject)
          req.end()
        })
        expect(health).toEqual({ status: 503, body: JSON.stringify({ status: 'KO', message: 'Session store is unavailable.' }) })
      }
      const state = await lb('/api/state', { headers: { cookie: jar.cookie } })
      expect(state.status).toBe(503)
      expect(await state.text()).not.toMatch(/at .*\.js:\d+|Error/)
      for (const i of [0, 1]) {
        expect(logLines(i).filter((l) => /^session store unavailable/.test(l.msg))).toHaveLength(1)
        expect(instances[i]!.out()).not.toContain('unhandled error')
      }
    } finally {
      await redis!.start()
    }
    await until('haproxy to serve again', async () => (await lb('/api/health')).status === 200 && (await lb('/api/health')).status === 200)
    // Redis kept nothing (no persistence in this one): the old cookie is anonymous, a new sign-in works.
    expect((await (await lb('/api/state', { headers: { cookie: jar.cookie } })).json()) as any).toMatchObject({ data: { authentication_level: 0 } })
    const req = await authorizationRequest(config)
    const callback = await signInWithFetch(viaHaproxy(), req.url.href, 'sam', TOTP_SECRET)
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce })
    expect(tokens.claims()).toMatchObject({ preferred_username: 'sam' })
    for (const i of [0, 1]) {
      await until(`instance ${i + 1} to log its recovery`, async () => logLines(i).some((l) => l.msg === 'session store available again'))
      // One line per outage at warn or above, whichever request or health check noticed it first.
      expect(logLines(i).slice(before[i]).filter((l) => l.level >= 40).map((l) => l.msg)).toEqual([expect.stringMatching(/^session store unavailable/)])
    }
  }, 60_000)

  test('kill -9 of one instance during a load run: no committed row lost, no code redeemed twice, haproxy moves to the survivor', async () => {
    const config = await discover()
    const jar = { cookie: '' }
    await signInWithFetch(viaHaproxy(), (await authorizationRequest(config)).url.href, 'susan', TOTP_SECRET, jar)

    interface Flow {
      code?: string
      verifier: string
      token?: number
      accessToken?: string
      error?: string
    }
    const flows: Flow[] = []
    let running = true
    const worker = async () => {
      while (running) {
        const req = await authorizationRequest(config)
        const flow: Flow = { verifier: req.verifier }
        flows.push(flow)
        try {
          const res = await https(req.url, { headers: { cookie: jar.cookie } })
          const location = res.headers.get('location')
          if (res.status !== 303 || !location) throw new Error(`authorization answered ${res.status}`)
          flow.code = new URL(location).searchParams.get('code') ?? undefined
          const token = await lb('/api/oidc/token', {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ grant_type: 'authorization_code', code: flow.code!, redirect_uri: KASM_REDIRECT_URI, code_verifier: req.verifier, client_id: 'kasm', client_secret: KASM_SECRET }).toString(),
          })
          flow.token = token.status
          if (token.status === 200) flow.accessToken = ((await token.json()) as { access_token: string }).access_token
        } catch (err) {
          flow.error = (err as Error).message
        }
      }
    }
    const WORKERS = 4
    const load = Promise.all(Array.from({ length: WORKERS }, worker))
    await new Promise((r) => setTimeout(r, 1500))
    const victim = instances[0]!
    victim.child.kill('SIGKILL')
    await victim.exited
    const killedAt = flows.length
    await new Promise((r) => setTimeout(r, 4000))
    running = false
    await load

    const done = flows.filter((f) => f.token === 200)
    expect(done.length).toBeGreaterThan(killedAt / 2)
    // Only what was in flight on the killed instance may fail: new connections go to the survivor.
    expect(flows.filter((f) => f.token !== 200).length).toBeLessThanOrEqual(WORKERS)
    expect(flows.slice(-WORKERS * 4).every((f) => f.token === 200)).toBe(true)

    // Every committed redemption survived: its access token still works, served by the survivor.
    for (const f of done) {
      const info = await lb('/api/oidc/userinfo', { headers: { authorization: `Bearer ${f.accessToken}` } })
      expect(info.status).toBe(200)
      expect(info.servedBy).toBe('latchkey2')
    }
    // No code gives tokens twice: each redeemed one is refused now; one cut off before its answer
    // gives tokens at most once more.
    const redeem = (f: Flow) =>
      lb('/api/oidc/token', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: f.code!, redirect_uri: KASM_REDIRECT_URI, code_verifier: f.verifier, client_id: 'kasm', client_secret: KASM_SECRET }).toString(),
      })
    for (const f of flows.filter((f) => f.code)) {
      const again = await redeem(f)
      if (f.token === 200) expect(again.status).toBe(400)
      else if (again.status === 200) expect((await redeem(f)).status).toBe(400)
    }
    const health = await lb('/api/health')
    expect(health.status).toBe(200)
    expect(haproxy!.out()).toMatch(/Server latchkeys\/latchkey1 is DOWN/)
  }, 60_000)
})

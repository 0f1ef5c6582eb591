/**
 * docs/deploy.md performed as written: each shell block marked `<!-- deploy-test: NAME -->` runs in
 * order (as root, `sudo` dropped, `sudo -u latchkey` as runuser), the marked YAML blocks are saved
 * where the doc says, the service is started from docs/deploy/latchkey.service by hand as its user
 * (CI has no systemd), nginx from Debian runs the doc's server block with a test CA, and a Kasm-shaped
 * sign-in (password, then TOTP) goes through the proxy; then the backup block runs while the service
 * runs, the restore block into a fresh folder, and the sign-in works again.
 *
 * Substituted, and only these: /opt, /etc and /var/lib (and /var/backups, /usr/local/bin) become
 * folders of a temporary prefix; the ports (nginx's 443 and Latchkey's 9091) become free loopback
 * ports, since tests share the machine; the certificate paths become the test CA's leaf; the
 * placeholders the doc tells the reader to fill (digests, the backup's name) get the real values.
 * The install block's `git clone`/`npm ci`/`npm run build` copy this checkout's build instead.
 * Run `npm run build` before this file alone. Needs root, nginx and sqlite3 (.ci/run installs them).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, chmodSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { decodeBase32, generateTotpCode } from '../../src/totp/index.js'
import { ROOT } from '../support/app.js'
import { basic } from '../support/oidc.js'
import { createTestPki, freePort, testFetch, type TestPki } from '../support/tls.js'

const NGINX = '/usr/sbin/nginx'
const DOC = readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8')
const UNIT = readFileSync(join(ROOT, 'docs/deploy/latchkey.service'), 'utf8')

/** Marked blocks in document order: `NAME` → the block's text. */
function markedBlocks(doc: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const m of doc.matchAll(/^<!-- deploy-test: (.+?) -->\n```[a-z]*\n([\s\S]*?)^```$/gm)) {
    if (out.has(m[1]!)) throw new Error(`two blocks marked ${m[1]}`)
    out.set(m[1]!, m[2]!)
  }
  return out
}

interface Result {
  code: number | null
  out: string
  err: string
}

function collect(child: ChildProcess): { result: Promise<Result>; out: () => string; err: () => string } {
  let out = ''
  let err = ''
  child.stdout?.on('data', (d) => (out += d))
  child.stderr?.on('data', (d) => (err += d))
  const result = new Promise<Result>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => resolve({ code, out, err }))
  })
  return { result, out: () => out, err: () => err }
}

const skip = process.getuid?.() !== 0 ? 'needs root (it creates the latchkey user and runs as it)' : !existsSync(NGINX) ? `needs nginx (${NGINX})` : undefined

describe.skipIf(skip !== undefined)(`docs/deploy.md, as written${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const blocks = markedBlocks(DOC)
  let prefix: string
  let pki: TestPki
  let backendPort: number
  let nginxPort: number
  let service: (ChildProcess & { collected?: ReturnType<typeof collect> }) | undefined
  let nginx: ChildProcess | undefined

  beforeAll(async () => {
    prefix = mkdtempSync(join(tmpdir(), 'latchkey-deploy-'))
    // The service user walks through the prefix to /opt, /etc and /var/lib, as through /.
    chmodSync(prefix, 0o755)
    for (const d of ['opt', 'etc', 'var/lib', 'var/backups', 'usr/local/bin', 'nginx']) mkdirSync(join(prefix, d), { recursive: true })
    pki = createTestPki()
    backendPort = await freePort()
    nginxPort = await freePort()
  })

  afterAll(async () => {
    for (const child of [service, nginx]) {
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))])
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      }
    }
    pki?.dispose()
    if (prefix) rmSync(prefix, { recursive: true, force: true })
  })

  /** The doc's absolute paths, ports and `sudo` mapped onto this run. */
  function localize(text: string): string {
    return text
      .replaceAll('sudo -u latchkey ', 'runuser -u latchkey -- ')
      .replaceAll('sudo latchkey ', `${prefix}/usr/local/bin/latchkey `)
      .replace(/\bsudo /g, '')
      .replaceAll('/usr/bin/node', process.execPath)
      .replaceAll('127.0.0.1:9091', `127.0.0.1:${backendPort}`)
      .replace(/(?<![\w.-])\/(opt\/latchkey|etc\/latchkey|var\/lib\/latchkey|var\/backups\/latchkey|usr\/local\/bin\/latchkey)/g, `${prefix}/$1`)
  }

  function block(name: string): string {
    const text = blocks.get(name)
    if (text === undefined) throw new Error(`docs/deploy.md has no block marked <!-- deploy-test: ${name} -->`)
    return text
  }

  /** Runs a shell block with `sh -eu` as root; every command must succeed. */
  async function shell(name: string, text = localize(block(name))): Promise<Result> {
    const file = join(prefix, `block-${name}.sh`)
    writeFileSync(file, text)
    const r = await collect(spawn('sh', ['-eu', file], { cwd: prefix, env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] })).result
    if (r.code !== 0) throw new Error(`block ${name} exited ${r.code}\n--- script\n${text}\n--- stdout\n${r.out}\n--- stderr\n${r.err}`)
    return r
  }

  /** Saves a marked file block where its marker says. */
  function saveFile(path: string, fill: (text: string) => string = (t) => t): string {
    const target = localize(path)
    writeFileSync(target, fill(localize(block(`file ${path}`))))
    return target
  }

  /** `systemctl start latchkey`: the unit's ExecStart as its User, with its Environment= and EnvironmentFile=. */
  async function startService(): Promise<void> {
    const line = (key: string) => [...UNIT.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!)
    const env: Record<string, string> = { PATH: process.env.PATH! }
    for (const e of line('Environment')) {
      const [k, ...v] = e.split('=')
      env[k!] = v.join('=')
    }
    for (const f of line('EnvironmentFile')) {
      const file = localize(f.replace(/^-/, ''))
      if (!existsSync(file)) continue
      for (const l of readFileSync(file, 'utf8').split('\n')) {
        const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(l)
        if (m) env[m[1]!] = m[2]!
      }
    }
    const [user] = line('User')
    const [workdir] = line('WorkingDirectory')
    const exec = localize(line('ExecStart')[0]!).split(' ')
    // setpriv execs node itself (runuser would stay in between), so SIGTERM reaches it as under systemd.
    const group = line('Group')[0] ?? user!
    service = spawn('setpriv', [`--reuid=${user}`, `--regid=${group}`, '--init-groups', '--', ...exec], { cwd: localize(workdir!), env, stdio: ['ignore', 'pipe', 'pipe'] })
    service.collected = collect(service)
    const deadline = Date.now() + 20_000
    for (;;) {
      if (service.exitCode !== null) throw new Error(`latchkey serve exited ${service.exitCode}: ${service.collected.err()}`)
      try {
        if ((await fetch(`http://127.0.0.1:${backendPort}/api/health`)).ok) return
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`latchkey serve never became healthy: ${service.collected.err()}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  /** `systemctl stop latchkey`: SIGTERM, as the unit's KillSignal. */
  async function stopService(): Promise<void> {
    const running = service!
    running.kill('SIGTERM')
    expect((await running.collected!.result).code).toBe(0)
  }

  async function nginxVersion(): Promise<[number, number, number]> {
    const r = await collect(spawn(NGINX, ['-v'], { stdio: ['ignore', 'pipe', 'pipe'] })).result
    const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(r.err + r.out)
    if (!m) throw new Error(`cannot read the nginx version: ${r.err}`)
    return [Number(m[1]), Number(m[2]), Number(m[3])]
  }

  async function startNginx(): Promise<void> {
    let site = localize(block('nginx'))
      .replace(/^(\s*)listen 443 ssl;/m, `$1listen 127.0.0.1:${nginxPort} ssl;`)
      .replace('/etc/letsencrypt/live/auth.example.com/fullchain.pem', pki.certFile)
      .replace('/etc/letsencrypt/live/auth.example.com/privkey.pem', pki.keyFile)
    const [major, minor, patch] = await nginxVersion()
    if (major * 1e6 + minor * 1e3 + patch < 1_025_001) {
      // What the doc says for nginx before 1.25.1 (Debian 12's 1.22).
      expect(site).toMatch(/^\s*http2 on;\n/m)
      site = site.replace(/^\s*http2 on;\n/m, '').replace(/(listen \S+ ssl);/, '$1 http2;')
    }
    const dir = join(prefix, 'nginx')
    writeFileSync(join(dir, 'latchkey.conf'), site)
    // The parts a packaged nginx.conf has around sites-enabled/, pointed into the prefix.
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/${t};`).join('\n')
    writeFileSync(join(dir, 'nginx.conf'), `pid ${dir}/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n  access_log off;\n${temp}\n  include ${dir}/latchkey.conf;\n}\n`)
    const args = ['-e', 'stderr', '-p', dir, '-c', join(dir, 'nginx.conf')]
    const check = await collect(spawn(NGINX, [...args, '-t'], { stdio: ['ignore', 'pipe', 'pipe'] })).result
    expect(check.err).toContain('test is successful')
    nginx = spawn(NGINX, [...args, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] })
    const logs = collect(nginx)
    const deadline = Date.now() + 10_000
    const fetchTls = testFetch(pki)
    for (;;) {
      if (nginx.exitCode !== null) throw new Error(`nginx exited ${nginx.exitCode}: ${logs.err()}`)
      try {
        await fetchTls(`https://auth.example.com:${nginxPort}/api/health`)
        return
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`nginx never answered: ${logs.err()}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  /** Kasm's flow through the proxy: authorize → portal password → TOTP → code → tokens → userinfo. */
  async function signInThroughProxy(who: { password: string; totpSecret: Buffer; clientSecret: string; now: number }): Promise<Record<string, unknown>> {
    const fetchTls = testFetch(pki)
    const base = `https://auth.example.com:${nginxPort}`
    const redirectUri = 'https://kasm.example.com/api/oidc_callback'
    const state = 'deploy-docs-state-0123456789'
    const authorize = `${base}/api/oidc/authorization?${new URLSearchParams({ client_id: 'kasm', response_type: 'code', redirect_uri: redirectUri, scope: 'openid profile groups email', state, nonce: 'nonce-0123456789' })}`
    const first = await fetchTls(authorize)
    expect(first.status).toBe(302)
    // X-Forwarded-Proto and -Host from the trusted proxy: the portal is the public https URL.
    const portal = new URL(first.headers.get('location')!)
    expect(portal.origin).toBe(base)
    const rd = portal.searchParams.get('rd')!
    const json = (cookie?: string) => ({ 'content-type': 'application/json', origin: base, ...(cookie ? { cookie } : {}) })

    const ff = await fetchTls(`${base}/api/firstfactor`, { method: 'POST', headers: json(), body: JSON.stringify({ username: 'john', password: who.password, keepMeLoggedIn: false, targetURL: rd }) })
    expect(await ff.json()).toMatchObject({ status: 'OK' })
    expect(ff.headers.get('set-cookie')).toMatch(/; Secure/i)
    const oneFa = ff.headers.get('set-cookie')!.split(';')[0]!
    const token = generateTotpCode({ algorithm: 'SHA1', digits: 6, periodSeconds: 30, secret: who.totpSecret }, who.now)
    const sf = await fetchTls(`${base}/api/secondfactor/totp`, { method: 'POST', headers: json(oneFa), body: JSON.stringify({ token, targetURL: rd }) })
    expect(sf.status).toBe(200)
    const twoFa = sf.headers.get('set-cookie')?.split(';')[0] ?? oneFa

    const back = await fetchTls(rd, { headers: { cookie: twoFa } })
    expect([302, 303]).toContain(back.status)
    const callback = new URL(back.headers.get('location')!)
    expect(`${callback.origin}${callback.pathname}`).toBe(redirectUri)
    expect(callback.searchParams.get('state')).toBe(state)
    const code = callback.searchParams.get('code')!
    expect(code).toBeTruthy()

    const tokens = await fetchTls(`${base}/api/oidc/token`, {
      method: 'POST',
      headers: { authorization: basic('kasm', who.clientSecret) },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri }),
    })
    expect(tokens.status).toBe(200)
    const { access_token } = (await tokens.json()) as { access_token: string }
    const info = await fetchTls(`${base}/api/oidc/userinfo`, { headers: { authorization: `Bearer ${access_token}` } })
    expect(info.status).toBe(200)
    return (await info.json()) as Record<string, unknown>
  }

  test('install, configure, serve behind nginx, sign in with password and TOTP, back up while running, restore, sign in again', { timeout: 180_000 }, async () => {
    expect([...blocks.keys()]).toEqual(['install', 'wrapper', 'state-folder', 'config-folders', 'user-password', 'file /etc/latchkey/users_database.yml', 'client-secret', 'file /etc/latchkey/configuration.yml', 'config-mode', 'secrets', 'env-file', 'check', 'nginx', 'backup', 'restore'])

    // 1. Install. Packages come from .ci/run; the service user is created once per machine.
    const install = localize(block('install'))
      .replace(/^apt-get install .*\n/m, '')
      .replace(/^(useradd .* latchkey)$/m, 'id -u latchkey >/dev/null 2>&1 || $1')
      .replace(/^git clone <[^>\n]*> (\S+)$/m, `mkdir -p $1 && cp -r ${ROOT}/package.json ${ROOT}/migrations ${ROOT}/docs $1/`)
      .replace(/^npm ci$/m, `ln -s ${ROOT}/node_modules node_modules`)
      .replace(/^npm run build$/m, `cp -r ${ROOT}/dist dist`)
      .replace(/^npm prune --omit=dev$/m, '')
    expect(install).not.toMatch(/git clone|npm |apt-get/)
    await shell('install', install)
    await shell('wrapper')

    // 2. The state folder: the service user's, owner-only.
    await shell('state-folder')
    const state = join(prefix, 'var/lib/latchkey')
    const uid = Number((await shell('id', 'id -u latchkey')).out.trim())
    expect(statSync(state)).toMatchObject({ uid, mode: 0o40700 })

    // 3. Configuration: users file, configuration, secrets, environment.
    await shell('config-folders')
    const user = (await shell('user-password')).out
    const password = /^Random Password: (\S+)$/m.exec(user)![1]!
    const userDigest = /^Digest: (\S+)$/m.exec(user)![1]!
    expect(userDigest).toMatch(/^\$argon2id\$/)
    saveFile('/etc/latchkey/users_database.yml', (t) => t.replace("'$argon2id$v=19$m=65536,t=3,p=4$...'", `'${userDigest}'`))
    const client = (await shell('client-secret')).out
    const clientSecret = /^Random Password: (\S+)$/m.exec(client)![1]!
    const clientDigest = /^Digest: (\S+)$/m.exec(client)![1]!
    saveFile('/etc/latchkey/configuration.yml', (t) => t.replace("'$pbkdf2-sha512$310000$...'", `'${clientDigest}'`))
    await shell('config-mode')
    await shell('secrets')
    await shell('env-file')
    for (const f of ['configuration.yml', 'users_database.yml', 'latchkey.env', 'secrets/jwt', 'secrets/storage', 'secrets/oidc-hmac', 'secrets/oidc-jwks.yml'])
      expect(statSync(join(prefix, 'etc/latchkey', f)), f).toMatchObject({ uid: 0, mode: 0o100640 })
    expect(statSync(join(prefix, 'etc/latchkey/secrets'))).toMatchObject({ uid: 0, mode: 0o40750 })
    const check = await shell('check')
    expect(check.out).toContain('Configuration parsed and loaded successfully without errors.')
    expect(check.out).toMatch(/\[ok\] +state folder: .*user latchkey/)
    expect(check.out).toContain('No problems found')

    // 4. The unit, by hand; 5. nginx in front.
    await startService()
    await startNginx()

    // The first sign-in: TOTP registered by the admin as kasm.md shows.
    const totp = await shell('totp', `${prefix}/usr/local/bin/latchkey storage user totp generate john`)
    const totpSecret = decodeBase32(/[?&]secret=([A-Z2-7]+)/.exec(totp.out)![1]!)
    const now = Math.floor(Date.now() / 1000)
    expect(await signInThroughProxy({ password, totpSecret, clientSecret, now })).toMatchObject({ preferred_username: 'john', groups: ['admins', 'dev'] })

    // 7. Backup while the service runs: a private copy.
    await shell('backup')
    const name = `db-${(await shell('date', 'date +%F')).out.trim()}.sqlite3`
    const backup = join(prefix, 'var/backups/latchkey', name)
    expect(statSync(backup)).toMatchObject({ uid, mode: 0o100600 })

    // Restore: the lines around systemctl run as written; stop and start are the service's.
    const restore = localize(block('restore')).replaceAll('db-2026-01-31.sqlite3', name).split('\n')
    expect(restore[0]).toBe('systemctl stop latchkey')
    expect(restore.at(-2)).toBe('systemctl start latchkey')
    await stopService()
    await shell('restore', restore.slice(1, -2).join('\n'))
    expect(statSync(state)).toMatchObject({ uid, mode: 0o40700 })
    expect(statSync(join(state, 'db.sqlite3'))).toMatchObject({ uid, mode: 0o100600 })
    expect(existsSync(join(prefix, 'var/lib/latchkey.before-restore/db.sqlite3'))).toBe(true)
    await startService()

    // Signed in again from the restored file: the TOTP registration came back with it. The next
    // 30-second code (totp.skew: 1), since the first one is recorded as used.
    expect(await signInThroughProxy({ password, totpSecret, clientSecret, now: now + 30 })).toMatchObject({ preferred_username: 'john' })
  })
})

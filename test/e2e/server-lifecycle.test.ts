/**
 * The built binary as an admin runs it: first start of the embedded demo, reuse, configuration
 * errors before listening, a wrong storage key, and graceful shutdown on SIGTERM.
 * `npm test` builds first (pretest); run `npm run build` before running this file alone.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { ROOT } from '../support/app.js'

const MAIN = join(ROOT, 'dist/latchkey.mjs')

let dir: string
const children: ChildProcess[] = []
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-life-'))
})
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

interface Run {
  child: ChildProcess
  out: () => string
  err: () => string
  exited: Promise<number | null>
}

/** The service user of these tests: `nobody` when the tests run as root (CI), else whoever runs them. */
const AS_ROOT = process.getuid?.() === 0

function run(args: string[], env: Record<string, string> = {}, opts: { asServiceUser?: boolean } = {}): Run {
  let out = ''
  let err = ''
  const [cmd, pre] = opts.asServiceUser && AS_ROOT ? ['runuser', ['-u', 'nobody', '--', process.execPath]] : [process.execPath, []]
  const child = spawn(cmd, [...pre, MAIN, ...args], { cwd: dir, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (err += d))
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  return { child, out: () => out, err: () => err, exited }
}

async function waitHealthy(url: string, r: Run): Promise<void> {
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (r.child.exitCode !== null) throw new Error(`exited ${r.child.exitCode}: ${r.err()}`)
    try {
      if ((await fetch(`${url}/api/health`)).ok) return
    } catch {
      // not yet
    }
    await new Promise((res) => setTimeout(res, 25))
  }
  throw new Error('never became healthy')
}

async function isListening(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/api/health`)
    return true
  } catch {
    return false
  }
}

describe('the embedded demo (npm start on a fresh clone)', () => {
  test('first start creates ./data, prints the demo password once, serves health; the second start reuses it', async () => {
    const port = await freePort()
    const env = { LATCHKEY_SERVER_ADDRESS: `tcp://127.0.0.1:${port}/` }
    const first = run([], env)
    await waitHealthy(`http://127.0.0.1:${port}`, first)
    expect(await (await fetch(`http://127.0.0.1:${port}/api/health`)).json()).toEqual({ status: 'OK' })
    expect(first.out()).toMatch(/Demo user: demo {2}password: \S{20} /)
    expect(first.out()).toMatch(/Kasm client: id kasm {2}secret: \S{48} /)
    expect(first.out()).toMatch(/A new Kasm secret at any time: node \S+latchkey\.mjs demo kasm-secret\n/)
    // What start-up says lands in notification.txt is what does: a code, not a link (issue 9.1).
    expect(first.out()).toMatch(/TOTP registration: the one-time code to type in is written to \S+notification\.txt\n/)
    expect(first.out()).not.toMatch(/registration links/)
    // Security keys need a domain name: the demo answers at localhost too, and says so (issue 11).
    expect(first.out()).toContain(`Security keys and passkeys: open http://localhost:${port}/ instead`)
    const password = /password: (\S+)/.exec(first.out())![1]!
    for (const f of ['configuration.yml', 'users_database.yml', 'db.sqlite3']) expect(existsSync(join(dir, 'data', f))).toBe(true)
    // Only digests are stored.
    expect(readFileSync(join(dir, 'data/users_database.yml'), 'utf8')).not.toContain(password)
    expect(readFileSync(join(dir, 'data/configuration.yml'), 'utf8')).not.toContain(/secret: (\S+)/.exec(first.out())![1]!)
    // On a port other than 9091 too, registration works: the notification carries a one-time code
    // to type into the open page, and no link built from the request (security.md W6).
    const base = `http://127.0.0.1:${port}`
    const signIn = await fetch(`${base}/api/firstfactor`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'demo', password, keepMeLoggedIn: false }) })
    expect(signIn.status).toBe(200)
    const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!
    expect((await fetch(`${base}/api/secondfactor/totp/identity/start`, { method: 'POST', headers: { cookie } })).status).toBe(200)
    const notification = readFileSync(join(dir, 'data/notification.txt'), 'utf8')
    expect(notification).toMatch(/^ {4}[A-Z0-9]{8}$/m)
    expect(notification).not.toMatch(/https?:\/\//)
    first.child.kill('SIGTERM')
    expect(await first.exited).toBe(0)
    expect(first.out()).toContain('stopped cleanly')

    const config = readFileSync(join(dir, 'data/configuration.yml'), 'utf8')
    const second = run([], env)
    await waitHealthy(`http://127.0.0.1:${port}`, second)
    expect(second.out()).not.toMatch(/password: \S{20}/)
    expect(readFileSync(join(dir, 'data/configuration.yml'), 'utf8')).toBe(config)
    second.child.kill('SIGINT')
    expect(await second.exited).toBe(0)
    // The second start says how to get a new Kasm secret, and that command works as printed.
    const hint = /for a new one, run\n\s+'node (\S+) (demo kasm-secret)'/.exec(second.out())
    expect(hint, second.out()).not.toBeNull()
    const rotate = spawnSync(process.execPath, [hint![1]!, ...hint![2]!.split(' ')], { cwd: dir, env: { PATH: process.env.PATH }, encoding: 'utf8' })
    expect(rotate.stderr).toBe('')
    expect(rotate.status).toBe(0)
    const newSecret = /secret: (\S{48}) /.exec(rotate.stdout)![1]!
    const rotated = readFileSync(join(dir, 'data/configuration.yml'), 'utf8')
    // Only the client_secret line changed.
    const changed = rotated.split('\n').filter((l, i) => l !== config.split('\n')[i])
    expect(changed).toHaveLength(1)
    expect(changed[0]).toMatch(/^ {8}client_secret: '\$pbkdf2-sha512\$/)
    // After a restart the new secret authenticates Kasm and the old one no longer does.
    const third = run([], env)
    await waitHealthy(`http://127.0.0.1:${port}`, third)
    const introspect = (secret: string) =>
      fetch(`http://127.0.0.1:${port}/api/oidc/introspection`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`kasm:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'token=not-a-token',
      })
    expect((await introspect(newSecret)).status).toBe(200)
    expect((await introspect(/secret: (\S+)/.exec(first.out())![1]!)).status).toBe(401)
    third.child.kill('SIGINT')
    expect(await third.exited).toBe(0)
    // SQLite was closed cleanly: the WAL was checkpointed and the file is consistent.
    const db = new Database(join(dir, 'data/db.sqlite3'), { readonly: true })
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok')
    db.close()
  })
})

describe('start-up failures', () => {
  function kasm(): string {
    copyFileSync(join(ROOT, 'fixtures/config/kasm-authelia.yml'), join(dir, 'configuration.yml'))
    copyFileSync(join(ROOT, 'fixtures/config/users_database.yml'), join(dir, 'users_database.yml'))
    return join(dir, 'configuration.yml')
  }

  test('a broken configuration lists its problems and exits 2 without listening', async () => {
    const port = await freePort()
    const config = kasm()
    writeFileSync(config, readFileSync(config, 'utf8').replace('default_policy: two_factor', 'default_policy: deny').replace('issuer: example.com', 'issuer: example.com\n  period: 5'))
    const r = run(['--config', config], { LATCHKEY_SERVER_PORT: String(port) })
    expect(await r.exited).toBe(2)
    expect(r.err()).toMatch(/Configuration: configuration\.yml:\d+:\d+: totp\.period: must be 15 or more, got 5/)
    expect(r.err()).toMatch(/Configuration: configuration\.yml:\d+:\d+: access_control\.default_policy: /)
    expect(r.err()).toMatch(/Can't continue due to the errors loading the configuration\n$/)
    expect(await isListening(port)).toBe(false)
  })

  test('a reader that goes away (latchkey | head -2) does not stop the server', async () => {
    const port = await freePort()
    const r = run([], { LATCHKEY_SERVER_ADDRESS: `tcp://127.0.0.1:${port}/`, LATCHKEY_LOG_LEVEL: 'debug' })
    // Like `head -2`: read the first output, then close the pipe.
    await new Promise<void>((resolve) => r.child.stdout!.once('data', () => resolve()))
    r.child.stdout!.destroy()
    await waitHealthy(`http://127.0.0.1:${port}`, r)
    for (let i = 0; i < 20; i++) expect((await fetch(`http://127.0.0.1:${port}/api/health`)).status).toBe(200)
    expect(r.child.exitCode).toBeNull()
    expect(r.err()).not.toMatch(/EPIPE|at .*\(/)
    r.child.kill('SIGTERM')
    expect(await r.exited).toBe(0)
  })

  test('a storage key that does not match the database is a clear error and exit 2 (no restart can fix it)', async () => {
    const port = await freePort()
    const config = kasm()
    const ok = run(['serve', '--config', config], { LATCHKEY_SERVER_PORT: String(port) })
    await waitHealthy(`http://127.0.0.1:${port}`, ok)
    ok.child.kill('SIGTERM')
    await ok.exited
    const bad = run(['serve', '--config', config], { LATCHKEY_SERVER_PORT: String(port), AUTHELIA_STORAGE_ENCRYPTION_KEY: 'a_different_key_of_enough_length_0123456789' })
    expect(await bad.exited).toBe(2)
    expect(bad.err()).toContain('latchkey: cannot start: storage.encryption_key does not match the key this database was created with')
    expect(await isListening(port)).toBe(false)
  })

  describe('a state folder the service user cannot write (a restart cannot fix it)', () => {
    /** The Kasm fixture with its database at `dbPath`, readable by the service user. */
    function kasmWithDatabaseAt(dbPath: string): string {
      const config = kasm()
      const text = readFileSync(config, 'utf8').replace('path: db.sqlite3', `path: ${dbPath}`)
      writeFileSync(config, text.replace('filename: notification.txt', `filename: ${join(dbPath, '..', 'notification.txt')}`))
      chmodSync(dir, 0o755)
      for (const f of [config, join(dir, 'users_database.yml')]) chmodSync(f, 0o644)
      return config
    }
    const who = AS_ROOT ? 'user nobody \\(uid 65534\\)' : `user \\S+ \\(uid ${process.getuid?.()}\\)`
    const owner = (path: string, mode: string) => {
      const st = statSync(path)
      return `owned by \\S+ \\(uid ${st.uid}, gid ${st.gid}\\), mode ${mode}`
    }

    test('a state folder nobody created (useradd makes none) is exit 2 naming the folder, its parent owner and mode; doctor finds it first', async () => {
      const port = await freePort()
      const parent = join(dir, 'var-lib')
      mkdirSync(parent)
      chmodSync(parent, 0o555)
      const state = join(parent, 'latchkey')
      const config = kasmWithDatabaseAt(join(state, 'db.sqlite3'))

      const doctor = run(['doctor', '--config', config], {}, { asServiceUser: true })
      expect(await doctor.exited).toBe(2)
      expect(doctor.out()).toMatch(new RegExp(`\\[problem\\] state folder: the folder ${state} does not exist and ${who} cannot create it: ${parent} is ${owner(parent, '0555')} \\(hint: as root: install -d -m 0700 -o \\S+ -g \\S+ ${state}\\)`))
      expect(doctor.out()).not.toContain('latchkey serve creates and migrates it')

      const r = run(['serve', '--config', config], { LATCHKEY_SERVER_PORT: String(port) }, { asServiceUser: true })
      expect(await r.exited).toBe(2)
      expect(r.err()).toMatch(new RegExp(`latchkey: cannot start: storage: cannot open the SQLite database ${state}/db\\.sqlite3: the folder ${state} does not exist and ${who} cannot create it: ${parent} is ${owner(parent, '0555')}`))
      expect(existsSync(state)).toBe(false)
      expect(await isListening(port)).toBe(false)
    })

    test('a database file the service user cannot write (left by root) is exit 2 naming the file, its owner and mode; doctor finds it first', async () => {
      const port = await freePort()
      const state = join(dir, 'state')
      mkdirSync(state, { mode: 0o700 })
      if (AS_ROOT) chownSync(state, 65534, 65534)
      const db = join(state, 'db.sqlite3')
      writeFileSync(db, '', { mode: 0o400 })
      const config = kasmWithDatabaseAt(db)

      const doctor = run(['doctor', '--config', config], {}, { asServiceUser: true })
      expect(await doctor.exited).toBe(2)
      expect(doctor.out()).toMatch(new RegExp(`\\[problem\\] state folder: db\\.sqlite3 in ${state} is not writable by ${who}: it is ${owner(db, '0400')}`))

      const r = run(['serve', '--config', config], { LATCHKEY_SERVER_PORT: String(port) }, { asServiceUser: true })
      expect(await r.exited).toBe(2)
      expect(r.err()).toMatch(new RegExp(`cannot open the SQLite database ${db}: db\\.sqlite3 in ${state} is not writable by ${who}: it is ${owner(db, '0400')}`))
      expect(await isListening(port)).toBe(false)
    })

    test('doctor says the service user can create the state folder when it can', async () => {
      const state = join(dir, 'state')
      mkdirSync(state, { mode: 0o700 })
      if (AS_ROOT) chownSync(state, 65534, 65534)
      const config = kasmWithDatabaseAt(join(state, 'sub', 'db.sqlite3'))
      const doctor = run(['doctor', '--config', config], {}, { asServiceUser: true })
      expect(await doctor.exited).toBe(0)
      expect(doctor.out()).toMatch(new RegExp(`\\[ok\\] +state folder: ${state}/sub: ${who} can create and write db\\.sqlite3 and notification\\.txt\\n`))
      expect(doctor.out()).toContain('does not exist yet: latchkey serve creates and migrates it at first start')
    })
  })

  test('SIGTERM lets an in-flight sign-in finish before the process exits', async () => {
    const port = await freePort()
    const r = run(['--config', kasm()], { LATCHKEY_SERVER_PORT: String(port) })
    const url = `http://127.0.0.1:${port}`
    await waitHealthy(url, r)
    // A wrong password costs an argon2id run (and the portal's time floor): long enough to be in flight.
    const pending = fetch(`${url}/api/firstfactor`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: url },
      body: JSON.stringify({ username: 'john', password: 'wrong', keepMeLoggedIn: false }),
    })
    await new Promise((res) => setTimeout(res, 30))
    r.child.kill('SIGTERM')
    const res = await pending
    expect(res.status).toBe(401)
    expect(await r.exited).toBe(0)
    expect(await isListening(port)).toBe(false)
  })
})

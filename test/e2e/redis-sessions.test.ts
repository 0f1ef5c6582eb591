/**
 * `session.redis` with the built binary as an admin runs it: a session signed in on one Latchkey
 * process lives in Redis (not in the SQLite file), keeps working after the process restarts, expires
 * by Redis TTL following inactivity or "remember me", and is gone from Redis at sign-out. Without
 * Redis at start-up the process refuses to start with a clear message.
 * `npm test` builds first (pretest); run `npm run build` before running this file alone.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { afterAll, afterEach, beforeEach, describe, expect, test } from 'vitest'
import { sha256Hex } from '../../src/common/hashing.js'
import { loadConfig } from '../../src/config/load.js'
import { openStorage } from '../../src/storage/index.js'
import { ROOT } from '../support/app.js'
import { deleteKeysUnder, freePort, keysUnder, sharedClient, sharedRedisAvailable, uniquePrefix } from '../support/redis.js'

const MAIN = join(ROOT, 'dist/latchkey.mjs')
const available = await sharedRedisAvailable()
const admin = available ? sharedClient() : undefined
afterAll(() => admin?.disconnect())

let dir: string
let prefix: string
const children: ChildProcess[] = []
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-redis-e2e-'))
  prefix = uniquePrefix()
})
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL')
  if (admin) await deleteKeysUnder(admin, prefix)
  rmSync(dir, { recursive: true, force: true })
})

function writeConfig(port: number, redis: Record<string, unknown>): string {
  const yaml = parse(readFileSync(join(ROOT, 'fixtures/config/kasm-authelia.yml'), 'utf8'))
  copyFileSync(join(ROOT, 'fixtures/config/users_database.yml'), join(dir, 'users_database.yml'))
  yaml.server = { host: '127.0.0.1', port }
  yaml.log = { level: 'info' }
  yaml.session.domain = '127.0.0.1'
  yaml.session.redis = redis
  yaml.storage.local = { path: 'db.sqlite3' }
  yaml.notifier = { filesystem: { filename: 'notification.txt' } }
  const file = join(dir, 'configuration.yml')
  writeFileSync(file, stringify(yaml))
  return file
}

interface Run {
  child: ChildProcess
  out: () => string
  err: () => string
  exited: Promise<number | null>
}

function run(config: string): Run {
  let out = ''
  let err = ''
  const child = spawn(process.execPath, [MAIN, '--config', config], { cwd: dir, env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (err += d))
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  return { child, out: () => out, err: () => err, exited }
}

async function waitHealthy(base: string, r: Run): Promise<void> {
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (r.child.exitCode !== null) throw new Error(`exited ${r.child.exitCode}: ${r.err()}`)
    try {
      if ((await fetch(`${base}/api/health`)).ok) return
    } catch {
      // not yet
    }
    await new Promise((res) => setTimeout(res, 50))
  }
  throw new Error('never became healthy')
}

async function signIn(base: string, keepMeLoggedIn: boolean): Promise<string> {
  const res = await fetch(`${base}/api/firstfactor`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'john', password: 'password', keepMeLoggedIn }) })
  expect(res.status).toBe(200)
  return res.headers.get('set-cookie')!.split(';')[0]!
}

async function state(base: string, cookie: string): Promise<unknown> {
  return (await fetch(`${base}/api/state`, { headers: { cookie } })).json()
}

const SIGNED_IN = { status: 'OK', data: { username: 'john', authentication_level: 1, default_redirection_url: 'https://www.example.com/' } }

describe.skipIf(!available)('session.redis with the built binary', () => {
  test('a session signed in on one process lives in Redis and survives a restart; sign-out removes it', async () => {
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    const config = writeConfig(port, { host: '127.0.0.1', port: 6379, key_prefix: prefix })
    const first = run(config)
    await waitHealthy(base, first)
    expect(first.out()).toContain('sessions are kept in Redis')
    const cookie = await signIn(base, false)
    expect(await state(base, cookie)).toEqual(SIGNED_IN)

    // One key, named by the hash of the cookie value, with a TTL that follows the 5-minute
    // inactivity limit (plus a minute's grace), not the 1-hour expiration.
    const id = cookie.split('=')[1]!
    const keys = await keysUnder(admin!, prefix)
    expect(keys).toEqual([`${prefix}session:${sha256Hex(id)}`])
    const ttl = await admin!.ttl(keys[0]!)
    expect(ttl).toBeGreaterThan(300)
    expect(ttl).toBeLessThanOrEqual(360)

    first.child.kill('SIGTERM')
    expect(await first.exited).toBe(0)
    // Not in the SQLite storage backend.
    const { config: loaded } = loadConfig({ files: [config], env: {} })
    const storage = await openStorage(loaded.storage)
    expect(await storage.findSession(id, Math.floor(Date.now() / 1000))).toBeUndefined()
    await storage.close()

    const second = run(config)
    await waitHealthy(base, second)
    expect(await state(base, cookie)).toEqual(SIGNED_IN)
    const out = await fetch(`${base}/api/logout`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: '{}' })
    expect(out.status).toBe(200)
    expect(await keysUnder(admin!, prefix)).toEqual([])
    expect(await state(base, cookie)).toMatchObject({ data: { username: '', authentication_level: 0 } })
    second.child.kill('SIGTERM')
    expect(await second.exited).toBe(0)
  })

  test('"remember me": the Redis TTL follows remember_me (1 month), not inactivity', async () => {
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    const r = run(writeConfig(port, { host: '127.0.0.1', key_prefix: prefix }))
    await waitHealthy(base, r)
    await signIn(base, true)
    const [key] = await keysUnder(admin!, prefix)
    expect(await admin!.ttl(key!)).toBeGreaterThan(30 * 24 * 3600 - 60)
    r.child.kill('SIGTERM')
    expect(await r.exited).toBe(0)
  })
})

test('Redis not answering at start-up: the process exits 1 naming Redis and the address, before listening', async () => {
  const port = await freePort()
  const redisPort = await freePort()
  const r = run(writeConfig(port, { host: '127.0.0.1', port: redisPort, timeout: '1s', key_prefix: prefix }))
  expect(await r.exited).toBe(1)
  expect(r.err()).toContain(`latchkey: cannot start: redis is unavailable: cannot connect to 127.0.0.1:${redisPort}`)
})

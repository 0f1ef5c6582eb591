/**
 * The portal with `session.redis` (app.inject, the shared test Redis under a prefix of each app's
 * own): the same session rules as with SQLite, and the session lives in Redis, so a second app on
 * a brand-new database (another instance, or a restart) knows it.
 */
import { afterAll, afterEach, describe, expect, test } from 'vitest'
import { sha256Hex } from '../../src/common/hashing.js'
import { ManualClock } from '../../src/common/clock.js'
import type { TestApp } from '../support/app.js'
import { keysUnder, redisProgramsAvailable, sharedClient, sharedRedisAvailable, startOwnRedis, type OwnRedis } from '../support/redis.js'
import { Client, portalTestApp } from './portal-helpers.js'

const available = await sharedRedisAvailable()
const admin = available ? sharedClient() : undefined
afterAll(() => admin?.disconnect())

const apps: TestApp[] = []
let own: OwnRedis | undefined
afterEach(async () => {
  while (apps.length) await apps.pop()!.close()
  await own?.dispose()
  own = undefined
})

async function start(opts: Parameters<typeof portalTestApp>[0] = {}): Promise<TestApp> {
  const t = await portalTestApp({ sessionStore: 'redis', ...opts })
  apps.push(t)
  return t
}
const prefixOf = (t: TestApp) => t.deps.config.session.redis!.keyPrefix
const SIGNED_IN = { username: 'john', authentication_level: 1, default_redirection_url: 'https://www.example.com/' }
const ANONYMOUS = { username: '', authentication_level: 0, default_redirection_url: 'https://www.example.com/' }

describe.skipIf(!available)('portal sessions in Redis', () => {
  test('sign-in writes one hashed key and nothing in the storage backend; sign-out deletes it', async () => {
    const t = await start()
    const c = new Client(t.app)
    expect((await c.signIn()).statusCode).toBe(200)
    expect(await c.state()).toEqual(SIGNED_IN)
    expect(await keysUnder(admin!, prefixOf(t))).toEqual([`${prefixOf(t)}session:${sha256Hex(c.cookie!)}`])
    expect(await t.storage.findSession(c.cookie!, t.clock.now())).toBeUndefined()
    expect((await c.post('/api/logout', {})).statusCode).toBe(200)
    expect(await keysUnder(admin!, prefixOf(t))).toEqual([])
  })

  test('another app on a fresh database but the same Redis knows the session (another instance, or a restart)', async () => {
    const clock = new ManualClock(1_700_000_000)
    const a = await start({ clock })
    const john = new Client(a.app)
    await john.signIn()
    const b = await start({ clock, patch: (yaml) => (yaml.session.redis.key_prefix = prefixOf(a)) })
    expect(b.dir).not.toBe(a.dir)
    const elsewhere = new Client(b.app)
    elsewhere.cookie = john.cookie
    expect(await elsewhere.state()).toEqual(SIGNED_IN)
  })

  test('inactivity ends the session (and the TTL follows it); activity keeps it alive', async () => {
    const t = await start()
    const c = new Client(t.app)
    await c.signIn()
    const [key] = await keysUnder(admin!, prefixOf(t))
    expect(await admin!.ttl(key!)).toBeLessThanOrEqual(360)
    t.clock.advance(299)
    expect(await c.state()).toEqual(SIGNED_IN)
    t.clock.advance(301)
    expect(await c.state()).toEqual(ANONYMOUS)
    expect(t.logs()).toContain('session ended after inactivity')
    expect(await keysUnder(admin!, prefixOf(t))).toEqual([])
  })

  test('"remember me": no inactivity limit, the TTL is remember_me', async () => {
    const t = await start()
    const c = new Client(t.app)
    await c.signIn('john', 'password', { keepMeLoggedIn: true })
    const [key] = await keysUnder(admin!, prefixOf(t))
    expect(await admin!.ttl(key!)).toBeGreaterThan(30 * 24 * 3600 - 60)
    t.clock.advance(3 * 3600)
    expect(await c.state()).toEqual(SIGNED_IN)
  })

  test.skipIf(!redisProgramsAvailable('redis-server'))('Redis goes away: requests fail at once with a server error (never as if signed out), and work again when it is back', async () => {
    own = await startOwnRedis()
    const port = own.port
    const t = await start({ patch: (yaml) => (yaml.session.redis.port = port) })
    const c = new Client(t.app)
    await c.signIn()
    expect(await c.state()).toEqual(SIGNED_IN)
    await own.stop()
    t.clock.advance(10) // past the session read cache
    const down = await c.get('/api/state')
    expect(down.statusCode).toBeGreaterThanOrEqual(500)
    expect(down.body).not.toMatch(/StorageUnavailableError|at .*\.js:\d+/)
    expect(t.logs()).toContain('session store unavailable: requests get 503 until it answers again')
    await own.start()
    const deadline = Date.now() + 15_000
    while (!(await t.deps.sessions!.ping()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    // No persistence in this Redis: the old session is gone, a new sign-in works.
    expect(await c.state()).toEqual(ANONYMOUS)
    expect((await new Client(t.app).signIn()).statusCode).toBe(200)
  })
})

import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import type { RegulationConfig } from '../config/schema.js'
import { openSqliteStorage } from '../storage/sqlite/index.js'
import type { AuthenticationAttempt, Storage } from '../storage/storage.js'
import { AUTHENTICATION_LOG_RETENTION_SECONDS, REFUSED_ATTEMPTS_RECORDED_PER_MINUTE, Regulator, decideBan } from './regulator.js'

const CONFIG: RegulationConfig = { modes: ['user'], maxRetries: 3, findTimeSeconds: 120, banTimeSeconds: 300 }
const NOW = 1_700_000_000

function attempt(time: number, over: Partial<AuthenticationAttempt> = {}): AuthenticationAttempt {
  return { time, successful: false, banned: false, username: 'john', type: '1fa', remoteIp: '192.0.2.1', ...over }
}
/** Newest first, as the store lists them. */
const list = (...a: AuthenticationAttempt[]) => a.sort((x, y) => y.time - x.time)

describe('decideBan', () => {
  test('three failures within find_time ban until the newest + ban_time', () => {
    expect(decideBan(list(attempt(100), attempt(150), attempt(200)), 201, CONFIG)).toEqual({ banned: true, until: 500 })
  })
  test('the ban ends at newest + ban_time', () => {
    expect(decideBan(list(attempt(100), attempt(150), attempt(200)), 500, CONFIG)).toEqual({ banned: false })
  })
  test('failures spread over find_time or more do not ban', () => {
    expect(decideBan(list(attempt(100), attempt(150), attempt(220)), 221, CONFIG)).toEqual({ banned: false })
    expect(decideBan(list(attempt(100), attempt(150), attempt(219)), 221, CONFIG)).toEqual({ banned: true, until: 519 })
  })
  test('two failures are not enough', () => {
    expect(decideBan(list(attempt(100), attempt(110)), 111, CONFIG)).toEqual({ banned: false })
  })
  test('successes and refused attempts handed in by mistake are not failures', () => {
    const many = list(...Array.from({ length: 30 }, (_, i) => attempt(100 + i, { successful: i % 2 === 0, banned: i % 2 === 1 })))
    expect(decideBan(many, 131, CONFIG)).toEqual({ banned: false })
  })
  test('max_retries 0 disables regulation', () => {
    expect(decideBan(list(attempt(100), attempt(110), attempt(120)), 121, { ...CONFIG, maxRetries: 0 })).toEqual({ banned: false })
  })
})

describe('Regulator on a real database', () => {
  let storage: Storage
  beforeEach(async () => {
    storage = await openSqliteStorage({ path: ':memory:', encryptionKey: 'a-test-encryption-key-of-enough-length' })
  })
  afterEach(async () => {
    await storage.close()
  })

  const john = { username: 'john', remoteIp: '192.0.2.1' }

  /** One attempt through a slot, as the portal makes it. */
  async function tryOnce(r: Regulator, who: { username: string; remoteIp: string }, time: number, outcome: { successful?: boolean; type?: '1fa' | 'totp' } = {}) {
    const slot = await r.acquire(who, time)
    if (slot.ban.banned) {
      await slot.finish(attempt(time, { ...who, banned: true, type: outcome.type ?? '1fa' }))
      return slot.ban
    }
    await slot.finish(attempt(time, { ...who, successful: outcome.successful ?? false, type: outcome.type ?? '1fa' }))
    return slot.ban
  }

  test('issue 9.2: 30 successful sign-ins inside find_time (a 2FA sign-in records two) never ban', async () => {
    const r = new Regulator(CONFIG, storage)
    for (let i = 0; i < 15; i++) {
      await tryOnce(r, john, NOW + i, { successful: true })
      await tryOnce(r, john, NOW + i, { successful: true, type: 'totp' })
    }
    expect(await r.banState(john, NOW + 15)).toEqual({ banned: false })
    expect((await tryOnce(r, john, NOW + 16, { successful: true })).banned).toBe(false)
  })

  test('issue 9.2: attempts refused during a ban neither count nor extend it; it ends ban_time after the last real failure', async () => {
    const r = new Regulator(CONFIG, storage)
    for (let i = 0; i < 3; i++) await tryOnce(r, john, NOW + i)
    expect(await r.banState(john, NOW + 3)).toEqual({ banned: true, until: NOW + 2 + 300 })
    // A refused attempt every ten seconds for the whole ban (more than the per-minute budget too).
    for (let t = NOW + 3; t < NOW + 302; t += 10) expect((await tryOnce(r, john, t, { successful: true })).banned).toBe(true)
    expect(await r.banState(john, NOW + 301)).toEqual({ banned: true, until: NOW + 302 })
    expect(await r.banState(john, NOW + 302)).toEqual({ banned: false })
    expect((await tryOnce(r, john, NOW + 302, { successful: true })).banned).toBe(false)
  })

  test('issue 9.8: a successful first factor does not forgive wrong codes', async () => {
    const r = new Regulator(CONFIG, storage)
    for (let i = 0; i < 2; i++) {
      await tryOnce(r, john, NOW + 2 * i, { successful: true })
      await tryOnce(r, john, NOW + 2 * i + 1, { type: 'totp' })
    }
    await tryOnce(r, john, NOW + 4, { successful: true })
    expect(await r.banState(john, NOW + 4)).toEqual({ banned: false })
    await tryOnce(r, john, NOW + 5, { type: 'totp' })
    expect(await r.banState(john, NOW + 5)).toEqual({ banned: true, until: NOW + 305 })
  })

  test('a right code forgives earlier wrong codes', async () => {
    const r = new Regulator(CONFIG, storage)
    await tryOnce(r, john, NOW, { type: 'totp' })
    await tryOnce(r, john, NOW + 1, { type: 'totp' })
    await tryOnce(r, john, NOW + 2, { type: 'totp', successful: true })
    await tryOnce(r, john, NOW + 3, { type: 'totp' })
    expect(await r.banState(john, NOW + 3)).toEqual({ banned: false })
  })

  test('modes [ip]: failures from one address on several names ban that address only, for every name', async () => {
    const r = new Regulator({ ...CONFIG, modes: ['ip'] }, storage)
    for (const username of ['a', 'b', 'c']) await tryOnce(r, { username, remoteIp: '203.0.113.5' }, NOW)
    expect(await r.banState({ username: 'john', remoteIp: '203.0.113.5' }, NOW + 1)).toEqual({ banned: true, until: NOW + 300 })
    expect(await r.banState({ username: 'a', remoteIp: '203.0.113.6' }, NOW + 1)).toEqual({ banned: false })
    // Without mode user, three failures for one name from three addresses ban nobody.
    for (const ip of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) await tryOnce(r, { username: 'john', remoteIp: ip }, NOW + 2)
    expect(await r.banState({ username: 'john', remoteIp: '198.51.100.4' }, NOW + 3)).toEqual({ banned: false })
  })

  test('modes [user] (the default): the address does not matter', async () => {
    const r = new Regulator(CONFIG, storage)
    for (const ip of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) await tryOnce(r, { username: 'john', remoteIp: ip }, NOW)
    expect(await r.banState({ username: 'john', remoteIp: '198.51.100.9' }, NOW + 1)).toEqual({ banned: true, until: NOW + 300 })
    for (const username of ['a', 'b', 'c']) await tryOnce(r, { username, remoteIp: '203.0.113.5' }, NOW)
    expect(await r.banState({ username: 'd', remoteIp: '203.0.113.5' }, NOW + 1)).toEqual({ banned: false })
  })

  test('modes [user, ip]: either ban refuses; the later end is reported', async () => {
    const r = new Regulator({ ...CONFIG, modes: ['user', 'ip'] }, storage)
    for (const username of ['a', 'b', 'c']) await tryOnce(r, { username, remoteIp: '203.0.113.5' }, NOW)
    for (const ip of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) await tryOnce(r, { username: 'john', remoteIp: ip }, NOW + 10)
    expect(await r.banState({ username: 'john', remoteIp: '203.0.113.5' }, NOW + 11)).toEqual({ banned: true, until: NOW + 310 })
    expect(await r.banState({ username: 'zed', remoteIp: '203.0.113.5' }, NOW + 11)).toEqual({ banned: true, until: NOW + 300 })
    expect(await r.banState({ username: 'zed', remoteIp: '203.0.113.6' }, NOW + 11)).toEqual({ banned: false })
  })

  test('modes [ip]: a parallel burst from one address on many names checks at most max_retries', async () => {
    const r = new Regulator({ ...CONFIG, modes: ['ip'] }, storage)
    const bans = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const who = { username: `u${i}`, remoteIp: '203.0.113.5' }
        const slot = await r.acquire(who, NOW)
        await new Promise((resolve) => setImmediate(resolve))
        await slot.finish(attempt(NOW, { ...who, banned: slot.ban.banned }))
        return slot.ban.banned
      }),
    )
    expect(bans.filter((b) => !b)).toHaveLength(3)
  })

  test(`security.md B6: at most ${REFUSED_ATTEMPTS_RECORDED_PER_MINUTE} refused attempts a minute are recorded per address`, async () => {
    const r = new Regulator(CONFIG, storage)
    for (let i = 0; i < 3; i++) await tryOnce(r, john, NOW)
    for (let i = 0; i < 200; i++) await tryOnce(r, john, NOW + 1 + Math.floor(i / 100) * 30)
    // Another address still gets its own budget.
    for (let i = 0; i < 20; i++) await tryOnce(r, { username: 'john', remoteIp: '192.0.2.2' }, NOW + 5)
    const rows = await storage.listAuthenticationAttempts('john', 0, 1000)
    expect(rows.filter((a) => a.banned && a.remoteIp === '192.0.2.1')).toHaveLength(REFUSED_ATTEMPTS_RECORDED_PER_MINUTE)
    expect(rows.filter((a) => a.banned && a.remoteIp === '192.0.2.2')).toHaveLength(REFUSED_ATTEMPTS_RECORDED_PER_MINUTE)
    expect(rows.filter((a) => !a.banned)).toHaveLength(3)
    // A minute later the address may be recorded again.
    await tryOnce(r, john, NOW + 61)
    expect((await storage.listAuthenticationAttempts('john', NOW + 61, 10)).length).toBe(1)
  })

  test('security.md B6: attempts older than the audit window (or find_time + ban_time if longer) are pruned', async () => {
    const r = new Regulator(CONFIG, storage)
    const old = NOW - AUTHENTICATION_LOG_RETENTION_SECONDS - 10
    for (let i = 0; i < 1200; i++) await storage.recordAuthenticationAttempt(attempt(old, { username: `ghost${i}` }))
    await storage.recordAuthenticationAttempt(attempt(NOW - AUTHENTICATION_LOG_RETENTION_SECONDS + 10, { username: 'kept' }))
    // Batches of 500: each recorded attempt prunes one while a backlog remains.
    for (let i = 0; i < 3; i++) await tryOnce(r, { username: 'x', remoteIp: '192.0.2.9' }, NOW + i, { successful: true })
    expect(await storage.pruneAuthenticationAttempts(NOW - AUTHENTICATION_LOG_RETENTION_SECONDS, 10_000)).toBe(0)
    expect(await storage.listAuthenticationAttempts('kept', 0, 10)).toHaveLength(1)
    // A ban longer than the audit window keeps what it is read from.
    const long = new Regulator({ ...CONFIG, banTimeSeconds: AUTHENTICATION_LOG_RETENTION_SECONDS * 2 }, storage)
    for (let i = 0; i < 3; i++) await tryOnce(long, john, NOW + 10 + i)
    const later = NOW + 10 + AUTHENTICATION_LOG_RETENTION_SECONDS + 100
    await tryOnce(long, { username: 'y', remoteIp: '192.0.2.9' }, later, { successful: true })
    expect((await long.banState(john, later)).banned).toBe(true)
  })
})

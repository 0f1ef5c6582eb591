/**
 * The session-store contract suite: every SessionStore runs it (the storage backends through
 * runStorageContract, Redis in test/storage/redis.test.ts). Uses only the SessionStore interface.
 */
import { randomUUID } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import type { SessionData, SessionStore } from '../src/storage/storage.js'

const NOW = 1_700_000_000

export function session(overrides: Partial<SessionData> = {}): SessionData {
  return {
    username: 'alice',
    displayName: 'Alice Liddell',
    email: 'alice@example.com',
    groups: ['admins', 'dev'],
    level: 2,
    firstFactorAt: NOW - 20,
    secondFactorAt: NOW - 10,
    amr: ['pwd', 'otp', 'mfa'],
    credentialFingerprint: '0123456789abcdef',
    rememberMe: false,
    csrfToken: 'csrf-' + randomUUID(),
    createdAt: NOW - 20,
    lastActivityAt: NOW,
    extra: { pendingFlow: 'abc', nested: { n: 1 } },
    ...overrides,
  }
}

/** An id with SQL and Redis-pattern meta-characters (docs/security.md X4): just an id. */
const HOSTILE = "bob' OR '1'='1;-- *?[a]\r\nDEL *"

export interface OpenedSessionStore {
  store: SessionStore
  close(): Promise<void>
  /** A second, independent connection to the same sessions (another instance), when the backend has one. */
  another?: () => Promise<OpenedSessionStore>
}

export function runSessionStoreContract(name: string, open: () => Promise<OpenedSessionStore>): void {
  describe(`session-store contract: ${name}`, () => {
    let opened: OpenedSessionStore
    let store: SessionStore
    const extra: OpenedSessionStore[] = []

    beforeEach(async () => {
      opened = await open()
      store = opened.store
    })
    afterEach(async () => {
      for (const o of extra.splice(0)) await o.close()
      await opened.close()
    })

    test('absent: undefined', async () => {
      expect(await store.findSession('nope', NOW)).toBeUndefined()
    })

    test('save then find round-trips the data', async () => {
      const data = session()
      await store.saveSession('sid-1', data, NOW + 3600, NOW)
      expect(await store.findSession('sid-1', NOW)).toEqual(data)
    })

    test('saving again replaces data and expiry', async () => {
      await store.saveSession('sid-1', session(), NOW + 10, NOW)
      const next = session({ level: 1, lastActivityAt: NOW + 5 })
      await store.saveSession('sid-1', next, NOW + 3600, NOW + 5)
      expect(await store.findSession('sid-1', NOW + 100)).toEqual(next)
    })

    test('a session is gone at its expiry', async () => {
      await store.saveSession('sid-1', session(), NOW + 10, NOW)
      expect(await store.findSession('sid-1', NOW + 9)).toBeDefined()
      expect(await store.findSession('sid-1', NOW + 10)).toBeUndefined()
    })

    test('saved already expired: not found', async () => {
      await store.saveSession('sid-1', session(), NOW, NOW)
      expect(await store.findSession('sid-1', NOW)).toBeUndefined()
      expect(await store.findSession('sid-1', NOW + 1)).toBeUndefined()
    })

    test('destroy removes it, and destroying again is harmless', async () => {
      await store.saveSession('sid-1', session(), NOW + 10, NOW)
      await store.saveSession('sid-2', session(), NOW + 10, NOW)
      await store.destroySession('sid-1')
      expect(await store.findSession('sid-1', NOW)).toBeUndefined()
      expect(await store.findSession('sid-2', NOW)).toBeDefined()
      await store.destroySession('sid-1')
    })

    test("destroyUserSessions ends exactly that user's sessions, signed in or not, and says how many (security.md G5)", async () => {
      await store.saveSession('alice-1', session(), NOW + 3600, NOW)
      await store.saveSession('alice-2', session({ level: 1, rememberMe: true }), NOW + 3600, NOW)
      await store.saveSession('alice-upper', session({ username: 'Alice' }), NOW + 3600, NOW)
      await store.saveSession('alice2', session({ username: 'alice2' }), NOW + 3600, NOW)
      await store.saveSession('hostile', session({ username: HOSTILE }), NOW + 3600, NOW)
      await store.saveSession('anonymous', session({ username: undefined, level: 0 }), NOW + 3600, NOW)
      expect(await store.destroyUserSessions('alice')).toBe(2)
      expect(await store.findSession('alice-1', NOW)).toBeUndefined()
      expect(await store.findSession('alice-2', NOW)).toBeUndefined()
      for (const kept of ['alice-upper', 'alice2', 'hostile', 'anonymous']) expect(await store.findSession(kept, NOW)).toBeDefined()
      expect(await store.destroyUserSessions('alice')).toBe(0)
      expect(await store.destroyUserSessions(HOSTILE)).toBe(1)
      expect(await store.findSession('alice2', NOW)).toBeDefined()
    })

    test('deleteExpiredSessions keeps live sessions; expired ones stay unfindable', async () => {
      await store.saveSession('old-1', session(), NOW - 1, NOW - 60)
      await store.saveSession('old-2', session(), NOW, NOW - 60)
      await store.saveSession('live', session(), NOW + 1, NOW - 60)
      // A store whose records expire by themselves (Redis TTL) has nothing to delete: 0 or 2.
      expect([0, 2]).toContain(await store.deleteExpiredSessions(NOW))
      expect(await store.findSession('live', NOW)).toBeDefined()
      expect(await store.findSession('old-1', NOW)).toBeUndefined()
      expect(await store.findSession('old-2', NOW)).toBeUndefined()
      expect(await store.deleteExpiredSessions(NOW)).toBe(0)
    })

    test('updateSession replaces a live session and reports it', async () => {
      await store.saveSession('sid-1', session(), NOW + 10, NOW)
      const next = session({ level: 1, lastActivityAt: NOW + 5 })
      expect(await store.updateSession('sid-1', next, NOW + 3600, NOW + 5)).toBe(true)
      expect(await store.findSession('sid-1', NOW + 100)).toEqual(next)
    })

    test('updateSession never brings back a destroyed, expired or unknown session (security.md H1)', async () => {
      await store.saveSession('sid-1', session(), NOW + 3600, NOW)
      await store.destroySession('sid-1')
      expect(await store.updateSession('sid-1', session({ level: 2 }), NOW + 3600, NOW)).toBe(false)
      expect(await store.findSession('sid-1', NOW)).toBeUndefined()
      await store.saveSession('sid-2', session(), NOW + 10, NOW)
      expect(await store.updateSession('sid-2', session(), NOW + 3600, NOW + 10)).toBe(false)
      expect(await store.findSession('sid-2', NOW + 10)).toBeUndefined()
      expect(await store.updateSession('never', session(), NOW + 3600, NOW)).toBe(false)
      expect(await store.findSession('never', NOW)).toBeUndefined()
    })

    test('an id with SQL or pattern meta-characters is just an id', async () => {
      await store.saveSession(HOSTILE, session(), NOW + 10, NOW)
      expect(await store.findSession("' OR '1'='1", NOW)).toBeUndefined()
      expect(await store.findSession('*', NOW)).toBeUndefined()
      expect(await store.findSession(HOSTILE, NOW)).toBeDefined()
    })

    test('another instance on the same backend sees a save and a destroy at once', async (ctx) => {
      if (!opened.another) return ctx.skip()
      const other = await opened.another()
      extra.push(other)
      const data = session()
      await store.saveSession('shared', data, NOW + 3600, NOW)
      expect(await other.store.findSession('shared', NOW)).toEqual(data)
      await other.store.destroySession('shared')
      expect(await store.findSession('shared', NOW)).toBeUndefined()
    })
  })
}

import { afterEach, describe, expect, test, vi } from 'vitest'
import { buildApp } from '../../src/app.js'
import type { Storage } from '../../src/storage/storage.js'
import type { TestApp } from '../support/app.js'
import { HOST, authorizePath, getCode, kasmParams, redeem, signedInCookie } from '../support/oidc.js'
import { Client, portalTestApp } from './portal-helpers.js'

/**
 * Issue 8 point 5: when the database goes away, requests fail fast with a clear 503 (never a 500
 * with a stack trace, never a hung request), one log line says what is down and why, one says when
 * it is back, and service resumes without a restart. The outage is injected into the real SQLite
 * storage (spies only inject failures); the PostgreSQL and Redis outages are in
 * test/e2e/fleet-haproxy.test.ts.
 */
let t: TestApp | undefined
afterEach(async () => {
  vi.restoreAllMocks()
  await t?.close()
  t = undefined
})

/** Every storage method fails as a driver does when the server refuses connections; resolves the undo. */
function cutStorage(storage: Storage, failure: () => Promise<never> = refused): () => void {
  const methods = Object.keys(storage).filter((k) => k !== 'close' && typeof (storage as any)[k] === 'function')
  const spies = methods.map((k) => vi.spyOn(storage as any, k).mockImplementation(failure))
  return () => spies.forEach((s) => s.mockRestore())
}

function refused(): Promise<never> {
  return Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }))
}

const UNAVAILABLE = 'The service is temporarily unavailable. Please try again in a moment.'

function outageLines(logs: string): { down: any[]; up: any[] } {
  const lines = logs.split('\n').filter(Boolean).map((l) => JSON.parse(l))
  return {
    down: lines.filter((l) => /^storage unavailable/.test(l.msg)),
    up: lines.filter((l) => l.msg === 'storage available again'),
  }
}

describe('a storage outage', () => {
  test('every kind of request gets a clean 503, one line logs the outage and one the recovery, and service resumes', async () => {
    t = await portalTestApp()
    const cookie = await signedInCookie(t, 'john', 2)
    const code = await getCode(t, cookie)
    const browser = new Client(t.app)
    expect((await browser.signIn()).statusCode).toBe(200)
    expect((await t.app.inject({ method: 'GET', url: '/api/health' })).json()).toEqual({ status: 'OK' })

    const restore = cutStorage(t.storage)
    const health = await t.app.inject({ method: 'GET', url: '/api/health' })
    expect(health.statusCode).toBe(503)
    expect(health.json()).toEqual({ status: 'KO', message: 'Storage is unavailable.' })

    const state = await browser.get('/api/state')
    expect(state.statusCode).toBe(503)
    expect(state.headers['retry-after']).toBe('5')
    expect(state.json()).toEqual({ status: 'KO', message: UNAVAILABLE })

    const signIn = await new Client(t.app).signIn()
    expect(signIn.statusCode).toBe(503)
    expect(signIn.json()).toEqual({ status: 'KO', message: UNAVAILABLE })

    const page = await browser.get('/', { accept: 'text/html' })
    expect(page.statusCode).toBe(503)
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(page.body).toContain(UNAVAILABLE)

    const authorize = await t.app.inject({ method: 'GET', url: authorizePath(kasmParams()), headers: { host: HOST, cookie, accept: 'text/html' } })
    expect(authorize.statusCode).toBe(503)
    expect(authorize.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(authorize.headers.location).toBeUndefined()
    expect(authorize.body).toContain('temporarily_unavailable')

    const token = await redeem(t, code)
    expect(token.statusCode).toBe(503)
    expect(token.headers['cache-control']).toBe('no-store')
    expect(token.json()).toEqual({ error: 'temporarily_unavailable', error_description: UNAVAILABLE })

    for (const res of [health, state, signIn, page, authorize, token]) expect(res.body).not.toMatch(/ECONNREFUSED|at .*\.js|5432/)
    const during = outageLines(t.logs())
    expect(during.down).toHaveLength(1)
    expect(during.down[0]).toMatchObject({ level: 50, dependency: 'storage', reason: 'connect ECONNREFUSED 127.0.0.1:5432' })
    expect(during.up).toHaveLength(0)
    expect(t.logs()).not.toContain('unhandled error')

    restore()
    expect((await t.app.inject({ method: 'GET', url: '/api/health' })).json()).toEqual({ status: 'OK' })
    expect((await browser.state()).authentication_level).toBe(1)
    // The code survived the outage: it was never consumed.
    expect((await redeem(t, code)).statusCode).toBe(200)
    const after = outageLines(t.logs())
    expect(after.down).toHaveLength(1)
    expect(after.up).toHaveLength(1)
  })

  test('a storage that stops answering is cut off after the timeout: 503, not a hung request', async () => {
    t = await portalTestApp({ dependencyTimeoutMs: 300 })
    const browser = new Client(t.app)
    expect((await browser.signIn()).statusCode).toBe(200)
    cutStorage(t.storage, () => new Promise<never>(() => {}))
    const state = await browser.get('/api/state')
    expect(state.statusCode).toBe(503)
    expect(state.json()).toEqual({ status: 'KO', message: UNAVAILABLE })
    expect(outageLines(t.logs()).down[0]).toMatchObject({ dependency: 'storage', reason: 'no answer within 300 ms' })
  })

  test('an error that is not an outage stays a 500 with a fixed sentence', async () => {
    t = await portalTestApp()
    const browser = new Client(t.app)
    expect((await browser.signIn()).statusCode).toBe(200)
    vi.spyOn(t.storage, 'findSession').mockRejectedValue(new Error('CHECK constraint failed'))
    const state = await browser.get('/api/state')
    expect(state.statusCode).toBe(500)
    expect(state.json()).toEqual({ status: 'KO', message: 'Internal server error.' })
    expect(outageLines(t.logs()).down).toHaveLength(0)
  })

  test('a separate session store (session.redis) that stops answering its ping takes the instance out: 503 until it answers', async () => {
    t = await portalTestApp()
    const storage = t.storage
    let answering = false
    // A session store apart from storage, as session.redis is: here the same SQLite sessions, its ping switchable.
    const sessions = {
      findSession: storage.findSession.bind(storage),
      saveSession: storage.saveSession.bind(storage),
      updateSession: storage.updateSession.bind(storage),
      destroySession: storage.destroySession.bind(storage),
      destroyUserSessions: storage.destroyUserSessions.bind(storage),
      deleteExpiredSessions: storage.deleteExpiredSessions.bind(storage),
      ping: async () => answering,
      close: async () => {},
    }
    const app = await buildApp({ ...t.deps, sessions })
    try {
      const down = await app.inject({ method: 'GET', url: '/api/health' })
      expect(down.statusCode).toBe(503)
      expect(down.json()).toEqual({ status: 'KO', message: 'Session store is unavailable.' })
      expect(t.logs()).toContain('session store unavailable: requests get 503 until it answers again')
      answering = true
      expect((await app.inject({ method: 'GET', url: '/api/health' })).json()).toEqual({ status: 'OK' })
      expect(t.logs()).toContain('session store available again')
    } finally {
      await app.close()
    }
  })
})

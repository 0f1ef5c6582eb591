import { afterEach, describe, expect, test } from 'vitest'
import { createHashGate, type Admission } from '../../src/authn/hash-budget.js'
import type { TestApp } from '../support/app.js'
import { Client, KO401, portalTestApp, withoutDate } from './portal-helpers.js'

// docs/security.md B5: password hashing is bounded per instance; what is beyond the bound is answered
// as any failed sign-in (B2) without hashing, and a flood of made-up names never takes the slots
// of the users in the users file. Asserted by counts and order, never by time.

let t: TestApp | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

function held(a: Admission): () => void {
  if (!a.admitted) throw new Error('the test expected to hold a hash slot')
  return a.release
}

describe('first factor under a hash flood (docs/security.md B5)', () => {
  test('beyond the bound, a known or unknown name gets the same answer as a wrong password, unhashed and unrecorded', async () => {
    const gate = createHashGate({
      known: { concurrency: 1, queue: 0, maxWaitMs: 60_000 },
      unknown: { concurrency: 1, queue: 0, maxWaitMs: 60_000 },
    })
    t = await portalTestApp({ hashGate: gate })
    const ordinary = await new Client(t.app).signIn('john', 'wrong')
    expect(gate.known.admitted).toBe(1)

    // Every slot taken, no line: what comes now is beyond the bound.
    const releaseKnown = held(await gate.known.acquire())
    const releaseUnknown = held(await gate.unknown.acquire())
    const refused = [
      await new Client(t.app).signIn('harry', 'password'),
      await new Client(t.app).signIn('nobody-at-all', 'password'),
    ]
    // john, right password, more often than max_retries (3): refused attempts are not failures.
    for (let i = 0; i < 4; i++) refused.push(await new Client(t.app).signIn('john', 'password'))

    for (const r of refused) {
      expect(r.statusCode).toBe(ordinary.statusCode)
      expect(r.body).toBe(ordinary.body)
      expect(r.body).toBe(JSON.stringify(KO401))
      expect(r.headers['set-cookie']).toBeUndefined()
      expect(withoutDate(r.headers)).toEqual(withoutDate(ordinary.headers))
    }
    // No hash ran for them: the only admissions are the wrong password and the two held slots.
    expect({ known: gate.known.admitted, unknown: gate.unknown.admitted }).toEqual({ known: 2, unknown: 1 })
    expect({ known: gate.known.refused, unknown: gate.unknown.refused }).toEqual({ known: 5, unknown: 1 })
    expect(t.logs()).toContain('first factor refused unchecked: password hashing is at its bound')
    expect(t.logs()).toContain('sign-ins refused unchecked: password hashing is at its per-instance bound')

    releaseKnown()
    releaseUnknown()
    // One real failure and no ban: john signs in.
    const john = await new Client(t.app).signIn('john', 'password')
    expect(john.statusCode).toBe(200)
  })

  test('a real user signs in while made-up names fill the dummy budget and its line', async () => {
    const gate = createHashGate({
      known: { concurrency: 1, queue: 0, maxWaitMs: 60_000 },
      unknown: { concurrency: 1, queue: 2, maxWaitMs: 60_000 },
    })
    t = await portalTestApp({ hashGate: gate })
    const app = t.app
    // The dummy slot is busy (as with a long hash) until the test lets it go.
    const releaseDummy = held(await gate.unknown.acquire())
    const finished: string[] = []
    const bogus = Array.from({ length: 20 }, (_, i) =>
      new Client(app).signIn(`made-up-${i}`, 'wrong').then((r) => (finished.push('bogus'), r)),
    )
    await expect.poll(() => gate.unknown.queued + gate.unknown.refused).toBe(20)

    const john = await new Client(app).signIn('john', 'password')
    finished.push('john')
    expect(john.statusCode).toBe(200)
    expect(john.headers['set-cookie']).toBeDefined()
    // Two bogus attempts still wait in the dummy line; the other 18 were refused unhashed.
    expect({ queued: gate.unknown.queued, refused: gate.unknown.refused }).toEqual({ queued: 2, refused: 18 })

    releaseDummy()
    const answers = await Promise.all(bogus)
    expect(answers.every((r) => r.statusCode === 401 && r.body === JSON.stringify(KO401))).toBe(true)
    // The two that waited finished after john; only they and the held slot hashed.
    expect(finished.slice(-3)).toEqual(['john', 'bogus', 'bogus'])
    expect(gate.unknown.admitted).toBe(3)
    expect(gate.known.admitted).toBe(1)
  })

  test('successes slowed by a flood teach the failure delay at most its ceiling', async () => {
    // A clock on which each sign-in seems to take 30 s (the reported 32 s), then stands still
    // for the failure, so the delay it asks for is all learnt, none already spent.
    let nowMs = 0
    let stepMs = 30_000
    const slept: number[] = []
    t = await portalTestApp({ failureDelay: { now: () => (nowMs += stepMs), sleep: async (ms) => void slept.push(ms) } })
    for (let i = 0; i < 10; i++) expect((await new Client(t.app).signIn('john', 'password')).statusCode).toBe(200)
    stepMs = 0
    expect((await new Client(t.app).signIn('nobody', 'wrong')).statusCode).toBe(401)
    expect(slept).toHaveLength(1)
    expect(slept[0]).toBeGreaterThanOrEqual(1000)
    expect(slept[0]).toBeLessThanOrEqual(1000 + 85)
  })
})

import { describe, expect, test } from 'vitest'
import { FailureDelay } from './failure-delay.js'

/** A FailureDelay on a hand-moved clock whose sleeps are recorded, not slept. */
function observed(opts: { minimumMs?: number; jitterMs?: number; maximumMs?: number } = {}) {
  let now = 0
  const slept: number[] = []
  const delay = new FailureDelay({ ...opts, now: () => now, sleep: async (ms) => void slept.push(ms) })
  return { delay, slept, advance: (ms: number) => (now += ms), at: () => now }
}

describe('FailureDelay', () => {
  test('a failure waits for the floor, counted from the start of the request', async () => {
    const { delay, slept, advance, at } = observed({ jitterMs: 0 })
    const start = at()
    advance(100)
    await delay.waitSince(start)
    expect(slept).toEqual([150])
  })

  test('learns from typical successes, as Authelia does', async () => {
    const { delay } = observed({ jitterMs: 0 })
    for (let i = 0; i < 10; i++) delay.recordSuccess(400)
    expect(delay.targetMs()).toBe(400)
  })

  test('successes slowed by a flood teach it at most the ceiling (docs/security.md B5)', async () => {
    const { delay, slept, at } = observed({ jitterMs: 85 })
    // The reported case: successes that took 30 s while 200 bogus sign-ins ran.
    for (let i = 0; i < 10; i++) delay.recordSuccess(30_000)
    for (let i = 0; i < 50; i++) expect(delay.targetMs()).toBeLessThanOrEqual(1000 + 85)
    await delay.waitSince(at())
    expect(slept).toHaveLength(1)
    expect(slept[0]).toBeGreaterThanOrEqual(1000)
    expect(slept[0]).toBeLessThanOrEqual(1085)
  })

  test('one huge sample cannot outweigh the window', () => {
    const { delay } = observed({ jitterMs: 0 })
    delay.recordSuccess(Number.MAX_SAFE_INTEGER)
    // Nine samples at the 250 ms floor and one clamped to 1000.
    expect(delay.targetMs()).toBe(325)
  })

  test('a configured ceiling below the floor is raised to the floor', () => {
    const { delay } = observed({ minimumMs: 300, jitterMs: 0, maximumMs: 100 })
    delay.recordSuccess(5000)
    expect(delay.maximumMs).toBe(300)
    expect(delay.targetMs()).toBe(300)
  })
})

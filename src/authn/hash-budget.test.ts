import { describe, expect, test } from 'vitest'
import { HashBudget, createHashGate, defaultHashGateLimits, type Admission, type Schedule } from './hash-budget.js'

/** Deadlines fire only when the test says so. */
function manualSchedule() {
  const timers: Array<{ ms: number; fire: () => void; cancelled: boolean }> = []
  const schedule: Schedule = (ms, fire) => {
    const t = { ms, fire, cancelled: false }
    timers.push(t)
    return () => (t.cancelled = true)
  }
  return { schedule, fireAll: () => timers.filter((t) => !t.cancelled).forEach((t) => ((t.cancelled = true), t.fire())), pending: () => timers.filter((t) => !t.cancelled).length }
}

function deferred<T = void>() {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

const admitted = (a: Admission) => (a.admitted ? a : expect.unreachable('expected a slot'))

describe('HashBudget', () => {
  test('admits up to its concurrency at once, queues up to its line, refuses the next at once', async () => {
    const clock = manualSchedule()
    const budget = new HashBudget({ concurrency: 2, queue: 1, maxWaitMs: 500 }, clock.schedule)
    const a = admitted(await budget.acquire())
    admitted(await budget.acquire())
    const waiting = budget.acquire()
    expect(budget.queued).toBe(1)
    expect(await budget.acquire()).toEqual({ admitted: false, reason: 'queue_full' })
    expect({ inUse: budget.inUse, admitted: budget.admitted, refused: budget.refused }).toEqual({ inUse: 2, admitted: 2, refused: 1 })

    a.release()
    admitted(await waiting)
    expect({ inUse: budget.inUse, queued: budget.queued, admitted: budget.admitted }).toEqual({ inUse: 2, queued: 0, admitted: 3 })
    // The waiter's deadline was cancelled when it got its slot.
    expect(clock.pending()).toBe(0)
  })

  test('serves the line in arrival order', async () => {
    const budget = new HashBudget({ concurrency: 1, queue: 3, maxWaitMs: 500 }, manualSchedule().schedule)
    const first = admitted(await budget.acquire())
    const order: number[] = []
    const waits = [1, 2, 3].map((n) => budget.acquire().then((a) => (order.push(n), admitted(a))))
    first.release()
    ;(await waits[0]!).release()
    ;(await waits[1]!).release()
    await waits[2]
    expect(order).toEqual([1, 2, 3])
  })

  test('a waiter whose deadline passes is refused and leaves the line; a later release skips it', async () => {
    const clock = manualSchedule()
    const budget = new HashBudget({ concurrency: 1, queue: 2, maxWaitMs: 500 }, clock.schedule)
    const holder = admitted(await budget.acquire())
    const late = budget.acquire()
    clock.fireAll()
    expect(await late).toEqual({ admitted: false, reason: 'wait_expired' })
    expect(budget.queued).toBe(0)
    holder.release()
    expect(budget.inUse).toBe(0)
    // Releasing twice frees one slot only.
    holder.release()
    expect(budget.inUse).toBe(0)
    admitted(await budget.acquire())
    expect(budget.inUse).toBe(1)
  })

  test('run() does the work inside a slot and frees it even when the work throws', async () => {
    const budget = new HashBudget({ concurrency: 1, queue: 0, maxWaitMs: 0 }, manualSchedule().schedule)
    const gate = deferred<boolean>()
    let started = 0
    const running = budget.run(() => (started++, gate.promise))
    // Full, no line: the next one is refused without running.
    expect(await budget.run(async () => (started++, true))).toEqual({ ran: false, reason: 'queue_full' })
    gate.resolve(true)
    expect(await running).toEqual({ ran: true, value: true })
    await expect(budget.run(() => Promise.reject(new Error('hash failed')))).rejects.toThrow('hash failed')
    expect(budget.inUse).toBe(0)
    expect(started).toBe(1)
  })

  test('the default gate gives made-up names one slot of their own beside the known users', () => {
    expect(defaultHashGateLimits(2)).toEqual({
      known: { concurrency: 2, queue: 32, maxWaitMs: 5000 },
      unknown: { concurrency: 1, queue: 2, maxWaitMs: 500 },
    })
    expect(defaultHashGateLimits(1).known.concurrency).toBe(1)
    expect(defaultHashGateLimits(64).known.concurrency).toBe(2)
    const gate = createHashGate()
    expect(gate.known).not.toBe(gate.unknown)
  })

  test('refuses limits that would never admit anything', () => {
    expect(() => new HashBudget({ concurrency: 0, queue: 1, maxWaitMs: 1 })).toThrow(RangeError)
  })
})

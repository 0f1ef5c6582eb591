import { availableParallelism } from 'node:os'

/** A one-shot timer; the returned function cancels it. Injected so tests fire deadlines by hand. */
export type Schedule = (ms: number, fire: () => void) => () => void

const realSchedule: Schedule = (ms, fire) => {
  const t = setTimeout(fire, ms)
  t.unref()
  return () => clearTimeout(t)
}

export interface HashBudgetLimits {
  /** Hashes running at once. */
  concurrency: number
  /** Attempts waiting for a slot; one more is refused at once. */
  queue: number
  /** How long an attempt may wait for a slot before it is refused. */
  maxWaitMs: number
}

export type Admission = { admitted: true; release: () => void } | { admitted: false; reason: 'queue_full' | 'wait_expired' }

export type BudgetRun<T> = { ran: true; value: T } | { ran: false; reason: 'queue_full' | 'wait_expired' }

interface Waiter {
  admit: (a: Admission) => void
  cancelTimer: () => void
}

/**
 * A counting semaphore with a bounded FIFO queue and a wait deadline. An attempt runs at once when
 * a slot is free, else waits in line; when the line is full, or its wait reaches `maxWaitMs`, it is
 * refused, so nothing waits behind an unbounded backlog (docs/security.md B5). Per process.
 */
export class HashBudget {
  private running = 0
  private readonly waiting: Waiter[] = []
  /** Attempts that got a slot, and attempts refused: for logs, tests and the bench. */
  admitted = 0
  refused = 0

  constructor(
    readonly limits: HashBudgetLimits,
    private readonly schedule: Schedule = realSchedule,
  ) {
    if (!(limits.concurrency >= 1) || !(limits.queue >= 0) || !(limits.maxWaitMs >= 0)) {
      throw new RangeError('hash budget needs concurrency >= 1, queue >= 0 and maxWaitMs >= 0')
    }
  }

  get inUse(): number {
    return this.running
  }

  get queued(): number {
    return this.waiting.length
  }

  /** A slot (call `release` exactly once) or a refusal; never waits longer than `maxWaitMs`. */
  acquire(): Promise<Admission> {
    if (this.running < this.limits.concurrency) return Promise.resolve(this.grant())
    if (this.waiting.length >= this.limits.queue) return Promise.resolve(this.refuse('queue_full'))
    return new Promise<Admission>((admit) => {
      const waiter: Waiter = {
        admit,
        cancelTimer: this.schedule(this.limits.maxWaitMs, () => {
          const at = this.waiting.indexOf(waiter)
          if (at === -1) return
          this.waiting.splice(at, 1)
          admit(this.refuse('wait_expired'))
        }),
      }
      this.waiting.push(waiter)
    })
  }

  /** Runs `work` inside a slot, or reports why it did not run. */
  async run<T>(work: () => Promise<T>): Promise<BudgetRun<T>> {
    const a = await this.acquire()
    if (!a.admitted) return { ran: false, reason: a.reason }
    try {
      return { ran: true, value: await work() }
    } finally {
      a.release()
    }
  }

  private grant(): Admission {
    this.running++
    this.admitted++
    let released = false
    return {
      admitted: true,
      release: () => {
        if (released) return
        released = true
        this.running--
        const next = this.waiting.shift()
        if (next) {
          next.cancelTimer()
          next.admit(this.grant())
        }
      },
    }
  }

  private refuse(reason: 'queue_full' | 'wait_expired'): Admission {
    this.refused++
    return { admitted: false, reason }
  }
}

/**
 * Password hashing is split in two budgets (docs/security.md B5). Why: argon2 runs in libuv's thread
 * pool (4 threads, an unbounded FIFO queue behind them) and sha-crypt in a small worker pool, so
 * 200 parallel sign-ins used to queue 200 hashes and a real user's hash waited behind all of them.
 * - `known`: users in the users file: two slots (one on one core), so with the dummy's slot three
 *   of the pool's four threads at most, one left for file and DNS work. A real user would rather
 *   wait a few seconds than be refused, so its line is long (16 per slot, 5 s): a burst of real
 *   sign-ins on a busy machine still gets through. A flood on one known name is held to a
 *   few attempts in flight by regulation's per-user slot and banned after `max_retries` failures.
 * - `unknown`: the dummy hash of unknown and disabled users (docs/security.md B2). One slot, a short
 *   line. Its answer is a failure whatever the hash says, so refusing it under load changes
 *   nothing a real user sees, and a flood of made-up names can never take the known users' slots.
 * A refused attempt is answered as any other failed sign-in, after the same failure delay (a
 * timer, no CPU): an answer faster than a hash would tell an attacker it was refused, and the
 * delay keeps a closed-loop flood from spinning. Limits are per process: N instances hash at most
 * N times as much at once.
 */
export interface HashGate {
  known: HashBudget
  unknown: HashBudget
}

export function defaultHashGateLimits(cores = availableParallelism()): { known: HashBudgetLimits; unknown: HashBudgetLimits } {
  const known = Math.max(1, Math.min(cores, 2))
  return {
    known: { concurrency: known, queue: 16 * known, maxWaitMs: 5000 },
    unknown: { concurrency: 1, queue: 2, maxWaitMs: 500 },
  }
}

export function createHashGate(limits = defaultHashGateLimits(), schedule?: Schedule): HashGate {
  return { known: new HashBudget(limits.known, schedule), unknown: new HashBudget(limits.unknown, schedule) }
}

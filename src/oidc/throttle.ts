/**
 * Failed client authentications per key in a sliding window (docs/security.md A4, RFC 6749 §2.3.1).
 * In memory and per instance: a restart forgives, as Authelia's would, and N instances on one
 * database allow N times the limit (still a small constant against secrets of 256 bits or a KDF).
 */
export class FailureThrottle {
  private readonly failures = new Map<string, number[]>()
  /** Verifications running now per key, and who waits for one of them to end. */
  private readonly inFlight = new Map<string, number>()
  private readonly waiting = new Map<string, Array<() => void>>()

  constructor(
    private readonly limit: number,
    private readonly windowSeconds: number,
    private readonly maxKeys = 10_000,
  ) {}

  /** Seconds until the key may try again, or 0 when it is not throttled. */
  retryAfter(key: string, now: number): number {
    const list = this.prune(key, now)
    if (list.length < this.limit) return 0
    return Math.max(1, list[list.length - this.limit]! + this.windowSeconds - now)
  }

  recordFailure(key: string, now: number): void {
    const list = this.prune(key, now)
    list.push(now)
    this.failures.delete(key)
    this.failures.set(key, list)
    if (this.failures.size > this.maxKeys) {
      const oldest = this.failures.keys().next().value
      if (oldest !== undefined) this.failures.delete(oldest)
    }
  }

  /**
   * Reserves one verification for the key. Checks still running count as failures until they end,
   * so a burst of parallel guesses cannot outrun the limit (the verification itself is async): a
   * request waits while failures plus running checks reach the limit, then decides again. The first
   * check of a key always runs, so a throttled key is answered by retryAfter, never starved.
   * Resolves a release function to call once the outcome is recorded.
   */
  async acquire(key: string, now: () => number): Promise<() => void> {
    for (;;) {
      const running = this.inFlight.get(key) ?? 0
      if (running === 0 || this.prune(key, now()).length + running < this.limit) {
        this.inFlight.set(key, running + 1)
        let released = false
        return () => {
          if (released) return
          released = true
          const left = (this.inFlight.get(key) ?? 1) - 1
          if (left > 0) this.inFlight.set(key, left)
          else this.inFlight.delete(key)
          const waiters = this.waiting.get(key)
          this.waiting.delete(key)
          for (const wake of waiters ?? []) wake()
        }
      }
      await new Promise<void>((resolve) => {
        const list = this.waiting.get(key) ?? []
        list.push(resolve)
        this.waiting.set(key, list)
      })
    }
  }

  private prune(key: string, now: number): number[] {
    const list = this.failures.get(key) ?? []
    while (list.length > 0 && list[0]! <= now - this.windowSeconds) list.shift()
    return list
  }
}

/**
 * The work spent on unknown client ids (docs/security.md A3, A4): each runs the dummy KDF so it costs what
 * a wrong secret costs, but a flood of made-up ids must not buy unbounded KDF time. At most
 * `concurrent` dummy checks run at once and at most `perWindow` start per window; beyond that the
 * same refusal is answered at once (the timing then tells a flooder that the id is unknown, which the
 * flood already told it: client ids are not secrets). Per instance and in memory: with N instances
 * the bound is N times this, still a constant.
 */
export class WorkBudget {
  private running = 0
  private windowStart = -Infinity
  private started = 0

  constructor(
    private readonly concurrent: number,
    private readonly perWindow: number,
    private readonly windowSeconds: number,
  ) {}

  /** A release function when the work may run now, undefined when it is to be skipped. */
  tryStart(now: number): (() => void) | undefined {
    if (now >= this.windowStart + this.windowSeconds) {
      this.windowStart = now
      this.started = 0
    }
    if (this.running >= this.concurrent || this.started >= this.perWindow) return undefined
    this.running++
    this.started++
    let released = false
    return () => {
      if (released) return
      released = true
      this.running--
    }
  }
}

/**
 * Artifacts (hashes of codes and tokens) that already vouched for one failed request of a
 * throttled client (see client-auth.ts): each may vouch once per window, so one stolen code does
 * not buy a stream of guesses. Bounded like FailureThrottle's keys.
 */
export class SpentArtifacts {
  private readonly spent = new Map<string, number>()

  constructor(
    private readonly windowSeconds: number,
    private readonly maxKeys = 10_000,
  ) {}

  has(hash: string, now: number): boolean {
    const at = this.spent.get(hash)
    if (at === undefined) return false
    if (at > now - this.windowSeconds) return true
    this.spent.delete(hash)
    return false
  }

  add(hash: string, now: number): void {
    this.spent.delete(hash)
    this.spent.set(hash, now)
    if (this.spent.size > this.maxKeys) {
      const oldest = this.spent.keys().next().value
      if (oldest !== undefined) this.spent.delete(oldest)
    }
  }
}

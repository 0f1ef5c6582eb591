/**
 * Failed client authentications per key in a sliding window (security.md A4, RFC 6749 §2.3.1).
 * In memory: one process serves one deployment; a restart forgives, as Authelia's would.
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

  reset(key: string): void {
    this.failures.delete(key)
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

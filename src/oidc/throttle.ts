/**
 * Failed client authentications per key in a sliding window (security.md A4, RFC 6749 §2.3.1).
 * In memory: one process serves one deployment; a restart forgives, as Authelia's would.
 */
export class FailureThrottle {
  private readonly failures = new Map<string, number[]>()

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

  private prune(key: string, now: number): number[] {
    const list = this.failures.get(key) ?? []
    while (list.length > 0 && list[0]! <= now - this.windowSeconds) list.shift()
    return list
  }
}

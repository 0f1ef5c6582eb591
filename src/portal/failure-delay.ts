import { randomInt } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Every first-factor failure takes at least as long as a typical success (docs/security.md B2, as
 * Authelia's TimingAttackDelay): max(moving average of the last 10 successes, `minimumMs`) plus
 * 0–`jitterMs` of random jitter, measured from the start of the request. Unknown user, wrong
 * password, disabled and banned then read alike on the wire and in time.
 */
export class FailureDelay {
  private readonly samples: number[] = []
  private sum = 0

  constructor(
    readonly minimumMs = 250,
    readonly jitterMs = 85,
    private readonly window = 10,
  ) {
    for (let i = 0; i < window; i++) this.push(minimumMs)
  }

  recordSuccess(elapsedMs: number): void {
    this.push(elapsedMs)
  }

  targetMs(): number {
    if (this.minimumMs <= 0 && this.jitterMs <= 0) return 0
    const avg = this.sum / this.samples.length
    return Math.max(avg, this.minimumMs) + (this.jitterMs > 0 ? randomInt(this.jitterMs + 1) : 0)
  }

  async waitSince(startMs: number): Promise<void> {
    const remaining = this.targetMs() - (performance.now() - startMs)
    if (remaining > 0) await sleep(remaining)
  }

  private push(ms: number): void {
    this.samples.push(ms)
    this.sum += ms
    if (this.samples.length > this.window) this.sum -= this.samples.shift()!
  }
}

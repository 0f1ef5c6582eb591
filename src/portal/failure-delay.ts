import { randomInt } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'

export interface FailureDelayOptions {
  /** The floor (Authelia: 250 ms). */
  minimumMs?: number
  /** Random 0–jitterMs added on top (Authelia: 85 ms). */
  jitterMs?: number
  /** The ceiling of the learnt part (docs/security.md B5). */
  maximumMs?: number
  /** Successes averaged (Authelia: 10). */
  window?: number
  /** Injected by tests to observe the wait without waiting. */
  now?: () => number
  sleep?: (ms: number) => Promise<unknown>
}

/**
 * Every first-factor failure takes at least as long as a typical success (docs/security.md B2, as
 * Authelia's TimingAttackDelay): max(moving average of the last 10 successes, `minimumMs`) plus
 * 0–`jitterMs` of random jitter, measured from the start of the request. Unknown user, wrong
 * password, disabled and banned then read alike on the wire and in time.
 *
 * Unlike Authelia's, the learnt part never exceeds `maximumMs` (1 s; docs/security.md B5): a flood
 * that slowed the successes used to teach the average 30 s, and every failure then waited that
 * long. A success slower than the ceiling measures a queue, not the hash the floor hides.
 */
export class FailureDelay {
  readonly minimumMs: number
  readonly jitterMs: number
  readonly maximumMs: number
  private readonly window: number
  /** Milliseconds on the clock `waitSince` measures with (performance.now unless injected). */
  readonly now: () => number
  private readonly sleep: (ms: number) => Promise<unknown>
  private readonly samples: number[] = []
  private sum = 0

  constructor(o: FailureDelayOptions = {}) {
    this.minimumMs = o.minimumMs ?? 250
    this.jitterMs = o.jitterMs ?? 85
    this.maximumMs = Math.max(o.maximumMs ?? 1000, this.minimumMs)
    this.window = o.window ?? 10
    this.now = o.now ?? (() => performance.now())
    this.sleep = o.sleep ?? sleep
    for (let i = 0; i < this.window; i++) this.push(this.minimumMs)
  }

  recordSuccess(elapsedMs: number): void {
    this.push(elapsedMs)
  }

  /** The total time a failure should take: at most `maximumMs + jitterMs`. */
  targetMs(): number {
    if (this.minimumMs <= 0 && this.jitterMs <= 0) return 0
    const avg = this.sum / this.samples.length
    return Math.max(avg, this.minimumMs) + (this.jitterMs > 0 ? randomInt(this.jitterMs + 1) : 0)
  }

  /** Waits until `targetMs()` has passed since `startMs` (a `now()` reading at the request's start). */
  async waitSince(startMs: number): Promise<void> {
    const remaining = this.targetMs() - (this.now() - startMs)
    if (remaining > 0) await this.sleep(remaining)
  }

  private push(ms: number): void {
    const sample = Math.min(Math.max(ms, 0), this.maximumMs)
    this.samples.push(sample)
    this.sum += sample
    if (this.samples.length > this.window) this.sum -= this.samples.shift()!
  }
}

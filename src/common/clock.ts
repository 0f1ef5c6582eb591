/** Unix seconds. Injected everywhere so tests can move time without sleeping. */
export interface Clock {
  now(): number
}

export const systemClock: Clock = { now: () => Math.floor(Date.now() / 1000) }

/** A clock tests can set and advance. */
export class ManualClock implements Clock {
  constructor(private current = 1_700_000_000) {}
  now(): number {
    return this.current
  }
  set(seconds: number): void {
    this.current = seconds
  }
  advance(seconds: number): void {
    this.current += seconds
  }
}

import type { RegulationConfig } from '../config/schema.js'
import type { AuthenticationAttempt, RegulationStore } from '../storage/storage.js'

export type BanState = { banned: false } | { banned: true; until: number }

/**
 * A reserved right to check one credential of a user (see Regulator.acquire). `ban` is the state
 * seen when it was granted; when banned nothing is reserved. `finish` records the attempt (if
 * any) and frees the slot; call it exactly once, also on failure paths.
 */
export interface AttemptSlot {
  ban: BanState
  finish(attempt?: AuthenticationAttempt): Promise<void>
}

interface Gate {
  inFlight: number
  wake: Array<() => void>
}

/**
 * How many attempts one check reads beyond max_retries. Banned attempts (recorded while a ban
 * runs) are skipped when counting, so a flood of them could push the real failures out of the
 * page; when the page is full without a decision the user is treated as still banned (fails
 * closed). Kept small: this runs on every sign-in and every TOTP check, also under attack.
 */
const ATTEMPT_SLACK = 20

/**
 * Brute-force regulation (docs/security.md B1, Authelia `regulation`): `maxRetries` failures of any
 * factor, with no success between them, spanning at most `findTimeSeconds`, ban the user until
 * the newest of them + `banTimeSeconds`. Keyed on the canonical username (Authelia CVE-2025-24806).
 */
export class Regulator {
  constructor(
    private readonly config: RegulationConfig,
    private readonly store: RegulationStore,
  ) {}

  get enabled(): boolean {
    return this.config.maxRetries > 0
  }

  async banState(username: string, now: number): Promise<BanState> {
    const { maxRetries, findTimeSeconds, banTimeSeconds } = this.config
    if (maxRetries <= 0) return { banned: false }
    // A ban ends banTime after its newest failure, and its oldest failure is at most findTime
    // before that: nothing older can matter.
    const page = maxRetries + ATTEMPT_SLACK
    const attempts = await this.store.listAuthenticationAttempts(username, now - banTimeSeconds - findTimeSeconds, page)
    return decideBan(attempts, now, this.config, attempts.length >= page)
  }

  async record(attempt: AuthenticationAttempt): Promise<void> {
    await this.store.recordAuthenticationAttempt(attempt)
  }

  private readonly gates = new Map<string, Gate>()
  private readonly locks = new Map<string, Promise<unknown>>()

  /**
   * The ban check and the credential check must not race: with a plain `banState` before each
   * check, twenty parallel guesses all see "not banned" and all get verified (docs/security.md B1).
   * A slot is granted only while failures counted toward a ban plus checks still in flight stay
   * below max_retries; other callers wait for a slot to finish and decide again, so at most
   * max_retries credentials are ever checked before the ban applies. Deciding and finishing run
   * one at a time per user, so a decision always sees every finished attempt. Successes reset
   * the count, so a user's own parallel sign-ins still run max_retries at a time; with
   * regulation disabled nothing is gated.
   */
  async acquire(username: string, now: number): Promise<AttemptSlot> {
    if (!this.enabled) {
      return { ban: { banned: false }, finish: async (attempt) => (attempt ? this.record(attempt) : undefined) }
    }
    for (;;) {
      const decision = await this.exclusive(username, async () => {
        const ban = await this.banState(username, now)
        if (ban.banned) return { ban }
        const gate = this.gate(username)
        const failures = await this.countedFailures(username, now)
        // With nothing in flight the ban decision above is the whole answer (and nobody would
        // wake a waiter), so the first caller always proceeds.
        if (gate.inFlight === 0 || failures + gate.inFlight < this.config.maxRetries) {
          gate.inFlight++
          return { ban, reserved: true }
        }
        return { ban, wait: new Promise<void>((resolve) => gate.wake.push(resolve)) }
      })
      if ('wait' in decision && decision.wait) {
        await decision.wait
        continue
      }
      if (!('reserved' in decision)) return { ban: decision.ban, finish: async (attempt) => (attempt ? this.record(attempt) : undefined) }
      let finished = false
      return {
        ban: decision.ban,
        finish: (attempt) => {
          if (finished) return Promise.resolve()
          finished = true
          return this.exclusive(username, async () => {
            try {
              if (attempt) await this.record(attempt)
            } finally {
              const gate = this.gate(username)
              gate.inFlight--
              for (const wake of gate.wake.splice(0)) wake()
              if (gate.inFlight <= 0) this.gates.delete(username)
            }
          })
        },
      }
    }
  }

  /** Failures that a failure now would join: newest first, until a success, within find_time. */
  private async countedFailures(username: string, now: number): Promise<number> {
    const { maxRetries, findTimeSeconds } = this.config
    const attempts = await this.store.listAuthenticationAttempts(username, now - findTimeSeconds, maxRetries + ATTEMPT_SLACK)
    let n = 0
    for (const a of attempts) {
      if (a.successful) break
      // decideBan: failures ban when they span less than find_time, so only strictly newer ones join.
      if (!a.banned && now - a.time < findTimeSeconds) n++
    }
    return n
  }

  private gate(username: string): Gate {
    let g = this.gates.get(username)
    if (!g) this.gates.set(username, (g = { inFlight: 0, wake: [] }))
    return g
  }

  /** Runs `fn` after every earlier `exclusive` call for the same user has settled. */
  private exclusive<T>(username: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(username) ?? Promise.resolve()
    const run = previous.then(fn, fn)
    const tail = run.catch(() => undefined)
    this.locks.set(username, tail)
    void tail.then(() => {
      if (this.locks.get(username) === tail) this.locks.delete(username)
    })
    return run
  }
}

/** The pure decision, newest attempt first. Exported for unit tests. */
export function decideBan(attemptsNewestFirst: AuthenticationAttempt[], now: number, config: RegulationConfig, pageFull = false): BanState {
  const { maxRetries, findTimeSeconds, banTimeSeconds } = config
  if (maxRetries <= 0) return { banned: false }
  const failures: AuthenticationAttempt[] = []
  for (const a of attemptsNewestFirst) {
    if (a.successful) break
    if (a.banned) continue
    failures.push(a)
    if (failures.length === maxRetries) break
  }
  if (failures.length < maxRetries) {
    if (pageFull && attemptsNewestFirst[0]) return { banned: true, until: attemptsNewestFirst[0].time + banTimeSeconds }
    return { banned: false }
  }
  const newest = failures[0]!.time
  const oldest = failures[maxRetries - 1]!.time
  // docs/authelia-compat.md §1.7: banned when the failures span less than find_time.
  if (newest - oldest >= findTimeSeconds) return { banned: false }
  const until = newest + banTimeSeconds
  return until > now ? { banned: true, until } : { banned: false }
}

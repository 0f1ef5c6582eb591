import type { RegulationConfig } from '../config/schema.js'
import type { AuthenticationAttempt, RegulationStore, RegulationSubject } from '../storage/storage.js'

export type BanState = { banned: false } | { banned: true; until: number }

/** Who is trying: the canonical username and the client address (request.ip, docs/security.md B3). */
export interface Attempter {
  username: string
  remoteIp: string
}

/**
 * A reserved right to check one credential (see Regulator.acquire). `ban` is the state seen when
 * it was granted; when banned nothing is reserved. `finish` records the attempt (if any) and frees
 * the slot; call it exactly once, also on failure paths (later calls do nothing).
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
 * docs/security.md B6: attempts refused because of a ban cost no password hash, so nothing else bounds
 * how fast one client can have them written. Past this many in a minute from one address they are
 * answered the same but no longer recorded: they never count toward a ban, so regulation loses
 * nothing; the first ones of each minute stay for the audit.
 */
export const REFUSED_ATTEMPTS_RECORDED_PER_MINUTE = 10

/**
 * docs/security.md B6: how long the authentication log keeps an attempt (Authelia has no setting for
 * it). Longer when find_time + ban_time is longer, since a ban is read back from the log.
 */
export const AUTHENTICATION_LOG_RETENTION_SECONDS = 7 * 24 * 3600

/** Pruning runs at most once a minute of clock time, a bounded batch per recorded attempt. */
const PRUNE_INTERVAL_SECONDS = 60
const PRUNE_BATCH = 500

/**
 * Brute-force regulation (docs/security.md B1, Authelia `regulation`, 4.39 semantics): when the newest
 * `max_retries` counted failures of a subject fall within `find_time`, the subject is banned until
 * the newest of them + `ban_time`. Subjects are the canonical user (mode `user`, the default;
 * Authelia CVE-2025-24806) and the client address (mode `ip`). Only failures ban: successes are
 * never counted, a success forgives earlier failures of its own factor only (a password success
 * does not forgive wrong codes), and attempts refused because of a ban neither count nor extend it.
 * Unlike Authelia, failures of the second factor count too (docs/security.md B1). The ban is read back
 * from the authentication log in storage, so several instances on one database agree (H1).
 */
export class Regulator {
  private readonly gates = new Map<string, Gate>()
  private lock: Promise<unknown> = Promise.resolve()
  private nextPruneAt = 0

  constructor(
    private readonly config: RegulationConfig,
    private readonly store: RegulationStore,
  ) {}

  get enabled(): boolean {
    return this.config.maxRetries > 0
  }

  /** The ban in force for this attempter; when both a user and an address ban apply, the later end. */
  async banState(who: Attempter, now: number): Promise<BanState> {
    const { maxRetries, findTimeSeconds, banTimeSeconds } = this.config
    if (maxRetries <= 0) return { banned: false }
    let state: BanState = { banned: false }
    for (const subject of this.subjects(who)) {
      // A ban ends ban_time after its newest failure, whose oldest is at most find_time earlier.
      const failures = await this.store.listCountedFailures(subject, now - banTimeSeconds - findTimeSeconds, maxRetries)
      const ban = decideBan(failures, now, this.config)
      if (ban.banned && (!state.banned || ban.until > state.until)) state = ban
    }
    return state
  }

  /**
   * Records an attempt. A refused one past the per-address budget is dropped (it counts for
   * nothing); every call may prune a batch of attempts older than regulation and the audit need.
   */
  async record(attempt: AuthenticationAttempt): Promise<void> {
    if (attempt.banned && (await this.store.countRefusedAttempts(attempt.remoteIp, attempt.time - 59)) >= REFUSED_ATTEMPTS_RECORDED_PER_MINUTE) return
    await this.store.recordAuthenticationAttempt(attempt)
    await this.prune(attempt.time)
  }

  /**
   * The ban check and the credential check must not race: with a plain `banState` before each
   * check, twenty parallel guesses all see "not banned" and all get verified (docs/security.md B1).
   * A slot is granted only while, for every subject, the failures counted toward a ban plus the
   * checks still in flight stay below max_retries; other callers wait for a slot to finish and
   * decide again, so at most max_retries credentials of a subject are checked before its ban
   * applies. Decisions and finishes run one at a time (each is a few indexed reads), so a
   * decision always sees every finished attempt. With regulation disabled nothing is gated.
   */
  async acquire(who: Attempter, now: number): Promise<AttemptSlot> {
    if (!this.enabled) return { ban: { banned: false }, finish: async (attempt) => (attempt ? this.record(attempt) : undefined) }
    const keys = this.subjects(who).map(subjectKey)
    for (;;) {
      const decision = await this.exclusive(async () => {
        const ban = await this.banState(who, now)
        if (ban.banned) return { ban }
        for (const subject of this.subjects(who)) {
          const gate = this.gates.get(subjectKey(subject))
          // With nothing in flight the ban decision above is the whole answer (and nobody would
          // wake a waiter), so the first caller always proceeds.
          if (gate && gate.inFlight > 0 && (await this.recentFailures(subject, now)) + gate.inFlight >= this.config.maxRetries) {
            return { ban, wait: new Promise<void>((resolve) => gate.wake.push(resolve)) }
          }
        }
        for (const k of keys) this.gate(k).inFlight++
        return { ban, reserved: true as const }
      })
      if ('wait' in decision) {
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
          return this.exclusive(async () => {
            try {
              if (attempt) await this.record(attempt)
            } finally {
              for (const k of keys) this.release(k)
            }
          })
        },
      }
    }
  }

  private subjects(who: Attempter): RegulationSubject[] {
    const out: RegulationSubject[] = []
    if (this.config.modes.includes('ip')) out.push({ kind: 'ip', remoteIp: who.remoteIp })
    if (this.config.modes.includes('user')) out.push({ kind: 'user', username: who.username })
    return out
  }

  /** Failures that a failure now would join (decideBan: only strictly newer than find_time ago). */
  private async recentFailures(subject: RegulationSubject, now: number): Promise<number> {
    const { maxRetries, findTimeSeconds } = this.config
    const failures = await this.store.listCountedFailures(subject, now - findTimeSeconds + 1, maxRetries)
    return failures.length
  }

  private async prune(now: number): Promise<void> {
    if (now < this.nextPruneAt) return
    const { findTimeSeconds, banTimeSeconds } = this.config
    const keep = Math.max(AUTHENTICATION_LOG_RETENTION_SECONDS, findTimeSeconds + banTimeSeconds)
    const deleted = await this.store.pruneAuthenticationAttempts(now - keep, PRUNE_BATCH)
    // A full batch means more is waiting: the next attempt takes the next batch.
    this.nextPruneAt = deleted < PRUNE_BATCH ? now + PRUNE_INTERVAL_SECONDS : 0
  }

  private gate(key: string): Gate {
    let g = this.gates.get(key)
    if (!g) this.gates.set(key, (g = { inFlight: 0, wake: [] }))
    return g
  }

  private release(key: string): void {
    const gate = this.gate(key)
    gate.inFlight--
    for (const wake of gate.wake.splice(0)) wake()
    if (gate.inFlight <= 0) this.gates.delete(key)
  }

  /** Runs `fn` after every earlier `exclusive` call has settled. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn)
    this.lock = run.catch(() => undefined)
    return run
  }
}

function subjectKey(s: RegulationSubject): string {
  return s.kind === 'user' ? `user:${s.username}` : `ip:${s.remoteIp}`
}

/**
 * The pure decision over a subject's counted failures (RegulationStore.listCountedFailures),
 * newest first: banned when the newest `max_retries` span less than find_time (docs/authelia-compat.md §1.7), until
 * the newest + ban_time. Exported for unit tests.
 */
export function decideBan(failuresNewestFirst: AuthenticationAttempt[], now: number, config: RegulationConfig): BanState {
  const { maxRetries, findTimeSeconds, banTimeSeconds } = config
  if (maxRetries <= 0) return { banned: false }
  const failures = failuresNewestFirst.filter((a) => !a.successful && !a.banned).slice(0, maxRetries)
  if (failures.length < maxRetries) return { banned: false }
  const newest = failures[0]!.time
  const oldest = failures[maxRetries - 1]!.time
  if (newest - oldest >= findTimeSeconds) return { banned: false }
  const until = newest + banTimeSeconds
  return until > now ? { banned: true, until } : { banned: false }
}

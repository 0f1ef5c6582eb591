import type { RegulationConfig } from '../config/schema.js'
import type { AuthenticationAttempt, RegulationStore } from '../storage/storage.js'

export type BanState = { banned: false } | { banned: true; until: number }

/**
 * How many attempts one check reads beyond max_retries. Banned attempts (recorded while a ban
 * runs) are skipped when counting, so a flood of them could push the real failures out of the
 * page; when the page is full without a decision the user is treated as still banned (fails
 * closed). Kept small: this runs on every sign-in and every TOTP check, also under attack.
 */
const ATTEMPT_SLACK = 20

/**
 * Brute-force regulation (security.md B1, Authelia `regulation`): `maxRetries` failures of any
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
  // compat §1.7: banned when the failures span less than find_time.
  if (newest - oldest >= findTimeSeconds) return { banned: false }
  const until = newest + banTimeSeconds
  return until > now ? { banned: true, until } : { banned: false }
}

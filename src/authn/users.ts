/** A user as the users file describes them, after parsing. Disabled users are never returned. */
export interface User {
  /** The username exactly as keyed in the users file. */
  username: string
  displayName: string
  /** First is the primary address (`email` claim); the rest become `alt_emails`. */
  emails: string[]
  groups: string[]
  /**
   * Changes whenever the user's password digest changes (a truncated SHA-256 of it, so it reveals
   * nothing usable). Grants remember it: a refresh after a password change is refused.
   */
  credentialFingerprint: string
}

export type FirstFactorResult =
  | { ok: true; user: User }
  /**
   * The reason is for the log only; every failure looks the same on the wire (docs/security.md B2).
   * `busy`: refused unchecked because password hashing is at its bound (docs/security.md B5).
   */
  | { ok: false; reason: 'unknown_user' | 'wrong_password' | 'disabled' | 'too_long' | 'busy' }

/**
 * An authentication backend: the users file (users-file.ts) or an LDAP directory (users-ldap.ts).
 * Lookups are async because a directory answers over the network; the file answers at once.
 * A backend that cannot reach its directory rejects with an error whose `code` is `UNAVAILABLE`
 * (answered 503, docs/high-availability.md), never with a wrong "unknown user".
 */
export interface UserProvider {
  /**
   * Looks a user up by login (a username, or an email where the backend allows it). Disabled and
   * unknown users are `undefined`. A directory backend may answer from details read within
   * `authentication_backend.refresh_interval`.
   */
  findUser(login: string): Promise<User | undefined>
  /**
   * Verifies a password; an unknown user costs the same as a wrong password. Hash work is bounded:
   * beyond the bound the answer is `busy` at once, without hashing.
   */
  checkPassword(login: string, password: string): Promise<FirstFactorResult>
  /**
   * Password reset: stores a new password for the user (already checked against the policy). Absent
   * when the backend cannot change passwords.
   */
  changePassword?(username: string, password: string): Promise<void>
  /** Why changePassword cannot work here (e.g. the file or its folder is read-only), or undefined. */
  passwordChangeProblem?(): string | undefined
  /** The key a login that names nobody is counted under by regulation (case-folded where logins are case-insensitive). */
  normalizeLogin(login: string): string
  /** Present for remote backends: true when the directory answers (health, end of an outage). */
  ping?(): Promise<boolean>
  /** Stops watching the file / closes the directory connections. */
  close(): void | Promise<void>
}

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

/** The authentication backend (the users file now; LDAP could implement it later). */
export interface UserProvider {
  /** Looks a user up by username (or email when `search.email`), honouring `search.case_insensitive`. */
  findUser(login: string): User | undefined
  /**
   * Verifies a password; an unknown user costs the same as a wrong password. Hash work is bounded:
   * beyond the bound the answer is `busy` at once, without hashing.
   */
  checkPassword(login: string, password: string): Promise<FirstFactorResult>
  /** Stops watching the file. */
  close(): void
}

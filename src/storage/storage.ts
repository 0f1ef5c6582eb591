/**
 * The storage contract. Every domain talks to durable state only through these interfaces; SQLite
 * implements them now (storage/sqlite/), PostgreSQL later. Rules for every implementation:
 * - Times are Unix seconds supplied by the caller's Clock; storage never reads the clock.
 * - `find*` resolves `undefined` when absent; a rejection is a real failure.
 * - A record with `expiresAt` is valid while `now < expiresAt`; at `now === expiresAt` it is expired.
 * - Each method is atomic on its own; no transaction handles cross this line.
 * - Codes and tokens arrive already hashed (SHA-256, hex); TOTP secrets are encrypted by the
 *   implementation with AES-256-GCM under a key derived from `storage.encryption_key`, bound to
 *   the username, so a database dump holds no secret in clear.
 */

export type AuthenticationLevel = 0 | 1 | 2

// ---------------------------------------------------------------- subjects

export interface SubjectStore {
  /**
   * The opaque `sub` for (sector, username). Creates it from `candidate` (a fresh UUIDv4) on first
   * use; later calls return the stored value, so it stays stable across restarts.
   */
  ensureSubjectIdentifier(sectorIdentifier: string, username: string, candidate: string): Promise<string>
  /** Reverse lookup, for tokens that only carry the subject. */
  findUsernameBySubject(subject: string): Promise<{ username: string; sectorIdentifier: string } | undefined>
  listSubjectIdentifiers(): Promise<Array<{ sectorIdentifier: string; username: string; subject: string }>>
}

// ---------------------------------------------------------------- TOTP

export interface TotpConfiguration {
  username: string
  issuer: string
  algorithm: 'SHA1' | 'SHA256' | 'SHA512'
  digits: 6 | 8
  periodSeconds: number
  /** Raw secret bytes (decrypted). */
  secret: Buffer
  createdAt: number
  lastUsedAt?: number
}

export interface TotpStore {
  /** Replaces any previous configuration of this user (and forgets its used steps). */
  saveTotpConfiguration(config: TotpConfiguration): Promise<void>
  findTotpConfiguration(username: string): Promise<TotpConfiguration | undefined>
  /** Resolves true if a configuration was deleted. */
  deleteTotpConfiguration(username: string): Promise<boolean>
  /**
   * Records that `step` (time step counter) was accepted for this user. Resolves false, and records
   * nothing, when this step or a later one was already accepted (RFC 6238 §5.2): atomic, so two
   * parallel submissions of one code cannot both win.
   */
  recordTotpUse(username: string, step: number, now: number): Promise<boolean>
  /**
   * A device being registered: it counts for nothing (no sign-in, no `has_totp`) and replaces
   * nothing until a code from it is confirmed. Replaces this user's previous pending one.
   */
  savePendingTotpConfiguration(config: PendingTotpConfiguration): Promise<void>
  /** The user's pending device while `now < expiresAt`. */
  findPendingTotpConfiguration(username: string, now: number): Promise<PendingTotpConfiguration | undefined>
  deletePendingTotpConfiguration(username: string): Promise<void>
  /**
   * In one atomic step: the pending device `id` becomes the user's configuration (replacing any,
   * `createdAt` and `lastUsedAt` set to `now`), `step` is its first accepted step, and the pending
   * row is gone. False, changing nothing, when that pending device is unknown, replaced or expired.
   */
  confirmPendingTotpConfiguration(username: string, id: string, step: number, now: number): Promise<boolean>
}

export interface PendingTotpConfiguration extends TotpConfiguration {
  /** Random; names this registration, so a newer one started meanwhile is not confirmed by mistake. */
  id: string
  /** SHA-256 (hex) of the session that registered it: only that session confirms it (security.md V1). */
  sessionHash: string
  expiresAt: number
}

// ---------------------------------------------------------------- regulation

export interface AuthenticationAttempt {
  time: number
  successful: boolean
  /** True when the attempt was refused because the user was banned (not counted as a failure). */
  banned: boolean
  /** Canonical (lower-cased where configured) username. */
  username: string
  type: '1fa' | 'totp' | 'webauthn'
  remoteIp: string
  requestUri?: string
  requestMethod?: string
}

/** Whom a ban is about: a user, or a client address (Authelia 4.39 `regulation.modes`). */
export type RegulationSubject = { kind: 'user'; username: string } | { kind: 'ip'; remoteIp: string }

export interface RegulationStore {
  recordAuthenticationAttempt(attempt: AuthenticationAttempt): Promise<void>
  /** The user's attempts of every kind (the audit view): newest first, at most `limit`, with `time >= since`. */
  listAuthenticationAttempts(username: string, since: number, limit: number): Promise<AuthenticationAttempt[]>
  /**
   * The failures that still count toward a ban of `subject` (docs/security.md B1): not refused by a
   * ban, with `time >= since`, and recorded after the subject's latest success of the same type
   * (a password success does not forgive wrong codes). Newest first (time, then recording order),
   * at most `limit`.
   */
  listCountedFailures(subject: RegulationSubject, since: number, limit: number): Promise<AuthenticationAttempt[]>
  /** How many attempts refused because of a ban were recorded from `remoteIp` with `time >= since`. */
  countRefusedAttempts(remoteIp: string, since: number): Promise<number>
  /** Deletes up to `limit` attempts with `time < before`, oldest first; resolves how many went. */
  pruneAuthenticationAttempts(before: number, limit: number): Promise<number>
}

// ---------------------------------------------------------------- sessions

export interface SessionData {
  username?: string
  displayName?: string
  email?: string
  groups?: string[]
  level: AuthenticationLevel
  /** Unix seconds of each factor, for auth_time, amr and max_age. */
  firstFactorAt?: number
  secondFactorAt?: number
  /** RFC 8176 values earned in this session, e.g. ['pwd','otp','mfa']. */
  amr: string[]
  /**
   * The user's credential fingerprint at sign-in (User.credentialFingerprint): once the password in
   * the users file changes, the session ends. Absent in sessions made before it was recorded.
   */
  credentialFingerprint?: string
  rememberMe: boolean
  /** Per-session anti-CSRF token for the HTML forms. */
  csrfToken: string
  /**
   * The session's logout id (OIDC `sid`): random, made at the first factor and kept when the cookie
   * id rotates at the second, so relying parties and logout tokens name one session with one value.
   * Unrelated to the cookie value. Absent in sessions made before logout support (then made on use).
   */
  sid?: string
  createdAt: number
  lastActivityAt: number
  /** Short-lived state (e.g. an identity-verification token id, pending OIDC flow ids). */
  extra?: Record<string, unknown>
}

/**
 * Kept apart from Storage so Redis (session/redis-store.ts, `session.redis`) can replace just this.
 * A store that cannot reach its server rejects with StorageUnavailableError, promptly.
 */
export interface SessionStore {
  /**
   * `id` may be the raw cookie value: implementations store only its SHA-256, so a dump holds no
   * usable cookie. (Hashing it first as well is harmless.)
   */
  findSession(id: string, now: number): Promise<SessionData | undefined>
  /**
   * Creates or replaces; the record is gone (findSession → undefined) from `expiresAt` on. `now`
   * lets a store that expires records by itself (Redis TTL) count the remaining seconds. For a new id only.
   */
  saveSession(id: string, data: SessionData, expiresAt: number, now: number): Promise<void>
  /**
   * Replaces the session only while it still exists and is unexpired at `now`, in one atomic step;
   * false when it is gone. Every write to a session loaded earlier goes through here, so a session
   * ended by any instance (sign-out, rotation, expiry) is never written back to life by another
   * that read it before the end (docs/security.md H1).
   */
  updateSession(id: string, data: SessionData, expiresAt: number, now: number): Promise<boolean>
  destroySession(id: string): Promise<void>
  /**
   * Ends every session signed in as `username` (exact match), whatever its state; resolves how many
   * went. A scan of the store (password reset only, docs/security.md G5): no index is kept for it.
   */
  destroyUserSessions(username: string): Promise<number>
  /** Housekeeping; resolves the number removed (0 from a store whose records expire by themselves). */
  deleteExpiredSessions(now: number): Promise<number>
}

/** A session store apart from Storage (Redis), with a connection of its own to watch and close. */
export interface ConnectedSessionStore extends SessionStore {
  /** True when the server answers within the timeout; never rejects (for /api/health). */
  ping(): Promise<boolean>
  close(): Promise<void>
}

// ---------------------------------------------------------------- identity verification

export interface IdentityVerification {
  /** The `jti` of the link token, when a link was sent; a random id in any case. */
  id: string
  username: string
  action: string
  issuedAt: number
  expiresAt: number
  consumedAt?: number
  remoteIp: string
  /** SHA-256 (hex) of the session that asked for it: only that session may use it (security.md V1). */
  sessionHash?: string
  /** SHA-256 (hex) of the one-time code sent with it. */
  codeHash?: string
  /** Wrong codes typed against it so far (absent: 0). */
  failedAttempts?: number
}

/** How many verifications may be started within `windowSeconds` before the new one's `issuedAt`. */
export interface IdentityVerificationLimits {
  windowSeconds: number
  maxPerUser: number
  /** Counted on `sessionHash`; a record without one counts only for its user. */
  maxPerSession: number
}

export type StartVerificationResult = { kind: 'ok' } | { kind: 'limited'; scope: 'user' | 'session'; retryAt: number }

export type ConsumeCodeResult =
  | { kind: 'ok'; record: IdentityVerification }
  /** No live code of this session matched; each live one counted a failure (spent at `maxAttempts`). */
  | { kind: 'wrong' }
  /** This session has no live (unconsumed, unexpired, not exhausted) code for this user and action. */
  | { kind: 'missing' }

export interface IdentityVerificationStore {
  saveIdentityVerification(record: IdentityVerification): Promise<void>
  /**
   * Saves `record` unless the limits are reached, in one atomic step (parallel starts cannot all
   * pass the count). `retryAt`: when the oldest counted start leaves the window.
   */
  startIdentityVerification(record: IdentityVerification, limits: IdentityVerificationLimits): Promise<StartVerificationResult>
  /** The record in any state (consumed, expired) until housekeeping removes it. */
  findIdentityVerification(id: string): Promise<IdentityVerification | undefined>
  /**
   * Consumes the live code of (sessionHash, username, action) whose hash is `codeHash`, in one
   * atomic step. Otherwise each live code of that session counts a wrong attempt and is spent
   * once it has `maxAttempts` of them. Codes of other sessions are never looked at.
   */
  consumeIdentityVerificationCode(p: { sessionHash: string; username: string; action: string; codeHash: string; now: number; maxAttempts: number }): Promise<ConsumeCodeResult>
  /**
   * Marks it consumed in one atomic step. 'consumed' when it was already used, 'expired' when past
   * `expiresAt`, 'missing' when unknown.
   */
  consumeIdentityVerification(id: string, now: number): Promise<
    { kind: 'ok'; record: IdentityVerification } | { kind: 'consumed' } | { kind: 'expired' } | { kind: 'missing' }
  >
}

// ---------------------------------------------------------------- OIDC: consent

export interface ConsentSession {
  /** UUID shown to the portal as `consent_id` / `workflow_id`. */
  id: string
  clientId: string
  subject: string
  username: string
  /** The session this flow belongs to (docs/security.md O2): another session may not use it. */
  sessionId: string
  requestedScopes: string[]
  requestedAudience: string[]
  /** The original authorization request parameters, to resume after sign-in or consent. */
  form: Record<string, string>
  createdAt: number
  expiresAt: number
  respondedAt?: number
  granted?: boolean
  grantedScopes?: string[]
  grantedAudience?: string[]
  /** True once an authorization code was issued from it: a consent session grants once. */
  used: boolean
}

export interface PreConfiguredConsent {
  subject: string
  clientId: string
  scopes: string[]
  audience: string[]
  createdAt: number
  expiresAt: number
}

export interface ConsentStore {
  saveConsentSession(session: ConsentSession): Promise<void>
  findConsentSession(id: string): Promise<ConsentSession | undefined>
  /** Records the user's answer; resolves false when already answered, unknown, or expired. */
  answerConsentSession(id: string, granted: boolean, scopes: string[], audience: string[], now: number): Promise<boolean>
  /** Marks it used in one atomic step; false when it was already used (a consent grants once). */
  markConsentSessionUsed(id: string): Promise<boolean>
  savePreConfiguredConsent(consent: PreConfiguredConsent): Promise<void>
  /** An unexpired remembered consent with exactly these scopes and audience (order-insensitive). */
  findPreConfiguredConsent(subject: string, clientId: string, scopes: string[], audience: string[], now: number): Promise<PreConfiguredConsent | undefined>
}

// ---------------------------------------------------------------- OIDC: codes and tokens

/** What a grant (one authorization) carries to every artifact issued from it. */
export interface GrantContext {
  /** Ties a code and every token issued from it, for revocation. */
  grantId: string
  clientId: string
  /** Empty for client_credentials. */
  username: string
  subject: string
  scopes: string[]
  audience: string[]
  /** Unix seconds of the authentication the grant rests on. */
  authTime: number
  amr: string[]
  nonce?: string
  /** When the authorization was requested (Authelia's `rat`). */
  requestedAt: number
  /**
   * The Latchkey session's logout id (SessionData.sid), the `sid` claim of ID tokens of this grant.
   * Grants made before logout support hold a 64-hex hash here instead, which is never sent as `sid`.
   */
  sessionId?: string
  /**
   * The user's credential fingerprint when the grant was made (User.credentialFingerprint): a
   * refresh after the password changed is refused (docs/security.md T3). Absent for client_credentials.
   */
  credentialFingerprint?: string
}

export interface AuthorizationCodeRecord extends GrantContext {
  codeHash: string
  redirectUri: string
  /** True when redirect_uri was sent in the authorization request (RFC 6749 §4.1.3). */
  redirectUriSent: boolean
  codeChallenge?: string
  codeChallengeMethod?: 'S256' | 'plain'
  issuedAt: number
  expiresAt: number
}

export type ConsumeResult<T> =
  | { kind: 'ok'; record: T }
  /** Already used: the caller revokes `grantId` (RFC 6749 §4.1.2, §10.4). */
  | { kind: 'replayed'; grantId: string }
  /** Unknown, expired, revoked, or issued to another client. */
  | { kind: 'missing' }
  /** The caller's `accept` check said no: nothing was consumed. */
  | { kind: 'refused'; record: T }

export interface TokenRecord extends GrantContext {
  tokenHash: string
  kind: 'access' | 'refresh'
  issuedAt: number
  expiresAt: number
  /** Hash of the refresh token this one replaced (refresh rotation), if any. */
  parentHash?: string
}

/** redeemAuthorizationCode's outcome: only 'ok' consumed the code and saved the tokens. */
export type RedeemResult =
  | { kind: 'ok' }
  /** Already used: the caller revokes `grantId` (RFC 6749 §4.1.2, §10.4). */
  | { kind: 'replayed'; grantId: string }
  /** Unknown, expired, revoked, or of another grant or client. */
  | { kind: 'missing' }

/** The consumed code or refresh token that a set of tokens is issued from. */
export interface TokenParent {
  kind: 'code' | 'refresh'
  /** `codeHash` of the code, or `tokenHash` of the refresh token. */
  hash: string
}

export interface OidcStore {
  saveAuthorizationCode(code: AuthorizationCodeRecord): Promise<void>
  /**
   * Marks the client's code used in one atomic step (UPDATE … WHERE consumed = 0, changes === 1).
   * A second call for the same hash reports 'replayed'; a code of another client or past
   * `expiresAt` reports 'missing' and stays unconsumed.
   * `accept`, when given, sees the live code inside the same atomic step, before it is consumed;
   * false reports 'refused' and leaves the code usable (a wrong redirect_uri or PKCE verifier from
   * whoever intercepted the code must not spend the rightful client's sign-in). Synchronous.
   */
  consumeAuthorizationCode(
    codeHash: string,
    clientId: string,
    now: number,
    accept?: (code: AuthorizationCodeRecord) => boolean,
  ): Promise<ConsumeResult<AuthorizationCodeRecord>>
  /**
   * The token endpoint's one step for a code whose record the caller already holds (a sealed code,
   * oidc/code-seal.ts, so no read comes first): consumes the live code `codeHash` of the tokens'
   * grant and client and saves `tokens` in one atomic step, or does neither.
   * - `tokens`: at least one, all of one grant and one client (else the call rejects).
   * - 'ok' only while the code row exists for that grant and client, unconsumed, unrevoked and
   *   before `expiresAt`; of N parallel calls from any number of instances exactly one is 'ok'.
   * - 'replayed' when the code was already consumed (the caller revokes the grant), 'missing'
   *   otherwise; in both cases nothing is saved.
   * - Ordered against `revokeGrant` like consumeAuthorizationCode + saveIssuedTokens: a revocation
   *   that comes first leaves the code revoked ('missing'); one that comes after revokes the
   *   tokens saved here (docs/security.md C1, C2).
   * On PostgreSQL one statement: the guarded UPDATE of the code and the INSERT of the tokens.
   */
  redeemAuthorizationCode(codeHash: string, tokens: TokenRecord[], now: number): Promise<RedeemResult>
  /** Saves a token issued from no parent (client_credentials, the implicit flow). */
  saveToken(token: TokenRecord): Promise<void>
  /**
   * Saves the tokens issued from a code or refresh token that the caller just consumed (the
   * `parent`), in one atomic step that cannot interleave with `revokeGrant` of the same grant
   * (docs/security.md C1, T1). A replay of the parent revokes the grant while the winner is still
   * issuing; without this step the winner's tokens, saved after that revocation, would stay live.
   * - Every token in `tokens` carries the parent's `grantId` (one grant; at least one token; else
   *   the call rejects).
   * - Resolves false, saving and changing nothing, unless the parent row of that grant (an
   *   authorization code by `code_hash`, or a refresh token by `token_hash` with kind 'refresh')
   *   still exists, is consumed, and is not revoked. `revokeGrant` marks every code and token of
   *   the grant revoked, the consumed parent included, so its `revoked` flag is the tombstone
   *   telling the winner that a replay (or a revocation) came first. The caller then answers
   *   `invalid_grant`: the tokens it would hand out are dead.
   * - Refresh rotation (`parent.kind === 'refresh'`): every token of the grant stored before this
   *   step (the previous access and refresh tokens) is revoked in the same step, then the new
   *   ones are inserted live. The grant's code is left as it is.
   * - Otherwise inserts every token and resolves true.
   * Both orders are safe: a `revokeGrant` that runs after this step sees the new rows and revokes
   * them. A backend whose transactions run concurrently (PostgreSQL, MySQL) serialises this step
   * and `revokeGrant` of one grant on one per-grant lock taken first in both (PostgreSQL: the
   * transaction advisory lock on `latchkey:grant:<grantId>`; under READ COMMITTED the revocation's
   * UPDATE would otherwise miss rows committed while it runs), and reads the parent's flags with a
   * locking read (`SELECT … FOR UPDATE`) so a `revokeToken` of the parent cannot slip past either.
   * SQLite needs only one IMMEDIATE transaction (one writer at a time).
   */
  saveIssuedTokens(parent: TokenParent, tokens: TokenRecord[]): Promise<boolean>
  /** An unexpired, unrevoked, unconsumed token. */
  findToken(tokenHash: string, now: number): Promise<TokenRecord | undefined>
  /** Refresh rotation: marks the refresh token consumed atomically; reuse reports 'replayed'. */
  consumeRefreshToken(tokenHash: string, clientId: string, now: number): Promise<ConsumeResult<TokenRecord>>
  /** Revokes one token; resolves the record it revoked (any state), or undefined. */
  revokeToken(tokenHash: string): Promise<TokenRecord | undefined>
  /** Revokes the code and every token of the grant; atomic against `saveIssuedTokens` of that grant. */
  revokeGrant(grantId: string): Promise<void>
  /**
   * The grants of a user that still have an unrevoked, unexpired code or token (distinct, any
   * order): what a password reset revokes with `revokeGrant` (docs/security.md G5).
   */
  findLiveGrantIds(username: string, now: number): Promise<string[]>
  /**
   * Housekeeping of expired codes, tokens, consent sessions (and remembered consents, pending TOTP
   * devices, client assertion jtis, pushed authorization requests, logout session-client records, and identity verifications an hour past expiry: they count for rate limits until
   * then); resolves the number removed. A consumed code or refresh token outlives its
   * expiry while its grant has a live token, so a late replay is still caught and revokes the grant.
   */
  deleteExpiredOidcArtifacts(now: number): Promise<number>
}

// ---------------------------------------------------------------- import (latchkey storage import authelia)

export interface SubjectIdentifier {
  sectorIdentifier: string
  username: string
  subject: string
}

/** Records brought over from another provider's database, already in Latchkey's terms. */
export interface ImportBatch {
  subjects: SubjectIdentifier[]
  totpConfigurations: TotpConfiguration[]
  preConfiguredConsents: PreConfiguredConsent[]
  webauthnCredentials: WebauthnCredential[]
  secondFactorPreferences: SecondFactorPreference[]
}

/** The second factor a user chose, as findPreferred2faMethod / savePreferred2faMethod store it. */
export interface SecondFactorPreference {
  username: string
  method: 'totp' | 'webauthn'
}

/**
 * What importing one record does: `add` (absent), `unchanged` (the same record is there already),
 * `replace` (another record holds its place and `force` lets the import overwrite it), `conflict`
 * (another record holds its place and stays).
 */
export type ImportAction = 'add' | 'unchanged' | 'replace' | 'conflict'

/** One action per record of the batch, in the batch's order. */
export interface ImportPlan {
  subjects: ImportAction[]
  totpConfigurations: ImportAction[]
  preConfiguredConsents: ImportAction[]
  webauthnCredentials: ImportAction[]
  secondFactorPreferences: ImportAction[]
  /** True when the plan was written: `apply` was asked and no record is a `conflict`. */
  applied: boolean
}

export interface ImportStore {
  /**
   * Plans and (with `apply`) writes a whole import in one transaction: all of it or nothing.
   * - A subject is `unchanged` when (sector, username) already has that subject; `conflict` when it
   *   has another (`replace` with `force`), or when the subject belongs to another (sector, username)
   *   (never replaced: a `sub` names one user).
   * - A TOTP configuration is `unchanged` when the user's device has the same issuer, algorithm,
   *   digits, period and secret; else `conflict` (`replace` with `force`, which also forgets the
   *   accepted steps, like saveTotpConfiguration).
   * - A pre-configured consent is `unchanged` when one with the same subject, client, scopes and
   *   audience exists (any expiry), else `add`.
   * - A WebAuthn credential is `unchanged` when a credential with its id, user and public key is
   *   stored (its sign count, use and clone flag stay as Latchkey has them); `conflict` when its id
   *   is stored with another public key, or the user has another credential with its description
   *   (`replace` with `force`: that credential goes, the imported one takes its place); a
   *   `conflict` whatever `force` says when its id belongs to another user.
   * - A second-factor preference is `unchanged` when the user already prefers that method;
   *   `conflict` when they prefer another (`replace` with `force`).
   * Records are planned in order, each against the state the earlier ones leave. When any record
   * is a `conflict`, or `apply` is false (a dry run), nothing is written.
   */
  importRecords(batch: ImportBatch, options: { force: boolean; apply: boolean }): Promise<ImportPlan>
}

// ---------------------------------------------------------------- OIDC: client assertions and pushed requests

/** A pushed authorization request (RFC 9126), stored under the SHA-256 (hex) of its request_uri. */
export interface PushedAuthorizationRequest {
  requestHash: string
  clientId: string
  /** The authorization request parameters as pushed (each sent once). */
  form: Record<string, string>
  createdAt: number
  expiresAt: number
}

export interface ClientAssertionStore {
  /**
   * Records that `clientId` used the assertion `jti` (RFC 7523 §3), live until `expiresAt`. Resolves
   * false, recording nothing, when the same (client, jti) is already recorded and still live at
   * `now`: one atomic insert-or-fail on a unique key, so of parallel uses on any number of instances
   * exactly one wins. A record past its `expiresAt` no longer counts (it is replaced).
   */
  recordClientAssertionJti(clientId: string, jti: string, expiresAt: number, now: number): Promise<boolean>
  savePushedAuthorizationRequest(request: PushedAuthorizationRequest): Promise<void>
  /** The client's unconsumed request while `now < expiresAt`; another client's reads as absent. */
  findPushedAuthorizationRequest(requestHash: string, clientId: string, now: number): Promise<PushedAuthorizationRequest | undefined>
  /**
   * Marks the client's live, unconsumed request consumed in one atomic step (guarded UPDATE); true
   * for exactly one caller. Another client's request, an expired or consumed one: false, unchanged.
   */
  consumePushedAuthorizationRequest(requestHash: string, clientId: string, now: number): Promise<boolean>
}

// ---------------------------------------------------------------- WebAuthn, second-factor preference

/** A registered WebAuthn credential (security key or passkey). */
export interface WebauthnCredential {
  /** base64url of the raw credential id; unique across users. */
  credentialId: string
  username: string
  /** Shown to the user; unique per user. */
  description: string
  /** The relying party id it was registered for (a domain). */
  rpId: string
  /** COSE public key (not a secret). */
  publicKey: Buffer
  signCount: number
  transports: string[]
  aaguid: string
  /** Attestation statement format at registration (`none`, `packed`…). */
  attestationType: string
  /** Registered as a discoverable credential (a passkey). */
  discoverable: boolean
  /** The authenticator verified the user (PIN, biometrics) at registration. */
  userVerified: boolean
  backupEligible: boolean
  /** Set once a sign count went back: the credential signs nobody in until it is removed. */
  cloneWarning: boolean
  createdAt: number
  lastUsedAt?: number
}

/** What a WebAuthn challenge was issued for. */
export type WebauthnPurpose = 'register' | 'assert' | 'passkey'

export interface WebauthnChallenge {
  /** SHA-256 (hex) of the base64url challenge. */
  challengeHash: string
  purpose: WebauthnPurpose
  /** SHA-256 (hex) of the session that asked; absent for a passkey sign-in (no session yet). */
  sessionHash?: string
  username?: string
  expiresAt: number
}

export type SaveCredentialResult = 'saved' | 'duplicate_id' | 'duplicate_description'

export interface WebauthnStore {
  /** Adds a credential; nothing changes when its id or (username, description) is taken. */
  saveWebauthnCredential(credential: WebauthnCredential): Promise<SaveCredentialResult>
  /** One user's credentials oldest first; every user's (for export) when `username` is undefined. */
  listWebauthnCredentials(username?: string): Promise<WebauthnCredential[]>
  findWebauthnCredential(credentialId: string): Promise<WebauthnCredential | undefined>
  /**
   * A successful assertion, as one guarded step: the count becomes `newCount` and `lastUsedAt`
   * `now` only while the stored count is still `expectedCount` and no clone warning is set. False,
   * changing nothing, otherwise (a parallel use won, or the credential is flagged or gone).
   */
  recordWebauthnUse(credentialId: string, expectedCount: number, newCount: number, now: number): Promise<boolean>
  /** Flags the credential (its count went back); it stays listed, and refused, until removed. */
  flagWebauthnClone(credentialId: string): Promise<void>
  /** False when the user has no such credential or another of theirs has that description. */
  renameWebauthnCredential(username: string, credentialId: string, description: string): Promise<boolean>
  /** False when the user has no such credential. */
  deleteWebauthnCredential(username: string, credentialId: string): Promise<boolean>
  saveWebauthnChallenge(challenge: WebauthnChallenge): Promise<void>
  /**
   * Spends a challenge in one atomic step (a DELETE): resolves it while `now < expiresAt` and its
   * purpose matches; a second call, a parallel one included, resolves undefined.
   */
  consumeWebauthnChallenge(challengeHash: string, purpose: WebauthnPurpose, now: number): Promise<WebauthnChallenge | undefined>
  deleteExpiredWebauthnChallenges(now: number): Promise<number>
  /** The second factor the user chose (`totp`, `webauthn`), if any. */
  findPreferred2faMethod(username: string): Promise<string | undefined>
  savePreferred2faMethod(username: string, method: string): Promise<void>
}

// ---------------------------------------------------------------- the whole

export interface MigrationInfo {
  version: number
  name: string
  appliedAt?: number
}

/**
 * One client's sign-in under one Latchkey session, for OIDC Back- and Front-Channel Logout 1.0.
 * `sid` is the session's logout id (SessionData.sid), not its cookie.
 */
export interface SessionClientRecord {
  sid: string
  clientId: string
  username: string
  /** The `sub` this client knows the user by (pairwise where configured). */
  subject: string
  /** The issuer of the client's ID tokens, which its logout token must name. */
  issuer: string
  createdAt: number
  expiresAt: number
}

export interface LogoutSessionStore {
  /**
   * Records that `clientId` holds a sign-in of session `sid`. A second record for the same pair
   * replaces the first (its subject, username, issuer and expiry), so the table holds one row per pair.
   */
  recordSessionClient(record: SessionClientRecord): Promise<void>
  /**
   * Removes and returns every unexpired client record of `sid`, in one atomic step: of several
   * concurrent calls for the same session (two instances signing it out), each record goes to
   * exactly one caller, so each client is notified once. Expired records are removed, not returned.
   */
  takeSessionClients(sid: string, now: number): Promise<SessionClientRecord[]>
}

export interface Storage
  extends SubjectStore,
    LogoutSessionStore,
    TotpStore,
    WebauthnStore,
    RegulationStore,
    SessionStore,
    IdentityVerificationStore,
    ConsentStore,
    OidcStore,
    ImportStore,
    ClientAssertionStore {
  /** Applied and available migrations, oldest first. */
  listMigrations(): Promise<MigrationInfo[]>
  /** Applies pending migrations up to `target` (default: latest); resolves the versions applied. */
  migrateUp(target?: number): Promise<number[]>
  /** Rolls back down to `target` (exclusive of it: target stays applied); resolves versions reverted. */
  migrateDown(target: number): Promise<number[]>
  /** Cheap liveness probe for /api/health. */
  ping(): Promise<boolean>
  close(): Promise<void>
}

export class StorageError extends Error {
  constructor(
    /** DECRYPT_FAILED: one sealed value (a TOTP secret) failed authentication: altered, or copied from another user. */
    /** NOT_LATCHKEY: the file is another program's database (Authelia's, typically). */
    /** NOT_WRITABLE: this user cannot create or write the database or its folder (the message says who owns what). */
    /** UNAVAILABLE: the server (Redis, a database) does not answer in time or refused; see StorageUnavailableError. */
    readonly code: 'SCHEMA_TOO_NEW' | 'ENCRYPTION_KEY_MISMATCH' | 'MIGRATION_FAILED' | 'OPEN_FAILED' | 'DECRYPT_FAILED' | 'NOT_LATCHKEY' | 'NOT_WRITABLE' | 'UNAVAILABLE',
    message: string,
  ) {
    super(message)
    this.name = 'StorageError'
  }
}

/**
 * A dependency is down or too slow: the request cannot be served now but may succeed later (the
 * client reconnects by itself). The HTTP layer answers 503 / `temporarily_unavailable`, never 500.
 */
export class StorageUnavailableError extends StorageError {
  constructor(
    /** Which dependency: 'redis', 'postgres'... (for the one log line per outage and /api/health). */
    readonly dependency: string,
    /** Why, from the driver (no secrets: addresses and error codes only). */
    readonly reason: string,
  ) {
    super('UNAVAILABLE', `${dependency} is unavailable: ${reason}`)
    this.name = 'StorageUnavailableError'
  }
}

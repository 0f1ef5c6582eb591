import type { ConsentSession, ConsentStore, PreConfiguredConsent } from '../storage.js'
import type { SqliteDatabase } from './database.js'
import { fromJsonList, lazyPrepare, toFlag, toJsonList } from './database.js'

export interface ConsentRow {
  id: string
  client_id: string
  subject: string
  username: string
  session_id: string
  requested_scopes: string
  requested_audience: string
  form: string
  created_at: number
  expires_at: number
  responded_at: number | null
  granted: number | null
  granted_scopes: string | null
  granted_audience: string | null
  used: number
}

export interface PreConfiguredRow {
  subject: string
  client_id: string
  scopes: string
  audience: string
  created_at: number
  expires_at: number
}

/** Sorted and de-duplicated, so "exactly these scopes, any order" is a string equality in SQL. */
export const asSet = (values: readonly string[]): string => toJsonList([...new Set(values)].sort())

export function createConsentStore(db: SqliteDatabase): ConsentStore {
  const insert = lazyPrepare(
    db,
    'INSERT INTO oauth2_consent_session (id, client_id, subject, username, session_id, requested_scopes, requested_audience, form, created_at, expires_at, ' +
      'responded_at, granted, granted_scopes, granted_audience, used) VALUES (@id, @client_id, @subject, @username, @session_id, @requested_scopes, ' +
      '@requested_audience, @form, @created_at, @expires_at, @responded_at, @granted, @granted_scopes, @granted_audience, @used)',
  )
  const find = lazyPrepare(db, 'SELECT * FROM oauth2_consent_session WHERE id = ?')
  const answer = lazyPrepare(
    db,
    'UPDATE oauth2_consent_session SET responded_at = @now, granted = @granted, granted_scopes = @scopes, granted_audience = @audience ' +
      'WHERE id = @id AND responded_at IS NULL AND expires_at > @now',
  )
  const markUsed = lazyPrepare(db, 'UPDATE oauth2_consent_session SET used = 1 WHERE id = ? AND used = 0')
  const upsertPreConfigured = lazyPrepare(
    db,
    'INSERT INTO oauth2_consent_preconfiguration (subject, client_id, scopes, audience, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?) ' +
      'ON CONFLICT (subject, client_id, scopes, audience) DO UPDATE SET created_at = excluded.created_at, expires_at = excluded.expires_at',
  )
  const findPreConfigured = lazyPrepare(
    db,
    'SELECT subject, client_id, scopes, audience, created_at, expires_at FROM oauth2_consent_preconfiguration ' +
      'WHERE subject = ? AND client_id = ? AND scopes = ? AND audience = ? AND expires_at > ? ORDER BY created_at DESC LIMIT 1',
  )

  return {
    async saveConsentSession(s) {
      insert().run({
        id: s.id,
        client_id: s.clientId,
        subject: s.subject,
        username: s.username,
        session_id: s.sessionId,
        requested_scopes: toJsonList(s.requestedScopes),
        requested_audience: toJsonList(s.requestedAudience),
        form: JSON.stringify(s.form),
        created_at: s.createdAt,
        expires_at: s.expiresAt,
        responded_at: s.respondedAt ?? null,
        granted: s.granted === undefined ? null : toFlag(s.granted),
        granted_scopes: s.grantedScopes === undefined ? null : toJsonList(s.grantedScopes),
        granted_audience: s.grantedAudience === undefined ? null : toJsonList(s.grantedAudience),
        used: toFlag(s.used),
      })
    },
    async findConsentSession(id) {
      const row = find().get(id) as ConsentRow | undefined
      return row === undefined ? undefined : toConsentSession(row)
    },
    async answerConsentSession(id, granted, scopes, audience, now) {
      // One guarded UPDATE: a second answer (or a racing one) changes nothing and reports false.
      return answer().run({ id, now, granted: toFlag(granted), scopes: toJsonList(scopes), audience: toJsonList(audience) }).changes === 1
    },
    async markConsentSessionUsed(id) {
      return markUsed().run(id).changes === 1
    },
    async savePreConfiguredConsent(c) {
      upsertPreConfigured().run(c.subject, c.clientId, asSet(c.scopes), asSet(c.audience), c.createdAt, c.expiresAt)
    },
    async findPreConfiguredConsent(subject, clientId, scopes, audience, now) {
      const row = findPreConfigured().get(subject, clientId, asSet(scopes), asSet(audience), now) as PreConfiguredRow | undefined
      return row === undefined ? undefined : toPreConfigured(row)
    },
  }
}

/** Column names and INSERT values of a consent session for the server backends, in the same order. */
export const CONSENT_COLUMNS =
  'id, client_id, subject, username, session_id, requested_scopes, requested_audience, form, created_at, expires_at, responded_at, granted, granted_scopes, granted_audience, used'
export const consentValues = (s: ConsentSession): unknown[] => [
  s.id,
  s.clientId,
  s.subject,
  s.username,
  s.sessionId,
  toJsonList(s.requestedScopes),
  toJsonList(s.requestedAudience),
  JSON.stringify(s.form),
  s.createdAt,
  s.expiresAt,
  s.respondedAt ?? null,
  s.granted === undefined ? null : toFlag(s.granted),
  s.grantedScopes === undefined ? null : toJsonList(s.grantedScopes),
  s.grantedAudience === undefined ? null : toJsonList(s.grantedAudience),
  toFlag(s.used),
]

export function toConsentSession(r: ConsentRow): ConsentSession {
  const session: ConsentSession = {
    id: r.id,
    clientId: r.client_id,
    subject: r.subject,
    username: r.username,
    sessionId: r.session_id,
    requestedScopes: fromJsonList(r.requested_scopes),
    requestedAudience: fromJsonList(r.requested_audience),
    form: JSON.parse(r.form) as Record<string, string>,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    used: r.used === 1,
  }
  if (r.responded_at !== null) session.respondedAt = r.responded_at
  if (r.granted !== null) session.granted = r.granted === 1
  if (r.granted_scopes !== null) session.grantedScopes = fromJsonList(r.granted_scopes)
  if (r.granted_audience !== null) session.grantedAudience = fromJsonList(r.granted_audience)
  return session
}

export function toPreConfigured(r: PreConfiguredRow): PreConfiguredConsent {
  return {
    subject: r.subject,
    clientId: r.client_id,
    scopes: fromJsonList(r.scopes),
    audience: fromJsonList(r.audience),
    createdAt: r.created_at,
    expiresAt: r.expires_at,
  }
}

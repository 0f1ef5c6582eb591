import { sha256Hex } from '../common/hashing.js'
import type { LoadedSession } from '../session/types.js'
import type { ConsentSession } from '../storage/storage.js'
import type { Client } from './clients.js'
import type { OidcContext } from './context.js'

/** Why a consent request was refused: for the log; the wire answer is a fixed 403 or error page. */
export class ConsentError extends Error {
  constructor(readonly reason: string) {
    super(reason)
    this.name = 'ConsentError'
  }
}

export interface PendingConsent {
  consent: ConsentSession
  client: Client
}

/** A consent session the current sign-in session may answer (docs/security.md O2). */
export async function loadPendingConsent(ctx: OidcContext, id: string | undefined, session: LoadedSession | null): Promise<PendingConsent> {
  if (!id || id.length > 100) throw new ConsentError('consent id missing or malformed')
  if (!session || !session.data.username) throw new ConsentError('no signed-in session')
  const consent = await ctx.storage.findConsentSession(id)
  if (!consent) throw new ConsentError('unknown consent session')
  if (consent.sessionId !== sha256Hex(session.id)) throw new ConsentError('the consent session belongs to another sign-in session')
  if (consent.username !== session.data.username) throw new ConsentError('the consent session belongs to another user')
  if (consent.expiresAt <= ctx.clock.now()) throw new ConsentError('the consent session has expired')
  if (consent.respondedAt !== undefined || consent.used) throw new ConsentError('the consent session was already answered')
  const client = ctx.clients.get(consent.clientId)
  if (!client) throw new ConsentError('the client of the consent session is no longer configured')
  return { consent, client }
}

/** The portal JSON shape of GET /api/oidc/consent (docs/authelia-compat.md §2.7). */
export function consentDescription(p: PendingConsent): Record<string, unknown> {
  return {
    client_id: p.client.id,
    client_description: p.client.config.description,
    scopes: p.consent.requestedScopes,
    audience: p.consent.requestedAudience,
    pre_configuration: p.client.config.consentMode === 'pre-configured',
  }
}

/**
 * Records the answer; remembers it for `pre_configured_consent_duration` when asked and allowed.
 * Resolves the authorization URL to resume: the original request plus `consent_id`.
 */
export async function answerConsent(ctx: OidcContext, p: PendingConsent, granted: boolean, preConfigure: boolean, issuer: string): Promise<string> {
  const now = ctx.clock.now()
  const { consent, client } = p
  const ok = await ctx.storage.answerConsentSession(consent.id, granted, granted ? consent.requestedScopes : [], granted ? consent.requestedAudience : [], now)
  if (!ok) throw new ConsentError('the consent session was already answered')
  if (granted && preConfigure && client.config.consentMode === 'pre-configured') {
    await ctx.storage.savePreConfiguredConsent({
      subject: consent.subject,
      clientId: client.id,
      scopes: consent.requestedScopes,
      audience: consent.requestedAudience,
      createdAt: now,
      expiresAt: now + client.config.preConfiguredConsentDurationSeconds,
    })
  }
  const query = new URLSearchParams(consent.form)
  query.set('consent_id', consent.id)
  return `${issuer}/api/oidc/authorization?${query.toString()}`
}

import { safeEqual } from '../../common/hashing.js'
import type { LoadedSession } from '../../session/types.js'
import type { Client } from '../clients.js'
import type { OidcContext } from '../context.js'
import { OAuthError } from '../errors.js'
import { truncate, type Params } from '../params.js'
import { HintError, verifyIdTokenHint } from './id-token-hint.js'

/** A checked RP-initiated logout request (RP-Initiated Logout 1.0 §2, §3). */
export interface EndSessionPlan {
  client?: Client
  /** The registered post_logout_redirect_uri, exactly as registered. */
  postLogoutRedirectUri?: string
  state?: string
  /** Where the browser goes once signed out: the URI with `state` added; absent → the signed-out page. */
  redirect?: string
  /**
   * The request proves it comes from a relying party this session signed in to: its id_token_hint
   * verifies and names this session (`sid`). Only then is the user signed out without asking
   * (docs/security.md E1): anything else might be a cross-site request forcing a sign-out.
   */
  proven: boolean
}

const refuse = (description: string, detail: string, clientId?: string): OAuthError => {
  const err = new OAuthError('invalid_request', description, detail)
  if (clientId !== undefined) err.clientId = clientId
  return err
}

/**
 * Checks an end-session request. Every failure is an error page (docs/security.md ERRPAGE, E2):
 * nothing is sent to any URI unless it exactly matches one of the client's post_logout_redirect_uris,
 * and the client is known only from a verified id_token_hint or a registered client_id.
 */
export async function checkEndSession(ctx: OidcContext, params: Params, issuer: string, session: LoadedSession | null): Promise<EndSessionPlan> {
  params.assertNoDuplicates()
  const hintValue = params.get('id_token_hint')
  const clientId = params.get('client_id')
  const uri = params.get('post_logout_redirect_uri')
  const state = params.get('state')
  // ui_locales: accepted, the pages are in English only (RP-Initiated Logout 1.0 §2).

  let hint: Awaited<ReturnType<typeof verifyIdTokenHint>> | undefined
  if (hintValue !== undefined) {
    try {
      hint = await verifyIdTokenHint(ctx.keys, hintValue, issuer)
    } catch (err) {
      if (!(err instanceof HintError)) throw err
      throw refuse('The id_token_hint was not issued by this provider.', err.reason)
    }
  }

  let client: Client | undefined
  if (clientId !== undefined) {
    client = ctx.clients.get(clientId)
    if (!client) throw refuse('The client_id is not a registered client.', `unknown client_id '${clientId}'`)
    if (hint && !hint.aud.includes(clientId)) throw refuse('The id_token_hint was not issued to this client.', `id_token_hint audience does not include '${clientId}'`, clientId)
  } else if (hint) {
    client = ctx.clients.get(hint.aud[0]!)
    if (!client) throw refuse('The id_token_hint was not issued to a registered client.', 'id_token_hint audience names no configured client')
  }

  const plan: EndSessionPlan = { proven: false }
  if (client) plan.client = client
  if (state !== undefined) plan.state = state
  if (uri !== undefined) {
    if (!client) throw refuse('The post_logout_redirect_uri needs an id_token_hint or a client_id.', 'post_logout_redirect_uri without a client')
    // Exact string comparison, as for redirect_uri (docs/security.md R1).
    if (!client.config.postLogoutRedirectUris.includes(uri)) {
      throw refuse('The post_logout_redirect_uri is not registered for this client.', `post_logout_redirect_uri '${truncate(uri, 200)}' is not one of the client's post_logout_redirect_uris (compared by exact string)`, client.id)
    }
    plan.postLogoutRedirectUri = uri
    plan.redirect = state === undefined ? uri : `${uri}${uri.includes('?') ? '&' : '?'}state=${encodeURIComponent(state)}`
  }
  const sid = session?.data.sid
  plan.proven = hint?.sid !== undefined && sid !== undefined && safeEqual(hint.sid, sid)
  return plan
}

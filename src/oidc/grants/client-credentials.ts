import { randomUUID } from 'node:crypto'
import { OAuthError } from '../errors.js'
import type { Client } from '../clients.js'
import type { OidcContext } from '../context.js'
import type { Params } from '../params.js'
import { issueTokenSet, type TokenResponse } from './issue.js'
import { parseScope } from './refresh-token.js'
import { requestedAudience } from '../audience.js'

/** RFC 6749 §4.4: a confidential client acting for itself; no user, so no ID token and no refresh token. */
export async function grantClientCredentials(ctx: OidcContext, client: Client, p: Params, issuer: string): Promise<TokenResponse> {
  if (client.config.public) throw new OAuthError('unauthorized_client', 'A public client cannot use the client_credentials grant.')
  const requested = parseScope(p.get('scope')) ?? []
  for (const s of requested) {
    if (s === 'openid' || s === 'offline_access' || s === 'offline' || !client.scopes.has(s)) {
      throw new OAuthError('invalid_scope', `The OAuth 2.0 Client is not allowed to request scope '${s}'.`)
    }
  }
  const audience = requestedAudience(client, p.get('audience'))
  const now = ctx.clock.now()
  return issueTokenSet(
    ctx,
    client,
    {
      grantId: randomUUID(),
      clientId: client.id,
      username: '',
      subject: client.id,
      scopes: requested,
      audience,
      authTime: now,
      amr: [],
      requestedAt: now,
    },
    { issuer, grantType: 'client_credentials', idToken: false, refresh: false },
  )
}


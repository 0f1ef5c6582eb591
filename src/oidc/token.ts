import { OAuthError } from './errors.js'
import type { OidcContext } from './context.js'
import { formBody } from './params.js'
import { authenticateClient } from './client-auth.js'
import { redeemAuthorizationCode } from './grants/authorization-code.js'
import { redeemRefreshToken } from './grants/refresh-token.js'
import { grantClientCredentials } from './grants/client-credentials.js'
import type { TokenResponse } from './grants/issue.js'

export interface TokenRequest {
  authorization?: string
  contentType?: string
  body: unknown
  issuer: string
}

/** POST /api/oidc/token (docs/authelia-compat.md §2.5). Errors are thrown as OAuthError. */
export async function handleTokenRequest(ctx: OidcContext, req: TokenRequest): Promise<{ clientId: string; response: TokenResponse }> {
  const p = formBody(req.contentType, req.body)
  p.assertNoDuplicates()
  const { client } = await authenticateClient(ctx, req.authorization, p, { allowNone: true, issuer: req.issuer, endpointUrl: `${req.issuer}/api/oidc/token` })
  try {
    const grantType = p.get('grant_type')
    if (grantType === undefined) throw new OAuthError('invalid_request', "The request is missing the 'grant_type' parameter.")
    let response: TokenResponse
    switch (grantType) {
      case 'authorization_code':
        requireGrant(client.grantTypes, grantType)
        response = await redeemAuthorizationCode(ctx, client, p, req.issuer)
        break
      case 'refresh_token':
        requireGrant(client.grantTypes, grantType)
        response = await redeemRefreshToken(ctx, client, p, req.issuer)
        break
      case 'client_credentials':
        requireGrant(client.grantTypes, grantType)
        response = await grantClientCredentials(ctx, client, p, req.issuer)
        break
      default:
        throw new OAuthError('unsupported_grant_type', `The authorization grant type '${grantType.slice(0, 64)}' is not supported by the authorization server.`)
    }
    return { clientId: client.id, response }
  } catch (err) {
    if (err instanceof OAuthError && !err.clientId) err.clientId = client.id
    throw err
  }
}

function requireGrant(grants: Set<string>, grant: string): void {
  if (!grants.has(grant)) {
    throw new OAuthError('unauthorized_client', `The client is not authorized to use the grant type '${grant}'.`)
  }
}

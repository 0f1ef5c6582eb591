import { OAuthError } from './errors.js'
import type { OidcContext } from './context.js'
import { formBody } from './params.js'
import { authenticateClient } from './client-auth.js'
import { findIssuedToken, type EndpointRequest } from './introspection.js'
import { hashArtifact } from './tokens.js'

/**
 * RFC 7009 (docs/security.md I1–I3): 200 with an empty body for anything the client may revoke or that
 * does not exist; another client's token is refused with invalid_request and stays valid. Revoking
 * a refresh token revokes its whole grant, access tokens included.
 */
export async function handleRevocation(ctx: OidcContext, req: EndpointRequest): Promise<{ clientId: string }> {
  const p = formBody(req.contentType, req.body)
  p.assertNoDuplicates()
  const { client } = await authenticateClient(ctx, req.authorization, p, { allowNone: true, issuer: req.issuer, endpointUrl: req.endpointUrl })
  const token = p.get('token')
  const refuse = (description: string, detail?: string) => {
    const err = new OAuthError('invalid_request', description, detail)
    err.clientId = client.id
    return err
  }
  if (token === undefined) throw refuse("The request is missing the 'token' parameter.")
  const rec = await findIssuedToken(ctx, token)
  if (!rec) return { clientId: client.id }
  if (rec.clientId !== client.id) {
    throw refuse('The token was not issued to the client making the revocation request.', `the token belongs to client '${rec.clientId}'`)
  }
  if (rec.kind === 'refresh') await ctx.storage.revokeGrant(rec.grantId)
  else await ctx.storage.revokeToken(hashArtifact(token))
  return { clientId: client.id }
}

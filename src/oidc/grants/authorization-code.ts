import { OAuthError } from '../errors.js'
import type { Client } from '../clients.js'
import type { OidcContext } from '../context.js'
import type { Params } from '../params.js'
import { hashArtifact } from '../tokens.js'
import type { AuthorizationCodeRecord } from '../../storage/storage.js'
import { verifyCodeVerifier } from '../pkce.js'
import { INVALID_GRANT, isRefreshAllowed, issueTokenSet, requireGrantUser, type TokenResponse } from './issue.js'

/** RFC 6749 §4.1.3 and RFC 7636 §4.6: redeem a code once, bound to client, redirect_uri and PKCE verifier. */
export async function redeemAuthorizationCode(ctx: OidcContext, client: Client, p: Params, issuer: string): Promise<TokenResponse> {
  const code = p.get('code')
  if (code === undefined) throw new OAuthError('invalid_request', "The request is missing the 'code' parameter.")
  if (!ctx.tokens.isWellFormed('ac', code)) throw new OAuthError('invalid_grant', INVALID_GRANT, 'the value is not an authorization code issued here')
  const redirectUri = p.get('redirect_uri')
  const verifier = p.get('code_verifier')

  // docs/security.md C2: the consume is the single atomic step deciding between parallel redemptions.
  // The bindings are checked inside it, before the code is spent: whoever intercepted a code but
  // lacks the redirect_uri or the PKCE verifier cannot burn the rightful client's sign-in.
  let refusal: OAuthError | undefined
  const found = await ctx.storage.consumeAuthorizationCode(hashArtifact(code), client.id, ctx.clock.now(), (rec) => {
    refusal = bindingProblem(rec, redirectUri, verifier)
    return refusal === undefined
  })
  if (found.kind === 'refused') throw refusal!
  if (found.kind === 'replayed') {
    // RFC 6749 §4.1.2: revoke every token issued from the first redemption.
    await ctx.storage.revokeGrant(found.grantId)
    throw new OAuthError('invalid_grant', INVALID_GRANT, 'the authorization code was already used; every token issued from it is revoked')
  }
  if (found.kind === 'missing') throw new OAuthError('invalid_grant', INVALID_GRANT, 'the authorization code is unknown, expired, revoked or was issued to another client')
  const rec = found.record

  const user = await requireGrantUser(ctx, rec, INVALID_GRANT)
  const { codeHash, redirectUri: _r, redirectUriSent: _s, codeChallenge: _cc, codeChallengeMethod: _cm, issuedAt: _i, expiresAt: _e, ...grant } = rec
  return issueTokenSet(ctx, client, grant, {
    issuer,
    grantType: 'authorize_code',
    user,
    idToken: grant.scopes.includes('openid'),
    refresh: isRefreshAllowed(client, grant.scopes),
    // A replay may revoke the grant before these tokens are saved: they are then refused (C1).
    parent: { kind: 'code', hash: codeHash },
  })
}

/** docs/security.md R4 and P1: identical redirect_uri (required when the request carried one), and the PKCE verifier. */
function bindingProblem(rec: AuthorizationCodeRecord, redirectUri: string | undefined, verifier: string | undefined): OAuthError | undefined {
  if (rec.redirectUriSent ? redirectUri !== rec.redirectUri : redirectUri !== undefined && redirectUri !== rec.redirectUri) {
    return new OAuthError('invalid_grant', INVALID_GRANT, "the 'redirect_uri' differs from the one of the authorization request")
  }
  try {
    verifyCodeVerifier({ ...(rec.codeChallenge ? { challenge: rec.codeChallenge } : {}), ...(rec.codeChallengeMethod ? { method: rec.codeChallengeMethod } : {}) }, verifier)
  } catch (err) {
    if (err instanceof OAuthError) return err
    throw err
  }
  return undefined
}

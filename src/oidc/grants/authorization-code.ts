import { OAuthError } from '../errors.js'
import type { Client } from '../clients.js'
import type { OidcContext } from '../context.js'
import type { Params } from '../params.js'
import { hashArtifact } from '../tokens.js'
import type { GrantContext } from '../../storage/storage.js'
import type { User } from '../../authn/users.js'
import type { SealedCode } from '../code-seal.js'
import { verifyCodeVerifier } from '../pkce.js'
import { INVALID_GRANT, isRefreshAllowed, issueTokenSet, requireGrantUser, type TokenResponse } from './issue.js'

/** RFC 6749 §4.1.3 and RFC 7636 §4.6: redeem a code once, bound to client, redirect_uri and PKCE verifier. */
export async function redeemAuthorizationCode(ctx: OidcContext, client: Client, p: Params, issuer: string): Promise<TokenResponse> {
  const code = p.get('code')
  if (code === undefined) throw new OAuthError('invalid_request', "The request is missing the 'code' parameter.")
  const sealed = ctx.codes.open(code)
  if (sealed) return redeemSealedCode(ctx, client, p, issuer, code, sealed)
  if (!ctx.tokens.isWellFormed('ac', code)) throw new OAuthError('invalid_grant', INVALID_GRANT, 'the value is not an authorization code issued here')
  return redeemOpaqueCode(ctx, client, p, issuer, code)
}

/**
 * A code that carries its record (code-seal.ts). The bindings are checked on that record, before
 * the database is touched: whoever intercepted the code but lacks the redirect_uri or the PKCE
 * verifier cannot burn the rightful client's sign-in. Then one storage step consumes the code and
 * saves the tokens (docs/security.md C1, C2); the code's row alone says whether it is still live.
 */
async function redeemSealedCode(ctx: OidcContext, client: Client, p: Params, issuer: string, code: string, rec: SealedCode): Promise<TokenResponse> {
  if (rec.clientId !== client.id) throw new OAuthError('invalid_grant', INVALID_GRANT, MISSING)
  const refusal = bindingProblem(rec, p.get('redirect_uri'), p.get('code_verifier'))
  if (refusal) throw refusal
  const user = await requireGrantUser(ctx, rec, INVALID_GRANT)
  const codeHash = hashArtifact(code)
  const grant = grantOfCode(rec)
  return issueTokenSet(ctx, client, grant, {
    ...codeIssueOptions(client, grant, issuer, user, codeHash),
    save: async (records) => {
      const outcome = await ctx.storage.redeemAuthorizationCode(codeHash, records, ctx.clock.now())
      if (outcome.kind === 'replayed') await refuseReplay(ctx, outcome.grantId)
      if (outcome.kind === 'missing') throw new OAuthError('invalid_grant', INVALID_GRANT, MISSING)
    },
  })
}

/** A code of the opaque form (issued before codes were sealed): read, checked and consumed first, then the tokens saved. */
async function redeemOpaqueCode(ctx: OidcContext, client: Client, p: Params, issuer: string, code: string): Promise<TokenResponse> {
  const redirectUri = p.get('redirect_uri')
  const verifier = p.get('code_verifier')
  // docs/security.md C2: the consume is the single atomic step deciding between parallel redemptions.
  // The bindings are checked inside it, before the code is spent.
  let refusal: OAuthError | undefined
  const found = await ctx.storage.consumeAuthorizationCode(hashArtifact(code), client.id, ctx.clock.now(), (rec) => {
    refusal = bindingProblem(rec, redirectUri, verifier)
    return refusal === undefined
  })
  if (found.kind === 'refused') throw refusal!
  if (found.kind === 'replayed') await refuseReplay(ctx, found.grantId)
  if (found.kind !== 'ok') throw new OAuthError('invalid_grant', INVALID_GRANT, MISSING)
  const rec = found.record
  const user = await requireGrantUser(ctx, rec, INVALID_GRANT)
  const grant = grantOfCode(rec)
  // A replay may revoke the grant before these tokens are saved: they are then refused (C1).
  return issueTokenSet(ctx, client, grant, codeIssueOptions(client, grant, issuer, user, rec.codeHash))
}

const MISSING = 'the authorization code is unknown, expired, revoked or was issued to another client'

/** RFC 6749 §4.1.2: a code used twice revokes every token issued from its first redemption. */
async function refuseReplay(ctx: OidcContext, grantId: string): Promise<never> {
  await ctx.storage.revokeGrant(grantId)
  throw new OAuthError('invalid_grant', INVALID_GRANT, 'the authorization code was already used; every token issued from it is revoked')
}

function grantOfCode(rec: SealedCode & { codeHash?: string }): GrantContext {
  const { codeHash: _h, redirectUri: _r, redirectUriSent: _s, codeChallenge: _cc, codeChallengeMethod: _cm, issuedAt: _i, expiresAt: _e, ...grant } = rec
  return grant
}

function codeIssueOptions(client: Client, grant: GrantContext, issuer: string, user: User, codeHash: string) {
  return {
    issuer,
    grantType: 'authorize_code' as const,
    user,
    idToken: grant.scopes.includes('openid'),
    refresh: isRefreshAllowed(client, grant.scopes),
    parent: { kind: 'code' as const, hash: codeHash },
  }
}

/** docs/security.md R4 and P1: identical redirect_uri (required when the request carried one), and the PKCE verifier. */
function bindingProblem(rec: SealedCode, redirectUri: string | undefined, verifier: string | undefined): OAuthError | undefined {
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

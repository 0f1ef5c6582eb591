import type { User } from '../authn/users.js'
import type { OidcClientConfig } from '../config/schema.js'

/** The claims of the granted scopes (docs/authelia-compat.md §3): profile, email, groups. */
export function scopeClaims(user: User, scopes: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (scopes.includes('profile')) {
    out.name = user.displayName
    out.preferred_username = user.username
  }
  if (scopes.includes('email') && user.emails.length > 0) {
    out.email = user.emails[0]
    out.email_verified = true
    if (user.emails.length > 1) out.alt_emails = user.emails.slice(1)
  }
  if (scopes.includes('groups')) out.groups = user.groups
  return out
}

/**
 * The scope claims an ID token carries: all of them, unless the client has a 4.39 claims_policy,
 * which keeps only its `id_token` list there (the others stay available at userinfo).
 */
export function idTokenScopeClaims(client: OidcClientConfig, user: User, scopes: readonly string[]): Record<string, unknown> {
  const claims = scopeClaims(user, scopes)
  const policy = client.claimsPolicy
  if (!policy) return claims
  const out: Record<string, unknown> = {}
  for (const name of policy.idToken) if (claims[name] !== undefined) out[name] = claims[name]
  return out
}

/** The audience an ID token names besides the client: none under a claims_policy in `specification` mode. */
export function idTokenAudience(client: OidcClientConfig, granted: readonly string[]): readonly string[] {
  return client.claimsPolicy?.idTokenAudienceMode === 'specification' ? [] : granted
}

/** `aud`: the client id first, then the granted audience, each once. */
export function audienceOf(clientId: string, audience: readonly string[]): string[] {
  const out = [clientId]
  for (const a of audience) if (!out.includes(a)) out.push(a)
  return out
}

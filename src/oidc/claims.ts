import type { User } from '../authn/users.js'

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

/** `aud`: the client id first, then the granted audience, each once. */
export function audienceOf(clientId: string, audience: readonly string[]): string[] {
  const out = [clientId]
  for (const a of audience) if (!out.includes(a)) out.push(a)
  return out
}

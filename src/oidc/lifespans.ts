import type { LifespanGrant, Lifespans, OidcClientConfig, OidcConfig } from '../config/schema.js'

/**
 * The lifetimes for one client and grant (4.38 `lifespans.custom` with the client's `lifespan`):
 * the custom value for the token type and grant, else the custom value for the token type, else
 * the global one.
 */
export function lifespansFor(oidc: OidcConfig, client: OidcClientConfig, grant: LifespanGrant): Lifespans {
  const custom = client.lifespan !== undefined ? oidc.customLifespans[client.lifespan] : undefined
  if (!custom) return oidc.lifespans
  return { ...oidc.lifespans, ...custom.base, ...custom.grants[grant] }
}

/** The longest a token signed now can stay valid, over every client: when a retired key may go. */
export function longestSignedLifetimeSeconds(oidc: OidcConfig): number {
  const all: Lifespans[] = [oidc.lifespans]
  for (const c of Object.values(oidc.customLifespans)) {
    all.push({ ...oidc.lifespans, ...c.base })
    for (const g of Object.values(c.grants)) all.push({ ...oidc.lifespans, ...c.base, ...g })
  }
  return Math.max(...all.flatMap((l) => [l.idTokenSeconds, l.accessTokenSeconds]))
}

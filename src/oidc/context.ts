import type { Config, OidcConfig } from '../config/schema.js'
import type { Storage } from '../storage/storage.js'
import type { UserProvider } from '../authn/users.js'
import type { Clock } from '../common/clock.js'
import { parseDigest, type PasswordDigest } from '../authn/hashes/index.js'
import { randomToken } from '../common/random.js'
import { loadClients, type Client } from './clients.js'
import { loadKeySet, type KeySet } from './keys.js'
import { TokenFactory } from './tokens.js'
import { createIssuerResolver, type IssuerResolver } from './issuer.js'
import { FailureThrottle } from './throttle.js'
import { buildDiscovery, DiscoveryCache } from './discovery.js'
import { authAfterKey } from './auth-after.js'

/** Everything the OIDC functions need, prepared once when the plugin starts. */
export interface OidcContext {
  appConfig: Config
  oidc: OidcConfig
  storage: Storage
  users: UserProvider
  clock: Clock
  clients: Map<string, Client>
  keys: KeySet
  tokens: TokenFactory
  issuer: IssuerResolver
  discovery: DiscoveryCache
  /** Per client+IP and per IP failed client authentications. */
  clientThrottle: FailureThrottle
  ipThrottle: FailureThrottle
  /** Verified for unknown clients so they cost what a wrong secret costs (security.md A3). */
  dummyDigest: Promise<PasswordDigest>
  /** sub per (sector, username): stable forever once stored, so cached (one query less per authorization). */
  subjects: Map<string, string>
  debug: boolean
  /** '' or '/<server.path>'. */
  prefix: string
  /** Seals the `auth_after` marker of a forced fresh sign-in (auth-after.ts). */
  authAfterKey: Buffer
}

export const CLIENT_FAILURES_PER_MINUTE = 10
export const IP_FAILURES_PER_MINUTE = 30
/** Consent sessions (the explicit consent page) expire after 10 minutes, as in Authelia 4.38+. */
export const CONSENT_SESSION_SECONDS = 600
/** Absolute cap on a refresh-token family, counted from the authorization (security.md T3). */
export const REFRESH_ABSOLUTE_CAP_SECONDS = 30 * 24 * 3600

export async function createOidcContext(deps: { config: Config; storage: Storage; users: UserProvider; clock: Clock }): Promise<OidcContext> {
  const oidc = deps.config.identityProviders.oidc
  if (!oidc) throw new Error('identity_providers.oidc is not configured')
  const keys = await loadKeySet(oidc.issuerPrivateKeys)
  const clients = loadClients(oidc)
  for (const c of clients.values()) {
    for (const alg of [c.config.idTokenSigningAlgorithm, c.config.userinfoSigningAlgorithm]) {
      if (alg !== 'none' && !keys.byAlg.has(alg)) {
        throw new Error(`identity_providers: oidc: client '${c.id}': no issuer key is configured for algorithm '${alg}'`)
      }
    }
  }
  // The dummy for unknown clients costs what the configured clients cost: the KDF of the first
  // hashed client secret (the guess is checked against it and the answer ignored), else a plaintext
  // comparison. No argon2 dummy is made up front: its 64 MiB would stay in the RSS for nothing.
  const hashed = [...clients.values()].find((c) => c.digest && c.digest.algorithm !== 'plaintext')?.digest
  const digest = Promise.resolve(hashed ?? parseDigest(`$plaintext$${randomToken(32)}`, { allowPlaintext: true }))
  return {
    appConfig: deps.config,
    oidc,
    storage: deps.storage,
    users: deps.users,
    clock: deps.clock,
    clients,
    keys,
    tokens: new TokenFactory(oidc.hmacSecret),
    issuer: createIssuerResolver(deps.config),
    discovery: new DiscoveryCache((issuer) => buildDiscovery(issuer, oidc, clients, keys.algorithms)),
    clientThrottle: new FailureThrottle(CLIENT_FAILURES_PER_MINUTE, 60),
    ipThrottle: new FailureThrottle(IP_FAILURES_PER_MINUTE, 60),
    dummyDigest: digest,
    subjects: new Map(),
    debug: oidc.enableClientDebugMessages,
    prefix: deps.config.server.path ? `/${deps.config.server.path}` : '',
    authAfterKey: authAfterKey(oidc),
  }
}

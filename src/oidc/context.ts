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
import { FailureThrottle, SpentArtifacts, WorkBudget } from './throttle.js'
import { buildDiscovery, DiscoveryCache } from './discovery.js'
import { authAfterKey } from './auth-after.js'
import { CodeSealer, codeSealKey } from './code-seal.js'
import { ClientJwksCache, JWKS_FETCH_LIMITS, type JwksFetchLimits } from './client-jwks.js'

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
  /** Seals the record into each authorization code (code-seal.ts). */
  codes: CodeSealer
  issuer: IssuerResolver
  discovery: DiscoveryCache
  /**
   * Failed client authentications per client_id (docs/security.md A4). Never keyed on the address alone:
   * behind a proxy without `trusted_proxies` every relying party shares the proxy's address.
   */
  clientThrottle: FailureThrottle
  /** Failures of a throttled client's requests that carried a live code or token of it (client-auth.ts). */
  vouchedThrottle: FailureThrottle
  spentArtifacts: SpentArtifacts
  /** Bounds the dummy KDF work of unknown client ids (docs/security.md A3, A4). */
  unknownClientWork: WorkBudget
  /** Clients already logged as sending unencoded Basic credentials (once per client and process). */
  unencodedBasicNoted: Set<string>
  log: OidcLog
  /** Verified for unknown clients so they cost what a wrong secret costs (docs/security.md A3). */
  dummyDigest: Promise<PasswordDigest>
  /** sub per (sector, username): stable forever once stored, so cached (one query less per authorization). */
  subjects: Map<string, string>
  debug: boolean
  /** '' or '/<server.path>'. */
  prefix: string
  /** Seals the `auth_after` marker of a forced fresh sign-in (auth-after.ts). */
  authAfterKey: Buffer
  /** `jwks_uri` key sets of `private_key_jwt` clients (client-jwks.ts). */
  clientJwks: ClientJwksCache
}

/** Logs outside a request's own refusal line (pino's `info(fields, msg)`). */
export interface OidcLog {
  info(fields: Record<string, unknown>, msg: string): void
}

export const CLIENT_FAILURES_PER_MINUTE = 10
/** Dummy KDF checks of unknown client ids: at most this many at once, and per minute (per instance). */
export const UNKNOWN_CLIENT_CONCURRENT_CHECKS = 1
export const UNKNOWN_CLIENT_CHECKS_PER_MINUTE = 30
/** Consent sessions (the explicit consent page) expire after 10 minutes, as in Authelia 4.38+. */
export const CONSENT_SESSION_SECONDS = 600
/** Absolute cap on a refresh-token family, counted from the authorization (docs/security.md T3). */
export const REFRESH_ABSOLUTE_CAP_SECONDS = 30 * 24 * 3600

export async function createOidcContext(deps: {
  config: Config
  storage: Storage
  users: UserProvider
  clock: Clock
  logger?: OidcLog
  /** Tests shorten the jwks_uri timeout; production uses JWKS_FETCH_LIMITS. */
  jwksFetchLimits?: JwksFetchLimits
}): Promise<OidcContext> {
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
    const cc = c.config
    for (const choice of [cc.accessTokenSigning, cc.introspectionSigning, cc.authorizationSigning, cc.idTokenSigningKeyId !== undefined ? { alg: cc.idTokenSigningAlgorithm, kid: cc.idTokenSigningKeyId } : undefined]) {
      if (!choice) continue
      const key = choice.kid !== undefined ? keys.byKid.get(choice.kid) : keys.byAlg.get(choice.alg)
      if (!key || key.alg !== choice.alg) throw new Error(`identity_providers: oidc: client '${c.id}': no issuer key is configured for ${choice.kid !== undefined ? `key id '${choice.kid}'` : `algorithm '${choice.alg}'`}`)
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
    codes: new CodeSealer(codeSealKey(oidc)),
    issuer: createIssuerResolver(deps.config),
    discovery: new DiscoveryCache((issuer) => buildDiscovery(issuer, oidc, clients, keys)),
    clientThrottle: new FailureThrottle(CLIENT_FAILURES_PER_MINUTE, 60),
    vouchedThrottle: new FailureThrottle(CLIENT_FAILURES_PER_MINUTE, 60),
    spentArtifacts: new SpentArtifacts(60),
    unknownClientWork: new WorkBudget(UNKNOWN_CLIENT_CONCURRENT_CHECKS, UNKNOWN_CLIENT_CHECKS_PER_MINUTE, 60),
    unencodedBasicNoted: new Set(),
    log: deps.logger ?? { info: () => {} },
    dummyDigest: digest,
    subjects: new Map(),
    debug: oidc.enableClientDebugMessages,
    prefix: deps.config.server.path ? `/${deps.config.server.path}` : '',
    authAfterKey: authAfterKey(oidc),
    clientJwks: new ClientJwksCache({ allowPrivate: oidc.clientJwksUriAllowPrivateNetworks, limits: deps.jwksFetchLimits ?? JWKS_FETCH_LIMITS, now: () => deps.clock.now() }),
  }
}

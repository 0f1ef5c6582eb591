import type { OidcConfig, SigningAlgorithm } from '../config/schema.js'
import type { Client } from './clients.js'
import { keyFor, type KeySet } from './keys.js'

/** Response types this provider implements (normalised word order as sent by most clients). */
export const RESPONSE_TYPES_SUPPORTED = ['code', 'id_token', 'token id_token', 'code id_token', 'code token', 'code token id_token', 'token', 'none']
export const RESPONSE_MODES_SUPPORTED = ['form_post', 'query', 'fragment', 'jwt', 'form_post.jwt', 'query.jwt', 'fragment.jwt']
export const SCOPES_SUPPORTED = ['openid', 'offline_access', 'profile', 'email', 'groups']
export const GRANT_TYPES_SUPPORTED = ['authorization_code', 'implicit', 'refresh_token', 'client_credentials']
export const CLAIMS_SUPPORTED = [
  'acr', 'amr', 'aud', 'azp', 'client_id', 'exp', 'iat', 'iss', 'jti', 'rat', 'sub', 'auth_time', 'nonce', 'at_hash', 'c_hash',
  'email', 'email_verified', 'alt_emails', 'groups', 'preferred_username', 'name', 'sid',
]
export const TOKEN_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none']
/** Introspection needs a real client authentication (docs/security.md I1): no `none`. */
export const INTROSPECTION_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt']
/** RFC 7523 client assertions: HMAC with the secret, or the client's own key (docs/security.md J1). */
export const TOKEN_AUTH_SIGNING_ALGS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']

export interface DiscoveryDocuments {
  openid: string
  oauth: string
}

/**
 * Builds the two metadata documents for one issuer, exactly what the endpoints implement.
 * Serialised once per issuer by the caller and reused.
 */
export async function buildDiscovery(issuer: string, oidc: OidcConfig, clients: Map<string, Client>, keys: KeySet): Promise<DiscoveryDocuments> {
  const algorithms: SigningAlgorithm[] = keys.algorithms
  const pairwise = [...clients.values()].some((c) => c.config.sectorIdentifier !== '')
  const pkceMethods = oidc.enablePkcePlainChallenge ? ['S256', 'plain'] : ['S256']
  const common = {
    issuer,
    jwks_uri: `${issuer}/jwks.json`,
    authorization_endpoint: `${issuer}/api/oidc/authorization`,
    token_endpoint: `${issuer}/api/oidc/token`,
    introspection_endpoint: `${issuer}/api/oidc/introspection`,
    revocation_endpoint: `${issuer}/api/oidc/revocation`,
    response_types_supported: RESPONSE_TYPES_SUPPORTED,
    response_modes_supported: RESPONSE_MODES_SUPPORTED,
    grant_types_supported: GRANT_TYPES_SUPPORTED,
    scopes_supported: SCOPES_SUPPORTED,
    pushed_authorization_request_endpoint: `${issuer}/api/oidc/pushed-authorization-request`,
    token_endpoint_auth_methods_supported: TOKEN_AUTH_METHODS,
    token_endpoint_auth_signing_alg_values_supported: TOKEN_AUTH_SIGNING_ALGS,
    introspection_endpoint_auth_methods_supported: INTROSPECTION_AUTH_METHODS,
    introspection_endpoint_auth_signing_alg_values_supported: TOKEN_AUTH_SIGNING_ALGS,
    revocation_endpoint_auth_methods_supported: TOKEN_AUTH_METHODS,
    revocation_endpoint_auth_signing_alg_values_supported: TOKEN_AUTH_SIGNING_ALGS,
    code_challenge_methods_supported: pkceMethods,
    authorization_response_iss_parameter_supported: true,
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    require_request_uri_registration: false,
    require_pushed_authorization_requests: oidc.pushedAuthorizations.enforce,
    // JARM §4, RFC 9701 §7: what the `*_signed_response_alg` client options may name.
    authorization_signing_alg_values_supported: algorithms,
    introspection_signing_alg_values_supported: algorithms,
  }
  const openid = {
    ...common,
    userinfo_endpoint: `${issuer}/api/oidc/userinfo`,
    end_session_endpoint: `${issuer}/api/oidc/logout`,
    subject_types_supported: pairwise ? ['public', 'pairwise'] : ['public'],
    claims_supported: CLAIMS_SUPPORTED,
    id_token_signing_alg_values_supported: algorithms,
    userinfo_signing_alg_values_supported: ['none', ...algorithms],
    claims_parameter_supported: false,
    // Front-/Back-Channel Logout 1.0 §3 / §2.1: supported, and `iss`/`sid` are always sent.
    frontchannel_logout_supported: true,
    frontchannel_logout_session_supported: true,
    backchannel_logout_supported: true,
    backchannel_logout_session_supported: true,
  }
  if (!oidc.discoverySigning) return { openid: JSON.stringify(openid), oauth: JSON.stringify(common) }
  // RFC 8414 §2.1 / `discovery_signed_response_alg`: the same metadata, signed, as `signed_metadata`.
  const key = keyFor(keys, oidc.discoverySigning)
  const [signedOpenid, signedOauth] = await Promise.all([key.signJwt({ ...openid, iss: issuer }), key.signJwt({ ...common, iss: issuer })])
  return { openid: JSON.stringify({ ...openid, signed_metadata: signedOpenid }), oauth: JSON.stringify({ ...common, signed_metadata: signedOauth }) }
}

/** The two documents as sent: serialised and encoded once, so a request copies bytes and nothing else. */
export interface DiscoveryBodies {
  openid: Buffer
  oauth: Buffer
}

/** Per-issuer cache; bounded because hosts under a cookie domain are attacker-choosable. */
export class DiscoveryCache {
  private readonly cache = new Map<string, Promise<DiscoveryBodies>>()
  constructor(private readonly build: (issuer: string) => Promise<DiscoveryDocuments>) {}
  get(issuer: string): Promise<DiscoveryBodies> {
    let docs = this.cache.get(issuer)
    if (!docs) {
      if (this.cache.size >= 64) this.cache.clear()
      docs = this.build(issuer).then((built) => ({ openid: Buffer.from(built.openid), oauth: Buffer.from(built.oauth) }))
      // A failed signature is not remembered: the next request tries again.
      docs.catch(() => this.cache.delete(issuer))
      this.cache.set(issuer, docs)
    }
    return docs
  }
}

import { parseDigest, type PasswordDigest } from '../authn/hashes/index.js'
import { createPublicKey } from 'node:crypto'
import type { OidcClientConfig, OidcConfig } from '../config/schema.js'
import type { ClientVerificationKey } from './client-jwks.js'

/** A configured client, prepared once at start: digest parsed, lists as sets. */
export interface Client {
  id: string
  config: OidcClientConfig
  /** Undefined for public clients. */
  digest?: PasswordDigest
  redirectUris: Set<string>
  scopes: Set<string>
  grantTypes: Set<string>
  /** Normalised response types: the words sorted and joined by one space. */
  responseTypes: Set<string>
  responseModes: Set<string>
  /** PKCE required for this client by `enforce_pkce` or its `require_pkce`. */
  pkceRequired: boolean
  /** Origins of the redirect URIs (CORS `allowed_origins_from_client_redirect_uris`, form_post CSP). */
  redirectOrigins: Set<string>
  /** `private_key_jwt` with inline `jwks`: the public keys, imported once. */
  inlineKeys?: ClientVerificationKey[]
  /** RFC 9126: this client's authorization requests must be pushed (its own flag or the global enforce). */
  parRequired: boolean
}

export class ClientConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ClientConfigError'
  }
}

export function normaliseResponseType(value: string): string {
  return value.split(' ').filter(Boolean).sort().join(' ')
}

export function originOf(uri: string): string | undefined {
  try {
    const u = new URL(uri)
    return u.origin === 'null' ? undefined : u.origin
  } catch {
    return undefined
  }
}

/** Builds the client registry; each client secret digest is parsed here, once. */
export function loadClients(oidc: OidcConfig): Map<string, Client> {
  const clients = new Map<string, Client>()
  for (const c of oidc.clients) {
    let digest: PasswordDigest | undefined
    if (!c.public && c.tokenEndpointAuthMethod !== 'private_key_jwt') {
      if (!c.secret) throw new ClientConfigError(`identity_providers: oidc: client '${c.id}': option 'secret' is required`)
      try {
        digest = parseDigest(c.secret, { allowPlaintext: true })
      } catch (err) {
        throw new ClientConfigError(`identity_providers: oidc: client '${c.id}': option 'secret' is invalid: ${(err as Error).message}`)
      }
    }
    const pkceRequired = c.requirePkce || oidc.enforcePkce === 'always' || (oidc.enforcePkce === 'public_clients_only' && c.public)
    clients.set(c.id, {
      id: c.id,
      config: c,
      ...(digest ? { digest } : {}),
      redirectUris: new Set(c.redirectUris),
      scopes: new Set(c.scopes),
      // A client that can never be granted offline_access can never hold a refresh token: the
      // refresh_token grant is effectively absent (docs/security.md C6: "refresh for Kasm").
      grantTypes: new Set(c.grantTypes.filter((g) => g !== 'refresh_token' || c.scopes.includes('offline_access'))),
      responseTypes: new Set(c.responseTypes.map(normaliseResponseType)),
      responseModes: new Set(c.responseModes),
      pkceRequired,
      redirectOrigins: new Set(c.redirectUris.map(originOf).filter((o): o is string => !!o)),
      ...(c.jwks ? { inlineKeys: c.jwks.map((k) => ({ kid: k.keyId, alg: k.algorithm, key: createPublicKey(k.key) })) } : {}),
      parRequired: c.requirePushedAuthorizationRequests || oidc.pushedAuthorizations.enforce,
    })
  }
  return clients
}

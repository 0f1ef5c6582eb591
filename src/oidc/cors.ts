import type { FastifyReply, FastifyRequest } from 'fastify'
import type { OidcConfig } from '../config/schema.js'
import type { Client } from './clients.js'

export type CorsEndpoint = 'authorization' | 'pushed-authorization-request' | 'token' | 'revocation' | 'introspection' | 'userinfo'

/**
 * identity_providers.oidc.cors: only the listed endpoints answer cross-origin requests, and only
 * for the allowed origins (plus the clients' redirect URI origins when enabled). Discovery and JWKS
 * are public (`*`) regardless.
 */
export class CorsPolicy {
  private readonly endpoints: Set<string>
  private readonly origins: Set<string>
  private readonly any: boolean

  constructor(cors: OidcConfig['cors'], clients: Map<string, Client>) {
    this.endpoints = new Set(cors.endpoints)
    this.any = cors.allowedOrigins.includes('*')
    this.origins = new Set(cors.allowedOrigins.map((o) => o.replace(/\/+$/, '').toLowerCase()))
    if (cors.allowedOriginsFromClientRedirectUris) {
      for (const c of clients.values()) for (const o of c.redirectOrigins) this.origins.add(o.toLowerCase())
    }
  }

  enabled(endpoint: CorsEndpoint): boolean {
    return this.endpoints.has(endpoint)
  }

  /** Adds the CORS response headers when the request's Origin is allowed for this endpoint. */
  apply(endpoint: CorsEndpoint, req: FastifyRequest, reply: FastifyReply): boolean {
    if (!this.endpoints.has(endpoint)) return false
    const origin = req.headers.origin
    if (typeof origin !== 'string') return false
    reply.header('vary', 'Origin')
    if (!this.any && !this.origins.has(origin.toLowerCase())) return false
    reply.header('access-control-allow-origin', this.any ? '*' : origin)
    return true
  }

  preflight(endpoint: CorsEndpoint, methods: string, req: FastifyRequest, reply: FastifyReply): void {
    if (this.apply(endpoint, req, reply)) {
      reply.header('access-control-allow-methods', methods)
      reply.header('access-control-allow-headers', 'Authorization, Content-Type')
      reply.header('access-control-max-age', '600')
    }
    reply.code(204).send()
  }
}

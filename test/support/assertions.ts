import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { SignJWT } from 'jose'

/** A client key pair for private_key_jwt tests (generated per run; nothing secret is committed). */
export interface ClientKeyPair {
  kid: string
  privateKey: KeyObject
  publicKey: KeyObject
  publicPem: string
}

export function clientKeyPair(kid = `k-${randomUUID().slice(0, 8)}`): ClientKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return { kid, privateKey, publicKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() }
}

export const CLIENT_SECRET_JWT = { id: 'csjwt-app', secret: 'a-plaintext-secret-of-more-than-32-bytes-for-hs256' }
export const PRIVATE_KEY_JWT_ID = 'pkjwt-app'
export const JWKS_URI_ID = 'pkjwt-uri-app'
export const PAR_REQUIRED_ID = 'par-app'

/** Machine-to-machine clients with RFC 7523 methods, and a PAR-only client, next to addTestClients'. */
export function addAssertionClients(yaml: any, opts: { key: Pick<ClientKeyPair, 'kid' | 'publicPem'>; jwksUri?: string }): void {
  const clients = yaml.identity_providers.oidc.clients as any[]
  const common = {
    authorization_policy: 'one_factor',
    consent_mode: 'implicit',
    scopes: ['openid', 'profile', 'email', 'groups'],
    grant_types: ['authorization_code', 'client_credentials'],
  }
  clients.push(
    {
      ...common,
      client_id: PRIVATE_KEY_JWT_ID,
      redirect_uris: ['https://pk.example.com/cb'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: [{ key_id: opts.key.kid, algorithm: 'RS256', use: 'sig', key: opts.key.publicPem }],
    },
    {
      ...common,
      client_id: CLIENT_SECRET_JWT.id,
      client_secret: `$plaintext$${CLIENT_SECRET_JWT.secret}`,
      redirect_uris: ['https://cs.example.com/cb'],
      token_endpoint_auth_method: 'client_secret_jwt',
      token_endpoint_auth_signing_alg: 'HS256',
    },
    {
      ...common,
      client_id: PAR_REQUIRED_ID,
      client_secret: '$plaintext$par-secret',
      redirect_uris: ['https://par.example.com/cb'],
      token_endpoint_auth_method: 'client_secret_basic',
      require_pushed_authorization_requests: true,
    },
  )
  if (opts.jwksUri) {
    clients.push({ ...common, client_id: JWKS_URI_ID, redirect_uris: ['https://pku.example.com/cb'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: opts.jwksUri })
    yaml.identity_providers.oidc.client_jwks_uri_allow_private_networks = true
  }
}

/** A signed client assertion; `claims` override the defaults, `header` the protected header. */
export async function assertion(
  key: KeyObject | Uint8Array,
  o: { clientId: string; aud: unknown; now: number; alg?: string; kid?: string; claims?: Record<string, unknown>; header?: Record<string, unknown> },
): Promise<string> {
  const alg = o.alg ?? 'RS256'
  const payload = { iss: o.clientId, sub: o.clientId, aud: o.aud, jti: randomUUID(), iat: o.now, exp: o.now + 60, ...o.claims }
  for (const [k, v] of Object.entries(payload)) if (v === undefined) delete (payload as Record<string, unknown>)[k]
  return new SignJWT(payload as Record<string, unknown>).setProtectedHeader({ alg, ...(o.kid ? { kid: o.kid } : {}), ...o.header }).sign(key)
}

/** An unsecured JWT (`alg: none`), which no endpoint may accept. */
export function unsignedAssertion(o: { clientId: string; aud: string; now: number }): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  return `${enc({ alg: 'none' })}.${enc({ iss: o.clientId, sub: o.clientId, aud: o.aud, jti: randomUUID(), exp: o.now + 60 })}.`
}

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

/** A loopback JWKS server whose behaviour the test switches; stopped by the test. */
export interface JwksServer {
  url: string
  /** 'serve' answers the current keys, 'hang' never answers, 'huge' streams `hugeBytes`. */
  mode: 'serve' | 'hang' | 'huge'
  keys: ClientKeyPair[]
  hugeBytes: number
  requests: number
  close(): Promise<void>
}

export async function startJwksServer(keys: ClientKeyPair[]): Promise<JwksServer> {
  const state: JwksServer = { url: '', mode: 'serve', keys, hugeBytes: 10 * 1024 * 1024, requests: 0, close: async () => {} }
  const server: Server = createServer((req, res) => {
    state.requests++
    if (state.mode === 'hang') return
    if (state.mode === 'huge') {
      res.writeHead(200, { 'content-type': 'application/json' })
      const chunk = Buffer.alloc(64 * 1024, 0x20)
      let sent = 0
      const pump = () => {
        while (sent < state.hugeBytes) {
          sent += chunk.length
          if (!res.write(chunk)) return void res.once('drain', pump)
        }
        res.end()
      }
      res.on('error', () => {})
      return pump()
    }
    const jwks = { keys: state.keys.map((k) => ({ ...k.publicKey.export({ format: 'jwk' }), kid: k.kid, alg: 'RS256', use: 'sig' })) }
    res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify(jwks))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  state.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/jwks.json`
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return state
}

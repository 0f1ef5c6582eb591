import { OAuthError } from './errors.js'
import type { Client } from './clients.js'
import type { OidcContext } from './context.js'
import type { Params } from './params.js'
import { truncate } from './params.js'

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none'

export interface AuthenticatedClient {
  client: Client
  method: ClientAuthMethod
}

const GENERIC = 'Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).'

/** RFC 6749 Appendix B: client_id and client_secret are form-urlencoded inside the Basic header. */
function formDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '))
  } catch {
    throw new OAuthError('invalid_request', 'The Basic authorization header is malformed: invalid percent-encoding.')
  }
}

export function parseBasicHeader(header: string): { id: string; secret: string } | undefined {
  const m = /^basic +(.*)$/i.exec(header)
  if (!m) return undefined
  const b64 = m[1]!.trim()
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    throw new OAuthError('invalid_request', 'The Basic authorization header is malformed.')
  }
  const decoded = Buffer.from(b64, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon === -1) throw new OAuthError('invalid_request', 'The Basic authorization header is malformed: no colon.')
  return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) }
}

function fail(detail: string, basic: boolean, clientId: string, status = 401): OAuthError {
  const err = new OAuthError('invalid_client', GENERIC, detail, status)
  if (clientId) err.clientId = clientId
  if (basic) err.withHeader('www-authenticate', 'Basic realm="latchkey", charset="UTF-8"')
  return err
}

/**
 * Client authentication for the token, introspection and revocation endpoints (security.md A1–A4,
 * I1). Credentials come from the Basic header or the form body, never the query. Both methods are
 * accepted unless the client pins `token_endpoint_auth_method`; public clients use `none`.
 */
export async function authenticateClient(
  ctx: OidcContext,
  authorization: string | undefined,
  body: Params,
  ip: string,
  opts: { allowNone: boolean },
): Promise<AuthenticatedClient> {
  const basic = authorization ? parseBasicHeader(authorization) : undefined
  if (authorization && !basic) throw fail('the Authorization header does not use the Basic scheme', false, '')
  const bodyId = body.get('client_id')
  const bodySecret = body.get('client_secret')
  if (basic && bodySecret !== undefined) {
    throw new OAuthError('invalid_request', 'The client sent credentials both in the Authorization header and in the body; use one method.')
  }
  if (basic && bodyId !== undefined && bodyId !== basic.id) {
    throw new OAuthError('invalid_request', "The 'client_id' in the body differs from the one in the Authorization header.")
  }
  let id: string
  let secret: string | undefined
  let method: ClientAuthMethod
  if (basic) {
    id = basic.id
    secret = basic.secret === '' ? undefined : basic.secret
    method = secret === undefined ? 'none' : 'client_secret_basic'
  } else if (bodySecret !== undefined) {
    if (bodyId === undefined) throw new OAuthError('invalid_request', "The 'client_secret' was sent without a 'client_id'.")
    id = bodyId
    secret = bodySecret
    method = 'client_secret_post'
  } else if (bodyId !== undefined) {
    id = bodyId
    method = 'none'
  } else {
    throw fail('no client credentials were sent', false, '')
  }
  const usedBasic = basic !== undefined
  const clientKey = `${id}\n${ip}`
  // Running checks count against the limit (FailureThrottle.acquire): parallel guesses wait.
  const releaseClient = await ctx.clientThrottle.acquire(clientKey, () => ctx.clock.now())
  const releaseIp = await ctx.ipThrottle.acquire(ip, () => ctx.clock.now())
  try {
    return await verifyClient(ctx, { id, secret, method, usedBasic, clientKey, ip, allowNone: opts.allowNone })
  } finally {
    releaseIp()
    releaseClient()
  }
}

async function verifyClient(
  ctx: OidcContext,
  a: { id: string; secret: string | undefined; method: ClientAuthMethod; usedBasic: boolean; clientKey: string; ip: string; allowNone: boolean },
): Promise<AuthenticatedClient> {
  const { id, secret, method, usedBasic, clientKey, ip } = a
  const now = ctx.clock.now()
  const wait = Math.max(ctx.clientThrottle.retryAfter(clientKey, now), ctx.ipThrottle.retryAfter(ip, now))
  if (wait > 0) {
    throw fail('too many failed client authentications from this address; throttled', usedBasic, id, 429).withHeader('retry-after', String(wait))
  }
  const recordFailure = () => {
    ctx.clientThrottle.recordFailure(clientKey, now)
    ctx.ipThrottle.recordFailure(ip, now)
  }

  const client = ctx.clients.get(id)
  if (!client) {
    // Cost parity with a wrong secret (security.md A3).
    if (secret !== undefined) await (await ctx.dummyDigest).verify(secret)
    recordFailure()
    throw fail(`client '${truncate(id)}' is not registered`, usedBasic, truncate(id))
  }
  if (client.config.public) {
    if (secret !== undefined) throw fail('a public client must not send a client secret', usedBasic, id)
    if (!a.allowNone) throw fail('a public client cannot authenticate at this endpoint', usedBasic, id)
    return { client, method: 'none' }
  }
  if (method === 'none') throw fail('no client secret was sent by a confidential client', usedBasic, id)
  const pinned = client.config.tokenEndpointAuthMethod
  if (pinned && pinned !== method) {
    throw fail(`the client is registered with token_endpoint_auth_method '${pinned}' but used '${method}'`, usedBasic, id)
  }
  if (!(await client.digest!.verify(secret!))) {
    recordFailure()
    throw fail('secret mismatch', usedBasic, id)
  }
  ctx.clientThrottle.reset(clientKey)
  return { client, method }
}

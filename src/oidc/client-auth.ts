import { OAuthError } from './errors.js'
import type { Client } from './clients.js'
import type { OidcContext } from './context.js'
import type { Params } from './params.js'
import { truncate } from './params.js'
import { hashArtifact } from './tokens.js'
import { AssertionError, JWT_BEARER_ASSERTION, claimedClientId, verifyClientAssertion } from './client-assertion.js'

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'client_secret_jwt' | 'private_key_jwt' | 'none'

export interface AuthenticatedClient {
  client: Client
  method: ClientAuthMethod
}

const GENERIC = 'Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).'

/**
 * Characters that RFC 6749 §2.3.1 asks clients to form-encode inside the Basic header and that
 * clients often send as they are (Python's requests-oauthlib among them): `+` reads as a space
 * and `%` starts an escape once decoded; `:` inside a client id splits it.
 */
const OFTEN_UNENCODED = /[+%:]/

/** True when a client id or secret contains characters that clients often fail to form-encode. */
export function hasOftenUnencodedCharacters(value: string): boolean {
  return OFTEN_UNENCODED.test(value)
}

/** One way of reading the credentials: the client id and secret together, never mixed. */
export interface CredentialReading {
  id: string
  secret: string
  /** The Basic header's bytes as sent, without the form-decoding of RFC 6749 Appendix B. */
  raw: boolean
}

/** RFC 6749 Appendix B form-decoding; undefined when the value is not valid percent-encoding. */
function formDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '))
  } catch {
    return undefined
  }
}

/**
 * The readings of a Basic header (issue #13): the form-decoded one (RFC 6749 Appendix B) first, then
 * the raw one when it differs, since many clients do not encode. A header whose percent-encoding does
 * not decode has only the raw reading. Undefined for another scheme; a broken base64 value or a
 * missing colon is invalid_request (docs/security.md A2).
 */
export function parseBasicHeader(header: string): CredentialReading[] | undefined {
  const m = /^basic +(.*)$/i.exec(header)
  if (!m) return undefined
  const b64 = m[1]!.trim()
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    throw new OAuthError('invalid_request', 'The Basic authorization header is malformed.')
  }
  const decoded = Buffer.from(b64, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon === -1) throw new OAuthError('invalid_request', 'The Basic authorization header is malformed: no colon.')
  const raw = { id: decoded.slice(0, colon), secret: decoded.slice(colon + 1), raw: true }
  const id = formDecode(raw.id)
  const secret = formDecode(raw.secret)
  if (id === undefined || secret === undefined) return [raw]
  if (id === raw.id && secret === raw.secret) return [{ id, secret, raw: false }]
  return [{ id, secret, raw: false }, raw]
}

function fail(detail: string, basic: boolean, clientId: string, status = 401): OAuthError {
  const err = new OAuthError('invalid_client', GENERIC, detail, status)
  if (clientId) err.clientId = clientId
  if (basic) err.withHeader('www-authenticate', 'Basic realm="latchkey", charset="UTF-8"')
  return err
}

export interface ClientAuthOptions {
  allowNone: boolean
  /** The issuer identifier the request reached (an accepted assertion `aud`). */
  issuer: string
  /** The full URL of the endpoint, also an accepted assertion `aud` (client-assertion.ts). */
  endpointUrl: string
}

/**
 * Client authentication for the token, PAR, introspection and revocation endpoints (docs/security.md
 * A1–A4, I1, J1–J6). Credentials come from the Basic header or the form body, never the query. Both
 * secret methods are accepted unless the client pins `token_endpoint_auth_method`; public clients use
 * `none`; a JWT client assertion (RFC 7523) only for a client registered with that JWT method.
 */
export async function authenticateClient(
  ctx: OidcContext,
  authorization: string | undefined,
  body: Params,
  opts: ClientAuthOptions,
): Promise<AuthenticatedClient> {
  if (body.get('client_assertion') !== undefined || body.get('client_assertion_type') !== undefined) {
    // RFC 6749 §2.3: one method per request.
    if (authorization !== undefined || body.get('client_secret') !== undefined) {
      throw new OAuthError('invalid_request', 'The client sent a client assertion together with other credentials; use one method.')
    }
    return authenticateWithAssertion(ctx, body, opts)
  }
  const basic = authorization ? parseBasicHeader(authorization) : undefined
  if (authorization && !basic) throw fail('the Authorization header does not use the Basic scheme', false, '')
  const bodyId = body.get('client_id')
  const bodySecret = body.get('client_secret')
  if (basic && bodySecret !== undefined) {
    throw new OAuthError('invalid_request', 'The client sent credentials both in the Authorization header and in the body; use one method.')
  }
  if (basic && bodyId !== undefined && !basic.some((r) => r.id === bodyId)) {
    throw new OAuthError('invalid_request', "The 'client_id' in the body differs from the one in the Authorization header.")
  }
  let readings: CredentialReading[]
  if (basic) {
    readings = bodyId === undefined ? basic : basic.filter((r) => r.id === bodyId)
  } else if (bodySecret !== undefined) {
    if (bodyId === undefined) throw new OAuthError('invalid_request', "The 'client_secret' was sent without a 'client_id'.")
    readings = [{ id: bodyId, secret: bodySecret, raw: false }]
  } else if (bodyId !== undefined) {
    readings = [{ id: bodyId, secret: '', raw: false }]
  } else {
    throw fail('no client credentials were sent', false, '')
  }
  const usedBasic = basic !== undefined
  const methodOf = (r: CredentialReading): ClientAuthMethod => (r.secret === '' ? 'none' : usedBasic ? 'client_secret_basic' : 'client_secret_post')

  // Each reading names its client; a reading is only ever checked against its own client's secret,
  // so `a+b` and `a b` stay two clients (issue #13).
  const known = readings.flatMap((r) => {
    const client = ctx.clients.get(r.id)
    return client ? [{ reading: r, client }] : []
  })
  if (known.length === 0) return refuseUnknown(ctx, readings[0]!, usedBasic)

  let refusal: OAuthError | undefined
  const candidates: Array<{ reading: CredentialReading; client: Client }> = []
  for (const k of known) {
    const method = methodOf(k.reading)
    const problem = checkMethod(k.client, method, opts.allowNone)
    if (problem === 'public') return { client: k.client, method: 'none' }
    if (problem) refusal ??= fail(problem, usedBasic, k.client.id)
    else candidates.push(k)
  }
  if (candidates.length === 0) throw refusal!

  const clients = [...new Set(candidates.map((c) => c.client))]
  // Running checks count against the limit (FailureThrottle.acquire): parallel guesses wait.
  const releases: Array<() => void> = []
  try {
    for (const c of clients) releases.push(await ctx.clientThrottle.acquire(c.id, () => ctx.clock.now()))
    return await verifyCandidates(ctx, candidates, clients, body, usedBasic)
  } finally {
    for (const release of releases.reverse()) release()
  }
}

/**
 * RFC 7523 §2.2 (docs/security.md J1–J6): the assertion names its client (`sub`/`iss`, equal to any
 * `client_id` sent); that client must be registered with client_secret_jwt or private_key_jwt.
 * Signature failures count against the client like wrong secrets (A4).
 */
async function authenticateWithAssertion(ctx: OidcContext, body: Params, opts: ClientAuthOptions): Promise<AuthenticatedClient> {
  const type = body.get('client_assertion_type')
  const assertion = body.get('client_assertion')
  if (type !== JWT_BEARER_ASSERTION) {
    throw new OAuthError('invalid_request', `The 'client_assertion_type' must be '${JWT_BEARER_ASSERTION}'.`)
  }
  if (assertion === undefined || assertion === '') throw new OAuthError('invalid_request', "The request is missing the 'client_assertion' parameter.")
  const claimed = claimedClientId(assertion)
  if (claimed === undefined) throw fail('the client assertion is not a JWT naming its client in sub/iss', false, '')
  const bodyId = body.get('client_id')
  if (bodyId !== undefined && bodyId !== claimed) {
    throw fail(`the client_id '${truncate(bodyId)}' differs from the assertion's subject '${truncate(claimed)}'`, false, truncate(bodyId))
  }
  const client = ctx.clients.get(claimed)
  if (!client) throw fail(`client '${truncate(claimed)}' is not registered`, false, truncate(claimed))
  // Only an HMAC secret can be guessed online: client_secret_jwt failures are throttled like wrong
  // secrets (A4, with the same way through for a request carrying a live artifact of the client);
  // a private_key_jwt signature cannot be guessed, so its failures lock nobody out.
  const guessable = client.config.tokenEndpointAuthMethod === 'client_secret_jwt'
  const now = ctx.clock.now()
  let voucher: string | undefined
  const wait = guessable ? ctx.clientThrottle.retryAfter(client.id, now) : 0
  if (wait > 0) {
    voucher = await vouchingArtifact(ctx, client.id, body, now)
    const vouchedWait = ctx.vouchedThrottle.retryAfter(client.id, now)
    if (voucher === undefined || vouchedWait > 0) {
      throw fail('too many failed client authentications for this client; throttled', false, client.id, 429).withHeader('retry-after', String(Math.max(wait, vouchedWait)))
    }
  }
  const release = guessable ? await ctx.clientThrottle.acquire(client.id, () => ctx.clock.now()) : () => {}
  try {
    await verifyClientAssertion(ctx, client, assertion, { issuer: opts.issuer, endpointUrl: opts.endpointUrl })
  } catch (err) {
    if (!(err instanceof AssertionError)) throw err
    if (guessable && err.badSignature) {
      if (voucher === undefined) ctx.clientThrottle.recordFailure(client.id, ctx.clock.now())
      else {
        ctx.vouchedThrottle.recordFailure(client.id, ctx.clock.now())
        ctx.spentArtifacts.add(voucher, ctx.clock.now())
      }
    }
    throw fail(err.reason, false, client.id)
  } finally {
    release()
  }
  return { client, method: client.config.tokenEndpointAuthMethod as ClientAuthMethod }
}

/** Why this client may not authenticate with this method here; 'public' when it is done already. */
function checkMethod(client: Client, method: ClientAuthMethod, allowNone: boolean): string | 'public' | undefined {
  if (client.config.public) {
    if (method !== 'none') return 'a public client must not send a client secret'
    if (!allowNone) return 'a public client cannot authenticate at this endpoint'
    return 'public'
  }
  if (method === 'none') return 'no client secret was sent by a confidential client'
  const pinned = client.config.tokenEndpointAuthMethod
  if (pinned && pinned !== method) return `the client is registered with token_endpoint_auth_method '${pinned}' but used '${method}'`
  return undefined
}

async function refuseUnknown(ctx: OidcContext, reading: CredentialReading, usedBasic: boolean): Promise<never> {
  const id = truncate(reading.id)
  // Cost parity with a wrong secret (docs/security.md A3), within a bounded budget of KDF work (A4): the
  // refusal is the same either way, and nothing is counted against any known client or address.
  if (reading.secret !== '') {
    const release = ctx.unknownClientWork.tryStart(ctx.clock.now())
    if (release) {
      try {
        await (await ctx.dummyDigest).verify(reading.secret)
      } finally {
        release()
      }
    }
  }
  throw fail(`client '${id}' is not registered`, usedBasic, id)
}

/**
 * Verifies the secret of each reading against its own client's digest (constant-time comparison or
 * the KDF, docs/security.md A3). A throttled client is refused with 429 before any check, unless the
 * request carries a live code or token of that client (see vouchingArtifact): a flood of wrong
 * secrets must not deny the relying party that holds the secret (docs/security.md A4).
 */
async function verifyCandidates(
  ctx: OidcContext,
  candidates: Array<{ reading: CredentialReading; client: Client }>,
  clients: Client[],
  body: Params,
  usedBasic: boolean,
): Promise<AuthenticatedClient> {
  const now = ctx.clock.now()
  const first = candidates[0]!.client
  const vouchers = new Map<Client, string>()
  for (const client of clients) {
    const wait = ctx.clientThrottle.retryAfter(client.id, now)
    if (wait === 0) continue
    const voucher = await vouchingArtifact(ctx, client.id, body, now)
    const vouchedWait = ctx.vouchedThrottle.retryAfter(client.id, now)
    if (voucher === undefined || vouchedWait > 0) {
      throw fail('too many failed client authentications for this client; throttled', usedBasic, client.id, 429).withHeader('retry-after', String(Math.max(wait, vouchedWait)))
    }
    vouchers.set(client, voucher)
  }

  for (const { reading, client } of candidates) {
    if (await client.digest!.verify(reading.secret)) {
      // No reset of the client's failures: they may be someone else's guesses, which a success of
      // the rightful client must not forgive.
      if (reading.raw) noteUnencodedBasic(ctx, client.id)
      return { client, method: usedBasic ? 'client_secret_basic' : 'client_secret_post' }
    }
  }
  // One failure per client and request, however many readings were tried (issue #13).
  for (const client of clients) {
    const voucher = vouchers.get(client)
    if (voucher === undefined) ctx.clientThrottle.recordFailure(client.id, now)
    else {
      ctx.vouchedThrottle.recordFailure(client.id, now)
      ctx.spentArtifacts.add(voucher, now)
    }
  }
  const hint =
    usedBasic && candidates.some((c) => hasOftenUnencodedCharacters(c.reading.secret))
      ? " (the secret contains '+', '%' or ':', which clients often send without the form-encoding of RFC 6749 §2.3.1: it was compared both as sent and form-decoded, and neither matched)"
      : ''
  throw fail(`secret mismatch${hint}`, usedBasic, first.id)
}

/**
 * The hash of a live authorization code, refresh token or access token issued to this client that
 * the request carries (`code`, `refresh_token`, `token`), unless it already vouched for a failed
 * request. Only the rightful relying party, or someone who signed in through it, holds one; an
 * anonymous flood does not, so it cannot lock the client out.
 */
async function vouchingArtifact(ctx: OidcContext, clientId: string, body: Params, now: number): Promise<string | undefined> {
  const code = body.get('code')
  if (code !== undefined && (ctx.tokens.isWellFormed('ac', code) || ctx.codes.open(code) !== undefined)) {
    const hash = hashArtifact(code)
    // A peek: the refusing `accept` leaves the code unconsumed.
    if (!ctx.spentArtifacts.has(hash, now) && (await ctx.storage.consumeAuthorizationCode(hash, clientId, now, () => false)).kind === 'refused') return hash
  }
  for (const value of [body.get('refresh_token'), body.get('token')]) {
    if (value === undefined || !(ctx.tokens.isWellFormed('rt', value) || ctx.tokens.isWellFormed('at', value))) continue
    const hash = hashArtifact(value)
    if (ctx.spentArtifacts.has(hash, now)) continue
    if ((await ctx.storage.findToken(hash, now))?.clientId === clientId) return hash
  }
  return undefined
}

/** Once per client and process: the admin learns why a raw secret works here and may fail elsewhere. */
function noteUnencodedBasic(ctx: OidcContext, clientId: string): void {
  if (ctx.unencodedBasicNoted.has(clientId)) return
  ctx.unencodedBasicNoted.add(clientId)
  ctx.log.info(
    { client_id: clientId },
    `client '${clientId}' sends its Basic credentials without the form-encoding of RFC 6749 §2.3.1; they were accepted as sent`,
  )
}

import { randomUUID } from 'node:crypto'
import { compactVerify, decodeProtectedHeader } from 'jose'
import { sha256Hex } from '../common/hashing.js'
import type { LoadedSession } from '../session/types.js'
import type { ConsentSession, GrantContext } from '../storage/storage.js'
import type { FormParams } from '../server/form.js'
import { OAuthError } from './errors.js'
import { normaliseResponseType, type Client } from './clients.js'
import type { OidcContext } from './context.js'
import { CONSENT_SESSION_SECONDS } from './context.js'
import { openAuthAfter, sealAuthAfter } from './auth-after.js'
import { MAX_TARGET_LENGTH as MAX_WORKFLOW_RESUME, PORTAL_FRESH_SIGN_IN } from '../portal/redirect.js'
import { Params } from './params.js'
import { checkCodeChallenge } from './pkce.js'
import { RESPONSE_MODES_SUPPORTED, RESPONSE_TYPES_SUPPORTED } from './discovery.js'
import { idTokenAudience, idTokenScopeClaims } from './claims.js'
import { issueIdToken } from './id-token.js'
import { issueAccessToken } from './access-token.js'
import { lifespansFor } from './lifespans.js'
import { requestedAudience } from './audience.js'
import { keyFor } from './keys.js'
import type { SealedCode } from './code-seal.js'
import { hashArtifact } from './tokens.js'

export type AuthorizeOutcome =
  /** docs/security.md ERRPAGE: client or redirect_uri not verified; nothing goes to any redirect URI. */
  | { kind: 'error-page'; error: OAuthError }
  /** `workflow`: the caller remembers it in the session (src/session/workflows.ts) before answering. */
  | { kind: 'redirect'; status: 302 | 303; location: string; clientId?: string; error?: OAuthError; workflow?: { id: string; resume: string } }
  | { kind: 'form_post'; action: string; params: Record<string, string>; clientId: string; error?: OAuthError }

export interface AuthorizeInput {
  params: Params
  session: LoadedSession | null
  issuer: string
  method: 'GET' | 'POST'
}

const SUPPORTED_TYPES = new Set(RESPONSE_TYPES_SUPPORTED.map(normaliseResponseType))
const PROMPTS = new Set(['none', 'login', 'consent', 'select_account'])
/** RFC 9126 §2.2: a pushed request's request_uri is a URN in this namespace. */
export const REQUEST_URI_PREFIX = 'urn:ietf:params:oauth:request_uri:'
/** Internal marker added to the resume URL after a forced re-authentication (prompt=login, max_age). */
export const AUTH_AFTER_PARAM = 'auth_after'

const INVALID_STATE =
  "The state is missing or does not have enough characters and is therefore considered too weak. Request parameter 'state' must be at least be %d characters long to ensure sufficient entropy."

function codePoints(s: string): number {
  let n = 0
  for (const _ of s) n++
  return n
}

function errorPage(code: 'invalid_request' | 'invalid_client' | 'invalid_request_uri', description: string, detail?: string, clientId?: string): AuthorizeOutcome {
  const error = new OAuthError(code, description, detail, 400)
  if (clientId) error.clientId = clientId
  return { kind: 'error-page', error }
}

/** JARM §4.1: a signed authorization response lives this long (it is used once, at once). */
export const JARM_LIFETIME_SECONDS = 600

/**
 * Serialises authorization response parameters in the given response mode (OAuth 2.0 Multiple
 * Response Types, Form Post, JARM). A `*.jwt` mode sends one `response` parameter: a JWT of the
 * parameters with iss, aud and exp, signed with the client's `authorization_signed_response_*` key
 * (RS256 by default).
 */
export async function authorizationResponse(
  ctx: OidcContext,
  target: VerifiedTarget,
  mode: string,
  params: Record<string, string>,
  issuer: string,
  error?: OAuthError,
): Promise<AuthorizeOutcome> {
  const { redirectUri } = target
  const clientId = target.client.id
  if (mode.endsWith('.jwt')) {
    const now = ctx.clock.now()
    const choice = target.client.config.authorizationSigning ?? { alg: 'RS256' as const }
    const response = await keyFor(ctx.keys, choice).signJwt({ ...params, iss: issuer, aud: clientId, exp: now + JARM_LIFETIME_SECONDS, iat: now })
    params = { response }
    mode = mode.slice(0, -'.jwt'.length)
  }
  if (mode === 'form_post') return { kind: 'form_post', action: redirectUri, params, clientId, ...(error ? { error } : {}) }
  const qs = new URLSearchParams(params).toString()
  const location = mode === 'fragment' ? `${redirectUri}#${qs}` : `${redirectUri}${redirectUri.includes('?') ? '&' : '?'}${qs}`
  // RFC 9700 §4.12: 303 so a POSTed request is never replayed to the client.
  return { kind: 'redirect', status: 303, location, clientId, ...(error ? { error } : {}) }
}

function toRecord(p: Params): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(p.raw)) if (typeof v === 'string') out[k] = v
  return out
}

/**
 * The authorization endpoint (docs/authelia-compat.md §2.3–2.4; docs/security.md R1–R3, S1, S3, P2, P4, Q1–Q6, O2).
 * Order: client_id and redirect_uri first (errors on a page), then every other check redirected to
 * the client with state and iss, then sign-in level, then consent, then the response.
 */
export async function authorize(ctx: OidcContext, input: AuthorizeInput): Promise<AuthorizeOutcome> {
  const now = ctx.clock.now()
  const resumed = await resumeConsent(ctx, input, now)
  if ('kind' in resumed) return resumed
  const pushed = await resolvePushedRequest(ctx, resumed.params, now)
  if ('kind' in pushed) return pushed
  const target = verifyClientAndRedirectUri(ctx, pushed.params)
  if ('kind' in target) return target
  const shape = readResponseShape(target, pushed.params)
  try {
    // Y3: a client (or a provider) that requires pushed requests gets nothing from a plain one.
    if (target.client.parRequired && !pushed.pushed) {
      throw new OAuthError('invalid_request', 'Pushed Authorization Requests are required for this client: push the request and send its request_uri.', 'require_pushed_authorization_requests')
    }
    const request = { ...(await checkRequest(ctx, target, shape, pushed.params)), ...(pushed.pushed ? { pushed: pushed.pushed } : {}) }
    const signedIn = await checkSignIn(ctx, input, request, now)
    if ('kind' in signedIn) return signedIn
    const granted = await settleConsent(ctx, input, request, signedIn, resumed.consent, now)
    if ('kind' in granted) return granted
    return await issueResponse(ctx, input, request, signedIn, granted, now)
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err
    // Y2: an error sent to the client ends the pushed request too (already spent: nothing changes).
    if (pushed.pushed) await ctx.storage.consumePushedAuthorizationRequest(pushed.pushed.requestHash, target.client.id, now)
    return redirectError(ctx, input, target, shape, err)
  }
}

/** The client and its verified redirect_uri: from here on, errors go to that URI (S1, S3). */
interface VerifiedTarget {
  client: Client
  redirectUri: string
}

/** What decides how the response (or a redirected error) is sent. */
interface ResponseShape {
  state: string | undefined
  rawType: string | undefined
  responseType: string | undefined
  words: Set<string>
  returnsTokens: boolean
  rawMode: string | undefined
  modeAcceptable: boolean
  mode: string
}

/** A request that passed every check (Q1–Q5, P2, P4); what the later steps need. */
interface CheckedRequest extends VerifiedTarget {
  params: Params
  shape: ResponseShape
  scopes: string[]
  audience: string[]
  nonce: string | undefined
  pkce: ReturnType<typeof checkCodeChallenge> | undefined
  prompt: Set<string>
  maxAge: number | undefined
  hintSubject: string | undefined
  /** Set when the parameters came from a pushed request (RFC 9126): consumed with the response. */
  pushed?: PushedReference
}

/** The pushed request behind an authorization request, as the resume URLs carry it. */
interface PushedReference {
  requestUri: string
  requestHash: string
}

/** The signed-in user, at the client's level and fresh enough. */
interface SignedIn {
  session: LoadedSession
  username: string
  subject: string
  authTime: number
}

interface Granted {
  scopes: string[]
  audience: string[]
}

/**
 * O2: resuming after consent goes through the server-side consent session bound to this session;
 * the stored request replaces whatever the URL says.
 */
async function resumeConsent(
  ctx: OidcContext,
  input: AuthorizeInput,
  now: number,
): Promise<{ params: Params; consent?: ConsentSession } | AuthorizeOutcome> {
  const params = input.params
  if (params.isRepeated('consent_id')) return errorPage('invalid_request', "The request parameter 'consent_id' must be sent once.")
  const consentId = params.get('consent_id')
  if (consentId === undefined) return { params }
  const session = input.session
  const consent = await ctx.storage.findConsentSession(consentId.slice(0, 100))
  if (!consent || !session || consent.sessionId !== sha256Hex(session.id) || consent.expiresAt <= now) {
    return errorPage('invalid_request', 'The consent session is unknown, has expired, or belongs to another sign-in session.', 'consent_id not valid for this session', consent?.clientId)
  }
  return { params: new Params(consent.form as FormParams), consent }
}

/**
 * RFC 9126 §4 (docs/security.md Y1): `request_uri` + `client_id` stand for the request pushed by
 * that client, unused and unexpired; its parameters replace the URL's (only the sealed `auth_after`
 * of a forced sign-in is kept). It is only looked at here; the response consumes it.
 */
async function resolvePushedRequest(ctx: OidcContext, params: Params, now: number): Promise<{ params: Params; pushed?: PushedReference } | AuthorizeOutcome> {
  if (params.get('request_uri') === undefined && !params.isRepeated('request_uri')) return { params }
  if (params.isRepeated('request_uri') || params.isRepeated('client_id')) return errorPage('invalid_request', "The request parameters 'request_uri' and 'client_id' must be sent once.")
  const requestUri = params.get('request_uri')!
  const clientId = params.get('client_id')
  if (clientId === undefined) return errorPage('invalid_request', "The request is missing the 'client_id' parameter.")
  const client = ctx.clients.get(clientId)
  if (!client) return errorPage('invalid_client', 'The requested OAuth 2.0 Client does not exist.', `client '${clientId.slice(0, 64)}' is not registered`)
  const unusable = (detail: string) =>
    errorPage('invalid_request_uri', 'The request_uri is unknown, has expired, was already used, or was pushed by another client.', detail, client.id)
  if (!requestUri.startsWith(REQUEST_URI_PREFIX) || requestUri.length > 200) return unusable('not a request_uri of this provider')
  const requestHash = sha256Hex(requestUri)
  const stored = await ctx.storage.findPushedAuthorizationRequest(requestHash, client.id, now)
  if (!stored) return unusable('no live pushed request of this client under this request_uri')
  const form: Record<string, string> = { ...stored.form }
  const authAfter = params.get(AUTH_AFTER_PARAM)
  if (authAfter !== undefined) form[AUTH_AFTER_PARAM] = authAfter
  return { params: new Params(form as FormParams), pushed: { requestUri, requestHash } }
}

/** What resumes this request after the portal or the consent page: the pushed reference, else every parameter. */
function resumeRecord(r: CheckedRequest): Record<string, string> {
  if (!r.pushed) return toRecord(r.params)
  const out: Record<string, string> = { client_id: r.client.id, request_uri: r.pushed.requestUri }
  const authAfter = r.params.get(AUTH_AFTER_PARAM)
  if (authAfter !== undefined) out[AUTH_AFTER_PARAM] = authAfter
  return out
}

/** R1, R2: client_id, then redirect_uri by exact string comparison; failures on a page (ERRPAGE). */
function verifyClientAndRedirectUri(ctx: OidcContext, params: Params): VerifiedTarget | AuthorizeOutcome {
  if (params.isRepeated('client_id')) return errorPage('invalid_request', "The request parameter 'client_id' must be sent once.")
  const clientId = params.get('client_id')
  if (clientId === undefined) return errorPage('invalid_request', "The request is missing the 'client_id' parameter.")
  const client = ctx.clients.get(clientId)
  if (!client) return errorPage('invalid_client', 'The requested OAuth 2.0 Client does not exist.', `client '${clientId.slice(0, 64)}' is not registered`)
  if (params.isRepeated('redirect_uri')) return errorPage('invalid_request', "The request parameter 'redirect_uri' must be sent once.", undefined, client.id)
  // Required even when the client has a single registered URI (OIDC Core §3.1.2.1, docs/security.md R2;
  // Authelia, through fosite, would take that one).
  const redirectUri = params.get('redirect_uri')
  if (redirectUri === undefined) {
    return errorPage('invalid_request', "The request is missing the 'redirect_uri' parameter.", undefined, client.id)
  }
  if (!client.redirectUris.has(redirectUri)) {
    return errorPage(
      'invalid_request',
      "The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls.",
      'redirect_uri is compared by exact string',
      client.id,
    )
  }
  return { client, redirectUri }
}

function readResponseShape({ client }: VerifiedTarget, params: Params): ResponseShape {
  const state = params.isRepeated('state') ? undefined : params.get('state')
  const rawType = params.isRepeated('response_type') ? undefined : params.get('response_type')
  const responseType = rawType === undefined ? undefined : normaliseResponseType(rawType)
  const words = new Set(responseType?.split(' ') ?? [])
  const returnsTokens = words.has('token') || words.has('id_token')
  const rawMode = params.isRepeated('response_mode') ? undefined : params.get('response_mode')
  // JARM §2.3.4: `jwt` is query.jwt for a code, fragment.jwt when tokens come back; a client
  // with authorization_signed_response_alg may use the JWT modes without listing them.
  const wanted = rawMode === 'jwt' ? (returnsTokens ? 'fragment.jwt' : 'query.jwt') : rawMode
  const registered = rawMode !== undefined && (client.responseModes.has(rawMode) || (rawMode.endsWith('jwt') && client.config.authorizationSigning !== undefined))
  const queryWithTokens = (wanted === 'query' || wanted === 'query.jwt') && returnsTokens
  const modeAcceptable = rawMode !== undefined && RESPONSE_MODES_SUPPORTED.includes(rawMode) && registered && !queryWithTokens
  const mode = modeAcceptable ? wanted! : returnsTokens ? 'fragment' : 'query'
  return { state, rawType, responseType, words, returnsTokens, rawMode, modeAcceptable, mode }
}

/** S1, S3: an error sent to the verified redirect_uri with state and iss (RFC 9207). */
async function redirectError(ctx: OidcContext, input: AuthorizeInput, target: VerifiedTarget, shape: ResponseShape, err: OAuthError): Promise<AuthorizeOutcome> {
  err.clientId = target.client.id
  const out: Record<string, string> = { error: err.code, error_description: err.description }
  if (ctx.debug && err.detail) out.error_description = `${err.description} ${err.detail}`
  out.error_description = out.error_description!.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, ' ')
  if (shape.state !== undefined) out.state = shape.state
  out.iss = input.issuer
  return authorizationResponse(ctx, target, shape.mode, out, input.issuer, err)
}

/** Every check after the redirect_uri (Q1–Q5, P2, P4, state and nonce entropy); throws OAuthError. */
async function checkRequest(ctx: OidcContext, target: VerifiedTarget, shape: ResponseShape, params: Params): Promise<CheckedRequest> {
  const { client } = target
  const { responseType, rawType, words, returnsTokens, rawMode, modeAcceptable, state } = shape
  params.assertNoDuplicates()
  // Q3: request objects are not supported and never fetched; a request_uri is only ever a pushed
  // request (resolved before this point), so one left here was pushed inside a pushed request.
  if (params.get('request') !== undefined) throw new OAuthError('request_not_supported', 'The OP does not support use of the request parameter.')
  if (params.get('request_uri') !== undefined) throw new OAuthError('invalid_request', "The 'request_uri' parameter must not be pushed (RFC 9126 §2.1).")
  // Q2
  if (responseType === undefined) throw new OAuthError('invalid_request', "The request is missing the 'response_type' parameter.")
  if (!SUPPORTED_TYPES.has(responseType)) throw new OAuthError('unsupported_response_type', `The authorization server does not support the response_type '${rawType!.slice(0, 64)}'.`)
  if (!client.responseTypes.has(responseType)) {
    throw new OAuthError('unsupported_response_type', `The client is not allowed to request response_type '${rawType!.slice(0, 64)}'.`, "not in the client's response_types")
  }
  if (rawMode !== undefined && !modeAcceptable) {
    throw new OAuthError('invalid_request', `The response_mode '${rawMode.slice(0, 32)}' is not allowed for this client and response type.`)
  }
  if ((words.has('code') || responseType === 'none') && !client.grantTypes.has('authorization_code')) {
    throw new OAuthError('unauthorized_client', "The client is not allowed to use the 'authorization_code' grant.")
  }
  if (returnsTokens && !client.grantTypes.has('implicit')) {
    throw new OAuthError('unauthorized_client', "The client is not allowed to use the 'implicit' grant.")
  }
  // Q1: openid required; every scope must be the client's; order ignored.
  const scopes = [...new Set((params.get('scope') ?? '').split(' ').filter(Boolean))]
  if (!scopes.includes('openid')) throw new OAuthError('invalid_scope', "The 'openid' scope is required.")
  for (const s of scopes) {
    if (!client.scopes.has(s)) throw new OAuthError('invalid_scope', `The OAuth 2.0 Client is not allowed to request scope '${s.slice(0, 64)}'.`)
  }
  const audience = requestedAudience(client, params.get('audience'))
  // State (issue #4): required with minimum_parameter_entropy characters, unless a PKCE S256
  // challenge protects the request (RFC 9700 §2.1).
  const minEntropy = ctx.oidc.minimumParameterEntropy
  const challenge = params.get('code_challenge')
  const challengeMethod = params.get('code_challenge_method')
  if (minEntropy > 0) {
    const s256 = challenge !== undefined && challengeMethod === 'S256'
    if (state === undefined ? !s256 : codePoints(state) < minEntropy) {
      throw new OAuthError('invalid_state', INVALID_STATE.replace('%d', String(minEntropy)), state === undefined ? 'state is missing' : 'state is too short')
    }
  }
  const nonce = params.get('nonce')
  if (nonce === undefined && words.has('id_token')) {
    throw new OAuthError('invalid_request', "The 'nonce' parameter is required when the response type returns an ID token.")
  }
  if (nonce !== undefined && minEntropy > 0 && codePoints(nonce) < minEntropy) {
    throw new OAuthError('invalid_request', `Parameter 'nonce' must be at least ${minEntropy} characters long to ensure sufficient entropy.`)
  }
  // P2, P4
  const pkce = words.has('code')
    ? checkCodeChallenge(challenge, challengeMethod, {
        required: client.pkceRequired,
        plainAllowed: ctx.oidc.enablePkcePlainChallenge,
        ...(client.config.pkceChallengeMethod ? { pinnedMethod: client.config.pkceChallengeMethod } : {}),
      })
    : undefined
  // Q4
  const prompt = new Set((params.get('prompt') ?? '').split(' ').filter(Boolean))
  for (const p of prompt) if (!PROMPTS.has(p)) throw new OAuthError('invalid_request', `The prompt value '${p.slice(0, 32)}' is not supported.`)
  if (prompt.has('none') && prompt.size > 1) throw new OAuthError('invalid_request', "The prompt value 'none' cannot be combined with other values.")
  const maxAgeRaw = params.get('max_age')
  if (maxAgeRaw !== undefined && !/^[0-9]{1,10}$/.test(maxAgeRaw)) throw new OAuthError('invalid_request', "The 'max_age' parameter must be a non-negative integer.")
  const maxAge = maxAgeRaw === undefined ? undefined : Number(maxAgeRaw)
  // Q5: a malformed or foreign id_token_hint is refused; other optional parameters are ignored.
  const hintSubject = await checkIdTokenHint(ctx, params.get('id_token_hint'))
  return { ...target, params, shape, scopes, audience, nonce, pkce, prompt, maxAge, hintSubject }
}

/**
 * The sign-in level against the client's authorization_policy, and Q4's fresh sign-in (prompt=login,
 * select_account, max_age). Below either, the browser goes to the portal (or login_required with
 * prompt=none).
 */
async function checkSignIn(ctx: OidcContext, input: AuthorizeInput, r: CheckedRequest, now: number): Promise<SignedIn | AuthorizeOutcome> {
  const { session } = input
  const { client, prompt, maxAge } = r
  const required = client.config.authorizationPolicy === 'one_factor' ? 1 : 2
  let level = session?.data.username ? session.data.level : 0
  const username = session?.data.username
  if (username !== undefined && level > 0 && !(await ctx.users.findUser(username))) level = 0
  const authTime = (required === 1 ? session?.data.firstFactorAt : (session?.data.secondFactorAt ?? session?.data.firstFactorAt)) ?? 0
  // select_account (OIDC Core §3.1.2.1): the portal has one account per browser, so choosing one
  // is signing in again, where another account can be used; that is what login does.
  const reauthenticate = prompt.has('login') || prompt.has('select_account')
  const authAfter = openAuthAfter(ctx.authAfterKey, r.params.get(AUTH_AFTER_PARAM), client.id, now)
  const freshEnough = authAfter !== undefined && authTime >= authAfter
  // Any signed-in session, 1FA below a two_factor client included: prompt=login must ask for the
  // password again, not just the missing code.
  const needsFresh = level >= 1 && !freshEnough && (authAfter !== undefined || reauthenticate || (maxAge !== undefined && now - authTime > maxAge))
  // After any sign-in hop, the resumed request must not ask for yet another one.
  const wantsFresh = !freshEnough && (authAfter !== undefined || reauthenticate || maxAge !== undefined)
  if (level < required || needsFresh) {
    if (prompt.has('none')) {
      throw new OAuthError('login_required', 'The Authorization Server requires End-User authentication.', level < required ? `the session is below the client's ${client.config.authorizationPolicy} policy` : 'a fresh sign-in is required (max_age)')
    }
    return redirectToPortal(ctx, input, resumeRecord(r), { needsFresh, wantsFresh, level, required, now })
  }
  const subject = await subjectFor(ctx, client.config.sectorIdentifier, username!)
  if (r.hintSubject !== undefined && r.hintSubject !== subject && prompt.has('none')) {
    throw new OAuthError('login_required', 'The End-User identified by id_token_hint is not the signed-in user.')
  }
  return { session: session!, username: username!, subject, authTime }
}

/** Consent (docs/authelia-compat.md §4): implicit, pre-configured (remembered), explicit (page). */
async function settleConsent(
  ctx: OidcContext,
  input: AuthorizeInput,
  r: CheckedRequest,
  user: SignedIn,
  consent: ConsentSession | undefined,
  now: number,
): Promise<Granted | AuthorizeOutcome> {
  const { client } = r
  const consentPage = (id: string): AuthorizeOutcome => ({ kind: 'redirect', status: input.method === 'POST' ? 303 : 302, location: `${input.issuer}/consent?id=${encodeURIComponent(id)}`, clientId: client.id })
  if (consent) {
    if (consent.clientId !== client.id || consent.username !== user.username) {
      return errorPage('invalid_request', 'The consent session does not belong to this request.', 'consent session of another client or user', client.id)
    }
    if (consent.respondedAt === undefined) return consentPage(consent.id)
    if (!(await ctx.storage.markConsentSessionUsed(consent.id))) {
      throw new OAuthError('server_error', 'Could not perform consent.', 'the consent session was already used')
    }
    if (!consent.granted) throw new OAuthError('access_denied', 'The resource owner or authorization server denied the request.', 'the user refused consent')
    return { scopes: consent.grantedScopes ?? consent.requestedScopes, audience: consent.grantedAudience ?? consent.requestedAudience }
  }
  const mode = client.config.consentMode
  const remembered =
    mode === 'pre-configured' && !r.prompt.has('consent') ? await ctx.storage.findPreConfiguredConsent(user.subject, client.id, r.scopes, r.audience, now) : undefined
  if (mode === 'implicit' || remembered) return { scopes: r.scopes, audience: r.audience }
  if (r.prompt.has('none')) throw new OAuthError('consent_required', 'The Authorization Server requires End-User consent.')
  const id = randomUUID()
  const form = resumeRecord(r)
  delete form.consent_id
  delete form[AUTH_AFTER_PARAM]
  await ctx.storage.saveConsentSession({
    id,
    clientId: client.id,
    subject: user.subject,
    username: user.username,
    sessionId: sha256Hex(user.session.id),
    requestedScopes: r.scopes,
    requestedAudience: r.audience,
    form,
    createdAt: now,
    expiresAt: now + CONSENT_SESSION_SECONDS,
    used: false,
  })
  return consentPage(id)
}

/** The response: code, tokens and ID token as the response type asks, in the response mode. */
async function issueResponse(ctx: OidcContext, input: AuthorizeInput, r: CheckedRequest, user: SignedIn, granted: Granted, now: number): Promise<AuthorizeOutcome> {
  const { client, shape, nonce, pkce } = r
  // Y1: one response per pushed request, whichever instance or tab gets here first.
  if (r.pushed && !(await ctx.storage.consumePushedAuthorizationRequest(r.pushed.requestHash, client.id, now))) {
    throw new OAuthError('invalid_request', 'The request_uri was already used or has expired.', 'pushed request consumed by an earlier response')
  }
  const { words } = shape
  const credentialFingerprint = (await ctx.users.findUser(user.username))?.credentialFingerprint
  const grant: GrantContext = {
    grantId: randomUUID(),
    clientId: client.id,
    username: user.username,
    subject: user.subject,
    scopes: granted.scopes,
    audience: granted.audience,
    authTime: user.authTime,
    amr: user.session.data.amr,
    ...(nonce !== undefined ? { nonce } : {}),
    requestedAt: now,
    // The session's logout id (`sid` in ID tokens; Front-/Back-Channel Logout 1.0), not its cookie.
    ...(user.session.data.sid !== undefined ? { sessionId: user.session.data.sid } : {}),
    ...(credentialFingerprint ? { credentialFingerprint } : {}),
  }
  await recordSessionClient(ctx, client, user, input.issuer, now)
  const out: Record<string, string> = {}
  let code: string | undefined
  let accessToken: string | undefined
  if (words.has('code')) {
    const record: SealedCode = {
      ...grant,
      redirectUri: r.redirectUri,
      // Always sent now; the field stays for codes stored before redirect_uri became required.
      redirectUriSent: true,
      ...(pkce ? { codeChallenge: pkce.challenge, codeChallengeMethod: pkce.method } : {}),
      issuedAt: now,
      expiresAt: now + lifespansFor(ctx.oidc, client.config, 'authorize_code').authorizeCodeSeconds,
    }
    // The code carries its record (code-seal.ts); the row decides whether it is still live.
    code = ctx.codes.seal(record)
    await ctx.storage.saveAuthorizationCode({ ...record, codeHash: hashArtifact(code) })
    out.code = code
  }
  const implicit = lifespansFor(ctx.oidc, client.config, 'implicit')
  if (words.has('token')) {
    const found = await ctx.users.findUser(user.username)
    const expiresAt = now + implicit.accessTokenSeconds
    const at = await issueAccessToken(ctx, client, grant, { issuer: input.issuer, now, expiresAt, ...(found ? { user: found } : {}) })
    await ctx.storage.saveToken({ ...grant, tokenHash: at.hash, kind: 'access', issuedAt: now, expiresAt })
    accessToken = at.value
    out.access_token = at.value
    out.token_type = 'Bearer'
    out.expires_in = String(implicit.accessTokenSeconds)
  }
  if (words.has('id_token')) {
    const found = (await ctx.users.findUser(user.username))!
    out.id_token = await issueIdToken(ctx.keys, {
      issuer: input.issuer,
      clientId: client.id,
      subject: user.subject,
      audience: idTokenAudience(client.config, granted.audience),
      authTime: user.authTime,
      amr: grant.amr,
      requestedAt: now,
      ...(nonce !== undefined ? { nonce } : {}),
      ...(user.session.data.sid !== undefined ? { sid: user.session.data.sid } : {}),
      ...(accessToken ? { accessToken } : {}),
      ...(code ? { code } : {}),
      now,
      lifespanSeconds: implicit.idTokenSeconds,
      alg: client.config.idTokenSigningAlgorithm,
      ...(client.config.idTokenSigningKeyId !== undefined ? { kid: client.config.idTokenSigningKeyId } : {}),
      claims: idTokenScopeClaims(client.config, found, granted.scopes),
    })
  }
  out.scope = granted.scopes.join(' ')
  if (shape.state !== undefined) out.state = shape.state
  out.iss = input.issuer
  return authorizationResponse(ctx, r, shape.mode, out, input.issuer)
}

/**
 * Front-/Back-Channel Logout: remember that this client holds a sign-in of the session, so signing
 * the session out reaches it. Only clients with a logout URI: others cost no write.
 */
async function recordSessionClient(ctx: OidcContext, client: Client, user: SignedIn, issuer: string, now: number): Promise<void> {
  const sid = user.session.data.sid
  if (sid === undefined || (client.config.backchannelLogoutUri === undefined && client.config.frontchannelLogoutUri === undefined)) return
  const cookie = user.session.cookie
  // As long as the session can live: it ends at sign-out (the record is taken then) or expiry.
  const lifetime = user.session.data.rememberMe && cookie.rememberMeSeconds > 0 ? cookie.rememberMeSeconds : cookie.expirationSeconds
  await ctx.storage.recordSessionClient({ sid, clientId: client.id, username: user.username, subject: user.subject, issuer, createdAt: now, expiresAt: now + lifetime })
}

/**
 * Below the client's policy: to the portal with the full authorization URL as `rd` (docs/authelia-compat.md §2.4).
 * A forced fresh sign-in (prompt=login, max_age) marks the resume URL with `auth_after`, so the
 * resumed request accepts only a sign-in made from now on, and asks the portal for the sign-in form
 * even though a session exists. The session itself is kept (docs/security.md W7): a top-level GET from
 * any site can start this flow, and it must not sign anybody out; the new sign-in replaces the
 * session only when it succeeds.
 */
function redirectToPortal(
  ctx: OidcContext,
  input: AuthorizeInput,
  resume: Record<string, string>,
  s: { needsFresh: boolean; wantsFresh: boolean; level: number; required: number; now: number },
): AuthorizeOutcome {
  delete resume.consent_id
  if (s.wantsFresh) {
    const prompt = (resume.prompt ?? '').split(' ').filter((p) => p && p !== 'login' && p !== 'select_account')
    if (prompt.length > 0) resume.prompt = prompt.join(' ')
    else delete resume.prompt
    resume[AUTH_AFTER_PARAM] = sealAuthAfter(ctx.authAfterKey, s.now, resume.client_id ?? '')
  }
  // Keys sorted, as Authelia 4.37 builds rd (docs/authelia-compat.md §2.4): the same request always resumes at the same URL.
  const sorted = new URLSearchParams(resume)
  sorted.sort()
  const rd = `${input.issuer}/api/oidc/authorization?${sorted.toString()}`
  const status = input.method === 'POST' ? 303 : 302
  const clientId = resume.client_id ?? ''
  if (!s.needsFresh && input.session && s.level >= 1 && s.required === 2) {
    // Signed in, second factor missing: Authelia's workflow id rides along with our `rd`, so a
    // script that sends `workflowID` with its code resumes here too.
    const location = `${input.issuer}/2fa/one-time-password?rd=${encodeURIComponent(rd)}&workflow=openid_connect`
    // A resume URL longer than a target may be (portal/redirect.ts) could never be followed: not kept.
    if (rd.length > MAX_WORKFLOW_RESUME) return { kind: 'redirect', status, location, clientId }
    const id = randomUUID()
    return { kind: 'redirect', status, location: `${location}&workflow_id=${id}`, clientId, workflow: { id, resume: rd } }
  }
  const fresh = s.needsFresh ? `&${PORTAL_FRESH_SIGN_IN.name}=${PORTAL_FRESH_SIGN_IN.value}` : ''
  return { kind: 'redirect', status, location: `${input.issuer}/?rd=${encodeURIComponent(rd)}&workflow=openid_connect${fresh}`, clientId }
}

/** The stored pairwise/public `sub`, created on first use (docs/authelia-compat.md §3), cached once read. */
export async function subjectFor(ctx: OidcContext, sector: string, username: string): Promise<string> {
  const key = `${sector}\n${username}`
  let sub = ctx.subjects.get(key)
  if (sub === undefined) {
    sub = await ctx.storage.ensureSubjectIdentifier(sector, username, randomUUID())
    if (ctx.subjects.size >= 10_000) ctx.subjects.clear()
    ctx.subjects.set(key, sub)
  }
  return sub
}

/** Q5: id_token_hint must be a JWS this provider signed (expiry ignored, OIDC Core §3.1.2.1); resolves its sub. */
async function checkIdTokenHint(ctx: OidcContext, hint: string | undefined): Promise<string | undefined> {
  if (hint === undefined) return undefined
  const bad = () => new OAuthError('invalid_request', 'The id_token_hint is malformed or was not issued by this provider.')
  let kid: string | undefined
  try {
    kid = decodeProtectedHeader(hint).kid
  } catch {
    throw bad()
  }
  const key = kid !== undefined ? ctx.keys.byKid.get(kid) : undefined
  if (!key) throw bad()
  try {
    const { payload } = await compactVerify(hint, key.publicKey, { algorithms: [key.alg] })
    const claims = JSON.parse(Buffer.from(payload).toString('utf8')) as { sub?: unknown }
    return typeof claims.sub === 'string' ? claims.sub : undefined
  } catch {
    throw bad()
  }
}

/**
 * RFC 9126 §2.1: a pushed request is checked as the authorization endpoint checks one, before
 * sign-in; a problem is thrown (the PAR endpoint answers it in JSON, never by redirect).
 */
export async function checkPushedRequest(ctx: OidcContext, params: Params): Promise<void> {
  const target = verifyClientAndRedirectUri(ctx, params)
  if ('kind' in target) {
    if (target.kind === 'error-page') throw target.error
    throw new OAuthError('invalid_request', 'The pushed authorization request is invalid.')
  }
  await checkRequest(ctx, target, readResponseShape(target, params), params)
}

import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { LightMyRequestResponse } from 'fastify'
import { randomString } from '../../src/common/random.js'
import type { TestApp } from './app.js'
import { ROOT } from './app.js'

export const HOST = 'auth.example.com'
export const ISSUER = `http://${HOST}`
export const KASM = { id: 'kasm', secret: 'insecure-secret', redirectUri: 'https://kasm.example.com/api/oidc_callback' }
export const STATE = 'state-0123456789'
export const NONCE = 'nonce-0123456789'

export function fixtureKey(name: string): string {
  return readFileSync(join(ROOT, 'fixtures/keys', name), 'utf8')
}

/** Extra clients for the tests, next to the unchanged Kasm client. Secrets are plaintext test values. */
export function addTestClients(yaml: any): void {
  const clients = yaml.identity_providers.oidc.clients as any[]
  clients.push(
    // Confidential client A: pinned to client_secret_basic, refresh tokens, offline_access.
    {
      id: 'app-a',
      secret: 'secret-a:%+ x',
      authorization_policy: 'two_factor',
      consent_mode: 'implicit',
      redirect_uris: ['https://a.example.com/cb', 'https://a.example.com/cb2'],
      scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    // Confidential client B: pinned to client_secret_post, hashed secret.
    {
      id: 'app-b',
      secret: '$pbkdf2-sha512$310000$c8p78n7pUMln0jzvd4aK4Q$JNRBzwAo0ek5qKn50cFzzvE9RXV88h1wJn5KGiHrD0YKtZaR/nCb2CJPOsKaPK0hjf.9yHxzQGZziziccp6Yng',
      authorization_policy: 'one_factor',
      consent_mode: 'implicit',
      redirect_uris: ['https://b.example.com/cb'],
      scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      token_endpoint_auth_method: 'client_secret_post',
    },
    {
      id: 'public-app',
      public: true,
      authorization_policy: 'one_factor',
      consent_mode: 'implicit',
      redirect_uris: ['http://127.0.0.1:8123/cb', 'https://spa.example.com/cb'],
      scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
      grant_types: ['authorization_code', 'refresh_token'],
    },
    {
      id: 'explicit-app',
      secret: 'explicit-secret',
      authorization_policy: 'one_factor',
      consent_mode: 'explicit',
      redirect_uris: ['https://explicit.example.com/cb'],
      scopes: ['openid', 'profile', 'email'],
    },
    {
      id: 'preconf-app',
      secret: 'preconf-secret',
      authorization_policy: 'one_factor',
      consent_mode: 'pre-configured',
      pre_configured_consent_duration: '1w',
      redirect_uris: ['https://preconf.example.com/cb'],
      scopes: ['openid', 'profile'],
    },
    {
      id: 'jwt-app',
      secret: 'jwt-secret',
      authorization_policy: 'one_factor',
      consent_mode: 'implicit',
      redirect_uris: ['https://jwt.example.com/cb'],
      scopes: ['openid', 'profile', 'email', 'groups'],
      userinfo_signing_algorithm: 'RS256',
      require_pkce: true,
    },
    {
      id: 'hybrid-app',
      secret: 'hybrid-secret',
      authorization_policy: 'one_factor',
      consent_mode: 'implicit',
      redirect_uris: ['https://hybrid.example.com/cb'],
      scopes: ['openid', 'profile'],
      grant_types: ['authorization_code', 'implicit'],
      response_types: ['code', 'id_token', 'id_token token', 'code id_token'],
    },
  )
}

/** A signed-in session straight in storage (until the portal is used); resolves the Cookie header. */
export async function signedInCookie(
  t: TestApp,
  username = 'john',
  level: 0 | 1 | 2 = 2,
  opts: { authAgo?: number } = {},
): Promise<string> {
  const id = randomString(32)
  const now = t.clock.now()
  const at = now - (opts.authAgo ?? 0)
  await t.storage.saveSession(
    id,
    {
      username,
      level,
      ...(level >= 1 ? { firstFactorAt: at } : {}),
      ...(level >= 2 ? { secondFactorAt: at } : {}),
      amr: level >= 2 ? ['pwd', 'otp', 'mfa'] : level === 1 ? ['pwd'] : [],
      rememberMe: false,
      csrfToken: 'csrf-token-for-tests',
      createdAt: now,
      lastActivityAt: now,
    },
    now + 3600,
    now,
  )
  return `authelia_session=${id}`
}

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

export function kasmParams(extra: Record<string, string> = {}): Record<string, string> {
  return {
    client_id: KASM.id,
    redirect_uri: KASM.redirectUri,
    response_type: 'code',
    scope: 'openid profile groups email',
    state: STATE,
    nonce: NONCE,
    ...extra,
  }
}

export function authorizePath(params: Record<string, string> | string): string {
  const qs = typeof params === 'string' ? params : new URLSearchParams(params).toString()
  return `/api/oidc/authorization?${qs}`
}

export async function getAuthorize(t: TestApp, params: Record<string, string> | string, cookie?: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'GET', url: authorizePath(params), headers: { host: HOST, ...(cookie ? { cookie } : {}), ...headers } })
}

/** Parses the authorization response of a 303 Location (query or fragment). */
export function responseParams(res: LightMyRequestResponse): URLSearchParams {
  const location = String(res.headers.location ?? '')
  const u = new URL(location)
  return u.hash ? new URLSearchParams(u.hash.slice(1)) : u.searchParams
}

export async function getCode(t: TestApp, cookie: string, params: Record<string, string> = kasmParams()): Promise<string> {
  const res = await getAuthorize(t, params, cookie)
  if (res.statusCode !== 303) throw new Error(`authorization did not issue a code: ${res.statusCode} ${res.headers.location ?? res.body.slice(0, 300)}`)
  const code = responseParams(res).get('code')
  if (!code) throw new Error(`no code in ${res.headers.location}`)
  return code
}

export function basic(id: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+')
  return 'Basic ' + Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')
}

export async function postForm(t: TestApp, url: string, form: Record<string, string> | string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return t.app.inject({
    method: 'POST',
    url,
    headers: { host: HOST, 'content-type': 'application/x-www-form-urlencoded', ...headers },
    payload: typeof form === 'string' ? form : new URLSearchParams(form).toString(),
  })
}

/** Redeems a Kasm code with client_secret_post by default. */
export async function redeem(t: TestApp, code: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  const form: Record<string, string> = { grant_type: 'authorization_code', code, redirect_uri: KASM.redirectUri, ...extra }
  if (!headers.authorization && form.client_id === undefined) {
    form.client_id = KASM.id
    form.client_secret = KASM.secret
  }
  return postForm(t, '/api/oidc/token', form, headers)
}

export async function userinfo(t: TestApp, accessToken: string): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'GET', url: '/api/oidc/userinfo', headers: { host: HOST, authorization: `Bearer ${accessToken}` } })
}

export function decodeJwtPayload(jwt: string): Record<string, any> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8'))
}

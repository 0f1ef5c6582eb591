/** `identity_providers.oidc`: provider options, signing keys and clients (4.37 and 4.38+ names). */
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { parseDigest } from '../../authn/hashes/index.js'
import { plaintextSecret } from '../../authn/hashes/plaintext.js'
import {
  DEFAULTS,
  type ConsentMode,
  type GrantType,
  type IssuerKeyConfig,
  type OidcClientConfig,
  type OidcConfig,
  type OidcScope,
  type PkceEnforcement,
  type ClaimsPolicy,
  type CustomLifespan,
  type LifespanGrant,
  type Lifespans,
  type ResponseMode,
  type SigningAlgorithm,
  type SigningChoice,
  type TokenEndpointAuthMethod,
  type ClientAssertionAlgorithm,
  type ClientKeyConfig,
} from '../schema.js'
import { quoteList, type MapView } from '../reader.js'
import { isAbsoluteUrl } from './core.js'
import { isLoopbackHost, isPrivateHost, stripBrackets } from '../../common/host.js'
import { isIP } from 'node:net'
import { keyIdsOf } from '../../oidc/keys.js'
import { isPrivateAddress } from '../../oidc/client-jwks.js'

/** The issuer keys as the clients' `*_key_id` and `*_alg` options see them. */
interface KeyIndex {
  algorithms: SigningAlgorithm[]
  /** kid → algorithm */
  kids: Map<string, SigningAlgorithm>
}

/** Named sections of the provider a client refers to by name. */
interface Named {
  policies: Set<string>
  lifespans: Set<string>
  claimsPolicies: Map<string, ClaimsPolicy>
}

const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']
const SCOPES: readonly OidcScope[] = ['openid', 'email', 'profile', 'groups', 'offline_access']
const GRANT_TYPES: readonly GrantType[] = ['implicit', 'refresh_token', 'authorization_code', 'password', 'client_credentials']
const RESPONSE_MODES: readonly ResponseMode[] = ['form_post', 'query', 'fragment', 'jwt', 'query.jwt', 'fragment.jwt', 'form_post.jwt']
const RESPONSE_TYPES = ['code', 'id_token', 'token', 'code id_token', 'code token', 'id_token token', 'code id_token token', 'none']
const AUTH_METHODS: readonly TokenEndpointAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none']
const CONSENT_MODES = ['auto', 'explicit', 'implicit', 'pre-configured'] as const
const PKCE: readonly PkceEnforcement[] = ['never', 'public_clients_only', 'always']
const CORS_ENDPOINTS = ['authorization', 'pushed-authorization-request', 'token', 'revocation', 'introspection', 'userinfo']
const OOB = 'urn:ietf:wg:oauth:2.0:oob'

const EC_CURVES: Record<string, SigningAlgorithm> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' }

/** The 4.38 name when set, else the 4.37 one (both set is reported by the structure check). */
function pick(v: MapView, old: string, renamed: string): string {
  return v.has(renamed) ? renamed : old
}

function describeKey(key: KeyObject): { kind: string; bits?: number; natural?: SigningAlgorithm } {
  const type = key.asymmetricKeyType
  const d = key.asymmetricKeyDetails
  if (type === 'rsa' || type === 'rsa-pss') return { kind: 'RSA', bits: d?.modulusLength ?? 0, natural: type === 'rsa' ? 'RS256' : 'PS256' }
  if (type === 'ec') {
    const curve = d?.namedCurve ?? ''
    const natural = EC_CURVES[curve]
    return natural ? { kind: `EC ${curve}`, natural } : { kind: `EC ${curve}` }
  }
  if (type === 'ed25519') return { kind: 'Ed25519', natural: 'EdDSA' }
  return { kind: String(type) }
}

function compatible(alg: SigningAlgorithm, key: KeyObject): boolean {
  const type = key.asymmetricKeyType
  if (alg.startsWith('RS')) return type === 'rsa'
  if (alg.startsWith('PS')) return type === 'rsa' || type === 'rsa-pss'
  if (alg === 'EdDSA') return type === 'ed25519'
  return type === 'ec' && EC_CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''] === alg
}

/** Validates one signing key (and chain) in place; returns the resolved key config or undefined. */
function readSigningKey(
  v: MapView,
  fields: { key: string; chain: string; algorithm?: string; keyId?: string },
  label: string,
  now: Date,
): IssuerKeyConfig | undefined {
  const pem = v.str(fields.key)
  if (!pem) {
    v.missing(fields.key, `${label}option '${fields.key}' is required`, 'a PEM private key (e.g. from `latchkey crypto pair rsa generate`)')
    return undefined
  }
  let key: KeyObject
  try {
    key = createPrivateKey({ key: pem, format: 'pem' })
  } catch {
    // The crypto error is not echoed: it could quote part of the key.
    v.error(fields.key, `${label}option '${fields.key}' must be a valid PEM private key`, 'PKCS#1 or PKCS#8 PEM with its line breaks kept (write it as a YAML block scalar "|")')
    return undefined
  }
  const info = describeKey(key)
  if (info.kind === 'RSA' && (info.bits ?? 0) < 2048) {
    v.error(fields.key, `${label}option '${fields.key}' must be an RSA private key with 2048 bits or more but it only has ${info.bits} bits`, 'generate a new key with `latchkey crypto pair rsa generate --bits 2048`')
    return undefined
  }
  let algorithm = info.natural
  if (fields.algorithm && v.has(fields.algorithm)) {
    const alg = v.oneOf(fields.algorithm, SIGNING_ALGORITHMS, (x) => `${label}option 'algorithm' must be one of ${quoteList(SIGNING_ALGORITHMS)} but it's configured as '${x}'`)
    if (!alg) return undefined
    if (!compatible(alg, key)) {
      v.error(fields.algorithm, `${label}option 'algorithm' is '${alg}' but the key is ${info.kind}${info.bits ? ` (${info.bits} bits)` : ''}`, 'RS*/PS* need an RSA key, ES256/384/512 a P-256/384/521 key, EdDSA an Ed25519 key')
      return undefined
    }
    algorithm = alg
  } else if (!algorithm) {
    v.error(fields.key, `${label}option '${fields.key}' is a ${info.kind} key, which has no supported signing algorithm`, 'use an RSA (2048 bits or more), P-256/384/521 or Ed25519 key')
    return undefined
  }
  const out: IssuerKeyConfig = { algorithm: algorithm!, use: 'sig', key: pem }
  const chain = v.str(fields.chain)
  if (chain) {
    const blocks = chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
    if (blocks.length === 0) {
      v.error(fields.chain, `${label}option '${fields.chain}' must contain one or more PEM certificates`)
      return undefined
    }
    const certs: X509Certificate[] = []
    for (const [i, block] of blocks.entries()) {
      try {
        certs.push(new X509Certificate(block))
      } catch {
        v.error(fields.chain, `${label}option '${fields.chain}' could not be parsed: certificate #${i + 1} is not a valid PEM certificate`)
        return undefined
      }
    }
    let ok = true
    if (!certs[0]!.checkPrivateKey(key)) {
      v.error(fields.chain, `${label}option '${fields.chain}' does not appear to contain the public key for the private key provided by option '${fields.key}'`, 'the first certificate must be the one issued for this key')
      ok = false
    }
    certs.forEach((c, i) => {
      const from = new Date(c.validFrom)
      const to = new Date(c.validTo)
      if (now < from || now > to) {
        v.error(fields.chain, `${label}option '${fields.chain}' has an invalid certificate: certificate #${i + 1} is only valid from ${from.toISOString()} until ${to.toISOString()}`)
        ok = false
      }
      const next = certs[i + 1]
      if (next && !c.checkIssued(next)) {
        v.error(fields.chain, `${label}option '${fields.chain}' has an invalid certificate chain: certificate #${i + 1} is not signed by certificate #${i + 2}`)
        ok = false
      }
    })
    if (!ok) return undefined
    out.certificateChain = chain
  }
  if (fields.keyId) {
    const kid = v.str(fields.keyId)
    if (kid) {
      if (/^[a-zA-Z0-9_.-]{1,100}$/.test(kid)) out.keyId = kid
      else v.error(fields.keyId, `${label}option 'key_id' must only contain letters, digits, '-', '_' and '.' (at most 100), but it's configured as '${kid}'`)
    }
  }
  return out
}

function readKeys(v: MapView, now: Date): IssuerKeyConfig[] {
  if (v.has('issuer_private_key') || v.has('issuer_certificate_chain')) {
    if (!v.has('issuer_private_key')) {
      v.missing('issuer_private_key', "option 'issuer_private_key' is required when option 'issuer_certificate_chain' is set")
      return []
    }
    const k = readSigningKey(v, { key: 'issuer_private_key', chain: 'issuer_certificate_chain' }, '', now)
    if (k && k.algorithm !== 'RS256') {
      v.error('issuer_private_key', "option 'issuer_private_key' must be an RSA private key", 'it signs with RS256; use jwks for other key types')
      return []
    }
    return k ? [k] : []
  }
  const listKey = v.has('jwks') ? 'jwks' : 'issuer_private_keys'
  const items = v.list(listKey)
  if (items.length === 0) {
    v.missing('issuer_private_key', "option 'issuer_private_key' is required", "or the 4.38+ 'jwks' list; generate one with `latchkey crypto pair rsa generate`")
    return []
  }
  const keys: IssuerKeyConfig[] = []
  const kids = new Map<string, number>()
  let failed = false
  items.forEach((item, i) => {
    const label = `${listKey}: key #${i + 1}: `
    const use = item.str('use')
    if (use !== undefined && use !== 'sig') item.error('use', `${label}option 'use' must be 'sig' but it's configured as '${use}'`)
    const k = readSigningKey(item, { key: 'key', chain: 'certificate_chain', algorithm: 'algorithm', keyId: 'key_id' }, label, now)
    if (!k) {
      failed = true
      return
    }
    if (k.keyId) {
      const prev = kids.get(k.keyId)
      if (prev !== undefined) item.error('key_id', `${label}option 'key_id' must be unique but '${k.keyId}' is also used by key #${prev + 1}`)
      kids.set(k.keyId, i)
    }
    keys.push(k)
  })
  // OIDC Core §15.1: RS256 must be supported, so Authelia insists on one RS256 key.
  if (!failed && !keys.some((k) => k.algorithm === 'RS256'))
    v.error(listKey, `option '${listKey}' must at least have one key supporting the 'RS256' algorithm but only has ${quoteList([...new Set(keys.map((k) => k.algorithm))])}`)
  return keys
}

const LIFESPAN_KEYS: Array<[string, keyof Lifespans]> = [
  ['access_token', 'accessTokenSeconds'],
  ['authorize_code', 'authorizeCodeSeconds'],
  ['id_token', 'idTokenSeconds'],
  ['refresh_token', 'refreshTokenSeconds'],
]
const LIFESPAN_GRANTS: readonly LifespanGrant[] = ['authorize_code', 'implicit', 'client_credentials', 'refresh_token']

function readLifespanValues(m: MapView, label: string): Partial<Lifespans> {
  const out: Partial<Lifespans> = {}
  for (const name of m.keys()) {
    if (name === 'grants') continue
    const known = LIFESPAN_KEYS.find(([k]) => k === name)
    if (!known) {
      m.error(name, `${label}option '${name}' is not known`, `one of ${quoteList(LIFESPAN_KEYS.map(([k]) => k))}`)
      continue
    }
    const s = m.duration(name)
    if (s !== undefined && s > 0) out[known[1]] = s
  }
  return out
}

/** 4.38 `lifespans.custom`: named lifespans a client selects with `lifespan`. */
function readCustomLifespans(v: MapView): Record<string, CustomLifespan> {
  const custom = v.map('lifespans').map('custom')
  const out: Record<string, CustomLifespan> = {}
  for (const name of custom.keys()) {
    const m = custom.map(name)
    const label = `lifespans: custom: ${name}: `
    const grants: CustomLifespan['grants'] = {}
    const g = m.map('grants')
    for (const grant of g.keys()) {
      if (!(LIFESPAN_GRANTS as readonly string[]).includes(grant)) {
        g.error(grant, `${label}grants: '${grant}' is not a grant Latchkey issues tokens for`, `one of ${quoteList(LIFESPAN_GRANTS)}`)
        continue
      }
      grants[grant as LifespanGrant] = readLifespanValues(g.map(grant), `${label}grants: ${grant}: `)
    }
    out[name] = { base: readLifespanValues(m, label), grants }
  }
  return out
}

const CLAIMS = ['name', 'preferred_username', 'email', 'email_verified', 'alt_emails', 'groups']

/** 4.39 `claims_policies`: which scope claims go into ID tokens and JWT access tokens, and the ID token audience. */
function readClaimsPolicies(v: MapView): Map<string, ClaimsPolicy> {
  const policies = v.map('claims_policies')
  const out = new Map<string, ClaimsPolicy>()
  for (const name of policies.keys()) {
    const m = policies.map(name)
    const label = `claims_policies: ${name}: `
    const policy: ClaimsPolicy = { idToken: [], accessToken: [], idTokenAudienceMode: 'specification' }
    for (const key of m.keys()) {
      if (key === 'id_token' || key === 'access_token') {
        const list: string[] = []
        for (const item of m.stringItems(key)) {
          if (CLAIMS.includes(item.value)) list.push(item.value)
          else m.problems.error(item.path, `${label}${key}: claim with name '${item.value}' is not known`, item.src, `Latchkey has the scope claims ${quoteList(CLAIMS)}`)
        }
        if (key === 'id_token') policy.idToken = list
        else policy.accessToken = list
      } else if (key === 'id_token_audience_mode') {
        const mode = m.oneOf(key, ['specification', 'experimental-merged'] as const, (x) => `${label}option 'id_token_audience_mode' must be one of 'specification', 'experimental-merged' but it's configured as '${x}'`)
        if (mode) policy.idTokenAudienceMode = mode
      } else if (key === 'custom_claims') {
        if (m.map(key).keys().length > 0)
          m.error(key, `${label}option 'custom_claims' is not supported by Latchkey`, 'the users file has no attributes beyond the standard claims; remove it')
      } else m.error(key, `${label}option '${key}' is not known`)
    }
    out.set(name, policy)
  }
  return out
}

/**
 * A `<what>_signed_response_alg` / `<what>_signed_response_key_id` pair (4.38): the key id wins and
 * brings its algorithm; `none` (or nothing) is an unsigned response.
 */
function readSigning(c: MapView, prefix: string, keys: KeyIndex, label: string, opts: { algKey?: string; unsigned?: boolean } = {}): SigningChoice | undefined {
  const algKey = opts.algKey ?? `${prefix}_signed_response_alg`
  const kidKey = `${prefix}_signed_response_key_id`
  const kid = c.str(kidKey)
  if (kid) {
    const alg = keys.kids.get(kid)
    if (!alg) {
      c.error(kidKey, `${label}option '${kidKey}' must be one of ${quoteList([...keys.kids.keys()])} but it's configured as '${kid}'`, 'the key_id of an issuer key in jwks (`latchkey doctor` lists them)')
      return undefined
    }
    const named = c.str(algKey)
    if (named && named !== 'none' && named !== alg)
      c.error(algKey, `${label}option '${algKey}' is '${named}' but option '${kidKey}' names a ${alg} key`, `remove '${algKey}': the key id decides the algorithm`)
    return { alg, kid }
  }
  const allowed = opts.unsigned === false ? keys.algorithms : ['none', ...keys.algorithms]
  const alg = c.oneOf(algKey, allowed, (x) => `${label}option '${algKey}' must be one of ${quoteList(allowed)} but it's configured as '${x}'`, { hint: 'each algorithm other than none needs an issuer key of that type' })
  if (!alg || alg === 'none') return undefined
  return { alg: alg as SigningAlgorithm }
}

function readLifespans(v: MapView): OidcConfig['lifespans'] {
  const d = DEFAULTS.oidc.lifespans
  const l = v.map('lifespans')
  const one = (old: string, renamed: string, fallback: number): number => {
    const s = v.has(old) ? v.duration(old) : l.duration(renamed)
    // 0 means "the default", as in Authelia.
    return s === undefined || s === 0 ? fallback : s
  }
  return {
    accessTokenSeconds: one('access_token_lifespan', 'access_token', d.accessTokenSeconds),
    authorizeCodeSeconds: one('authorize_code_lifespan', 'authorize_code', d.authorizeCodeSeconds),
    idTokenSeconds: one('id_token_lifespan', 'id_token', d.idTokenSeconds),
    refreshTokenSeconds: one('refresh_token_lifespan', 'refresh_token', d.refreshTokenSeconds),
  }
}

function readCors(v: MapView, clients: OidcClientConfig[]): OidcConfig['cors'] {
  const c = v.map('cors')
  const endpoints: string[] = []
  for (const e of c.stringItems('endpoints')) {
    if (CORS_ENDPOINTS.includes(e.value)) endpoints.push(e.value)
    else v.problems.error(e.path, `option 'endpoints' contains an invalid value '${e.value}': must be one of ${quoteList(CORS_ENDPOINTS)}`, e.src)
  }
  const fromRedirects = c.bool('allowed_origins_from_client_redirect_uris') ?? false
  const origins: string[] = []
  for (const o of c.stringItems('allowed_origins')) {
    if (o.value === '*') {
      if (fromRedirects) v.problems.error(o.path, "option 'allowed_origins' contains the wildcard origin '*' which cannot be used with option 'allowed_origins_from_client_redirect_uris' enabled", o.src)
      else origins.push('*')
      continue
    }
    const u = isAbsoluteUrl(o.value)
    if (!u || !u.host) v.problems.error(o.path, `option 'allowed_origins' contains an invalid value '${o.value}': origins must be a scheme, host and optional port`, o.src)
    else if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash || o.value.endsWith('/'))
      v.problems.error(o.path, `option 'allowed_origins' contains an invalid value '${o.value}' as it has a path: origins must only be scheme, hostname, and an optional port`, o.src)
    else origins.push(u.origin)
  }
  if (origins.includes('*') && origins.length > 1) c.error('allowed_origins', "option 'allowed_origins' contains the wildcard origin '*' with more than one origin but the wildcard origin must be defined by itself")
  if (fromRedirects)
    for (const client of clients)
      for (const r of client.redirectUris) {
        const u = isAbsoluteUrl(r)
        if (u && /^https?:$/.test(u.protocol) && !origins.includes(u.origin)) origins.push(u.origin)
      }
  return { endpoints, allowedOrigins: origins, allowedOriginsFromClientRedirectUris: fromRedirects }
}

function readClient(c: MapView, index: number, keys: KeyIndex, named: Named, allowPrivateBackchannel: boolean): OidcClientConfig | undefined {
  const namedPolicies = named.policies
  const idKey = pick(c, 'id', 'client_id')
  const id = c.str(idKey) ?? ''
  if (id.trim() === '') {
    c.problems.error(c.keyPath(idKey), 'one or more clients have been configured with an empty id', c.srcOf(idKey), `set '${idKey}' on client #${index + 1}`)
    return undefined
  }
  const label = `client '${id}': `
  const isPublic = c.bool('public') ?? false

  const authMethod = c.oneOf('token_endpoint_auth_method', AUTH_METHODS, (x) => `${label}option 'token_endpoint_auth_method' must be one of ${quoteList(AUTH_METHODS)} but it's configured as '${x}'`)
  if (authMethod && isPublic && authMethod !== 'none')
    c.error('token_endpoint_auth_method', `${label}option 'token_endpoint_auth_method' must be 'none' when configured as the public client type but it's configured as '${authMethod}'`)
  if (authMethod === 'none' && !isPublic)
    c.error('token_endpoint_auth_method', `${label}option 'token_endpoint_auth_method' must not be 'none' for a confidential client`, "set 'public: true' or choose client_secret_basic")

  const secretKey = pick(c, 'secret', 'client_secret')
  const secret = c.str(secretKey)
  if (isPublic) {
    if (secret) c.error(secretKey, `${label}option '${secretKey}' is required to be empty when option 'public' is true`)
  } else if (!secret) {
    if (authMethod !== 'private_key_jwt') c.missing(secretKey, `${label}option '${secretKey}' is required`, 'store a digest, e.g. from `latchkey crypto hash generate pbkdf2 --random`')
  } else {
    const plaintext = !secret.startsWith('$') || secret.startsWith('$plaintext$') || secret.startsWith('$base64$')
    try {
      parseDigest(secret, { allowPlaintext: true })
      if (plaintext && authMethod !== 'client_secret_jwt')
        c.warn(
          secretKey,
          `${label}option '${secretKey}' is plaintext but it should be a hashed value as plaintext values are deprecated and will be removed in the future`,
          'store a digest of it, e.g. from `latchkey crypto hash generate pbkdf2 --password ...`',
        )
      // RFC 7523 with client_secret_jwt: the HMAC key is the secret itself, which a digest cannot give back.
      if (!plaintext && authMethod === 'client_secret_jwt')
        c.error(
          secretKey,
          `${label}option '${secretKey}' must be plaintext with option 'token_endpoint_auth_method' with a value of 'client_secret_jwt'`,
          'the assertion is an HMAC keyed with the secret itself, so store it as `$plaintext$<secret>`, or use private_key_jwt',
        )
    } catch (e) {
      c.error(secretKey, `${label}option '${secretKey}' is not a valid digest: ${(e as Error).message}`, 'generate one with `latchkey crypto hash generate`')
    }
  }

  const out: OidcClientConfig = {
    id,
    description: id,
    sectorIdentifier: '',
    public: isPublic,
    authorizationPolicy: DEFAULTS.client.authorizationPolicy,
    consentMode: 'explicit',
    preConfiguredConsentDurationSeconds: DEFAULTS.client.preConfiguredConsentDurationSeconds,
    audience: c.strings('audience') ?? [],
    scopes: [...DEFAULTS.client.scopes],
    redirectUris: [],
    grantTypes: [...DEFAULTS.client.grantTypes],
    responseTypes: [...DEFAULTS.client.responseTypes],
    responseModes: [...DEFAULTS.client.responseModes],
    userinfoSigningAlgorithm: DEFAULTS.client.userinfoSigningAlgorithm,
    idTokenSigningAlgorithm: DEFAULTS.client.idTokenSigningAlgorithm,
    requirePkce: c.bool('require_pkce') ?? false,
    // Latchkey's (and Authelia 4.37's) behaviour when the option is absent; 4.38 defaults to explicit.
    requestedAudienceMode: 'implicit',
    requirePushedAuthorizationRequests: false,
    postLogoutRedirectUris: [],
    backchannelLogoutSessionRequired: c.bool('backchannel_logout_session_required') ?? false,
    frontchannelLogoutSessionRequired: c.bool('frontchannel_logout_session_required') ?? false,
  }
  if (secret && !isPublic) out.secret = secret
  if (authMethod) out.tokenEndpointAuthMethod = authMethod
  const description = c.str(pick(c, 'description', 'client_name'))
  if (description) out.description = description

  if (c.has('sector_identifier_uri')) {
    const raw = c.str('sector_identifier_uri') ?? ''
    const u = isAbsoluteUrl(raw)
    if (!u || u.protocol !== 'https:') c.error('sector_identifier_uri', `${label}option 'sector_identifier_uri' must be an absolute https URL but it's configured as '${raw}'`)
    else out.sectorIdentifier = u.host
  } else if (c.has('sector_identifier')) {
    const raw = c.str('sector_identifier') ?? ''
    if (!/^[a-zA-Z0-9.-]+(:\d+)?$/.test(raw))
      c.error('sector_identifier', `${label}option 'sector_identifier' with value '${raw}': must be a domain only and have no scheme, path, query or fragment`)
    else out.sectorIdentifier = raw.toLowerCase()
  }

  const policy = c.str('authorization_policy')
  if (policy !== undefined) {
    if (policy === 'one_factor' || policy === 'two_factor') out.authorizationPolicy = policy
    else if (namedPolicies.has(policy))
      c.error('authorization_policy', `${label}option 'authorization_policy' names the policy '${policy}' from 'authorization_policies', which Latchkey does not support`, "use 'one_factor' or 'two_factor'")
    else c.error('authorization_policy', `${label}option 'policy' must be 'one_factor' or 'two_factor' but it is configured as '${policy}'`)
  }

  const durationSet = c.has('pre_configured_consent_duration')
  const duration = c.duration('pre_configured_consent_duration')
  if (duration !== undefined && duration > 0) out.preConfiguredConsentDurationSeconds = duration
  const mode = c.oneOf('consent_mode', CONSENT_MODES, (x) => `${label}option 'consent_mode' must be one of ${quoteList(CONSENT_MODES)} but it's configured as '${x}'`) ?? 'auto'
  // docs/authelia-compat.md §1.11: auto → pre-configured when a duration was set explicitly, else explicit.
  out.consentMode = (mode === 'auto' ? (durationSet ? 'pre-configured' : 'explicit') : mode) as ConsentMode

  if (c.has('scopes')) {
    const scopes: OidcScope[] = []
    const bad: string[] = []
    for (const s of c.strings('scopes') ?? []) {
      if ((SCOPES as readonly string[]).includes(s)) {
        if (!scopes.includes(s as OidcScope)) scopes.push(s as OidcScope)
      } else bad.push(s)
    }
    if (bad.length) c.error('scopes', `${label}option 'scopes' must only have the values ${quoteList(SCOPES)} but the values ${quoteList(bad)} are present`)
    if (!scopes.includes('openid')) scopes.push('openid')
    out.scopes = scopes
  }

  if (c.has('grant_types')) {
    const values = c.strings('grant_types') ?? []
    const bad = values.filter((g) => !(GRANT_TYPES as readonly string[]).includes(g))
    if (bad.length) c.error('grant_types', `${label}option 'grant_types' must only have the values ${quoteList(GRANT_TYPES)} but the values ${quoteList(bad)} are present`)
    else out.grantTypes = [...new Set(values)] as GrantType[]
  }
  if (isPublic && out.grantTypes.includes('client_credentials'))
    c.error('grant_types', `${label}option 'grant_types' should only have the 'client_credentials' value if it is of the confidential client type but it's of the public client type`)

  if (c.has('response_types')) {
    const values = c.strings('response_types') ?? []
    const norm = (t: string) => t.trim().split(/\s+/).sort().join(' ')
    const known = new Map(RESPONSE_TYPES.map((t) => [norm(t), t]))
    const bad = values.filter((t) => !known.has(norm(t)))
    if (bad.length) c.error('response_types', `${label}option 'response_types' must only have the values ${quoteList(RESPONSE_TYPES)} but the values ${quoteList(bad)} are present`)
    else out.responseTypes = [...new Set(values.map((t) => known.get(norm(t))!))]
  }

  if (c.has('response_modes')) {
    const values = c.strings('response_modes') ?? []
    const bad = values.filter((m) => !(RESPONSE_MODES as readonly string[]).includes(m))
    if (bad.length) c.error('response_modes', `${label}option 'response_modes' must only have the values ${quoteList(RESPONSE_MODES)} but the values ${quoteList(bad)} are present`)
    else out.responseModes = [...new Set(values)] as ResponseMode[]
  }

  const seen = new Set<string>()
  for (const r of c.stringItems('redirect_uris')) {
    const err = (msg: string, hint?: string) => c.problems.error(r.path, `${label}option 'redirect_uris' ${msg}`, r.src, hint)
    if (seen.has(r.value)) {
      err(`must have unique values but the value '${r.value}' is duplicated`)
      continue
    }
    seen.add(r.value)
    if (r.value === OOB) {
      if (!isPublic) err(`has the redirect uri '${OOB}' when option 'public' is false but this is invalid as it is only valid for public clients`)
      else out.redirectUris.push(r.value)
      continue
    }
    // docs/security.md R5: no wildcards, fragments or relative URIs.
    if (r.value.includes('*')) {
      err(`has an invalid value: redirect uri '${r.value}' must not contain a wildcard`, 'register every redirect URI exactly')
      continue
    }
    const u = isAbsoluteUrl(r.value)
    if (!u || !/^[a-z][a-z0-9+.-]*:$/.test(u.protocol) || ((u.protocol === 'http:' || u.protocol === 'https:') && !u.host)) {
      err(`has an invalid value: redirect uri '${r.value}' must have a scheme but it's configured without one`, 'use an absolute URL such as https://app.example.com/callback')
      continue
    }
    if (r.value.includes('#')) {
      err(`has an invalid value: redirect uri '${r.value}' must not contain a fragment`)
      continue
    }
    if (u.protocol === 'http:' && !isLoopbackHost(u.hostname))
      c.problems.warn(r.path, `${label}option 'redirect_uris' has the redirect uri '${r.value}' which uses the insecure scheme 'http'`, r.src, 'use https; plain http is only expected for loopback addresses (RFC 8252)')
    out.redirectUris.push(r.value)
  }
  const needsRedirect = out.grantTypes.includes('authorization_code') || out.grantTypes.includes('implicit')
  if (needsRedirect && !c.has('redirect_uris')) c.missing('redirect_uris', `${label}option 'redirect_uris' is required`, 'the callback URL(s) of the application')

  const userinfoKey = pick(c, 'userinfo_signing_algorithm', 'userinfo_signed_response_alg')
  const userinfo = readSigning(c, 'userinfo', keys, label, { algKey: userinfoKey })
  if (userinfo) {
    out.userinfoSigningAlgorithm = userinfo.alg
    if (userinfo.kid) out.userinfoSigningKeyId = userinfo.kid
  }
  const idToken = readSigning(c, 'id_token', keys, label, { unsigned: false })
  if (idToken) {
    out.idTokenSigningAlgorithm = idToken.alg
    if (idToken.kid) out.idTokenSigningKeyId = idToken.kid
  }
  const at = readSigning(c, 'access_token', keys, label)
  if (at) out.accessTokenSigning = at
  const intro = readSigning(c, 'introspection', keys, label)
  if (intro) out.introspectionSigning = intro
  const jarm = readSigning(c, 'authorization', keys, label)
  if (jarm) out.authorizationSigning = jarm

  const lifespan = c.str('lifespan')
  if (lifespan) {
    if (named.lifespans.has(lifespan)) out.lifespan = lifespan
    else c.error('lifespan', `${label}option 'lifespan' names the custom lifespan '${lifespan}' but ${named.lifespans.size ? `only ${quoteList([...named.lifespans])} are defined` : 'none is defined'}`, "define it under 'identity_providers.oidc.lifespans.custom'")
  }
  const claimsPolicy = c.str('claims_policy')
  if (claimsPolicy) {
    const policy = named.claimsPolicies.get(claimsPolicy)
    if (policy) out.claimsPolicy = policy
    else c.error('claims_policy', `${label}option 'claims_policy' names the claims policy '${claimsPolicy}' but ${named.claimsPolicies.size ? `only ${quoteList([...named.claimsPolicies.keys()])} are defined` : 'none is defined'}`, "define it under 'identity_providers.oidc.claims_policies'")
  }
  const audienceMode = c.oneOf('requested_audience_mode', ['explicit', 'implicit'] as const, (x) => `${label}option 'requested_audience_mode' must be one of 'explicit', 'implicit' but it's configured as '${x}'`)
  if (audienceMode) out.requestedAudienceMode = audienceMode

  // Accepted but not implemented: refused where a relying party would notice, so a copied
  // Authelia client block never behaves differently in silence (issue 10, point 8).
  if (c.bool('allow_multiple_auth_methods') === true)
    c.error('allow_multiple_auth_methods', `${label}option 'allow_multiple_auth_methods' is not supported by Latchkey: a request must use one client authentication method (RFC 6749 §2.3)`, 'remove it and configure the client to send its credentials one way')
  if ((c.strings('request_uris') ?? []).length > 0)
    c.error('request_uris', `${label}option 'request_uris' is not supported by Latchkey: request objects are refused at the authorization endpoint (request_uri_not_supported)`, 'remove it; send the authorization parameters in the request itself')
  if (c.has('request_object_signing_alg'))
    c.error('request_object_signing_alg', `${label}option 'request_object_signing_alg' is not supported by Latchkey: request objects are refused at the authorization endpoint (request_not_supported)`, 'remove it')
  if (c.has('discovery_policy'))
    c.error('discovery_policy', `${label}option 'discovery_policy' is not supported by Latchkey`, 'remove it; every client sees the same discovery document')

  const pkce = c.oneOf('pkce_challenge_method', ['S256', 'plain'] as const, (x) => `${label}option 'pkce_challenge_method' must be one of 'plain', 'S256' but it's configured as '${x}'`)
  if (pkce) {
    out.pkceChallengeMethod = pkce
    // 4.38: naming a method requires PKCE for the client.
    out.requirePkce = true
  }
  readClientAssertion(c, label, out, authMethod)
  out.requirePushedAuthorizationRequests = c.bool('require_pushed_authorization_requests') ?? false
  readLogoutUris(c, label, out, allowPrivateBackchannel)
  return out
}

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const

/**
 * A jwks_uri the SSRF guard (security.md J5) refuses whatever DNS says: a loopback name or a
 * private IP literal. Such a client could never authenticate, so it is refused at start instead.
 */
function isNeverFetched(uri: string): boolean {
  const host = new URL(uri).hostname
  // isPrivateAddress is for resolved addresses (a name counts as forbidden): only literals here.
  return isLoopbackHost(host) || (isIP(stripBrackets(host)) !== 0 && isPrivateAddress(host))
}

/**
 * RFC 7518 §3.2: an HMAC key MUST be at least as long as the hash output. A shorter
 * client_secret_jwt secret lets anyone who sees one assertion guess the secret offline.
 */
function checkHmacKeyLength(c: MapView, label: string, secret: string, alg: string): void {
  const need = alg === 'HS512' ? 64 : alg === 'HS384' ? 48 : alg === 'HS256' ? 32 : 0
  let bytes: number
  try {
    bytes = plaintextSecret(secret).length
  } catch {
    return // a digest or a broken value: reported where the secret is read
  }
  if (bytes >= need) return
  const key = c.has('secret') ? 'secret' : 'client_secret'
  c.error(
    key,
    `${label}option '${key}' must be at least ${need} bytes long with option 'token_endpoint_auth_signing_alg' '${alg}' (RFC 7518 §3.2) but it's ${bytes} bytes`,
    'make a long random one, e.g. `latchkey crypto rand --length 64 --charset alphanumeric`',
  )
}

/**
 * RFC 7523 client authentication (docs/security.md J1–J6): `token_endpoint_auth_signing_alg`, and
 * the keys of `private_key_jwt`, inline (`jwks`, Authelia's PEM list) or by `jwks_uri`, never both.
 */
function readClientAssertion(c: MapView, label: string, out: OidcClientConfig, method: TokenEndpointAuthMethod | undefined): void {
  const isJwt = method === 'client_secret_jwt' || method === 'private_key_jwt'
  const allowed: readonly string[] = method === 'client_secret_jwt' ? HMAC_ALGORITHMS : method === 'private_key_jwt' ? SIGNING_ALGORITHMS : [...HMAC_ALGORITHMS, ...SIGNING_ALGORITHMS]
  const alg = c.oneOf('token_endpoint_auth_signing_alg', allowed, (x) =>
    `${label}option 'token_endpoint_auth_signing_alg' must be one of ${quoteList(allowed)}${method ? ` with option 'token_endpoint_auth_method' '${method}'` : ''} but it's configured as '${x}'`,
  ) as ClientAssertionAlgorithm | undefined
  if (alg && !isJwt)
    c.warn('token_endpoint_auth_signing_alg', `${label}option 'token_endpoint_auth_signing_alg' has no effect unless option 'token_endpoint_auth_method' is 'client_secret_jwt' or 'private_key_jwt'`)
  if (isJwt) out.tokenEndpointAuthSigningAlg = alg ?? (method === 'client_secret_jwt' ? 'HS256' : 'RS256')
  // Only once the algorithm is known: a wrong algorithm is the one mistake to report.
  if (method === 'client_secret_jwt' && out.secret && (alg || !c.has('token_endpoint_auth_signing_alg'))) checkHmacKeyLength(c, label, out.secret, out.tokenEndpointAuthSigningAlg!)

  const hasJwks = c.has('jwks')
  if (hasJwks && c.has('jwks_uri')) c.error('jwks_uri', `${label}option 'jwks_uri' must not be defined at the same time as option 'jwks'`, 'keep one of them')
  if (c.has('jwks_uri')) {
    const raw = c.str('jwks_uri') ?? ''
    const u = isAbsoluteUrl(raw)
    if (!u || !(u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname))) || u.hash || raw.includes('#'))
      c.error('jwks_uri', `${label}option 'jwks_uri' must be an absolute https URL without fragment but it's configured as '${raw}'`, 'http is accepted for loopback hosts only, which also need client_jwks_uri_allow_private_networks')
    else out.jwksUri = raw
  }
  if (hasJwks) {
    const keys: ClientKeyConfig[] = []
    const kids = new Set<string>()
    c.list('jwks').forEach((item, i) => {
      const k = readClientKey(item, `${label}jwks: key #${i + 1}: `)
      if (!k) return
      if (kids.has(k.keyId)) item.error('key_id', `${label}jwks: key #${i + 1}: option 'key_id' must be unique but '${k.keyId}' is used twice`)
      kids.add(k.keyId)
      keys.push(k)
    })
    out.jwks = keys
    if (method === 'private_key_jwt' && out.tokenEndpointAuthSigningAlg && keys.length > 0 && !keys.some((k) => k.algorithm === out.tokenEndpointAuthSigningAlg))
      c.error('jwks', `${label}option 'jwks' has no key for the algorithm '${out.tokenEndpointAuthSigningAlg}' of option 'token_endpoint_auth_signing_alg'`)
  }
  if (method === 'private_key_jwt' && !hasJwks && !c.has('jwks_uri'))
    c.missing('jwks_uri', `${label}option 'jwks_uri' or 'jwks' is required with option 'token_endpoint_auth_method' with a value of 'private_key_jwt'`, "the client's public keys, inline or by URL")
  if (!isJwt && (hasJwks || c.has('jwks_uri')))
    c.warn(hasJwks ? 'jwks' : 'jwks_uri', `${label}option '${hasJwks ? 'jwks' : 'jwks_uri'}' is only used with option 'token_endpoint_auth_method' 'private_key_jwt'`)
}

function readClientKey(v: MapView, label: string): ClientKeyConfig | undefined {
  const keyId = v.str('key_id')
  if (!keyId) {
    v.missing('key_id', `${label}option 'key_id' is required`, 'the kid the client puts in its assertions')
    return undefined
  }
  const use = v.str('use')
  if (use !== undefined && use !== 'sig') v.error('use', `${label}option 'use' must be 'sig' but it's configured as '${use}'`)
  const pem = v.str('key')
  if (!pem) {
    v.missing('key', `${label}option 'key' is required`, 'a PEM public key')
    return undefined
  }
  let key: KeyObject
  try {
    key = createPublicKey({ key: pem, format: 'pem' })
  } catch {
    v.error('key', `${label}option 'key' must be a valid PEM public key`, 'PKCS#1 or SPKI PEM with its line breaks kept (a YAML block scalar "|")')
    return undefined
  }
  if (key.type !== 'public') {
    v.error('key', `${label}option 'key' must be a public key, not a private one`, 'only the public half belongs in this configuration')
    return undefined
  }
  const info = describeKey(key)
  if (info.kind === 'RSA' && (info.bits ?? 0) < 2048) {
    v.error('key', `${label}option 'key' must be an RSA public key with 2048 bits or more but it only has ${info.bits} bits`)
    return undefined
  }
  let algorithm = info.natural
  if (v.has('algorithm')) {
    const alg = v.oneOf('algorithm', SIGNING_ALGORITHMS, (x) => `${label}option 'algorithm' must be one of ${quoteList(SIGNING_ALGORITHMS)} but it's configured as '${x}'`)
    if (!alg) return undefined
    if (!compatible(alg, key)) {
      v.error('algorithm', `${label}option 'algorithm' is '${alg}' but the key is ${info.kind}`)
      return undefined
    }
    algorithm = alg
  }
  if (!algorithm) {
    v.error('key', `${label}option 'key' is a ${info.kind} key, which has no supported signing algorithm`)
    return undefined
  }
  const chain = v.str('certificate_chain')
  if (chain) {
    const first = chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)?.[0]
    let matches = false
    try {
      matches = first !== undefined && new X509Certificate(first).publicKey.equals(key)
    } catch {
      matches = false
    }
    if (!matches) v.error('certificate_chain', `${label}option 'certificate_chain' does not appear to contain the public key provided by option 'key'`)
  }
  return { keyId, algorithm, key: pem }
}

/** RFC 9126: 4.38's `pushed_authorizations`, and the betas' `require_pushed_authorization_requests`. */
function readPushedAuthorizations(v: MapView): OidcConfig['pushedAuthorizations'] {
  const p = v.map('pushed_authorizations')
  const enforce = (p.bool('enforce') ?? false) || (v.bool('require_pushed_authorization_requests') ?? false)
  const lifespan = p.duration('context_lifespan')
  let contextLifespanSeconds: number = DEFAULTS.oidc.pushedAuthorizationContextLifespanSeconds
  if (lifespan !== undefined && lifespan > 0) {
    if (lifespan > 3600) p.error('context_lifespan', `option 'context_lifespan' must be 1h or less but it's configured as ${lifespan} seconds`, 'a request_uri is meant to be used at once (RFC 9126 §2.2); 5m is the usual value')
    else contextLifespanSeconds = lifespan
  }
  return { enforce, contextLifespanSeconds }
}

/**
 * The logout registration metadata (RP-Initiated, Back-Channel and Front-Channel Logout 1.0), with
 * the redirect_uris rules (docs/security.md R5): absolute, no wildcard, no fragment, http warned
 * except on loopback. A back-channel URI on an IP literal or localhost that is loopback, private or
 * link-local is refused here unless allowed (docs/security.md E4); DNS names are checked at connect.
 */
function readLogoutUris(c: MapView, label: string, out: OidcClientConfig, allowPrivateBackchannel: boolean): void {
  const check = (key: string, value: string, path: Parameters<MapView['problems']['error']>[0], src: Parameters<MapView['problems']['error']>[2]): URL | undefined => {
    const err = (msg: string, hint?: string) => c.problems.error(path, `${label}option '${key}' ${msg}`, src, hint)
    if (value.includes('*')) return err(`has an invalid value: '${value}' must not contain a wildcard`, 'register the URI exactly'), undefined
    const u = isAbsoluteUrl(value)
    if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:') || !u.host) return err(`has an invalid value: '${value}' must be an absolute http or https URL`), undefined
    if (value.includes('#')) return err(`has an invalid value: '${value}' must not contain a fragment`), undefined
    if (u.protocol === 'http:' && !isLoopbackHost(u.hostname))
      c.problems.warn(path, `${label}option '${key}' has the value '${value}' which uses the insecure scheme 'http'`, src, 'use https; plain http is only expected for loopback addresses')
    return u
  }
  const seen = new Set<string>()
  for (const r of c.stringItems('post_logout_redirect_uris')) {
    if (seen.has(r.value)) {
      c.problems.error(r.path, `${label}option 'post_logout_redirect_uris' must have unique values but the value '${r.value}' is duplicated`, r.src)
      continue
    }
    seen.add(r.value)
    if (check('post_logout_redirect_uris', r.value, r.path, r.src)) out.postLogoutRedirectUris.push(r.value)
  }
  for (const key of ['backchannel_logout_uri', 'frontchannel_logout_uri'] as const) {
    const value = c.str(key)
    if (value === undefined) continue
    const u = check(key, value, c.keyPath(key), c.srcOf(key))
    if (!u) continue
    if (key === 'frontchannel_logout_uri') {
      out.frontchannelLogoutUri = value
      continue
    }
    if (!allowPrivateBackchannel && isPrivateHost(u.hostname)) {
      c.error(key, `${label}option '${key}' points at the loopback, private or link-local address '${u.hostname}', which back-channel logout refuses`, "set 'identity_providers.oidc.backchannel_logout_allow_private_networks: true' if the application really is on such an address")
      continue
    }
    out.backchannelLogoutUri = value
  }
}

export function readOidc(root: MapView, now: Date): OidcConfig | undefined {
  const v = root.map('identity_providers').map('oidc')
  if (!v.present) return undefined
  const d = DEFAULTS.oidc
  const hmacSecret = v.str('hmac_secret')
  if (!hmacSecret) v.missing('hmac_secret', "option 'hmac_secret' is required", 'a random string of 64 characters or more; opaque tokens are signed with it')
  const keys = readKeys(v, now)
  const keyAlgorithms = [...new Set(keys.map((k) => k.algorithm))]
  if (keyAlgorithms.length === 0) keyAlgorithms.push('RS256') // keep client checks quiet when the key itself failed
  const keyIndex: KeyIndex = { algorithms: keyAlgorithms, kids: new Map() }
  keyIdsOf(keys).forEach((kid, i) => {
    if (kid) keyIndex.kids.set(kid, keys[i]!.algorithm)
  })

  const entropy = v.int('minimum_parameter_entropy')
  let minimumParameterEntropy: number = d.minimumParameterEntropy
  if (entropy !== undefined && entropy !== 0) {
    if (entropy < -1) v.error('minimum_parameter_entropy', `option 'minimum_parameter_entropy' must be -1 (disabled) or more but it's configured as '${entropy}'`)
    else {
      minimumParameterEntropy = entropy
      if (entropy < 8) v.warn('minimum_parameter_entropy', `option 'minimum_parameter_entropy' is under 8 which is not recommended`)
    }
  }

  const out: OidcConfig = {
    issuerPrivateKeys: keys,
    lifespans: readLifespans(v),
    customLifespans: readCustomLifespans(v),
    enableClientDebugMessages: v.bool('enable_client_debug_messages') ?? false,
    minimumParameterEntropy,
    enforcePkce:
      v.oneOf('enforce_pkce', PKCE, (x) => `option 'enforce_pkce' must be 'never', 'public_clients_only' or 'always', but it is configured as '${x}'`) ?? (d.enforcePkce as PkceEnforcement),
    enablePkcePlainChallenge: v.bool('enable_pkce_plain_challenge') ?? false,
    cors: { endpoints: [], allowedOrigins: [], allowedOriginsFromClientRedirectUris: false },
    pushedAuthorizations: readPushedAuthorizations(v),
    clientJwksUriAllowPrivateNetworks: v.bool('client_jwks_uri_allow_private_networks') ?? false,
    backchannelLogoutAllowPrivateNetworks: v.bool('backchannel_logout_allow_private_networks') ?? false,
    clients: [],
  }
  if (hmacSecret) out.hmacSecret = hmacSecret

  const issuer = v.str('issuer')
  if (issuer !== undefined) {
    const u = isAbsoluteUrl(issuer)
    if (!u || !(u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname))) || u.search || u.hash || issuer.includes('#'))
      v.error('issuer', `option 'issuer' must be an absolute https URL without query or fragment but it's configured as '${issuer}'`, 'e.g. https://auth.example.com (http is accepted for localhost only)')
    else out.issuer = issuer.replace(/\/+$/, '')
  }

  const discovery = readSigning(v, 'discovery', keyIndex, '')
  if (discovery) out.discoverySigning = discovery
  if (v.bool('enable_jwt_access_token_stateless_introspection') === true)
    v.warn('enable_jwt_access_token_stateless_introspection', "option 'enable_jwt_access_token_stateless_introspection' has no effect: Latchkey checks its record of every JWT access token at introspection, so a revoked one is always inactive")
  const customScopes = v.entry('scopes')?.node
  if (customScopes?.kind === 'map' && customScopes.entries.size > 0)
    v.error('scopes', "option 'scopes' (custom scopes) is not supported by Latchkey", 'clients may request openid, offline_access, profile, email and groups; remove the custom scopes')

  const namedPolicies = new Set<string>()
  const policies = v.entry('authorization_policies')?.node
  if (policies?.kind === 'map') for (const k of policies.entries.keys()) namedPolicies.add(k)
  const named: Named = { policies: namedPolicies, lifespans: new Set(Object.keys(out.customLifespans)), claimsPolicies: readClaimsPolicies(v) }

  const items = v.list('clients')
  if (items.length === 0) v.missing('clients', "option 'clients' must have one or more clients configured")
  const ids = new Map<string, number>()
  items.forEach((item, i) => {
    const client = readClient(item, i, keyIndex, named, out.backchannelLogoutAllowPrivateNetworks)
    if (!client) return
    const lower = client.id.toLowerCase()
    const prev = ids.get(lower)
    if (prev !== undefined) {
      const idKey = pick(item, 'id', 'client_id')
      item.error(idKey, `client '${client.id}': option '${idKey}' must be unique (case-insensitive) but it's also used by client #${prev + 1}`)
      return
    }
    ids.set(lower, i)
    if (client.jwksUri && !out.clientJwksUriAllowPrivateNetworks && isNeverFetched(client.jwksUri)) {
      item.error(
        'jwks_uri',
        `client '${client.id}': option 'jwks_uri' '${client.jwksUri}' is a loopback or private address, which Latchkey never fetches unless option 'client_jwks_uri_allow_private_networks' is true`,
        'set identity_providers.oidc.client_jwks_uri_allow_private_networks: true for a relying party on your own network',
      )
      return
    }
    out.clients.push(client)
  })
  out.cors = readCors(v, out.clients)
  return out
}

/**
 * The normalised configuration model. Authelia's 4.37 and 4.38+ key names both load into this one
 * shape (see config/load.ts); every default is filled in once, then the object is frozen and passed
 * in. Durations are whole seconds, sizes bytes. Secrets are never defaulted.
 */

export type Theme = 'light' | 'dark' | 'grey' | 'auto' | 'oled'
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error'
export type Policy = 'bypass' | 'one_factor' | 'two_factor' | 'deny'
export type SameSite = 'none' | 'lax' | 'strict'
export type TotpAlgorithm = 'SHA1' | 'SHA256' | 'SHA512'
export type ConsentMode = 'explicit' | 'implicit' | 'pre-configured'
export type PkceEnforcement = 'never' | 'public_clients_only' | 'always'
export type TokenEndpointAuthMethod =
  | 'client_secret_basic'
  | 'client_secret_post'
  | 'client_secret_jwt'
  | 'private_key_jwt'
  | 'none'
export type SigningAlgorithm = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA'
export type GrantType = 'authorization_code' | 'refresh_token' | 'client_credentials' | 'implicit' | 'password'
export type ResponseMode = 'form_post' | 'query' | 'fragment' | 'jwt' | 'query.jwt' | 'fragment.jwt' | 'form_post.jwt'
/** A signing key choice (`*_signed_response_alg` / `*_signed_response_key_id`): a pinned kid, else the algorithm's first key. */
export interface SigningChoice {
  alg: SigningAlgorithm
  kid?: string
}
/** Token lifetimes, whole seconds. */
export interface Lifespans {
  accessTokenSeconds: number
  authorizeCodeSeconds: number
  idTokenSeconds: number
  refreshTokenSeconds: number
}
/** The grants a custom lifespan can name (4.38 `lifespans.custom.<name>.grants`). */
export type LifespanGrant = 'authorize_code' | 'implicit' | 'client_credentials' | 'refresh_token'
/** 4.38 `lifespans.custom.<name>`: per token type, then per grant; unset values fall back. */
export interface CustomLifespan {
  base: Partial<Lifespans>
  grants: Partial<Record<LifespanGrant, Partial<Lifespans>>>
}
/** 4.39 `claims_policies.<name>` as far as Latchkey implements it. */
export interface ClaimsPolicy {
  /** Scope claims copied into the ID token (the others only at userinfo). */
  idToken: string[]
  /** Scope claims copied into JWT access tokens. */
  accessToken: string[]
  idTokenAudienceMode: 'specification' | 'experimental-merged'
}
export type OidcScope = 'openid' | 'email' | 'profile' | 'groups' | 'offline_access'

export interface ServerConfig {
  host: string
  port: number
  /** Sub-path prefix without slashes ('' = root), e.g. 'authelia' → routes under /authelia/. */
  path: string
  tls?: { key: string; certificate: string }
  /** Addresses or CIDRs whose X-Forwarded-* headers are believed (Latchkey: `server.trusted_proxies`). */
  trustedProxies: string[]
  /** Body limit for every route (docs/security.md X1). */
  bodyLimitBytes: number
  timeouts: { readSeconds: number; writeSeconds: number; idleSeconds: number }
  disableHealthcheck: boolean
}

export interface LogConfig {
  level: LogLevel
  format: 'text' | 'json'
  filePath?: string
  keepStdout: boolean
}

export interface TotpConfig {
  disable: boolean
  issuer: string
  algorithm: TotpAlgorithm
  digits: 6 | 8
  periodSeconds: number
  skew: number
  secretSizeBytes: number
  /** 4.38+ `disable_reuse_security_policy`; Latchkey refuses reuse unless this is true. */
  disableReuseSecurityPolicy: boolean
}

export type UserVerification = 'discouraged' | 'preferred' | 'required'

/** `webauthn` (4.37 keys, 4.39 `selection_criteria`, `filtering`, `enable_passkey_login`). */
export interface WebauthnConfig {
  disable: boolean
  /** Relying party name shown by the browser. */
  displayName: string
  attestationConveyancePreference: 'none' | 'indirect' | 'direct'
  userVerification: UserVerification
  timeoutSeconds: number
  /** `cross-platform` (Authelia's default: security keys), `platform`, or none (either). */
  attachment?: 'platform' | 'cross-platform'
  discoverability: 'discouraged' | 'preferred' | 'required'
  /** 4.39: a discoverable credential with user verification signs in without a username. */
  enablePasskeyLogin: boolean
  /** 4.39 `experimental_enable_passkey_uv_two_factors`: such a sign-in counts as two factors. */
  passkeyUvTwoFactors: boolean
  prohibitBackupEligibility: boolean
  permittedAaguids: string[]
  prohibitedAaguids: string[]
}

export interface PasswordHashConfig {
  algorithm: 'argon2' | 'sha2crypt' | 'pbkdf2' | 'bcrypt' | 'scrypt'
  argon2: { variant: 'argon2id' | 'argon2i' | 'argon2d'; iterations: number; memoryKiB: number; parallelism: number; keyLength: number; saltLength: number }
  sha2crypt: { variant: 'sha512' | 'sha256'; iterations: number; saltLength: number }
  pbkdf2: { variant: 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512'; iterations: number; saltLength: number }
  bcrypt: { variant: 'standard' | 'sha256'; cost: number }
  scrypt: { iterations: number; blockSize: number; parallelism: number; keyLength: number; saltLength: number }
}

export interface FileBackendConfig {
  /** Absolute path (relative paths are resolved against the config file's folder at load). */
  path: string
  watch: boolean
  searchEmail: boolean
  searchCaseInsensitive: boolean
  password: PasswordHashConfig
}

export type LdapImplementation = 'custom' | 'activedirectory' | 'rfc2307bis' | 'freeipa' | 'lldap' | 'glauth'

/** `authentication_backend.ldap` after defaults per implementation (docs/ldap.md). */
export interface LdapBackendConfig {
  implementation: LdapImplementation
  /** `ldap://host:port` or `ldaps://host:port` as the client opens it. */
  url: string
  host: string
  port: number
  timeoutSeconds: number
  startTls: boolean
  /** Used for ldaps:// and StartTLS; server_name defaults to the host. */
  tls: TlsClientConfig
  baseDn: string
  additionalUsersDn: string
  additionalGroupsDn: string
  /** As configured, with the attribute placeholders still in (resolved by the provider). */
  usersFilter: string
  groupsFilter: string
  groupSearchMode: 'filter' | 'memberof'
  attributes: { distinguishedName: string; username: string; displayName: string; mail: string; memberOf: string; groupName: string }
  permitReferrals: boolean
  permitUnauthenticatedBind: boolean
  /** The service account's DN; empty with permit_unauthenticated_bind. */
  user: string
  password?: string
  /** Service connections kept open (`pooling.count`). */
  poolSize: number
}

export interface AuthenticationBackendConfig {
  file?: FileBackendConfig
  ldap?: LdapBackendConfig
  /**
   * How long a user's details (groups, emails, disabled state) read from the directory are used
   * before being read again: 0 is `always`, null is `disable`. The users file is always current.
   */
  refreshIntervalSeconds: number | null
  /** `password_reset` (4.37's `disable_reset_password` loads into `disable`). */
  passwordReset: PasswordResetConfig
}

/** `authentication_backend.password_reset` (4.37's `disable_reset_password` loads into `disable`). */
export interface PasswordResetConfig {
  disable: boolean
  /** The portal's "Forgot password?" goes here instead, and Latchkey's own reset is off. */
  customUrl?: string
}

/** `password_policy`: at most one of the two is enabled (Authelia refuses both). */
export interface PasswordPolicyConfig {
  standard: {
    enabled: boolean
    minLength: number
    /** 0: no maximum (beyond the 1024 bytes every password is held to). */
    maxLength: number
    requireUppercase: boolean
    requireLowercase: boolean
    requireNumber: boolean
    requireSpecial: boolean
  }
  zxcvbn: { enabled: boolean; minScore: number }
}

export interface AccessControlRule {
  domain: string[]
  domainRegex: string[]
  policy: Policy
  subject: string[][]
  networks: string[]
  resources: string[]
  methods: string[]
}

export interface AccessControlConfig {
  defaultPolicy: Policy
  networks: Array<{ name: string; networks: string[] }>
  rules: AccessControlRule[]
}

export interface SessionCookieConfig {
  domain: string
  /** 4.38+ `authelia_url`: the portal URL for this cookie domain. */
  autheliaUrl?: string
  defaultRedirectionUrl?: string
  name: string
  sameSite: SameSite
  expirationSeconds: number
  inactivitySeconds: number
  /** -1 disables "remember me". */
  rememberMeSeconds: number
}

export interface SessionConfig {
  /** Normalised: the 4.37 `session.domain` becomes one entry here. */
  cookies: SessionCookieConfig[]
  secret?: string
  /** Sessions in Redis instead of the storage backend (several instances share them). */
  redis?: RedisSessionConfig
}

export interface RedisSessionConfig {
  /** Host name or address; an absolute path is a unix socket (with `port: 0`). */
  host: string
  /** 6379 by default; 26379 (the Sentinel's) with `highAvailability`; 0 with a unix socket. */
  port: number
  username?: string
  password?: string
  databaseIndex: number
  /** Bounds connecting and each command, so an outage fails requests fast instead of hanging them. */
  timeoutSeconds: number
  /** Retries of a command that failed on a broken connection (Authelia's `max_retries`). */
  maxRetries: number
  maximumActiveConnections: number
  minimumIdleConnections: number
  /** Latchkey extension: every key starts with it, so several deployments can share one Redis. */
  keyPrefix: string
  tls?: TlsClientConfig
  highAvailability?: {
    sentinelName: string
    sentinelUsername?: string
    sentinelPassword?: string
    /** Sentinels besides `host`:`port`. */
    nodes: Array<{ host: string; port: number }>
    routeByLatency: boolean
    routeRandomly: boolean
  }
}

/** Authelia 4.39 `regulation.modes`: what a ban applies to. */
export type RegulationMode = 'user' | 'ip'

export interface RegulationConfig {
  /** Non-empty; default `['user']`. */
  modes: RegulationMode[]
  maxRetries: number
  findTimeSeconds: number
  banTimeSeconds: number
}

export interface StorageConfig {
  encryptionKey: string
  local?: { path: string }
  postgres?: PostgresConfig
  mysql?: MysqlConfig
}

export type TlsVersion = 'TLS1.0' | 'TLS1.1' | 'TLS1.2' | 'TLS1.3'

/** `storage.postgres.tls`: present means the connection uses TLS. */
/** Authelia's client `tls` block (storage.postgres, session.redis...). PEM values are inline text. */
export interface TlsClientConfig {
  serverName?: string
  skipVerify: boolean
  minimumVersion: TlsVersion
  maximumVersion?: TlsVersion
  /** PEM client certificate chain and its key, for client-certificate authentication. */
  certificateChain?: string
  privateKey?: string
}

export interface MysqlConfig {
  /** A host name or address (also the name checked in the server certificate). */
  host: string
  port: number
  /** The server's unix socket file, from `address: unix:///…`; host and port are then unused. */
  socketPath?: string
  database: string
  username: string
  password?: string
  timeoutSeconds: number
  tls?: TlsClientConfig
}

export interface PostgresConfig {
  /** A host name or address, or the absolute path of the folder holding the unix socket. */
  host: string
  port: number
  database: string
  schema: string
  username: string
  password?: string
  timeoutSeconds: number
  tls?: TlsClientConfig
}

export interface SmtpConfig {
  host: string
  port: number
  /** 'smtps' = implicit TLS (port 465), 'smtp'/'submission' = STARTTLS when offered. */
  scheme: 'smtp' | 'submission' | 'smtps'
  username?: string
  password?: string
  sender: string
  identifier: string
  subject: string
  timeoutSeconds: number
  startupCheckAddress: string
  disableRequireTls: boolean
  disableStarttls: boolean
  disableHtmlEmails: boolean
  tls: { serverName?: string; skipVerify: boolean; minimumVersion: 'TLS1.0' | 'TLS1.1' | 'TLS1.2' | 'TLS1.3' }
}

export interface NotifierConfig {
  disableStartupCheck: boolean
  filesystem?: { filename: string }
  smtp?: SmtpConfig
}

export interface IssuerKeyConfig {
  /** Stable `kid`; derived from the key's thumbprint when not configured. */
  keyId?: string
  algorithm: SigningAlgorithm
  use: 'sig'
  /** PEM private key. */
  key: string
  certificateChain?: string
}

/** A client's public key (Authelia 4.38 client `jwks` item), for RFC 7523 client assertions. */
export interface ClientKeyConfig {
  keyId: string
  algorithm: SigningAlgorithm
  /** PEM public key. */
  key: string
}

/** `client_secret_jwt` signs with the plaintext secret (HMAC); `private_key_jwt` with the client's key. */
export type ClientAssertionAlgorithm = 'HS256' | 'HS384' | 'HS512' | SigningAlgorithm

export interface OidcClientConfig {
  id: string
  description: string
  /** The encoded digest or plaintext exactly as configured; undefined for public clients. */
  secret?: string
  sectorIdentifier: string
  public: boolean
  authorizationPolicy: 'one_factor' | 'two_factor'
  /** `auto` is resolved at load: pre-configured when a duration is set, else explicit. */
  consentMode: ConsentMode
  preConfiguredConsentDurationSeconds: number
  audience: string[]
  scopes: OidcScope[]
  redirectUris: string[]
  grantTypes: GrantType[]
  responseTypes: string[]
  responseModes: ResponseMode[]
  userinfoSigningAlgorithm: 'none' | SigningAlgorithm
  idTokenSigningAlgorithm: SigningAlgorithm
  /** Undefined = accept both client_secret_basic and client_secret_post (Authelia 4.37 behaviour). */
  tokenEndpointAuthMethod?: TokenEndpointAuthMethod
  requirePkce: boolean
  pkceChallengeMethod?: 'S256' | 'plain'
  /** `id_token_signed_response_key_id`: pins the ID token key (its algorithm wins). */
  idTokenSigningKeyId?: string
  /** `userinfo_signed_response_key_id`. */
  userinfoSigningKeyId?: string
  /** RFC 9068 JWT access tokens; undefined = opaque (`none`). */
  accessTokenSigning?: SigningChoice
  /** RFC 9701 signed introspection responses; undefined = JSON unless the request asks for a JWT. */
  introspectionSigning?: SigningChoice
  /** JARM; undefined = plain responses unless a `*.jwt` response mode is requested. */
  authorizationSigning?: SigningChoice
  /** 4.38 `lifespan`: the name of a `lifespans.custom` entry. */
  lifespan?: string
  /** 4.38 `requested_audience_mode`: without an `audience` parameter, `implicit` grants every configured audience, `explicit` none. */
  requestedAudienceMode: 'explicit' | 'implicit'
  /** 4.39 `claims_policy`, resolved. */
  claimsPolicy?: ClaimsPolicy
  /** `client_secret_jwt`/`private_key_jwt` only: the one `alg` accepted (defaults HS256 / RS256). */
  tokenEndpointAuthSigningAlg?: ClientAssertionAlgorithm
  /** `private_key_jwt`: inline keys (`jwks`) or `jwks_uri`, never both. */
  jwks?: ClientKeyConfig[]
  jwksUri?: string
  /** RFC 9126 `require_pushed_authorization_requests`. */
  requirePushedAuthorizationRequests: boolean
  /** OIDC RP-Initiated Logout 1.0 §3.1: where the end-session endpoint may send the browser back (exact match). */
  postLogoutRedirectUris: string[]
  /** OIDC Back-Channel Logout 1.0 §2.2: where logout tokens are POSTed. */
  backchannelLogoutUri?: string
  backchannelLogoutSessionRequired: boolean
  /** OIDC Front-Channel Logout 1.0 §2: loaded in an iframe by the sign-out page. */
  frontchannelLogoutUri?: string
  frontchannelLogoutSessionRequired: boolean
}

export interface OidcConfig {
  hmacSecret?: string
  /** Latchkey extension `identity_providers.oidc.issuer`: fixed issuer URL (else from the request). */
  issuer?: string
  issuerPrivateKeys: IssuerKeyConfig[]
  lifespans: Lifespans
  /** 4.38 `lifespans.custom`, by name. */
  customLifespans: Record<string, CustomLifespan>
  /** `discovery_signed_response_alg` / `_key_id`: adds `signed_metadata` to discovery. */
  discoverySigning?: SigningChoice
  enableClientDebugMessages: boolean
  minimumParameterEntropy: number
  enforcePkce: PkceEnforcement
  enablePkcePlainChallenge: boolean
  cors: { endpoints: string[]; allowedOrigins: string[]; allowedOriginsFromClientRedirectUris: boolean }
  /** RFC 9126: `pushed_authorizations.enforce` (or 4.38 betas' `require_pushed_authorization_requests`) and `.context_lifespan`. */
  pushedAuthorizations: { enforce: boolean; contextLifespanSeconds: number }
  /** Latchkey extension `client_jwks_uri_allow_private_networks`: fetch client `jwks_uri` from loopback/private addresses. */
  clientJwksUriAllowPrivateNetworks: boolean
  /**
   * Latchkey extension: back-channel logout may reach loopback, private and link-local addresses
   * (docs/security.md E4). Off by default: such a target is refused when it is connected to.
   */
  backchannelLogoutAllowPrivateNetworks: boolean
  clients: OidcClientConfig[]
}

export interface Config {
  theme: Theme
  jwtSecret?: string
  defaultRedirectionUrl?: string
  default2faMethod?: string
  certificatesDirectory?: string
  server: ServerConfig
  log: LogConfig
  totp: TotpConfig
  webauthn: WebauthnConfig
  authenticationBackend: AuthenticationBackendConfig
  passwordPolicy: PasswordPolicyConfig
  accessControl: AccessControlConfig
  session: SessionConfig
  regulation: RegulationConfig
  storage: StorageConfig
  notifier: NotifierConfig
  identityProviders: { oidc?: OidcConfig }
}

export const DEFAULTS = {
  theme: 'light',
  server: {
    host: '0.0.0.0',
    port: 9091,
    path: '',
    trustedProxies: [] as string[],
    bodyLimitBytes: 64 * 1024,
    timeouts: { readSeconds: 6, writeSeconds: 6, idleSeconds: 30 },
    disableHealthcheck: false,
  },
  log: { level: 'info', format: 'text', keepStdout: false },
  totp: { disable: false, issuer: 'Authelia', algorithm: 'SHA1', digits: 6, periodSeconds: 30, skew: 1, secretSizeBytes: 32, disableReuseSecurityPolicy: false },
  webauthn: {
    disable: false,
    displayName: 'Authelia',
    attestationConveyancePreference: 'indirect',
    userVerification: 'preferred',
    timeoutSeconds: 60,
    attachment: 'cross-platform',
    discoverability: 'preferred',
    enablePasskeyLogin: false,
    passkeyUvTwoFactors: false,
    prohibitBackupEligibility: false,
  },
  password: {
    algorithm: 'argon2',
    argon2: { variant: 'argon2id', iterations: 3, memoryKiB: 65536, parallelism: 4, keyLength: 32, saltLength: 16 },
    sha2crypt: { variant: 'sha512', iterations: 50000, saltLength: 16 },
    pbkdf2: { variant: 'sha512', iterations: 310000, saltLength: 16 },
    bcrypt: { variant: 'standard', cost: 12 },
    scrypt: { iterations: 16, blockSize: 8, parallelism: 1, keyLength: 32, saltLength: 16 },
  },
  passwordPolicy: {
    standard: { enabled: false, minLength: 8, maxLength: 0, requireUppercase: false, requireLowercase: false, requireNumber: false, requireSpecial: false },
    zxcvbn: { enabled: false, minScore: 3 },
  },
  accessControl: { defaultPolicy: 'deny' },
  session: { name: 'authelia_session', sameSite: 'lax', expirationSeconds: 3600, inactivitySeconds: 300, rememberMeSeconds: 2592000 },
  regulation: { modes: ['user'] as RegulationMode[], maxRetries: 3, findTimeSeconds: 120, banTimeSeconds: 300 },
  smtp: { port: 25, identifier: 'localhost', subject: '[Authelia] {title}', timeoutSeconds: 5, startupCheckAddress: 'test@authelia.com' },
  oidc: {
    lifespans: { accessTokenSeconds: 3600, authorizeCodeSeconds: 60, idTokenSeconds: 3600, refreshTokenSeconds: 5400 },
    minimumParameterEntropy: 8,
    enforcePkce: 'public_clients_only',
    pushedAuthorizationContextLifespanSeconds: 300,
  },
  client: {
    authorizationPolicy: 'two_factor',
    preConfiguredConsentDurationSeconds: 604800,
    scopes: ['openid', 'groups', 'profile', 'email'],
    grantTypes: ['refresh_token', 'authorization_code'],
    responseTypes: ['code'],
    responseModes: ['form_post', 'query', 'fragment'],
    userinfoSigningAlgorithm: 'none',
    idTokenSigningAlgorithm: 'RS256',
  },
} as const

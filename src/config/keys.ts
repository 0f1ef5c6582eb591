/**
 * The known-key tree: every key Latchkey reads or accepts, with its type, default, secret flag and
 * Authelia generation. Unknown-key checks, deprecation warnings, the environment-variable map and the
 * documentation table (`CONFIG_KEYS`, doc.ts) are all derived from this one tree so they cannot drift.
 */

export type KeyKind = 'map' | 'list' | 'string' | 'path' | 'int' | 'bool' | 'duration' | 'size' | 'strings' | 'any'

export interface KeySpec {
  kind: KeyKind
  description: string
  /** Children of a map. */
  children?: Record<string, KeySpec>
  /** Item shape of a list. */
  item?: KeySpec
  /** A map whose unlisted children are accepted and ignored (Authelia has more there than Latchkey reads). */
  open?: boolean
  /** Shown in the documentation. */
  default?: string
  /** `4.38` = added by Authelia 4.38+; `latchkey` = Latchkey extension; absent = Authelia 4.37 and later. */
  since?: '4.38' | 'latchkey'
  /** The 4.38+ name replacing this 4.37 key, relative to the parent map (may contain dots). */
  renamedTo?: string
  /** Accepted for compatibility, has no effect in Latchkey. */
  ignored?: boolean
  /** Read only to be refused (an error naming the line) when set to a value Latchkey does not implement. */
  refused?: boolean
  /** Secret: may be given as `<ENV>_FILE`, never printed. Derived from the name when absent. */
  secret?: boolean
}

const leaf =
  (kind: KeyKind) =>
  (description: string, o: Partial<KeySpec> = {}): KeySpec => ({ kind, description, ...o })
const str = leaf('string')
const path = leaf('path')
const int = leaf('int')
const bool = leaf('bool')
const dur = leaf('duration')
const size = leaf('size')
const strs = leaf('strings')
const any = (description: string, o: Partial<KeySpec> = {}): KeySpec => ({ kind: 'any', description, ignored: true, ...o })
const map = (description: string, children: Record<string, KeySpec>, o: Partial<KeySpec> = {}): KeySpec => ({ kind: 'map', description, children, ...o })
const list = (description: string, item: KeySpec, o: Partial<KeySpec> = {}): KeySpec => ({ kind: 'list', description, item, ...o })
const ignored = (spec: KeySpec): KeySpec => ({ ...spec, ignored: true })
const refused = (spec: KeySpec): KeySpec => ({ ...spec, refused: true })
const passwordAlgorithms = {
  argon2: map('Argon2 parameters for new hashes.', {
    variant: str('`argon2id`, `argon2i` or `argon2d`.', { default: 'argon2id' }),
    iterations: int('Time cost.', { default: '3' }),
    memory: int('Memory in KiB.', { default: '65536' }),
    parallelism: int('Lanes.', { default: '4' }),
    key_length: int('Output bytes.', { default: '32' }),
    salt_length: int('Salt bytes.', { default: '16' }),
  }),
  sha2crypt: map('SHA-crypt parameters for new hashes.', {
    variant: str('`sha512` or `sha256`.', { default: 'sha512' }),
    iterations: int('Rounds.', { default: '50000' }),
    salt_length: int('Salt characters.', { default: '16' }),
  }),
  pbkdf2: map('PBKDF2 parameters for new hashes.', {
    variant: str('`sha1`, `sha224`, `sha256`, `sha384` or `sha512`.', { default: 'sha512' }),
    iterations: int('Iterations.', { default: '310000' }),
    salt_length: int('Salt bytes.', { default: '16' }),
  }),
  bcrypt: map('bcrypt parameters for new hashes.', {
    variant: str('`standard` or `sha256`.', { default: 'standard' }),
    cost: int('Cost (log2 rounds).', { default: '12' }),
  }),
  scrypt: map('scrypt parameters for new hashes.', {
    iterations: int('log2 N.', { default: '16' }),
    block_size: int('r.', { default: '8' }),
    parallelism: int('p.', { default: '1' }),
    key_length: int('Output bytes.', { default: '32' }),
    salt_length: int('Salt bytes.', { default: '16' }),
  }),
}

const signingKey = map('A signing key.', {
  key_id: str('`kid` of the key; derived from its thumbprint when absent.'),
  algorithm: str('`RS256` (default for RSA), `RS384`, `RS512`, `PS256`…, `ES256/384/512`, `EdDSA`.', { default: 'by key type' }),
  use: str('Only `sig`.', { default: 'sig' }),
  key: str('PEM private key.'),
  certificate_chain: str('PEM certificate chain; the first certificate must match the key.'),
})

const smtpTls = map('TLS towards the SMTP server.', {
  server_name: str('Name checked in the server certificate.', { default: 'the host' }),
  skip_verify: bool('Do not verify the certificate (testing only).', { default: 'false' }),
  minimum_version: str('`TLS1.0` … `TLS1.3`.', { default: 'TLS1.2' }),
  maximum_version: ignored(str('Ignored.')),
  certificate_chain: ignored(str('Client certificate chain (ignored).', { secret: false })),
  private_key: ignored(str('Client key (ignored).')),
})

/** Authelia's client `tls` block, the same wherever it appears (validate/tls.ts). */
const clientTls = (towards: string) => map(`TLS towards ${towards}; absent: no TLS.`, {
  server_name: str('Name checked in the server certificate.', { default: 'the host' }),
  skip_verify: bool('Do not verify the certificate (testing only).', { default: 'false' }),
  minimum_version: str('`TLS1.0` … `TLS1.3`.', { default: 'TLS1.2' }),
  maximum_version: str('`TLS1.0` … `TLS1.3`.', { default: 'TLS1.3' }),
  certificate_chain: str('PEM client certificate chain, for client-certificate authentication.', { secret: false }),
  private_key: str('PEM key of the client certificate.'),
})

const clientKey = map('A client public key.', {
  key_id: str('`kid` the client puts in its assertions.'),
  algorithm: str('`RS256` (default for RSA), `RS384`, `RS512`, `PS256`…, `ES256/384/512`, `EdDSA`.', { default: 'by key type' }),
  use: str('Only `sig`.', { default: 'sig' }),
  key: str('PEM public key (RSA of 2048 bits or more, P-256/384/521, Ed25519).', { secret: false }),
  certificate_chain: str('PEM certificate chain; the first certificate must match the key.', { secret: false }),
})

const client = map('An OpenID Connect relying party.', {
  id: str('Client identifier.', { renamedTo: 'client_id' }),
  client_id: str('Client identifier; unique, case-insensitive.', { since: '4.38' }),
  description: str('Display name.', { renamedTo: 'client_name' }),
  client_name: str('Display name.', { since: '4.38', default: 'the id' }),
  secret: str('Client secret digest (`$pbkdf2-sha512$…`); plaintext accepted with a warning.', { renamedTo: 'client_secret' }),
  client_secret: str('Client secret digest.', { since: '4.38' }),
  sector_identifier: str('Host used for pairwise subject identifiers.', { renamedTo: 'sector_identifier_uri' }),
  sector_identifier_uri: str('URI whose host is used for pairwise subject identifiers.', { since: '4.38' }),
  public: bool('Public client (no secret).', { default: 'false' }),
  authorization_policy: str('`one_factor` or `two_factor`.', { default: 'two_factor' }),
  consent_mode: str('`auto`, `explicit`, `implicit` or `pre-configured`.', { default: 'auto' }),
  pre_configured_consent_duration: dur('How long a pre-configured consent lasts.', { default: '1w' }),
  audience: strs('Extra audiences.', { default: '[]' }),
  scopes: strs('Allowed scopes: `openid`, `email`, `profile`, `groups`, `offline_access`.', { default: 'openid, groups, profile, email' }),
  redirect_uris: strs('Registered redirect URIs (exact match).'),
  grant_types: strs('`authorization_code`, `refresh_token`, `client_credentials`, `implicit`, `password`.', { default: 'refresh_token, authorization_code' }),
  response_types: strs('Response types.', { default: 'code' }),
  response_modes: strs('`form_post`, `query`, `fragment`.', { default: 'form_post, query, fragment' }),
  userinfo_signing_algorithm: str('`none` or a signing algorithm with a configured key.', { renamedTo: 'userinfo_signed_response_alg' }),
  userinfo_signed_response_alg: str('`none` or a signing algorithm with a configured key.', { since: '4.38', default: 'none' }),
  id_token_signed_response_alg: str('ID token signing algorithm.', { since: '4.38', default: 'RS256' }),
  token_endpoint_auth_method: str('`client_secret_basic`, `client_secret_post`, `client_secret_jwt` (needs a plaintext secret), `private_key_jwt` (needs `jwks` or `jwks_uri`) or `none` (public clients); unset accepts basic and post.', { since: '4.38' }),
  token_endpoint_auth_signing_alg: str('The only `alg` accepted in client assertions: `HS256`/`HS384`/`HS512` for `client_secret_jwt`, `RS*`, `PS*`, `ES*`, `EdDSA` for `private_key_jwt`.', { since: '4.38', default: 'HS256 / RS256' }),
  require_pkce: bool('Require PKCE for this client.', { since: '4.38', default: 'false' }),
  pkce_challenge_method: str('`S256` or `plain`; implies `require_pkce`.', { since: '4.38' }),
  id_token_signed_response_key_id: str('`kid` of the issuer key that signs ID tokens; sets the algorithm.', { since: '4.38', secret: false }),
  userinfo_signed_response_key_id: str('`kid` of the issuer key that signs userinfo; sets the algorithm.', { since: '4.38', secret: false }),
  access_token_signed_response_alg: str('`none` (opaque access tokens) or an algorithm: RFC 9068 JWT access tokens (`typ: at+jwt`), still revocable.', { since: '4.38', default: 'none' }),
  access_token_signed_response_key_id: str('`kid` of the issuer key that signs JWT access tokens; sets the algorithm.', { since: '4.38', secret: false }),
  introspection_signed_response_alg: str('`none` or an algorithm: introspection answers as RFC 9701 `application/token-introspection+jwt`.', { since: '4.38', default: 'none' }),
  introspection_signed_response_key_id: str('`kid` of the issuer key that signs introspection responses; sets the algorithm.', { since: '4.38', secret: false }),
  authorization_signed_response_alg: str('`none` or an algorithm: JARM authorization responses (`response_mode` `jwt`, `query.jwt`, `fragment.jwt`, `form_post.jwt`).', { since: '4.38', default: 'none' }),
  authorization_signed_response_key_id: str('`kid` of the issuer key that signs JARM responses; sets the algorithm.', { since: '4.38', secret: false }),
  request_object_signing_alg: refused(str('Refused: request objects are not supported.', { since: '4.38' })),
  requested_audience_mode: str('`explicit` (only requested audiences) or `implicit` (all configured audiences when none is requested).', { since: '4.38', default: 'implicit' }),
  lifespan: str('Name of a `lifespans.custom` entry for this client.', { since: '4.38' }),
  claims_policy: str('Name of a `claims_policies` entry for this client.', { since: '4.38' }),
  allow_multiple_auth_methods: refused(bool('Refused when true: one client authentication method per request (RFC 6749 §2.3).', { since: '4.38', default: 'false' })),
  request_uris: refused(strs('Refused when not empty: request objects are not supported.', { since: '4.38' })),
  require_pushed_authorization_requests: bool('Authorization requests of this client must use a pushed `request_uri` (RFC 9126).', { since: '4.38', default: 'false' }),
  jwks_uri: str('HTTPS URL of the client\'s JWK Set for `private_key_jwt` (fetched with a 5 s timeout, at most 64 KiB, cached 5 minutes, refreshed on an unknown `kid`); not with `jwks`.', { since: '4.38' }),
  jwks: list('The client\'s public keys for `private_key_jwt`; not with `jwks_uri`.', clientKey, { since: '4.38' }),
  public_key: any('Client keys (ignored, 4.38 betas).', { since: '4.38' }),
  discovery_policy: refused(str('Refused: one discovery document for every client.', { since: '4.38' })),
  post_logout_redirect_uris: strs('Where the end-session endpoint may return the browser (RP-Initiated Logout 1.0; exact match).', { since: 'latchkey', default: '[]' }),
  backchannel_logout_uri: str('Receives a signed logout token when the user signs out (Back-Channel Logout 1.0).', { since: 'latchkey' }),
  backchannel_logout_session_required: bool('The logout token must carry `sid`; it always does.', { since: 'latchkey', default: 'false' }),
  frontchannel_logout_uri: str('Loaded in an iframe by the sign-out page, with `iss` and `sid` (Front-Channel Logout 1.0).', { since: 'latchkey' }),
  frontchannel_logout_session_required: bool('The front-channel URI must get `iss` and `sid`; it always does.', { since: 'latchkey', default: 'false' }),
})

export const KEY_TREE: KeySpec = map('The configuration file.', {
  theme: str('`light`, `dark`, `grey`, `auto` or `oled`.', { default: 'light' }),
  jwt_secret: str('Signs identity-verification link tokens (HS256; links are sent only with authelia_url).', { renamedTo: 'identity_validation.reset_password.jwt_secret' }),
  default_redirection_url: str('Where the portal sends users who arrive without a target.'),
  default_2fa_method: str('`totp` or `webauthn` (must be enabled): the method offered to users who chose none.'),
  certificates_directory: path('Must be an existing folder; its PEM certificates (`*.pem`, `*.crt`) are trusted, beside the system CAs, for the LDAP directory. Other TLS clients use the system CAs only.'),
  server: map('The HTTP listener.', {
    host: str('Listen address.', { renamedTo: 'address', default: '0.0.0.0' }),
    port: int('Listen port.', { renamedTo: 'address', default: '9091' }),
    path: str('Sub-path prefix, letters and digits only.', { renamedTo: 'address', default: '""' }),
    address: str('`tcp://[host]:port/[path]`.', { since: '4.38', default: 'tcp://:9091/' }),
    asset_path: ignored(path('Custom assets (ignored).')),
    disable_healthcheck: bool('Do not serve `GET /api/health` (Authelia keeps the endpoint and only stops writing its health-check file).', { default: 'false' }),
    enable_pprof: ignored(bool('Ignored.', { renamedTo: 'endpoints.enable_pprof' })),
    enable_expvars: ignored(bool('Ignored.', { renamedTo: 'endpoints.enable_expvars' })),
    read_buffer_size: ignored(int('Ignored.', { renamedTo: 'buffers.read' })),
    write_buffer_size: ignored(int('Ignored.', { renamedTo: 'buffers.write' })),
    endpoints: any('Authz endpoints, pprof, expvars (ignored).', { since: '4.38' }),
    buffers: any('Buffer sizes (ignored).', { since: '4.38' }),
    headers: any('Header templates such as `csp_template` (ignored).'),
    timeouts: map('Connection timeouts.', {
      read: dur('Read timeout.', { default: '6s' }),
      write: dur('Write timeout.', { default: '6s' }),
      idle: dur('Idle timeout.', { default: '30s' }),
    }),
    tls: map('Serve HTTPS directly.', {
      key: path('PEM private key file.'),
      certificate: path('PEM certificate file.'),
      client_certificates: refused(strs('Refused when not empty: require client certificates at the reverse proxy.')),
    }),
    trusted_proxies: strs('Addresses or CIDRs whose X-Forwarded-* headers are believed.', { since: 'latchkey', default: '[]' }),
    body_limit: size('Largest request body, bytes or `64KiB`.', { since: 'latchkey', default: '64KiB' }),
  }),
  log: map('Logging.', {
    level: str('`trace`, `debug`, `info`, `warn` or `error`.', { default: 'info' }),
    format: str('`text` or `json`.', { default: 'text' }),
    file_path: path('Log to this file instead of standard output (see `keep_stdout`).'),
    keep_stdout: bool('Keep logging to stdout when `file_path` is set.', { default: 'false' }),
  }),
  totp: map('Time-based one-time passwords.', {
    disable: bool('Turn TOTP off.', { default: 'false' }),
    issuer: str('Issuer label in the otpauth URL.', { default: 'Authelia' }),
    algorithm: str('`SHA1`, `SHA256` or `SHA512`.', { default: 'SHA1' }),
    digits: int('6 or 8.', { default: '6' }),
    period: int('Seconds per code, 15 or more.', { default: '30' }),
    skew: int('Periods accepted either side.', { default: '1' }),
    secret_size: int('Secret bytes, 20 or more.', { default: '32' }),
    allowed_algorithms: ignored(strs('Ignored.', { since: '4.38' })),
    allowed_digits: any('Ignored.', { since: '4.38' }),
    allowed_periods: any('Ignored.', { since: '4.38' }),
    disable_reuse_security_policy: bool('Accept a code twice within its period.', { since: '4.38', default: 'false' }),
  }),
  webauthn: map('WebAuthn security keys and passkeys (docs/webauthn.md).', {
    disable: bool('Turn WebAuthn off.', { default: 'false' }),
    display_name: str('Relying party name the browser shows.', { default: 'Authelia' }),
    attestation_conveyance_preference: str('`none`, `indirect` or `direct`.', { default: 'indirect' }),
    user_verification: str('`discouraged`, `preferred` or `required`.', { renamedTo: 'selection_criteria.user_verification', default: 'preferred' }),
    timeout: dur('How long the browser waits for the authenticator.', { default: '60s' }),
    enable_passkey_login: bool('Sign in with a passkey (discoverable credential with user verification), no username or password.', { since: '4.38', default: 'false' }),
    experimental_enable_passkey_uv_two_factors: bool('A passkey sign-in with user verification counts as two factors (else one: a second factor follows).', { since: '4.38', default: 'false' }),
    selection_criteria: map('Which authenticators to ask for.', {
      attachment: str('`cross-platform` (security keys), `platform` (built into the device) or `""` (either).', { default: 'cross-platform' }),
      discoverability: str('`discouraged`, `preferred` or `required` (resident key) for second-factor registrations; passkeys always require it.', { default: 'preferred' }),
      user_verification: str('`discouraged`, `preferred` or `required`.', { default: 'preferred' }),
    }, { since: '4.38' }),
    filtering: map('Which authenticators may register.', {
      prohibit_backup_eligibility: bool('Refuse credentials that can be copied off the device (synced passkeys).', { default: 'false' }),
      permitted_aaguids: strs('Only these authenticator models (AAGUIDs) may register.', { default: '[]' }),
      prohibited_aaguids: strs('These authenticator models (AAGUIDs) may not register.', { default: '[]' }),
    }, { since: '4.38' }),
    metadata: map('FIDO Metadata Service checks. Refused when `enabled` is true: Latchkey does not download the MDS blob.', {
      enabled: bool('Must be false.', { default: 'false' }),
    }, { since: '4.38', open: true }),
  }),
  duo_api: any('Duo (ignored).'),
  ntp: any('NTP check (ignored).'),
  password_policy: map('Rules a new password must meet (password reset). At most one of `standard` and `zxcvbn` may be enabled.', {
    standard: map('Length and character classes.', {
      enabled: bool('Apply this policy.', { default: 'false' }),
      min_length: int('Fewest characters.', { default: '8' }),
      max_length: int('Most characters; 0: no limit beyond the 1024 bytes every password is held to.', { default: '0' }),
      require_uppercase: bool('At least one upper-case letter.', { default: 'false' }),
      require_lowercase: bool('At least one lower-case letter.', { default: 'false' }),
      require_number: bool('At least one digit.', { default: 'false' }),
      require_special: bool('At least one character that is neither a letter nor a digit.', { default: 'false' }),
    }),
    zxcvbn: map('Strength estimate (zxcvbn, English and common dictionaries).', {
      enabled: bool('Apply this policy.', { default: 'false' }),
      min_score: int('Lowest accepted score, 1 to 4.', { default: '3' }),
    }),
  }),
  telemetry: any('Telemetry (ignored).'),
  definitions: any('Named networks and user attributes (ignored).', { since: '4.38' }),
  privacy_policy: any('Privacy policy link (ignored).', { since: '4.38' }),
  identity_validation: map(
    'Identity verification.',
    {
      reset_password: map('Identity-verification links.', { jwt_secret: str('Signs identity-verification link tokens.', { since: '4.38' }) }, { open: true, since: '4.38' }),
      elevated_session: any('Ignored: fixed values (8-character code valid 5 minutes, elevation 10 minutes).', { since: '4.38' }),
    },
    { open: true, since: '4.38' },
  ),
  authentication_backend: map('Where users come from.', {
    password_reset: map('"Forgot password?" on the sign-in page (users file, or LDAP through the service account: docs/ldap.md).', {
      disable: bool('Turn password reset off: no link, and its API answers 403.', { default: 'false' }),
      custom_url: str('Send "Forgot password?" to this URL instead (even with `disable`, as Authelia); Latchkey\'s own reset is then off.'),
    }),
    disable_reset_password: bool('Turn password reset off.', { renamedTo: 'password_reset.disable', default: 'false' }),
    refresh_interval: str(
      'How long user details read from LDAP (groups, emails, display name, disabled) are used before being read again: a duration, `always` or `disable`. The users file is always current.',
      { default: '5m' },
    ),
    ldap: map('The LDAP users backend (docs/ldap.md).', {
      implementation: str('`custom`, `activedirectory`, `rfc2307bis`, `freeipa`, `lldap` or `glauth`: chooses the default filters and attributes.', { default: 'custom' }),
      url: str('Directory address.', { renamedTo: 'address' }),
      address: str('`ldap://host:389`, `ldaps://host:636` (the default scheme); `ldapi://` is refused.', { since: '4.38' }),
      timeout: dur('Connect and per-operation timeout.', { default: '5s (custom: 20s)' }),
      start_tls: bool('Upgrade `ldap://` with StartTLS before binding.', { default: 'false' }),
      skip_verify: bool('Old name.', { renamedTo: 'tls.skip_verify' }),
      minimum_tls_version: str('Old name.', { renamedTo: 'tls.minimum_version' }),
      tls: clientTls('the directory (ldaps:// and StartTLS); extra CAs come from `certificates_directory`'),
      pooling: map('Service connections.', {
        enable: bool('Accepted; Latchkey always keeps a pool of service connections.', { since: '4.38', default: 'true' }),
        count: int('Service connections kept open.', { since: '4.38', default: '5' }),
        retries: ignored(int('Ignored.', { since: '4.38' })),
        timeout: ignored(dur('Ignored: a sign-in waits at most `timeout` for a connection.', { since: '4.38' })),
      }, { since: '4.38' }),
      base_dn: str('Base of every search, e.g. `dc=example,dc=com`.'),
      additional_users_dn: str('Prefixed to base_dn for user searches, e.g. `ou=users`.', { default: 'by implementation' }),
      users_filter: str('Finds the user; placeholders `{input}`, `{username_attribute}`, `{mail_attribute}`, `{display_name_attribute}`, `{distinguished_name_attribute}`, `{member_of_attribute}`, `{date-time:generalized|unix|microsoft-nt}`.', { default: 'by implementation' }),
      additional_groups_dn: str('Prefixed to base_dn for group searches, e.g. `ou=groups`.', { default: 'by implementation' }),
      groups_filter: str('Finds the groups of a user; placeholders `{input}`, `{username}`, `{dn}`, `{memberof:dn}`, `{memberof:rdn}` and the attribute ones.', { default: 'by implementation' }),
      group_search_mode: str('`filter` or `memberof`.', { since: '4.38', default: 'filter' }),
      username_attribute: str('Old name.', { renamedTo: 'attributes.username' }),
      mail_attribute: str('Old name.', { renamedTo: 'attributes.mail' }),
      display_name_attribute: str('Old name.', { renamedTo: 'attributes.display_name' }),
      group_name_attribute: str('Old name.', { renamedTo: 'attributes.group_name' }),
      attributes: map('Directory attribute names.', {
        distinguished_name: str('Holds the DN (`{memberof:dn}`).', { default: 'by implementation' }),
        username: str('The username (single-valued).', { default: 'by implementation' }),
        display_name: str('The display name.', { default: 'by implementation' }),
        mail: str('Email addresses (the first is `email`).', { default: 'mail' }),
        member_of: str('Groups of a user (`memberof` mode).', { default: 'by implementation' }),
        group_name: str('The name of a group.', { default: 'cn' }),
        family_name: ignored(str('Ignored.', { since: '4.38' })),
        given_name: ignored(str('Ignored.', { since: '4.38' })),
        middle_name: ignored(str('Ignored.', { since: '4.38' })),
        nickname: ignored(str('Ignored.', { since: '4.38' })),
        gender: ignored(str('Ignored.', { since: '4.38' })),
        birthdate: ignored(str('Ignored.', { since: '4.38' })),
        website: ignored(str('Ignored.', { since: '4.38' })),
        profile: ignored(str('Ignored.', { since: '4.38' })),
        picture: ignored(str('Ignored.', { since: '4.38' })),
        zoneinfo: ignored(str('Ignored.', { since: '4.38' })),
        locale: ignored(str('Ignored.', { since: '4.38' })),
        phone_number: ignored(str('Ignored.', { since: '4.38' })),
        phone_extension: ignored(str('Ignored.', { since: '4.38' })),
        street_address: ignored(str('Ignored.', { since: '4.38' })),
        locality: ignored(str('Ignored.', { since: '4.38' })),
        region: ignored(str('Ignored.', { since: '4.38' })),
        postal_code: ignored(str('Ignored.', { since: '4.38' })),
        country: ignored(str('Ignored.', { since: '4.38' })),
        extra: any('Extra attributes (ignored).', { since: '4.38' }),
      }, { since: '4.38' }),
      permit_referrals: bool('Follow a referral returned by the user search (same bind, same TLS settings).', { default: 'false' }),
      permit_unauthenticated_bind: bool('Bind the service connections anonymously (no user/password). User binds with an empty password stay refused.', { default: 'false' }),
      permit_feature_detection_failure: ignored(bool('Ignored: the root DSE is read for the log only.')),
      user: str('DN of the service account that searches.'),
      password: str('Password of the service account.'),
    }),
    file: map('The users file backend.', {
      path: path('Users file.'),
      watch: bool('Reload the users file when it changes.', { default: 'false' }),
      search: map('Sign-in lookup.', {
        email: bool('Sign in by email address too.', { default: 'false' }),
        case_insensitive: bool('Usernames are case-insensitive.', { default: 'false' }),
      }),
      password: map(
        'Hashing of the passwords that password reset writes into the users file (`latchkey crypto hash generate` takes its own flags).',
        {
        algorithm: str('`argon2`, `sha2crypt`, `pbkdf2`, `bcrypt` or `scrypt` (old: `argon2id`, `sha512`).', { default: 'argon2' }),
        iterations: int('Old flat form (argon2id / sha512).'),
        key_length: int('Old flat form.'),
        salt_length: int('Old flat form.'),
        memory: int('Old flat form, MiB.'),
        parallelism: int('Old flat form.'),
        ...passwordAlgorithms,
        },
      ),
    }),
  }),
  access_control: map('Forward-auth access rules (parsed; not used by OIDC).', {
    default_policy: str('`bypass`, `one_factor`, `two_factor` or `deny`.', { default: 'deny' }),
    networks: list('Named network lists.', map('A named list.', { name: str('Name.'), networks: strs('Addresses or CIDRs.') })),
    rules: list(
      'Rules, first match wins.',
      map('A rule.', {
        domain: strs('Domains.'),
        domain_regex: strs('Domain patterns.'),
        policy: str('`bypass`, `one_factor`, `two_factor` or `deny`.'),
        subject: any('`user:x` / `group:y`, a list (or) of lists (and).', { ignored: false }),
        networks: strs('Addresses, CIDRs or network names.'),
        resources: strs('Path patterns.'),
        methods: strs('HTTP methods.'),
        query: any('Query conditions (ignored).'),
      }),
    ),
  }),
  session: map('The portal session cookie.', {
    name: str('Cookie name.', { default: 'authelia_session' }),
    domain: str('Cookie domain.', { renamedTo: 'cookies' }),
    same_site: str('`none`, `lax` or `strict`.', { default: 'lax' }),
    secret: str('Encrypts the sessions kept in Redis (AES-256-GCM); required with `redis`. Without `redis`, sessions live in the storage backend and this has no effect.'),
    expiration: dur('Session lifetime.', { default: '1h' }),
    inactivity: dur('Idle limit.', { default: '5m' }),
    remember_me_duration: dur('"Remember me" lifetime, -1 disables it.', { renamedTo: 'remember_me', default: '1M' }),
    remember_me: dur('"Remember me" lifetime, -1 disables it.', { since: '4.38', default: '1M' }),
    cookies: list(
      'Cookie domains.',
      map('A cookie domain.', {
        domain: str('Cookie domain.'),
        authelia_url: str('Portal URL for this domain. Required, except on a loopback domain (127.0.0.1, localhost), where links follow the address the browser used.'),
        default_redirection_url: str('Where the portal sends users without a target.'),
        name: str('Cookie name.', { default: 'session.name' }),
        same_site: str('`none`, `lax` or `strict`.', { default: 'session.same_site' }),
        expiration: dur('Session lifetime.', { default: 'session.expiration' }),
        inactivity: dur('Idle limit.', { default: 'session.inactivity' }),
        remember_me: dur('"Remember me" lifetime, -1 disables it.', { default: 'session.remember_me' }),
      }),
      { since: '4.38' },
    ),
    redis: map('Keep sessions in Redis instead of the storage backend, so several instances share them (`session.secret` encrypts them there).', {
      host: str('Host name or address; an absolute path is a unix socket (with `port: 0`). With `high_availability`: a Sentinel.'),
      port: int('Port; 0 with a unix socket.', { default: '6379 (26379 with high_availability)' }),
      username: str('ACL user.'),
      password: str('Password.'),
      database_index: int('Database number.', { default: '0' }),
      timeout: dur('Bounds connecting and each command: during an outage requests fail after at most this long.', { default: '5s' }),
      max_retries: int('Retries of a command interrupted by a broken connection.', { default: '0' }),
      maximum_active_connections: ignored(int('Accepted; Latchkey pipelines every command on one connection per instance.', { default: '8' })),
      minimum_idle_connections: ignored(int('Accepted; see maximum_active_connections.', { default: '0' })),
      key_prefix: str('Starts every key Latchkey writes, so several deployments can share one Redis.', { default: 'latchkey:', since: 'latchkey' }),
      tls: clientTls('Redis and the sentinels'),
      high_availability: map('Redis Sentinel: the sentinels named here (and `host`) say which server is the master.', {
        sentinel_name: str('Master name the sentinels monitor.'),
        sentinel_username: str('ACL user on the sentinels.'),
        sentinel_password: str('Password of the sentinels.'),
        nodes: list('More sentinels.', map('A sentinel.', { host: str('Host.'), port: int('Port.', { default: '26379' }) })),
        route_by_latency: ignored(bool('Accepted; reads always go to the master, so a sign-out is seen at once.', { default: 'false' })),
        route_randomly: ignored(bool('Accepted; see route_by_latency.', { default: 'false' })),
      }),
    }),
  }),
  regulation: map('Sign-in throttling.', {
    max_retries: int('Failures before a ban, 0 disables.', { default: '3' }),
    find_time: dur('Window the failures must fall in.', { default: '2m' }),
    ban_time: dur('Ban length.', { default: '5m' }),
    modes: strs('What a ban applies to: `user` (the account, for every address), `ip` (the client address, for every account), or both. Empty means `[user]`.', { since: '4.38', default: '[user]' }),
  }),
  storage: map('Persistent storage.', {
    encryption_key: str('Encrypts TOTP secrets; 20 characters or more.'),
    local: map('SQLite.', { path: path('Database file.') }),
    mysql: map(
      'MySQL 8 or MariaDB 10.11, for several instances sharing one database (docs/deploy.md#9-mysql-and-mariadb).',
      {
        host: str('Host name or address (also the name checked in the server certificate).', { renamedTo: 'address' }),
        port: int('Port.', { renamedTo: 'address', default: '3306' }),
        address: str('`tcp://host:port` (also `tcp4://`, `tcp6://`, `[v6]:port`), or `unix:///run/mysqld/mysqld.sock` (the socket file).', { since: '4.38' }),
        database: str('Database, which must exist (`CREATE DATABASE … CHARACTER SET utf8mb4`).'),
        username: str('User.'),
        password: str('Password.'),
        timeout: dur('Connection timeout.', { default: '5s' }),
        tls: clientTls('the database server'),
      },
    ),
    postgres: map(
      'PostgreSQL, for several instances sharing one database (docs/deploy.md#postgresql).',
      {
        host: str('Host name or address, or the folder of the unix socket (an absolute path).', { renamedTo: 'address' }),
        port: int('Port.', { renamedTo: 'address', default: '5432' }),
        address: str('`tcp://host:port` (also `tcp4://`, `tcp6://`, `[v6]:port`), or `unix:///run/postgresql` (the socket folder, or the socket file `…/.s.PGSQL.5432`).', { since: '4.38' }),
        database: str('Database.'),
        schema: str('Schema, which must exist; a plain identifier.', { default: 'public' }),
        username: str('User.'),
        password: str('Password (not needed with peer or trust authentication on the unix socket).'),
        timeout: dur('Connection timeout.', { default: '5s' }),
        tls: clientTls('the database server'),
        ssl: any('Authelia 4.37\'s `sslmode` options. Refused: the configuration does not load; use `tls`.', { ignored: false }),
        servers: any('Fail-over servers. Refused: the configuration does not load; give one address (a proxy in front of the replicas).', { since: '4.38', ignored: false }),
      },
    ),
  }),
  notifier: map('How emails are sent.', {
    disable_startup_check: bool('Skip the start-up check.', { default: 'false' }),
    template_path: ignored(path('Custom templates (ignored).')),
    filesystem: map('Append each email to a file (the newest is the last block).', { filename: path('File, created when missing.') }),
    smtp: map('SMTP.', {
      host: str('Host.', { renamedTo: 'address' }),
      port: int('Port.', { renamedTo: 'address', default: '25' }),
      address: str('`smtp://`, `submission://` or `smtps://` host[:port].', { since: '4.38' }),
      timeout: dur('Timeout.', { default: '5s' }),
      username: str('User.'),
      password: str('Password.'),
      sender: str('From address.'),
      identifier: str('HELO name.', { default: 'localhost' }),
      subject: str('Subject template.', { default: '[Authelia] {title}' }),
      startup_check_address: ignored(str('Accepted, no effect: the start-up check only connects and sends no email.', { default: 'test@authelia.com' })),
      disable_require_tls: bool('Allow plain SMTP.', { default: 'false' }),
      disable_starttls: bool('Never STARTTLS.', { default: 'false' }),
      disable_html_emails: bool('Text-only emails.', { default: 'false' }),
      tls: smtpTls,
    }),
  }),
  identity_providers: map('Identity providers.', {
    oidc: map('The OpenID Connect 1.0 provider.', {
      hmac_secret: str('Keys the HMAC of opaque tokens.'),
      issuer: str('Fixed issuer URL (else derived from configuration, see docs).', { since: 'latchkey' }),
      issuer_private_key: str('PEM RSA key (RS256).', { renamedTo: 'jwks' }),
      issuer_certificate_chain: str('PEM chain for the key.', { renamedTo: 'jwks' }),
      issuer_private_keys: list('Signing keys (4.38 betas).', signingKey, { since: '4.38', renamedTo: 'jwks' }),
      jwks: list('Signing keys.', signingKey, { since: '4.38' }),
      access_token_lifespan: dur('Access token lifetime.', { renamedTo: 'lifespans.access_token', default: '1h' }),
      authorize_code_lifespan: dur('Authorization code lifetime.', { renamedTo: 'lifespans.authorize_code', default: '1m' }),
      id_token_lifespan: dur('ID token lifetime.', { renamedTo: 'lifespans.id_token', default: '1h' }),
      refresh_token_lifespan: dur('Refresh token lifetime.', { renamedTo: 'lifespans.refresh_token', default: '90m' }),
      lifespans: map(
        'Token lifetimes.',
        {
          access_token: dur('Access token lifetime.', { default: '1h' }),
          authorize_code: dur('Authorization code lifetime.', { default: '1m' }),
          id_token: dur('ID token lifetime.', { default: '1h' }),
          refresh_token: dur('Refresh token lifetime.', { default: '90m' }),
          custom: any('Named lifespans per token type, then per grant (`authorize_code`, `implicit`, `client_credentials`, `refresh_token`); a client selects one with `lifespan`.', { ignored: false }),
        },
        { since: '4.38', open: true },
      ),
      enable_client_debug_messages: bool('Add debug text to error descriptions.', { default: 'false' }),
      minimum_parameter_entropy: int('Minimum length of `state` and `nonce`; -1 disables.', { default: '8' }),
      enforce_pkce: str('`never`, `public_clients_only` or `always`.', { default: 'public_clients_only' }),
      enable_pkce_plain_challenge: bool('Allow `plain` PKCE.', { default: 'false' }),
      enable_jwt_access_token_stateless_introspection: ignored(bool('No effect (a warning when true): a revoked JWT access token is always inactive.', { since: '4.38' })),
      require_pushed_authorization_requests: bool('Same as `pushed_authorizations.enforce` (4.38 betas).', { since: '4.38', default: 'false' }),
      pushed_authorizations: map(
        'Pushed authorization requests (RFC 9126).',
        {
          enforce: bool('Every authorization request must use a pushed `request_uri`.', { default: 'false' }),
          context_lifespan: dur('How long a pushed `request_uri` stays usable.', { default: '5m' }),
        },
        { since: '4.38' },
      ),
      client_jwks_uri_allow_private_networks: bool('Allow client `jwks_uri` on loopback, private, link-local or unique-local addresses (tests, intranets). Off: such addresses are refused when the URL is fetched.', { since: 'latchkey', default: 'false' }),
      discovery_signed_response_alg: str('`none` or an algorithm: discovery carries `signed_metadata` (RFC 8414 §2.1).', { since: '4.38', default: 'none' }),
      discovery_signed_response_key_id: str('`kid` of the issuer key that signs `signed_metadata`; sets the algorithm.', { since: '4.38', secret: false }),
      authorization_policies: any('Named policies: accepted, but a client naming one is refused (use `one_factor` or `two_factor`).', { since: '4.38' }),
      claims_policies: any('Named claims policies: `id_token` (scope claims kept in the ID token; the rest only at userinfo), `access_token` (claims in JWT access tokens), `id_token_audience_mode`; `custom_claims` refused.', { since: '4.38', ignored: false }),
      scopes: any('Custom scopes: refused when not empty.', { since: '4.38', ignored: false, refused: true }),
      cors: map('CORS.', {
        endpoints: strs('`authorization`, `pushed-authorization-request`, `token`, `revocation`, `introspection`, `userinfo`.', { default: '[]' }),
        allowed_origins: strs('Origins, or `*`.', { default: '[]' }),
        allowed_origins_from_client_redirect_uris: bool('Allow the origins of registered redirect URIs.', { default: 'false' }),
      }),
      backchannel_logout_allow_private_networks: bool('Let back-channel logout reach loopback, private and link-local addresses (refused otherwise).', { since: 'latchkey', default: 'false' }),
      clients: list('Relying parties.', client),
    }),
  }),
})

const SECRET_SUFFIX = /(key|secret|password|token|certificate_chain)$/

/** Whether a leaf is a secret (explicit flag, else by Authelia's name rule; paths never are). */
export function isSecretSpec(name: string, spec: KeySpec): boolean {
  if (spec.secret !== undefined) return spec.secret
  return spec.kind === 'string' && SECRET_SUFFIX.test(name)
}

/** Top-level names Authelia removed before 4.37 (still reported the way 4.37 does). */
export const REPLACED_KEYS: Readonly<Record<string, string>> = {
  host: 'server.host',
  port: 'server.port',
  tls_key: 'server.tls.key',
  tls_cert: 'server.tls.certificate',
  log_level: 'log.level',
  log_format: 'log.format',
  log_file_path: 'log.file_path',
  logs_level: 'log.level',
  logs_file_path: 'log.file_path',
}

export interface ConfigKeyEntry {
  /** Dotted path; list items as `[]`. */
  path: string
  type: KeyKind
  default?: string
  /** The name in Authelia 4.37, or null when 4.37 had no such key. */
  authelia437: string | null
  /** The name in Authelia 4.38+, or null when 4.38 removed it (or never had it). */
  authelia438: string | null
  secret: boolean
  description: string
  status: 'supported' | 'ignored' | 'deprecated' | 'latchkey' | 'refused'
}

function buildCatalogue(): ConfigKeyEntry[] {
  const out: ConfigKeyEntry[] = []
  const walk = (spec: KeySpec, prefix: string, inherited: { since?: KeySpec['since']; ignored?: boolean }) => {
    const entries = spec.kind === 'map' ? Object.entries(spec.children ?? {}) : []
    for (const [name, child] of entries) {
      const p = prefix ? `${prefix}.${name}` : name
      const since = child.since ?? inherited.since
      const isIgnored = child.ignored ?? inherited.ignored ?? false
      const renamed = child.renamedTo ? (prefix ? `${prefix}.${child.renamedTo}` : child.renamedTo) : undefined
      const entry: ConfigKeyEntry = {
        path: p,
        type: child.kind,
        authelia437: since === '4.38' || since === 'latchkey' ? null : p,
        authelia438: since === 'latchkey' ? null : (renamed ?? p),
        secret: isSecretSpec(name, child),
        description: child.description,
        status: since === 'latchkey' ? 'latchkey' : renamed ? 'deprecated' : child.refused ? 'refused' : isIgnored ? 'ignored' : 'supported',
      }
      if (child.default !== undefined) entry.default = child.default
      out.push(entry)
      if (child.kind === 'map') walk(child, p, { since, ignored: isIgnored })
      if (child.kind === 'list' && child.item) walk(child.item, `${p}[]`, { since, ignored: isIgnored })
    }
  }
  walk(KEY_TREE, '', {})
  return out
}

/** Machine-readable catalogue of every key, for docs/configuration.md. */
export const CONFIG_KEYS: readonly ConfigKeyEntry[] = Object.freeze(buildCatalogue().map((e) => Object.freeze(e)))

import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { describe, expect, test } from 'vitest'
import { renderConfigurationDoc } from './doc.js'
import { parseDuration, parseSize } from './duration.js'
import { ENV_BINDINGS } from './env.js'
import { CONFIG_KEYS, ConfigError, formatProblem, loadConfig, redactConfig, type ConfigProblem } from './load.js'

const KASM = 'fixtures/config/kasm-authelia.yml'
const KASM_438 = 'fixtures/config/kasm-authelia-438.yml'
const BROKEN = 'fixtures/config/broken'

function problemsOf(files: string[], env: Record<string, string | undefined> = {}): ConfigProblem[] {
  try {
    loadConfig({ files, env })
  } catch (e) {
    if (e instanceof ConfigError) return e.problems
    throw e
  }
  throw new Error('expected the configuration to fail')
}
const errorsOf = (files: string[], env: Record<string, string | undefined> = {}) => problemsOf(files, env).filter((p) => p.severity === 'error')
const shown = (p: ConfigProblem) => formatProblem({ ...p, ...(p.file ? { file: basename(p.file) } : {}) })

function tempConfig(text: string, name = 'configuration.yml'): string {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-config-'))
  writeFileSync(join(dir, name), text)
  writeFileSync(join(dir, 'users_database.yml'), 'users: {}\n')
  return join(dir, name)
}

describe('broken fixtures', () => {
  const expected = JSON.parse(readFileSync(join(BROKEN, 'expected.json'), 'utf8')) as Record<string, string[]>
  const files = readdirSync(BROKEN).filter((f) => f.endsWith('.yml')).sort()

  test('there are at least 24, each with an expected message', () => {
    expect(files.length).toBeGreaterThanOrEqual(24)
    expect(Object.keys(expected).sort()).toEqual(files)
  })

  test.each(files)('%s fails with exactly its one message, key path and line', (file) => {
    const errors = errorsOf([join(BROKEN, file)])
    expect(errors.map(shown)).toEqual(expected[file])
    const [message] = expected[file]!
    const m = /^[^:]+\.yml:(\d+):\d+: ([^:]+):/.exec(message!)
    if (m) {
      expect(errors[0]!.line).toBe(Number(m[1]))
      expect(errors[0]!.path).toBe(m[2] === 'yaml' ? '' : m[2])
    } else {
      expect(errors[0]!.line).toBeUndefined()
    }
  })
})

describe('the Kasm configuration', () => {
  test('loads with no error, a plaintext-secret warning and one deprecation warning per 4.37 key', () => {
    const { config, warnings } = loadConfig({ files: [KASM], env: {} })
    expect(warnings.map(formatProblem)).toEqual([
      "fixtures/config/kasm-authelia.yml:13:1: jwt_secret: configuration key 'jwt_secret' is deprecated: use 'identity_validation.reset_password.jwt_secret' instead",
      "fixtures/config/kasm-authelia.yml:17:3: server.host: configuration key 'server.host' is deprecated: use 'server.address' instead",
      "fixtures/config/kasm-authelia.yml:18:3: server.port: configuration key 'server.port' is deprecated: use 'server.address' instead",
      "fixtures/config/kasm-authelia.yml:35:3: session.domain: configuration key 'session.domain' is deprecated: use 'session.cookies' instead",
      "fixtures/config/kasm-authelia.yml:39:3: session.remember_me_duration: configuration key 'session.remember_me_duration' is deprecated: use 'session.remember_me' instead",
      "fixtures/config/kasm-authelia.yml:59:5: identity_providers.oidc.issuer_private_key: configuration key 'identity_providers.oidc.issuer_private_key' is deprecated: use 'identity_providers.oidc.jwks' instead",
      "fixtures/config/kasm-authelia.yml:88:9: identity_providers.oidc.clients[0].id: configuration key 'identity_providers.oidc.clients[0].id' is deprecated: use 'identity_providers.oidc.clients[0].client_id' instead",
      "fixtures/config/kasm-authelia.yml:89:9: identity_providers.oidc.clients[0].description: configuration key 'identity_providers.oidc.clients[0].description' is deprecated: use 'identity_providers.oidc.clients[0].client_name' instead",
      "fixtures/config/kasm-authelia.yml:90:9: identity_providers.oidc.clients[0].secret: configuration key 'identity_providers.oidc.clients[0].secret' is deprecated: use 'identity_providers.oidc.clients[0].client_secret' instead",
      "fixtures/config/kasm-authelia.yml:101:9: identity_providers.oidc.clients[0].userinfo_signing_algorithm: configuration key 'identity_providers.oidc.clients[0].userinfo_signing_algorithm' is deprecated: use 'identity_providers.oidc.clients[0].userinfo_signed_response_alg' instead",
      "fixtures/config/kasm-authelia.yml:90:17: identity_providers.oidc.clients[0].secret: client 'kasm': option 'secret' is plaintext but it should be a hashed value as plaintext values are deprecated and will be removed in the future (hint: store a digest of it, e.g. from `latchkey crypto hash generate pbkdf2 --password ...`)",
    ])
    expect(warnings.every((w) => !w.message.includes('insecure-secret'))).toBe(true)
    const client = config.identityProviders.oidc!.clients[0]!
    expect(client).toEqual({
      id: 'kasm',
      description: 'Kasm Workspaces',
      secret: 'insecure-secret',
      sectorIdentifier: '',
      public: false,
      authorizationPolicy: 'two_factor',
      consentMode: 'implicit',
      preConfiguredConsentDurationSeconds: 604800,
      audience: [],
      scopes: ['openid', 'profile', 'groups', 'email'],
      redirectUris: ['https://kasm.example.com/api/oidc_callback'],
      grantTypes: ['refresh_token', 'authorization_code'],
      responseTypes: ['code'],
      responseModes: ['form_post', 'query', 'fragment'],
      userinfoSigningAlgorithm: 'none',
      idTokenSigningAlgorithm: 'RS256',
      requirePkce: false,
      requestedAudienceMode: 'implicit',
      requirePushedAuthorizationRequests: false,
      postLogoutRedirectUris: [],
      backchannelLogoutSessionRequired: false,
      frontchannelLogoutSessionRequired: false,
    })
    expect(config.session.cookies).toEqual([
      { domain: 'example.com', name: 'authelia_session', sameSite: 'lax', expirationSeconds: 3600, inactivitySeconds: 300, rememberMeSeconds: 2592000, defaultRedirectionUrl: 'https://www.example.com/' },
    ])
    expect(config.authenticationBackend.file!.path).toBe(resolve('fixtures/config/users_database.yml'))
    expect(config.storage.local!.path).toBe(resolve('fixtures/config/db.sqlite3'))
    expect(config.server).toMatchObject({ host: '0.0.0.0', port: 9091, path: '', bodyLimitBytes: 65536 })
    expect(config.identityProviders.oidc!.issuerPrivateKeys).toHaveLength(1)
    expect(config.identityProviders.oidc!.lifespans).toEqual({ accessTokenSeconds: 3600, authorizeCodeSeconds: 60, idTokenSeconds: 3600, refreshTokenSeconds: 5400 })
    expect(Object.isFrozen(config.identityProviders.oidc!.clients[0]!.scopes)).toBe(true)
  })

  test('the 4.38 spelling of the same configuration loads to the same model', () => {
    const old = loadConfig({ files: [KASM], env: {} })
    const renamed = loadConfig({ files: [KASM_438], env: {} })
    expect(renamed.warnings.map((w) => w.path)).toEqual(['identity_providers.oidc.clients[0].client_secret'])
    const { autheliaUrl, ...cookie } = renamed.config.session.cookies[0]!
    expect(autheliaUrl).toBe('https://auth.example.com')
    expect({ ...renamed.config, session: { ...renamed.config.session, cookies: [cookie] } }).toEqual(old.config)
  })

  test('redactConfig hides every secret and keeps the rest', () => {
    const { config } = loadConfig({ files: [KASM], env: {} })
    const text = JSON.stringify(redactConfig(config))
    for (const secret of ['a_very_important_secret', 'insecure_session_secret', 'a_very_long_insecure_storage', 'insecure_hmac_secret', 'insecure-secret', 'BEGIN RSA PRIVATE KEY'])
      expect(text).not.toContain(secret)
    expect(text).toContain('"jwtSecret":"[redacted]"')
    expect(text).toContain('kasm.example.com')
  })
})

describe('merging files', () => {
  test('later files win, maps merge deeply, lists replace, and positions name the file that set the value', () => {
    const override = tempConfig(
      [
        'log:',
        '  level: debug',
        'totp:',
        '  digits: 8',
        '  period: 5',
        'identity_providers:',
        '  oidc:',
        '    clients:',
        '      - client_id: other',
        "        client_secret: '$pbkdf2-sha512$310000$c8p78n7pUMln0jzvd4aK4Q$JNRBzwAo0ek5qKn50cFzzvE9RXV88h1wJn5KGiHrD0YKtZaR/nCb2CJPOsKaPK0hjf.9yHxzQGZziziccp6Yng'",
        '        redirect_uris: [https://other.example.com/cb]',
        '',
      ].join('\n'),
      'override.yml',
    )
    const errors = errorsOf([KASM, override])
    expect(errors.map(shown)).toEqual(['override.yml:5:11: totp.period: must be 15 or more, got 5 (hint: 30 is the usual value)'])
    writeFileSync(override, readFileSync(override, 'utf8').replace('  period: 5\n', ''))
    const { config } = loadConfig({ files: [KASM, override], env: {} })
    expect(config.log.level).toBe('debug')
    expect(config.totp).toMatchObject({ digits: 8, issuer: 'example.com' })
    expect(config.identityProviders.oidc!.clients.map((c) => c.id)).toEqual(['other'])
    expect(config.identityProviders.oidc!.hmacSecret).toBe('insecure_hmac_secret_for_tests_only_0123456789abcdef')
  })

  test('a relative path resolves against the folder of the file that set it', () => {
    const override = tempConfig('storage:\n  local:\n    path: elsewhere.sqlite3\n', 'override.yml')
    const { config } = loadConfig({ files: [KASM, override], env: {} })
    expect(config.storage.local!.path).toBe(join(override, '..', 'elsewhere.sqlite3'))
    expect(config.authenticationBackend.file!.path).toBe(resolve('fixtures/config/users_database.yml'))
  })
})

describe('environment', () => {
  test('AUTHELIA_ and LATCHKEY_ variables override files, LATCHKEY_ winning; underscores in key names resolve', () => {
    const { config } = loadConfig({
      files: [KASM],
      env: {
        AUTHELIA_LOG_LEVEL: 'warn',
        LATCHKEY_LOG_LEVEL: 'debug',
        AUTHELIA_TOTP_PERIOD: '60',
        LATCHKEY_SERVER_PORT: '9092',
        AUTHELIA_IDENTITY_PROVIDERS_OIDC_HMAC_SECRET: 'from_the_environment_0123456789',
        LATCHKEY_SERVER_TRUSTED_PROXIES: '127.0.0.1, 10.0.0.0/8',
        AUTHELIA_SESSION_REMEMBER_ME_DURATION: '-1',
        LATCHKEY_CONFIG: 'ignored.yml',
        PATH: '/usr/bin',
      },
    })
    expect(config.log.level).toBe('debug')
    expect(config.totp.periodSeconds).toBe(60)
    expect(config.server.port).toBe(9092)
    expect(config.identityProviders.oidc!.hmacSecret).toBe('from_the_environment_0123456789')
    expect(config.server.trustedProxies).toEqual(['127.0.0.1', '10.0.0.0/8'])
    expect(config.session.cookies[0]!.rememberMeSeconds).toBe(-1)
  })

  test('a bad environment value names the variable', () => {
    expect(errorsOf([KASM], { AUTHELIA_TOTP_PERIOD: '10' }).map(formatProblem)).toEqual([
      'environment AUTHELIA_TOTP_PERIOD: totp.period: must be 15 or more, got 10 (hint: 30 is the usual value)',
    ])
  })

  test('an unknown variable with our prefix is a warning; lists cannot be set', () => {
    const { warnings } = loadConfig({ files: [KASM], env: { AUTHELIA_LOG_LEVL: 'debug', AUTHELIA_IDENTITY_PROVIDERS_OIDC_CLIENTS: 'x' } })
    expect(warnings.filter((w) => w.env).map(formatProblem)).toEqual([
      "environment AUTHELIA_IDENTITY_PROVIDERS_OIDC_CLIENTS: identity_providers.oidc.clients: configuration environment variable not expected: AUTHELIA_IDENTITY_PROVIDERS_OIDC_CLIENTS: 'identity_providers.oidc.clients' is a list, and lists cannot be set from the environment (it is ignored) (hint: set 'identity_providers.oidc.clients' in a configuration file)",
      'environment AUTHELIA_LOG_LEVL: configuration environment variable not expected: AUTHELIA_LOG_LEVL',
    ])
  })

  test('_FILE secrets are read with the trailing newline trimmed, and refused when a file also sets the key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-secret-'))
    writeFileSync(join(dir, 'hmac'), 'secret_from_a_file_0123456789abcdef\n')
    const file = tempConfig(readFileSync(KASM, 'utf8').replace(/    hmac_secret: .*\n/, ''))
    const loaded = loadConfig({ files: [file], env: { AUTHELIA_IDENTITY_PROVIDERS_OIDC_HMAC_SECRET_FILE: join(dir, 'hmac') } })
    expect(loaded.config.identityProviders.oidc!.hmacSecret).toBe('secret_from_a_file_0123456789abcdef')
    expect(errorsOf([KASM], { AUTHELIA_JWT_SECRET_FILE: join(dir, 'hmac') }).map(formatProblem)).toEqual([
      "environment AUTHELIA_JWT_SECRET_FILE: jwt_secret: secrets: error loading secret into key 'jwt_secret': it's already defined in other configuration sources",
    ])
    // The key then also counts as unset, which is reported too.
    expect(errorsOf([file], { AUTHELIA_IDENTITY_PROVIDERS_OIDC_HMAC_SECRET_FILE: join(dir, 'missing') }).map(formatProblem)).toContain(
      `environment AUTHELIA_IDENTITY_PROVIDERS_OIDC_HMAC_SECRET_FILE: identity_providers.oidc.hmac_secret: secrets: error loading secret path ${join(dir, 'missing')} into key 'identity_providers.oidc.hmac_secret': open ${join(dir, 'missing')}: no such file or directory`,
    )
  })

  test('every settable key has exactly one variable name', () => {
    expect(ENV_BINDINGS.get('IDENTITY_PROVIDERS_OIDC_HMAC_SECRET')!.path).toEqual(['identity_providers', 'oidc', 'hmac_secret'])
    expect(ENV_BINDINGS.get('IDENTITY_PROVIDERS_OIDC_ISSUER_PRIVATE_KEY')!.secret).toBe(true)
    expect(ENV_BINDINGS.get('SERVER_TLS_KEY')!.secret).toBe(false)
    expect(ENV_BINDINGS.has('IDENTITY_PROVIDERS_OIDC_CLIENTS')).toBe(false)
  })
})

describe('values and conflicts', () => {
  test('durations: seconds, unit blocks, months and years; garbage is refused', () => {
    expect(parseDuration(5400)).toBe(5400)
    expect(parseDuration('5400')).toBe(5400)
    expect(parseDuration('90m')).toBe(5400)
    expect(parseDuration('1h30m')).toBe(5400)
    expect(parseDuration('1M')).toBe(2592000)
    expect(parseDuration('1y2w')).toBe(365 * 86400 + 14 * 86400)
    expect(parseDuration('-1')).toBe(-1)
    expect(parseDuration('1hour')).toBeUndefined()
    expect(parseDuration('h')).toBeUndefined()
    expect(parseDuration('')).toBeUndefined()
    expect(parseSize('64KiB')).toBe(65536)
    expect(parseSize('1MB')).toBe(1000000)
    expect(parseSize('lots')).toBeUndefined()
  })

  test('-1 is refused where it does not mean disabled', () => {
    const file = tempConfig(readFileSync(KASM, 'utf8').replace('path: users_database.yml', 'path: users_database.yml').replace('expiration: 1h', 'expiration: -1'))
    expect(errorsOf([file]).map((p) => p.path)).toEqual(['session.expiration'])
  })

  test('one setting under both names is an error naming both', () => {
    const file = tempConfig(readFileSync(KASM, 'utf8').replace('      - id: kasm\n', '      - id: kasm\n        client_id: kasm\n'))
    expect(errorsOf([file]).map(shown)).toEqual([
      "configuration.yml:88:9: identity_providers.oidc.clients[0].id: configuration keys 'identity_providers.oidc.clients[0].id' and 'identity_providers.oidc.clients[0].client_id' are both set: they configure the same option, keep only 'identity_providers.oidc.clients[0].client_id'",
    ])
  })

  test('an unknown key is reported with its position', () => {
    const file = tempConfig(readFileSync(KASM, 'utf8').replace('        public: false\n', '        public: false\n        pubic: true\n'))
    expect(errorsOf([file]).map(shown)).toEqual(['configuration.yml:92:9: identity_providers.oidc.clients[0].pubic: configuration key not expected: identity_providers.oidc.clients[0].pubic'])
  })

  test('regulation.modes (Authelia 4.39): user and ip, a single string or a list, default [user]; anything else names the item and its line', () => {
    const kasm = readFileSync(KASM, 'utf8')
    const load = (text: string) => loadConfig({ files: [tempConfig(text)], env: {} }).config.regulation.modes
    expect(load(kasm)).toEqual(['user'])
    expect(load(kasm.replace('  max_retries: 3\n', '  modes: [ip, user]\n  max_retries: 3\n'))).toEqual(['ip', 'user'])
    expect(load(kasm.replace('  max_retries: 3\n', '  modes: ip\n  max_retries: 3\n'))).toEqual(['ip'])
    expect(load(kasm.replace('  max_retries: 3\n', '  modes: []\n  max_retries: 3\n'))).toEqual(['user'])
    const file = tempConfig(kasm.replace('  max_retries: 3\n', '  modes:\n    - user\n    - IP\n    - address\n  max_retries: 3\n'))
    expect(errorsOf([file]).map(shown)).toEqual([
      "configuration.yml:44:7: regulation.modes[1]: option 'modes' must only contain the values 'user', 'ip' but contains the value 'IP'",
      "configuration.yml:45:7: regulation.modes[2]: option 'modes' must only contain the values 'user', 'ip' but contains the value 'address'",
    ])
  })

  test('password reset and password_policy (issue 11): 4.37 and 4.38 names, defaults, and each bad value named with its line', () => {
    const kasm = readFileSync(KASM, 'utf8')
    const load = (text: string) => loadConfig({ files: [tempConfig(text)], env: {} })
    const plain = load(kasm).config
    expect(plain.authenticationBackend.passwordReset).toEqual({ disable: false })
    expect(plain.passwordPolicy).toEqual({
      standard: { enabled: false, minLength: 8, maxLength: 0, requireUppercase: false, requireLowercase: false, requireNumber: false, requireSpecial: false },
      zxcvbn: { enabled: false, minScore: 3 },
    })
    const old = load(kasm.replace('authentication_backend:\n', 'authentication_backend:\n  disable_reset_password: true\n'))
    expect(old.config.authenticationBackend.passwordReset).toEqual({ disable: true })
    expect(old.warnings.map(shown)).toContain("configuration.yml:27:3: authentication_backend.disable_reset_password: configuration key 'authentication_backend.disable_reset_password' is deprecated: use 'authentication_backend.password_reset.disable' instead")
    const custom = load(kasm.replace('authentication_backend:\n', 'authentication_backend:\n  password_reset:\n    custom_url: https://accounts.example.com/reset\n'))
    expect(custom.config.authenticationBackend.passwordReset).toEqual({ disable: false, customUrl: 'https://accounts.example.com/reset' })
    const policy = load(kasm + 'password_policy:\n  standard:\n    enabled: true\n    min_length: 12\n    max_length: 64\n    require_number: true\n')
    expect(policy.config.passwordPolicy.standard).toMatchObject({ enabled: true, minLength: 12, maxLength: 64, requireNumber: true, requireUppercase: false })
    const bad = tempConfig(
      kasm.replace('authentication_backend:\n', 'authentication_backend:\n  password_reset:\n    custom_url: javascript:alert(1)\n') +
        'password_policy:\n  standard:\n    enabled: true\n    min_length: 10\n    max_length: 5\n  zxcvbn:\n    enabled: true\n    min_score: 7\n',
    )
    expect(errorsOf([bad]).map(shown)).toEqual([
      "configuration.yml:28:17: authentication_backend.password_reset.custom_url: option 'custom_url' must be an absolute http or https URL but it's configured as 'javascript:alert(1)' (hint: the page of your own password reset service, e.g. https://accounts.example.com/reset)",
      expect.stringMatching(/^configuration\.yml:\d+:17: password_policy\.standard\.max_length: option 'max_length' must be 0 \(no limit\) or at least 'min_length' \(10\) but it's configured as '5'$/),
      expect.stringMatching(/^configuration\.yml:\d+:5: password_policy\.zxcvbn: only one password policy may be enabled/),
      expect.stringMatching(/^configuration\.yml:\d+:16: password_policy\.zxcvbn\.min_score: option 'min_score' must be between 1 and 4 but it's configured as '7'/),
    ])
  })

  test('every problem is reported at once', () => {
    expect(errorsOf(['fixtures/config/three-problems.yml']).map(shown)).toEqual([
      "three-problems.yml:3:8: theme: option 'theme' must be one of 'light', 'dark', 'grey', 'auto', 'oled' but it's configured as 'blue'",
      'three-problems.yml:5:11: totp.period: must be 15 or more, got 10 (hint: 30 is the usual value)',
      "three-problems.yml:14:19: storage.encryption_key: option 'encryption_key' must be 20 characters or longer (hint: a random string of 64 characters is a good choice)",
    ])
  })

  test('an invalid $-prefixed client secret is an error that does not echo the secret', () => {
    const file = tempConfig(readFileSync(KASM, 'utf8').replace("secret: 'insecure-secret'", "secret: '$pbkdf2-sha512$notanumber$abc$def'"))
    const errors = errorsOf([file])
    expect(errors.map((p) => p.path)).toEqual(['identity_providers.oidc.clients[0].secret'])
    expect(errors[0]!.message).toMatch(/^client 'kasm': option 'secret' is not a valid digest: /)
    expect(formatProblem(errors[0]!)).not.toContain('notanumber$abc')
  })

  test('consent mode auto is pre-configured when a duration is set, else explicit', () => {
    const text = readFileSync(KASM, 'utf8').replace('consent_mode: implicit', 'consent_mode: auto')
    const explicit = loadConfig({ files: [tempConfig(text)], env: {} }).config
    expect(explicit.identityProviders.oidc!.clients[0]!.consentMode).toBe('explicit')
    const pre = loadConfig({ files: [tempConfig(text.replace('consent_mode: auto', 'consent_mode: auto\n        pre_configured_consent_duration: 2w'))], env: {} }).config
    expect(pre.identityProviders.oidc!.clients[0]).toMatchObject({ consentMode: 'pre-configured', preConfiguredConsentDurationSeconds: 1209600 })
  })

  test('redirect URIs: wildcard refused, plain http warned unless loopback, oob only for public clients', () => {
    const base = readFileSync(KASM, 'utf8')
    const withUris = (uris: string[]) => tempConfig(base.replace('          - https://kasm.example.com/api/oidc_callback\n', uris.map((u) => `          - ${u}\n`).join('')))
    const { warnings } = loadConfig({ files: [withUris(['http://kasm.example.com/cb', 'http://127.0.0.1:8080/cb', 'http://localhost/cb'])], env: {} })
    expect(warnings.filter((w) => w.path.includes('redirect_uris')).map((w) => w.path)).toEqual(['identity_providers.oidc.clients[0].redirect_uris[0]'])
    expect(errorsOf([withUris(['https://*.example.com/cb', 'urn:ietf:wg:oauth:2.0:oob', '/relative'])]).map((p) => p.path)).toEqual([
      'identity_providers.oidc.clients[0].redirect_uris[0]',
      'identity_providers.oidc.clients[0].redirect_uris[1]',
      'identity_providers.oidc.clients[0].redirect_uris[2]',
    ])
  })

  test('server.tls.client_certificates is refused with its line, not ignored: ignoring it would admit clients without a certificate', () => {
    const base = readFileSync(KASM, 'utf8')
    const errors = errorsOf([tempConfig(base.replace('  port: 9091\n', '  port: 9091\n  tls:\n    client_certificates:\n      - /etc/ssl/ca.pem\n'))])
    expect(errors.map((p) => p.path)).toEqual(['server.tls.client_certificates'])
    expect(errors[0]!.message).toContain('not supported by Latchkey')
    expect(errors[0]!.line).toBe(21) // the list's first item
    expect(loadConfig({ files: [tempConfig(base.replace('  port: 9091\n', '  port: 9091\n  tls:\n    client_certificates: []\n'))], env: {} }).config).toBeDefined()
  })

  test('plain http is loopback-only by the one rule: 127.example.com is a DNS name, not loopback', () => {
    const base = readFileSync(KASM, 'utf8')
    const withUris = (uris: string[]) => tempConfig(base.replace('          - https://kasm.example.com/api/oidc_callback\n', uris.map((u) => `          - ${u}\n`).join('')))
    const { warnings } = loadConfig({ files: [withUris(['http://127.example.com/cb', 'http://[::1]:8080/cb', 'http://127.0.0.2/cb'])], env: {} })
    expect(warnings.filter((w) => w.path.includes('redirect_uris')).map((w) => w.path)).toEqual(['identity_providers.oidc.clients[0].redirect_uris[0]'])
    const withIssuer = (issuer: string) => tempConfig(base.replace('  oidc:\n', `  oidc:\n    issuer: ${issuer}\n`))
    expect(errorsOf([withIssuer('http://127.example.com')]).map((p) => p.path)).toEqual(['identity_providers.oidc.issuer'])
    expect(loadConfig({ files: [withIssuer('http://127.0.0.1:9091')], env: {} }).config.identityProviders.oidc!.issuer).toBe('http://127.0.0.1:9091')
  })

  test('RFC 7523 client keys (security.md J1, J5): method, algorithm, jwks or jwks_uri, each mistake with its path', async () => {
    const { generateKeyPairSync } = await import('node:crypto')
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
    const block = (pemText: string) => pemText.trim().split('\n').map((l) => `              ${l}`).join('\n')
    const base = readFileSync(KASM, 'utf8')
    const withClient = (lines: string) => tempConfig(base.replace("        secret: 'insecure-secret'\n", lines))
    const good = withClient(`        token_endpoint_auth_method: private_key_jwt\n        token_endpoint_auth_signing_alg: ES256\n        jwks:\n          - key_id: k1\n            key: |\n${block(pem)}\n`)
    const client = loadConfig({ files: [good], env: {} }).config.identityProviders.oidc!.clients[0]!
    expect(client).toMatchObject({ tokenEndpointAuthMethod: 'private_key_jwt', tokenEndpointAuthSigningAlg: 'ES256', jwks: [{ keyId: 'k1', algorithm: 'ES256' }] })
    expect(client.secret).toBeUndefined()
    const plain = loadConfig({ files: [withClient("        secret: '$plaintext$a-plaintext-secret-of-32-bytes-o'\n        token_endpoint_auth_method: client_secret_jwt\n")], env: {} }).config.identityProviders.oidc!.clients[0]!
    expect(plain.tokenEndpointAuthSigningAlg).toBe('HS256')
    const paths = (lines: string) => errorsOf([withClient(lines)]).map((p) => `${p.path}: ${p.message}`)
    // RFC 7518 §3.2: an HMAC key MUST be at least as long as the hash output (32, 48, 64 bytes).
    expect(paths("        secret: '$plaintext$s3cret'\n        token_endpoint_auth_method: client_secret_jwt\n")).toEqual([
      "identity_providers.oidc.clients[0].secret: client 'kasm': option 'secret' must be at least 32 bytes long with option 'token_endpoint_auth_signing_alg' 'HS256' (RFC 7518 §3.2) but it's 6 bytes",
    ])
    expect(paths("        secret: '$plaintext$a-plaintext-secret-of-32-bytes-o'\n        token_endpoint_auth_method: client_secret_jwt\n        token_endpoint_auth_signing_alg: HS512\n")[0]).toMatch(/must be at least 64 bytes long with option 'token_endpoint_auth_signing_alg' 'HS512' .* but it's 32 bytes/)
    const b64 = loadConfig({ files: [withClient(`        secret: '$base64$${Buffer.alloc(48, 7).toString('base64')}'\n        token_endpoint_auth_method: client_secret_jwt\n        token_endpoint_auth_signing_alg: HS384\n`)], env: {} })
    expect(b64.config.identityProviders.oidc!.clients[0]!.tokenEndpointAuthSigningAlg).toBe('HS384')
    expect(paths('        token_endpoint_auth_method: private_key_jwt\n')).toEqual([
      "identity_providers.oidc.clients[0].jwks_uri: client 'kasm': option 'jwks_uri' or 'jwks' is required with option 'token_endpoint_auth_method' with a value of 'private_key_jwt'",
    ])
    expect(paths('        token_endpoint_auth_method: private_key_jwt\n        token_endpoint_auth_signing_alg: HS256\n        jwks_uri: https://rp.example.com/jwks\n')[0]).toMatch(/token_endpoint_auth_signing_alg: .*must be one of 'RS256'.*with option 'token_endpoint_auth_method' 'private_key_jwt' but it's configured as 'HS256'/)
    expect(paths("        secret: '$plaintext$x'\n        token_endpoint_auth_method: client_secret_jwt\n        token_endpoint_auth_signing_alg: RS256\n")[0]).toMatch(/must be one of 'HS256', 'HS384', 'HS512'/)
    expect(paths('        token_endpoint_auth_method: private_key_jwt\n        jwks_uri: http://rp.example.com/jwks\n')[0]).toMatch(/jwks_uri: .*must be an absolute https URL/)
    // A jwks_uri that can only be refused at run time (loopback or a private address, without
    // client_jwks_uri_allow_private_networks) is refused at start, with its line (J5).
    for (const uri of ['http://127.0.0.1:8080/jwks', 'https://localhost/jwks', 'https://10.1.2.3/jwks', 'https://[::1]/jwks', 'https://[fd00::1]/jwks']) {
      expect(paths(`        token_endpoint_auth_method: private_key_jwt\n        jwks_uri: '${uri}'\n`)).toEqual([
        `identity_providers.oidc.clients[0].jwks_uri: client 'kasm': option 'jwks_uri' '${uri}' is a loopback or private address, which Latchkey never fetches unless option 'client_jwks_uri_allow_private_networks' is true`,
      ])
      const allowed = tempConfig(base.replace("        secret: 'insecure-secret'\n", `        token_endpoint_auth_method: private_key_jwt\n        jwks_uri: '${uri}'\n`).replace('  oidc:\n', '  oidc:\n    client_jwks_uri_allow_private_networks: true\n'))
      expect(loadConfig({ files: [allowed], env: {} }).config.identityProviders.oidc!.clients[0]!.jwksUri).toBe(uri)
    }
    expect(paths(`        token_endpoint_auth_method: private_key_jwt\n        jwks_uri: https://rp.example.com/jwks\n        jwks:\n          - key_id: k1\n            key: |\n${block(pem)}\n`)[0]).toMatch(/jwks_uri: .*must not be defined at the same time as option 'jwks'/)
    expect(paths(`        token_endpoint_auth_method: private_key_jwt\n        jwks:\n          - key_id: k1\n            key: |\n${block(weak)}\n`)[0]).toMatch(/jwks\[0\]\.key: .*2048 bits or more but it only has 1024 bits/)
    expect(paths(`        token_endpoint_auth_method: private_key_jwt\n        jwks:\n          - key_id: k1\n            algorithm: RS256\n            key: |\n${block(pem)}\n`)[0]).toMatch(/jwks\[0\]\.algorithm: .*'RS256' but the key is EC prime256v1/)
  })

  test('pushed authorization requests: enforce and context_lifespan, and the 4.38 betas key', () => {
    const base = readFileSync(KASM, 'utf8')
    const load = (text: string) => loadConfig({ files: [tempConfig(base.replace('  oidc:\n', `  oidc:\n${text}`))], env: {} }).config.identityProviders.oidc!
    expect(load('').pushedAuthorizations).toEqual({ enforce: false, contextLifespanSeconds: 300 })
    expect(load('    pushed_authorizations:\n      enforce: true\n      context_lifespan: 2m\n').pushedAuthorizations).toEqual({ enforce: true, contextLifespanSeconds: 120 })
    expect(load('    require_pushed_authorization_requests: true\n').pushedAuthorizations.enforce).toBe(true)
    expect(errorsOf([tempConfig(base.replace('  oidc:\n', '  oidc:\n    pushed_authorizations:\n      context_lifespan: 1d\n'))]).map((p) => p.path)).toEqual(['identity_providers.oidc.pushed_authorizations.context_lifespan'])
  })

  test('openid is added to a client scope list that lacks it', () => {
    const file = tempConfig(readFileSync(KASM, 'utf8').replace('          - openid\n', ''))
    expect(loadConfig({ files: [file], env: {} }).config.identityProviders.oidc!.clients[0]!.scopes).toEqual(['profile', 'groups', 'email', 'openid'])
  })

  test('session cookie domains may be localhost or an IP address for local use', () => {
    for (const domain of ['localhost', '127.0.0.1']) {
      const file = tempConfig(readFileSync(KASM, 'utf8').replace('domain: example.com', `domain: ${domain}`))
      expect(loadConfig({ files: [file], env: {} }).config.session.cookies[0]!.domain).toBe(domain)
    }
  })

  test('server.address forms', () => {
    for (const [address, host, port, path] of [
      ['tcp://:9091', '0.0.0.0', 9091, ''],
      ['tcp://127.0.0.1:8080/authelia', '127.0.0.1', 8080, 'authelia'],
      ['tcp://[::1]:9091/', '::1', 9091, ''],
    ] as const) {
      const file = tempConfig(readFileSync(KASM, 'utf8').replace('  host: 0.0.0.0\n  port: 9091\n', `  address: '${address}'\n`))
      expect(loadConfig({ files: [file], env: {} }).config.server).toMatchObject({ host, port, path })
    }
  })
})

describe('key catalogue', () => {
  test('lists both generations, secrets and Latchkey extensions, and renders a table row per key', () => {
    const byPath = new Map(CONFIG_KEYS.map((k) => [k.path, k]))
    expect(byPath.get('identity_providers.oidc.clients[].id')).toMatchObject({ authelia437: 'identity_providers.oidc.clients[].id', authelia438: 'identity_providers.oidc.clients[].client_id', status: 'deprecated', secret: false })
    expect(byPath.get('identity_providers.oidc.clients[].client_secret')).toMatchObject({ authelia437: null, secret: true })
    expect(byPath.get('server.trusted_proxies')).toMatchObject({ status: 'latchkey', authelia437: null, authelia438: null })
    expect(byPath.get('totp.period')).toMatchObject({ default: '30', type: 'int' })
    // Refused sections have no status of their own: `supported` (read, to be refused), said in the description.
    for (const refused of ['storage.postgres.ssl', 'storage.postgres.servers']) {
      expect(byPath.get(refused)).toMatchObject({ status: 'supported', description: expect.stringMatching(/Refused/) })
    }
    // Accepted and checked, but without effect.
    for (const noEffect of ['notifier.smtp.startup_check_address']) {
      expect(byPath.get(noEffect)?.status).toBe('ignored')
    }
    // Password reset writes new digests with these (issue 11).
    for (const used of ['authentication_backend.file.password.algorithm', 'authentication_backend.password_reset.disable', 'authentication_backend.password_reset.custom_url', 'password_policy.standard.min_length', 'password_policy.zxcvbn.min_score']) {
      expect(byPath.get(used)?.status).toBe('supported')
    }
    expect(byPath.get('authentication_backend.disable_reset_password')).toMatchObject({ status: 'deprecated', authelia438: 'authentication_backend.password_reset.disable' })
    expect(byPath.get('server.disable_healthcheck')).toMatchObject({ status: 'supported', description: expect.stringContaining('GET /api/health') })
    expect(byPath.get('identity_providers.oidc.clients[].token_endpoint_auth_method')!.description).toMatch(/`client_secret_jwt` \(needs a plaintext secret\), `private_key_jwt`/)
    expect(byPath.get('identity_providers.oidc.client_jwks_uri_allow_private_networks')).toMatchObject({ status: 'latchkey', default: 'false' })
    for (const implemented of ['clients[].jwks', 'clients[].jwks_uri', 'clients[].token_endpoint_auth_signing_alg', 'clients[].require_pushed_authorization_requests', 'pushed_authorizations.enforce', 'pushed_authorizations.context_lifespan']) {
      expect(byPath.get(`identity_providers.oidc.${implemented}`)?.status).toBe('supported')
    }
    const doc = renderConfigurationDoc()
    expect(doc.split('\n').filter((l) => l.startsWith('| `')).length).toBe(CONFIG_KEYS.length)
    expect(doc).toContain('`AUTHELIA_IDENTITY_PROVIDERS_OIDC_HMAC_SECRET`')
  })
})

describe('4.38/4.39 OIDC options (issue 10; docs/security.md K6, K7)', () => {
  const withProvider = (lines: string) => readFileSync(KASM_438, 'utf8').replace(/( {4}hmac_secret: .*\n)/, `$1${lines}`)
  /** The fixture's `lifespans` block with a `custom` section appended. */
  const withCustom = (custom: string, provider = '') => withProvider(provider).replace(/( {6}refresh_token: 90m\n)/, `$1      custom:\n${custom}`)

  test('enable_jwt_access_token_stateless_introspection: true loads with a warning naming its line (no effect: revocation is always checked)', () => {
    const file = tempConfig(withProvider('    enable_jwt_access_token_stateless_introspection: true\n'))
    const { warnings } = loadConfig({ files: [file], env: {} })
    const w = warnings.find((p) => p.path === 'identity_providers.oidc.enable_jwt_access_token_stateless_introspection')
    expect(w).toBeDefined()
    expect(w!.line).toBeGreaterThan(1)
    expect(w!.message).toContain('a revoked one is always inactive')
  })

  test('custom scopes are refused with their line; lifespans.custom and claims_policies are read and checked', () => {
    const scopes = errorsOf([tempConfig(withProvider('    scopes:\n      my_scope:\n        claims: [department]\n'))])
    expect(scopes.map((p) => [p.path, p.message])).toEqual([['identity_providers.oidc.scopes', "option 'scopes' (custom scopes) is not supported by Latchkey"]])
    expect(scopes[0]!.line).toBeGreaterThan(1)

    const lifespans = errorsOf([tempConfig(withCustom('        short:\n          access_token: 5m\n          grants:\n            device_code:\n              access_token: 1m\n'))])
    expect(lifespans.map((p) => p.path)).toEqual(['identity_providers.oidc.lifespans.custom.short.grants.device_code'])
    expect(lifespans[0]!.message).toContain("grants: 'device_code' is not a grant Latchkey issues tokens for")

    const policy = errorsOf([tempConfig(withProvider('    claims_policies:\n      narrow:\n        id_token: [phone_number]\n'))])
    expect(policy.map((p) => p.path)).toEqual(['identity_providers.oidc.claims_policies.narrow.id_token[0]'])

    const ok = loadConfig({
      files: [tempConfig(withCustom('        short:\n          access_token: 5m\n          grants:\n            refresh_token:\n              access_token: 2m\n', '    discovery_signed_response_alg: RS256\n    claims_policies:\n      narrow:\n        id_token: [email]\n        id_token_audience_mode: experimental-merged\n'))],
      env: {},
    }).config.identityProviders.oidc!
    expect(ok.discoverySigning).toEqual({ alg: 'RS256' })
    expect(ok.customLifespans).toEqual({ short: { base: { accessTokenSeconds: 300 }, grants: { refresh_token: { accessTokenSeconds: 120 } } } })
  })
})

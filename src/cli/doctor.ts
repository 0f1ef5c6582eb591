import { existsSync, readFileSync } from 'node:fs'
import { basename, dirname } from 'node:path'
import { isIP } from 'node:net'
import { parseUsersFile, UsersFileError } from '../authn/users-file.js'
import type { User } from '../authn/users.js'
import { ConfigError, formatProblem, loadConfig } from '../config/load.js'
import type { Config, LdapBackendConfig, OidcClientConfig } from '../config/schema.js'
import { LdapUserProvider } from '../authn/users-ldap.js'
import { readCertificatesDirectory } from '../config/certificates.js'
import { scopeClaims } from '../oidc/claims.js'
import { ClientConfigError, loadClients } from '../oidc/clients.js'
import { hasOftenUnencodedCharacters } from '../oidc/client-auth.js'
import { isLoopbackHost } from '../common/host.js'
import { KeyConfigError, loadKeySet } from '../oidc/keys.js'
import { describeKeyState } from '../oidc/key-state.js'
import { formatDuration } from '../config/duration.js'
import { describeCurrentUser, findWriteProblem } from '../common/writable.js'
import { canonicalIssuer, isIssuerDerived } from '../server/public-url.js'
import { mysqlOptions, openSessionStore, openStorage, postgresOptions } from '../storage/index.js'
import { describeServer } from '../storage/postgres/database.js'
import { describeServer as describeMysqlServer } from '../storage/mysql/database.js'
import { parseArgs, UsageError } from './args.js'
import { compareCommand } from './doctor-compare.js'
import { resolveConfigFiles } from './config-files.js'
import type { CliIo } from './io.js'

export const DOCTOR_HELP = `Usage: latchkey doctor [--config FILE]... [--user USERNAME] [--client ID]
       latchkey doctor --compare FILE[,FILE...] --compare FILE[,FILE...] [--compare ...]

Checks a configuration the way the server would use it, without starting anything: the
configuration itself, the issuer keys, the issuer URL and every redirect URI (HTTPS), the users
file, that the user running it can create and write the database and the notifier file (run it as
the service user), the database and its migrations. Then prints, for each OpenID Connect client, what the
relying party needs (the URLs to paste, the accepted client authentication methods, the scopes)
and the claims it will receive for one user (--user, default: the first user of the users file).

Exit 0 when nothing is wrong (warnings allowed), 2 when any problem was found: each is listed.

With --compare (one per instance), compares several instances' configurations instead: every
setting that must be identical behind one load balancer is compared and each differing key path
is named, never its value (docs/high-availability.md).
`

/** What doctor found, in order; problems make the exit code non-zero, warnings do not. */
class Findings {
  readonly problems: string[] = []
  readonly warnings: string[] = []
  constructor(private readonly io: CliIo) {}
  ok(what: string, detail: string): void {
    this.io.stdout(`[ok]      ${what}: ${detail}\n`)
  }
  problem(what: string, detail: string): void {
    this.problems.push(`${what}: ${detail}`)
    this.io.stdout(`[problem] ${what}: ${detail}\n`)
  }
  warning(what: string, detail: string): void {
    this.warnings.push(`${what}: ${detail}`)
    this.io.stdout(`[warning] ${what}: ${detail}\n`)
  }
  note(text: string): void {
    this.io.stdout(`          ${text}\n`)
  }
}

interface IssuerGuess {
  url: string
  /** How the URL was found, printed so the admin can correct a wrong guess. */
  assumption?: string
}

/**
 * The issuer relying parties will see, by the server's own rule (canonicalIssuer): fixed by
 * `identity_providers.oidc.issuer` or `authelia_url`; otherwise it follows each request's host
 * inside the cookie domain, and doctor prints what every other request gets.
 */
function guessIssuer(config: Config): IssuerGuess {
  const url = canonicalIssuer(config)
  if (!isIssuerDerived(config)) return { url }
  const domain = config.session.cookies[0]?.domain.replace(/^\./, '') ?? 'localhost'
  const elsewhere = isLoopbackHost(domain)
    ? `it is the address this server listens at (server.address), for this machine only`
    : `if users reach the portal elsewhere (e.g. https://auth.${domain}), set identity_providers.oidc.issuer to that address`
  return {
    url,
    assumption: `identity_providers.oidc.issuer is not set: a request on a host inside '${domain}' gets that host as its issuer (behind a proxy: X-Forwarded-Proto and X-Forwarded-Host from server.trusted_proxies); any other request gets ${url}, the address used below: ${elsewhere}`,
  }
}

/** Problems with a URL that must be absolute HTTPS; `undefined` when it is fine. */
function httpsProblem(value: string, what: string): { level: 'problem' | 'warning'; text: string } | undefined {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return { level: 'problem', text: `${what} '${value}' is not an absolute URL` }
  }
  if (url.hash) return { level: 'problem', text: `${what} '${value}' must not have a fragment (#…)` }
  if (url.protocol === 'https:') return undefined
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) {
    return { level: 'warning', text: `${what} '${value}' is plain HTTP on a loopback address: fine for a native app or a test, not for a deployed relying party` }
  }
  return { level: 'problem', text: `${what} '${value}' is not HTTPS (use https://; behind a TLS-terminating proxy the public URL is still https)` }
}

function authMethods(c: OidcClientConfig): string {
  if (c.public) return 'none (public client: no secret; PKCE S256)'
  if (c.tokenEndpointAuthMethod) return `${c.tokenEndpointAuthMethod} only (token_endpoint_auth_method)`
  return 'client_secret_basic or client_secret_post (both accepted, as in Authelia 4.37)'
}

function secretAdvice(c: OidcClientConfig): string {
  if (c.public) return '(none: public client)'
  // RFC 7523: a private_key_jwt client has no secret to paste; a client_secret_jwt one keys its HMAC with the plaintext.
  if (c.tokenEndpointAuthMethod === 'private_key_jwt') {
    return `(none: the client signs its assertions with its private key, checked against ${c.jwksUri ? `jwks_uri ${c.jwksUri}` : 'the public keys in its jwks'})`
  }
  if (c.tokenEndpointAuthMethod === 'client_secret_jwt') return 'the plaintext value of its `secret`, the HMAC key of its client_secret_jwt assertions (it must stay plaintext here)'
  if (c.secret && !c.secret.startsWith('$')) return 'the plaintext value of its `secret` (stored in clear here: prefer a digest, see docs/integrations/kasm.md)'
  return 'the random secret you hashed into `secret` (never the $… digest itself)'
}

/**
 * Whether the secret has characters that relying parties often send without the form-encoding of
 * RFC 6749 §2.3.1 in a Basic header (issue #13), and which method avoids the trap. Only a plaintext
 * secret can be looked at; the secret itself is never printed.
 */
function secretCharacters(c: OidcClientConfig): string | undefined {
  if (c.public || !c.secret) return undefined
  // The JWT methods never put the secret in a Basic header.
  if (c.tokenEndpointAuthMethod === 'client_secret_jwt' || c.tokenEndpointAuthMethod === 'private_key_jwt') return undefined
  const plain = c.secret.startsWith('$plaintext$') ? c.secret.slice('$plaintext$'.length) : c.secret.startsWith('$') ? undefined : c.secret
  if (plain === undefined) return undefined
  if (!hasOftenUnencodedCharacters(plain)) return "none of '+', '%', ':' (no form-encoding trap in a Basic header)"
  const avoid =
    c.tokenEndpointAuthMethod === 'client_secret_basic'
      ? 'client_secret_post avoids the trap (it is pinned to client_secret_basic here), or a secret without them (latchkey crypto hash generate pbkdf2 --random)'
      : 'client_secret_post avoids the trap'
  return `contains '+', '%' or ':', which clients often send in client_secret_basic without the form-encoding of RFC 6749 §2.3.1; Latchkey accepts both readings (and logs the client once), other providers may not: ${avoid}`
}

function printClaims(io: CliIo, user: User, scopes: readonly string[]): void {
  io.stdout(`    openid     sub: an opaque identifier (UUID) created at the user's first sign-in; iss, aud, exp, iat, auth_time, amr, azp\n`)
  for (const scope of ['profile', 'email', 'groups']) {
    if (!scopes.includes(scope)) continue
    const claims = scopeClaims(user, [scope])
    const shown = Object.entries(claims)
      .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
      .join(', ')
    io.stdout(`    ${scope.padEnd(10)} ${shown || '(nothing: the user has no value for it)'}\n`)
  }
  if (scopes.includes('offline_access')) io.stdout(`    offline_access  no claim: allows a refresh token\n`)
}

export async function doctorCommand(argv: string[], io: CliIo): Promise<number> {
  const { flags, positionals } = parseArgs(argv, { config: 'strings', c: 'strings', user: 'string', client: 'string', compare: 'strings', help: 'boolean', h: 'boolean' })
  if (flags.help || flags.h) {
    io.stdout(DOCTOR_HELP)
    return 0
  }
  if (positionals.length) throw new UsageError(`unexpected argument: ${positionals[0]}`)
  if (flags.compare) {
    if (flags.config || flags.c || flags.user || flags.client) throw new UsageError('--compare takes each instance\'s files itself: not with --config, --user or --client')
    return compareCommand(flags.compare as string[], io)
  }
  const files = resolveConfigFiles([...((flags.config as string[]) ?? []), ...((flags.c as string[]) ?? [])], io)
  if (files.length === 0) throw new UsageError('no configuration file: pass --config FILE (or set LATCHKEY_CONFIG)')

  const f = new Findings(io)
  io.stdout(`Latchkey doctor: ${files.join(', ')} (nothing is started)\n\n`)

  // 1. The configuration: without it nothing else can be checked.
  let config: Config
  try {
    const loaded = loadConfig({ files, env: io.env, cwd: io.cwd })
    config = loaded.config
    f.ok('configuration', 'parsed and validated')
    // Authelia 4.37 key names are accepted on purpose (drop-in): one line for all of them, not one each.
    const renamed = loaded.warnings.filter((w) => /is deprecated: use /.test(w.message))
    if (renamed.length) f.note(`${renamed.length} key(s) use Authelia 4.37 names, accepted as they are (latchkey validate-config lists the newer names)`)
    for (const w of loaded.warnings) if (!renamed.includes(w)) f.warning('configuration', formatProblem(w))
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const p of err.problems) {
      if (p.severity === 'warning') f.warning('configuration', formatProblem(p))
      else f.problem('configuration', formatProblem(p))
    }
    f.note('the other checks need a configuration that loads: fix these first')
    return finish(io, f)
  }

  const oidc = config.identityProviders.oidc
  let user: User | undefined

  // 2. Users: the LDAP directory answers and finds --user, or the users file is read and parsed,
  // never created (serve writes a template when it is missing).
  const fileBackend = config.authenticationBackend.file
  const ldap = config.authenticationBackend.ldap
  const usersPath = fileBackend?.path ?? ''
  if (ldap) user = await checkLdap(config, ldap, flags.user as string | undefined, f)
  else if (!existsSync(usersPath)) {
    f.problem('users file', `${usersPath} does not exist (latchkey serve would write a template there and stop)`)
  } else {
    try {
      const index = parseUsersFile(readFileSync(usersPath, 'utf8'), fileBackend!)
      const users = [...new Map([...index.byLogin.values()].map((e) => [e.user.username, e])).values()]
      const enabled = users.filter((e) => !e.disabled)
      if (enabled.length === 0) f.problem('users file', `${usersPath} has no enabled user: nobody can sign in`)
      else f.ok('users file', `${usersPath}: ${users.length} user(s), ${enabled.length} enabled`)
      const wanted = flags.user as string | undefined
      if (wanted) {
        const entry = index.byLogin.get(fileBackend!.searchCaseInsensitive ? wanted.toLowerCase() : wanted)
        if (!entry) f.problem('users file', `--user '${wanted}' is not in the users file`)
        else if (entry.disabled) f.problem('users file', `--user '${wanted}' is disabled`)
        else user = entry.user
      } else user = enabled[0]?.user
    } catch (err) {
      if (!(err instanceof UsersFileError)) throw err
      for (const p of err.problems) f.problem('users file', `${usersPath}: ${p}`)
    }
  }

  // 3. Storage: opened without migrating, so doctor never changes the schema; not tried when this
  // user could not even create it.
  if (checkStateFiles(config, f)) await checkStorage(config, f)
  await checkSessionStore(config, f)

  // 4. TOTP registration path, since two_factor clients send first-time users through it.
  if (oidc?.clients.some((c) => c.authorizationPolicy === 'two_factor')) {
    if (config.totp.disable) f.problem('totp', 'a client needs two_factor but totp.disable is true: nobody can finish signing in to it')
    else {
      // As portal/identity.ts sends it: a one-time code always, a link only with the portal's address.
      const what = config.session.cookies.some((c) => c.autheliaUrl)
        ? 'a one-time code and a link (session.cookies[].authelia_url is set)'
        : 'a one-time code typed into the sign-in page they have open (no link: session.cookies[].authelia_url is not set)'
      if (config.notifier.filesystem) f.note(`two_factor: first-time users register TOTP with ${what}, which the filesystem notifier writes to ${config.notifier.filesystem.filename} (or: latchkey storage user totp generate USER)`)
      else if (config.notifier.smtp) f.note(`two_factor: first-time users register TOTP with ${what}, emailed from ${config.notifier.smtp.sender}`)
    }
  }

  if (!oidc) {
    f.problem('identity_providers.oidc', 'is not configured: no relying party can sign in through this server')
    return finish(io, f)
  }

  // 5. Keys and clients, parsed exactly as the server parses them at start.
  try {
    const keys = await loadKeySet(oidc.issuerPrivateKeys)
    f.ok('issuer keys', keys.keys.map((k) => `${k.alg} (kid ${k.kid})`).join(', '))
    // Key rotation (docs/oidc.md): which key signs what, which are only published, when one may go.
    for (const line of describeKeyState(keys, oidc)) f.note(`issuer key ${line}`)
    f.note(`token lifetimes: ID token ${formatDuration(oidc.lifespans.idTokenSeconds)}, access token ${formatDuration(oidc.lifespans.accessTokenSeconds)}, refresh token ${formatDuration(oidc.lifespans.refreshTokenSeconds)}${Object.keys(oidc.customLifespans).length ? `; custom lifespans: ${Object.keys(oidc.customLifespans).join(', ')}` : ''}`)
  } catch (err) {
    if (!(err instanceof KeyConfigError)) throw err
    f.problem('issuer keys', err.message)
  }
  try {
    loadClients(oidc)
  } catch (err) {
    if (!(err instanceof ClientConfigError)) throw err
    f.problem('clients', err.message)
  }

  // 6. The issuer and the redirect URIs.
  const issuer = guessIssuer(config)
  const issuerIssue = httpsProblem(issuer.url, 'issuer')
  if (issuerIssue) f[issuerIssue.level]('issuer', issuerIssue.text)
  else f.ok('issuer', issuer.url)
  if (issuer.assumption) f.note(issuer.assumption)
  for (const c of oidc.clients) {
    if (c.redirectUris.length === 0) f.problem(`client '${c.id}'`, 'has no redirect_uris')
    for (const uri of c.redirectUris) {
      const issue = httpsProblem(uri, 'redirect URI')
      if (issue) f[issue.level](`client '${c.id}'`, issue.text)
      else if (isIP(new URL(uri).hostname.replace(/^\[|\]$/g, ''))) {
        f.warning(`client '${c.id}'`, `redirect URI '${uri}' uses an IP address: a relying party reached by name (Kasm derives its callback from the host it was configured through) will send another URI and be refused`)
      }
    }
  }

  // 7. What each relying party receives.
  const selected = flags.client ? oidc.clients.filter((c) => c.id === flags.client) : oidc.clients
  if (flags.client && selected.length === 0) f.problem('--client', `no client '${String(flags.client)}' in identity_providers.oidc.clients`)
  for (const c of selected) printClient(io, f, issuer.url, c, user)
  return finish(io, f)
}

function printClient(io: CliIo, f: Findings, issuer: string, c: OidcClientConfig, user: User | undefined): void {
  io.stdout(`\nClient '${c.id}' (${c.description})\n`)
  io.stdout('  Paste into the relying party:\n')
  io.stdout(`    Authorization URL  ${issuer}/api/oidc/authorization\n`)
  io.stdout(`    Token URL          ${issuer}/api/oidc/token\n`)
  io.stdout(`    User Info URL      ${issuer}/api/oidc/userinfo\n`)
  io.stdout(`    Discovery URL      ${issuer}/.well-known/openid-configuration\n`)
  io.stdout(`    Client ID          ${c.id}\n`)
  io.stdout(`    Client Secret      ${secretAdvice(c)}\n`)
  io.stdout(`    Scopes             ${c.scopes.join(' ')}\n`)
  io.stdout(`    Redirect URI(s)    ${c.redirectUris.join(', ')} (must match exactly)\n`)
  io.stdout(`  Token endpoint auth  ${authMethods(c)}\n`)
  const characters = secretCharacters(c)
  if (characters) io.stdout(`  Secret characters    ${characters}\n`)
  io.stdout(`  Policy               ${c.authorizationPolicy === 'two_factor' ? 'two_factor (password, then TOTP)' : 'one_factor (password)'}\n`)
  io.stdout(`  Consent              ${c.consentMode}\n`)
  io.stdout(`  Grant types          ${c.grantTypes.join(', ')}; response types ${c.responseTypes.join(', ')}\n`)
  io.stdout(`  Userinfo             ${c.userinfoSigningAlgorithm === 'none' ? 'plain JSON' : `a signed JWT (${c.userinfoSigningAlgorithm})`}\n`)
  if (c.userinfoSigningAlgorithm !== 'none') {
    f.warning(`client '${c.id}'`, `userinfo_signing_algorithm is ${c.userinfoSigningAlgorithm}: clients that read userinfo as JSON (Kasm among them) fail; use none unless the client asks for a JWT`)
  }
  if (!c.scopes.includes('profile')) {
    f.warning(`client '${c.id}'`, 'the profile scope is not allowed: preferred_username (the username attribute most clients, Kasm included, use) is never sent')
  }
  if (!user) {
    io.stdout('  Claims: no user to show them for (see the users file above)\n')
    return
  }
  io.stdout(`  Claims for user '${user.username}' (ID token and userinfo), per scope:\n`)
  printClaims(io, user, c.scopes)
  if (c.scopes.includes('profile')) io.stdout(`  Username attribute   preferred_username = ${JSON.stringify(user.username)}\n`)
}

/**
 * The files the server writes (database, notifier file) can be created and written by the user
 * running doctor — the service user, through `sudo latchkey doctor`. Without this, a state folder
 * nobody created passes every other check and `serve` then refuses to start. False on a problem.
 */
function checkStateFiles(config: Config, f: Findings): boolean {
  const files = [config.storage.local?.path, config.notifier.filesystem?.filename].filter((p): p is string => p !== undefined)
  // One line per distinct cause: the database and the notifier file usually share the folder.
  const problems = new Set(files.map((p) => findWriteProblem(p)).flatMap((p) => (p ? [`${p.message} (hint: ${p.hint})`] : [])))
  for (const p of problems) f.problem('state folder', p)
  const ok = problems.size === 0
  if (ok && files.length) {
    const folders = [...new Set(files.map((p) => dirname(p)))].join(', ')
    f.ok('state folder', `${folders}: ${describeCurrentUser()} can create and write ${files.map((p) => basename(p)).join(' and ')}`)
    if (process.getuid?.() === 0) f.note('checked as root, who may write anywhere: run doctor as the service user (sudo latchkey doctor) to check its access')
  }
  return ok
}

async function checkStorage(config: Config, f: Findings): Promise<void> {
  const s = config.storage
  let where: string
  if (s.postgres) where = describeServer(postgresOptions(s))
  else if (s.mysql) where = describeMysqlServer(mysqlOptions(s))
  else if (s.local) {
    where = s.local.path
    if (!existsSync(s.local.path)) {
      f.ok('storage', `${s.local.path} does not exist yet: latchkey serve creates and migrates it at first start`)
      return
    }
  } else {
    f.problem('storage', 'no storage backend configured (storage.local.path, storage.postgres or storage.mysql)')
    return
  }
  try {
    const storage = await openStorage(s, undefined, { migrate: false })
    try {
      const migrations = await storage.listMigrations()
      const pending = migrations.filter((m) => m.appliedAt === undefined)
      const current = Math.max(0, ...migrations.filter((m) => m.appliedAt !== undefined).map((m) => m.version))
      if (pending.length) {
        const backup = s.postgres ? 'back the database up first (pg_dump)' : s.mysql ? 'back the database up first (mysqldump --single-transaction)' : 'back the file up first'
        f.warning('storage', `${where}: schema at version ${current}, ${pending.length} migration(s) pending (${pending.map((m) => m.version).join(', ')}): latchkey serve applies them at start (${backup}), or run latchkey storage migrate up`)
      } else f.ok('storage', `${where}: opens, encryption key matches, schema current (version ${current})`)
    } finally {
      await storage.close()
    }
  } catch (err) {
    f.problem('storage', `${where}: ${(err as Error).message}`)
  }
}

/** `session.redis`: connects as serve would (within `timeout`), writes nothing. */
async function checkSessionStore(config: Config, f: Findings): Promise<void> {
  const r = config.session.redis
  if (!r) return
  const where = r.highAvailability ? `Redis master '${r.highAvailability.sentinelName}' through the sentinels` : `Redis at ${r.port === 0 ? r.host : `${r.host}:${r.port}`}`
  try {
    const store = (await openSessionStore(config.session))!
    try {
      if (await store.ping()) f.ok('sessions', `${where} (database ${r.databaseIndex}, key prefix ${r.keyPrefix}): answers`)
      else f.problem('sessions', `${where}: connected, but does not answer PING`)
    } finally {
      await store.close()
    }
  } catch (err) {
    f.problem('sessions', `${where}: ${(err as Error).message}`)
  }
}

/** The directory answers the service account, and finds `wanted` when given. */
async function checkLdap(config: Config, ldap: LdapBackendConfig, wanted: string | undefined, f: Findings): Promise<User | undefined> {
  let provider: LdapUserProvider | undefined
  try {
    provider = await LdapUserProvider.open(ldap, { refreshIntervalSeconds: 0, extraCa: readCertificatesDirectory(config.certificatesDirectory) })
    if (!(await provider.ping())) {
      f.problem('ldap', `${ldap.url} does not answer (check the address, the firewall and TLS)`)
      return undefined
    }
    f.ok('ldap', `${ldap.url} answers the service account (implementation ${ldap.implementation})`)
    if (!wanted) return undefined
    const user = await provider.findUser(wanted)
    if (!user) f.problem('ldap', `--user '${wanted}' is not found by users_filter under the users base (or is disabled)`)
    else f.ok('ldap', `--user '${wanted}' is ${user.username}, groups: ${user.groups.join(', ') || '(none)'}`)
    return user
  } catch (err) {
    f.problem('ldap', `${ldap.url}: ${(err as Error).message}`)
    return undefined
  } finally {
    await provider?.close()
  }
}

function finish(io: CliIo, f: Findings): number {
  if (f.problems.length === 0) {
    io.stdout(`\nNo problems found${f.warnings.length ? ` (${f.warnings.length} warning(s) above)` : ''}.\n`)
    return 0
  }
  io.stderr(`\nlatchkey doctor found ${f.problems.length} problem(s):\n`)
  for (const p of f.problems) io.stderr(` - ${p}\n`)
  return 2
}

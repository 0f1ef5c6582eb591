/**
 * The `authentication_backend.ldap` provider (docs/ldap.md). A service account searches for the
 * user with the users filter (input escaped, RFC 4515) and for their groups; the password is
 * checked by binding as the DN that search found, on a connection kept for binds only. Details read
 * from the directory are reused for `refresh_interval`, so a signed-in user's groups and disabled
 * state are read again at that pace, not on every request.
 */
import { InvalidCredentialsError, SizeLimitExceededError, type Entry } from 'ldapts'
import type { ConnectionOptions } from 'node:tls'
import { rootCertificates } from 'node:tls'
import { sha256Hex } from '../common/hashing.js'
import type { LdapBackendConfig } from '../config/schema.js'
import { tlsOptions } from '../storage/index.js'
import { groupsFilterFor, resolveAttributePlaceholders, usersFilterFor } from './ldap/filters.js'
import { PasswordChangeRefusedError, asRefusal, passwordWriteMethod, policyHintsControl, writePassword, type PasswordWriteMethod, type PolicyHintsControl } from './ldap/password.js'
import { Connection, ConnectionPool, DirectoryUnavailableError, isDirectoryDown, unavailable, type ConnectionSettings } from './ldap/pool.js'
import { MAX_PASSWORD_BYTES } from './users-file.js'
import type { FirstFactorResult, User, UserProvider } from './users.js'

interface Log {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export interface LdapProviderOptions {
  /** `authentication_backend.refresh_interval`: 0 always, null never. */
  refreshIntervalSeconds: number | null
  /** Extra trusted CAs (PEM), from `certificates_directory`. */
  extraCa?: string[]
  log?: Log
  /** Milliseconds; tests move it. */
  now?: () => number
}

/** Operational attributes that change with the password (OpenLDAP/389-DS ppolicy, Active Directory). */
const PASSWORD_STAMP_ATTRIBUTES = ['pwdChangedTime', 'pwdLastSet']
/** Logins remembered at most (oldest first out); each is a few hundred bytes. */
const MAX_CACHED = 10_000
/** While the directory is down, a real connection attempt at most this often; others fail at once. */
const RETRY_WHILE_DOWN_MS = 1000

interface Profile {
  dn: string
  user: Omit<User, 'groups'>
  memberOf: string[]
}

interface Cached {
  user: User
  readAt: number
}

export class LdapUserProvider implements UserProvider {
  private readonly service: ConnectionPool
  private readonly binds: ConnectionPool
  private readonly settings: ConnectionSettings
  private readonly usersBase: string
  private readonly groupsBase: string
  private readonly usersFilter: string
  private readonly groupsFilter: string
  private readonly userAttributes: string[]
  private readonly cache = new Map<string, Cached>()
  private readonly now: () => number
  private downSince: number | undefined
  private lastAttempt = -Infinity
  /** The root DSE's supportedExtension, once read (at start, or at the first password change). */
  private extensions: string[] | undefined
  /** From the root DSE's supportedControl: Active Directory's password policy hints, if offered. */
  private policyHints: PolicyHintsControl | undefined

  private constructor(
    private readonly config: LdapBackendConfig,
    private readonly opts: LdapProviderOptions,
  ) {
    this.now = opts.now ?? Date.now
    const tls: ConnectionOptions = tlsOptions(config.tls, config.host)
    if (opts.extraCa?.length) tls.ca = [...rootCertificates, ...opts.extraCa]
    if (!tls.servername && config.host) tls.host = config.host
    this.settings = { url: config.url, timeoutMs: config.timeoutSeconds * 1000, startTls: config.startTls, tls }
    const service = config.permitUnauthenticatedBind ? undefined : { dn: config.user, password: config.password ?? '' }
    this.service = new ConnectionPool(config.poolSize, () => Connection.open(this.settings, service))
    // Binds change a connection's identity: they get connections of their own, never used to search.
    this.binds = new ConnectionPool(config.poolSize, () => Connection.open(this.settings))
    const a = config.attributes
    this.usersBase = config.additionalUsersDn ? `${config.additionalUsersDn},${config.baseDn}` : config.baseDn
    this.groupsBase = config.additionalGroupsDn ? `${config.additionalGroupsDn},${config.baseDn}` : config.baseDn
    this.usersFilter = resolveAttributePlaceholders(config.usersFilter, a)
    this.groupsFilter = resolveAttributePlaceholders(config.groupsFilter, a)
    this.userAttributes = [...new Set([a.username, a.displayName, a.mail, a.memberOf, ...PASSWORD_STAMP_ATTRIBUTES].filter((x) => x !== ''))]
  }

  /**
   * Opens the provider and checks the directory once (service bind, root DSE). A refused service
   * account stops the start (a configuration error); an unreachable directory is logged and the
   * provider starts anyway, answering 503 until the directory answers.
   */
  static async open(config: LdapBackendConfig, opts: LdapProviderOptions): Promise<LdapUserProvider> {
    const provider = new LdapUserProvider(config, opts)
    try {
      await provider.startupCheck()
    } catch (err) {
      if (err instanceof DirectoryUnavailableError && /service account/.test(err.reason)) {
        await provider.close()
        throw new Error(`authentication_backend.ldap: ${err.reason} (user '${config.user}' on ${config.url})`)
      }
      opts.log?.error({ url: config.url, reason: unavailable(err).reason }, 'the LDAP directory does not answer at start-up: sign-ins get 503 until it does')
    }
    return provider
  }

  private async startupCheck(): Promise<void> {
    const dse = await this.service.use((c) => c.client.search('', { scope: 'base', filter: '(objectClass=*)', attributes: ['supportedLDAPVersion', 'supportedExtension', 'supportedControl', 'vendorName'] }))
    const root = dse.searchEntries[0]
    const versions = root ? values(root, 'supportedLDAPVersion') : []
    const extensions = root ? values(root, 'supportedExtension') : []
    this.extensions = extensions
    this.policyHints = policyHintsControl(root ? values(root, 'supportedControl') : [])
    if (root && versions.length > 0 && !versions.includes('3')) this.opts.log?.warn({ versions }, 'the LDAP directory does not advertise LDAPv3, the only version Latchkey speaks')
    if (extensions.includes('1.3.6.1.4.1.1466.20037') && !this.config.startTls && !this.config.url.startsWith('ldaps:'))
      this.opts.log?.error({ url: this.config.url }, 'the LDAP directory supports StartTLS but Latchkey connects without TLS: passwords cross the network in clear; set start_tls: true or use ldaps://')
    this.opts.log?.info({ url: this.config.url, implementation: this.config.implementation, usersBase: this.usersBase }, 'LDAP users backend connected')
  }

  normalizeLogin(login: string): string {
    // Directory attributes used for logins (uid, mail, sAMAccountName) match case-insensitively.
    return login.toLowerCase()
  }

  async findUser(login: string): Promise<User | undefined> {
    const key = this.normalizeLogin(login)
    const cached = this.cache.get(key)
    const refresh = this.opts.refreshIntervalSeconds
    if (cached && (refresh === null || this.now() - cached.readAt < refresh * 1000)) return cached.user
    const found = await this.guarded(() => this.read(login))
    if (!found) {
      this.cache.delete(key)
      return undefined
    }
    this.remember(login, found.user)
    return found.user
  }

  async checkPassword(login: string, password: string): Promise<FirstFactorResult> {
    if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return { ok: false, reason: 'too_long' }
    // RFC 4513 §5.1.2: a simple bind with a DN and an empty password is an unauthenticated bind,
    // which many directories answer with success. Never sent for a user (docs/security.md L2).
    if (password === '') return { ok: false, reason: 'wrong_password' }
    return this.guarded(async () => {
      const profile = await this.searchUser(login)
      if (!profile) return { ok: false, reason: 'unknown_user' }
      const accepted = await this.binds.use(async (c) => {
        try {
          await c.client.bind(profile.dn, password)
          return true
        } catch (err) {
          if (err instanceof InvalidCredentialsError) return false
          throw err
        }
      })
      if (!accepted) return { ok: false, reason: 'wrong_password' }
      const user = { ...profile.user, groups: await this.searchGroups(login, profile) }
      this.remember(login, user)
      return { ok: true, user }
    })
  }

  /**
   * Password reset: finds the user's DN with the service account and sets the password as that
   * account (ldap/password.ts picks unicodePwd, RFC 3062 or a userPassword replace). A refusal by
   * the directory (policy, access) rejects with PasswordChangeRefusedError; an outage with
   * DirectoryUnavailableError (503). The user's cached details are dropped, so the next read sees
   * the new pwdChangedTime / pwdLastSet and with it a new credential fingerprint.
   */
  async changePassword(username: string, password: string): Promise<void> {
    await this.guarded(async () => {
      const profile = await this.searchUser(username)
      if (!profile) throw new PasswordChangeRefusedError('other', 32, 'the user is no longer found by the users filter')
      const method = await this.passwordMethod()
      // A refusal is returned, not thrown, inside the pool: the pool must not take it for a dead
      // connection (unwillingToPerform doubles as "busy") and write a second time.
      const refused = await this.service.use((c) =>
        writePassword(c.client, method, profile.dn, password, this.policyHints ? [this.policyHints] : []).then(
          () => undefined,
          (err: unknown) => {
            const refusal = asRefusal(err)
            if (refusal) return refusal
            throw err
          },
        ),
      )
      if (refused) throw refused
    })
    this.cache.delete(this.normalizeLogin(username))
    for (const [key, entry] of this.cache) if (entry.user.username === username) this.cache.delete(key)
  }

  /** Why a password change cannot work with this configuration, said at start (reset is then off). */
  passwordChangeProblem(): string | undefined {
    if (this.config.implementation === 'activedirectory' && !this.config.startTls && !this.config.url.toLowerCase().startsWith('ldaps:'))
      return 'Active Directory accepts a new password (unicodePwd) only over TLS, and authentication_backend.ldap uses neither start_tls nor ldaps://'
    return undefined
  }

  private async passwordMethod(): Promise<PasswordWriteMethod> {
    if (!this.extensions) {
      const dse = await this.service.use((c) => c.client.search('', { scope: 'base', filter: '(objectClass=*)', attributes: ['supportedExtension', 'supportedControl'] }))
      const root = dse.searchEntries[0]
      this.extensions = root ? values(root, 'supportedExtension') : []
      this.policyHints = policyHintsControl(root ? values(root, 'supportedControl') : [])
    }
    return passwordWriteMethod(this.config.implementation, this.extensions)
  }

  async ping(): Promise<boolean> {
    try {
      await this.guarded(() => this.service.use((c) => c.client.search('', { scope: 'base', filter: '(objectClass=*)', attributes: ['1.1'] })), true)
      return true
    } catch {
      return false
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.service.close(), this.binds.close()])
  }

  /**
   * Runs directory work with the outage rules: while down, at most one real attempt a second (the
   * rest fail at once, so a dead directory costs no sign-in a connect timeout); network failures
   * become DirectoryUnavailableError; the first success ends the outage.
   */
  private async guarded<T>(work: () => Promise<T>, probe = false): Promise<T> {
    const now = this.now()
    if (this.downSince !== undefined && !probe && now - this.lastAttempt < RETRY_WHILE_DOWN_MS) throw new DirectoryUnavailableError('the directory did not answer the last attempt')
    this.lastAttempt = now
    try {
      const out = await work()
      this.downSince = undefined
      return out
    } catch (err) {
      if (!isDirectoryDown(err)) throw err
      this.downSince ??= now
      throw unavailable(err)
    }
  }

  private async read(login: string): Promise<{ user: User } | undefined> {
    const profile = await this.searchUser(login)
    if (!profile) return undefined
    return { user: { ...profile.user, groups: await this.searchGroups(login, profile) } }
  }

  private remember(login: string, user: User): void {
    const at = this.now()
    for (const key of new Set([this.normalizeLogin(login), this.normalizeLogin(user.username)])) {
      this.cache.delete(key)
      this.cache.set(key, { user, readAt: at })
    }
    while (this.cache.size > MAX_CACHED) this.cache.delete(this.cache.keys().next().value!)
  }

  private async searchUser(login: string): Promise<Profile | undefined> {
    const filter = usersFilterFor(this.usersFilter, login, new Date(this.now()))
    let result: Entry[]
    try {
      result = await this.search(this.usersBase, filter, this.userAttributes, 2)
    } catch (err) {
      if (!(err instanceof SizeLimitExceededError)) throw err
      result = [] as Entry[]
      result.length = 3
    }
    const a = this.config.attributes
    if (result.length > 1) {
      this.opts.log?.error({ login: login.slice(0, 100), matches: result.length }, 'LDAP users filter matched more than one entry: refused (make the filter unique)')
      return undefined
    }
    const entry = result[0]
    if (!entry) return undefined
    const usernames = values(entry, a.username)
    if (usernames.length !== 1 || usernames[0] === '') {
      this.opts.log?.error({ dn: entry.dn, attribute: a.username, values: usernames.length }, 'LDAP user refused: the username attribute must have exactly one value')
      return undefined
    }
    const username = usernames[0]!
    let emails = values(entry, a.mail)
    let displayName = values(entry, a.displayName)[0] ?? ''
    if (a.displayName === a.username && displayName === '') displayName = username
    if (a.mail === a.username && emails.length === 0) emails = [username]
    const stamp = PASSWORD_STAMP_ATTRIBUTES.map((x) => values(entry, x)[0] ?? '').join('\0')
    return {
      dn: entry.dn,
      memberOf: a.memberOf ? values(entry, a.memberOf) : [],
      user: { username, displayName, emails, credentialFingerprint: sha256Hex(`${entry.dn.toLowerCase()}\0${stamp}`).slice(0, 16) },
    }
  }

  private async searchGroups(login: string, profile: Profile): Promise<string[]> {
    const a = this.config.attributes
    const memberOfMode = this.config.groupSearchMode === 'memberof'
    if (memberOfMode && profile.memberOf.length === 0) return []
    const filter = groupsFilterFor(this.groupsFilter, login, { dn: profile.dn, username: profile.user.username, memberOf: profile.memberOf }, a, new Date(this.now()))
    const entries = await this.search(this.groupsBase, filter, [a.groupName], 0)
    const memberOf = new Set(profile.memberOf.map((dn) => dn.toLowerCase()))
    const groups: string[] = []
    for (const entry of entries) {
      // memberof mode: only groups the user's memberOf names (the filter may match more).
      if (memberOfMode && !memberOf.has(entry.dn.toLowerCase())) continue
      const names = values(entry, a.groupName)
      if (names.length === 1 && names[0] !== '' && !groups.includes(names[0]!)) groups.push(names[0]!)
    }
    // Servers return groups in any order: sorted, the groups claim does not change between reads.
    return groups.sort()
  }

  /** A subtree search with the service account; references are followed once when permit_referrals. */
  private async search(base: string, filter: string, attributes: string[], sizeLimit: number): Promise<Entry[]> {
    const options = { scope: 'sub' as const, derefAliases: 'never' as const, filter, attributes, sizeLimit }
    const result = await this.service.use((c) => c.client.search(base, options))
    const entries = [...result.searchEntries]
    if (this.config.permitReferrals) {
      for (const ref of result.searchReferences) entries.push(...(await this.followReferral(ref, base, options)))
    }
    return entries
  }

  private async followReferral(ref: string, base: string, options: { scope: 'sub'; derefAliases: 'never'; filter: string; attributes: string[]; sizeLimit: number }): Promise<Entry[]> {
    const m = /^(ldaps?:\/\/[^/]+)(?:\/([^?]*))?/i.exec(ref)
    if (!m) return []
    const settings = { ...this.settings, url: m[1]!, startTls: m[1]!.toLowerCase().startsWith('ldap:') ? this.settings.startTls : false }
    const service = this.config.permitUnauthenticatedBind ? undefined : { dn: this.config.user, password: this.config.password ?? '' }
    const conn = await Connection.open(settings, service)
    try {
      const result = await conn.client.search(m[2] ? decodeURIComponent(m[2]) : base, options)
      return result.searchEntries
    } finally {
      await conn.close()
    }
  }
}

/** An attribute's values as strings, its name matched case-insensitively. */
function values(entry: Entry, attribute: string): string[] {
  if (!attribute) return []
  const wanted = attribute.toLowerCase()
  for (const [name, value] of Object.entries(entry)) {
    if (name.toLowerCase() !== wanted || name === 'dn') continue
    const list = Array.isArray(value) ? value : [value]
    return list.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v)))
  }
  return []
}

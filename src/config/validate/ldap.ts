/**
 * `authentication_backend.ldap`: Authelia's keys (4.37 names and the 4.38 renames) with the defaults
 * each `implementation` brings. Defaults are Authelia 4.39's (internal/configuration/schema,
 * `DefaultLDAPAuthenticationBackendConfigurationImplementation*`); docs/ldap.md lists them.
 */
import type { LdapBackendConfig, LdapImplementation } from '../schema.js'
import { quoteList, type MapView } from '../reader.js'
import { readTlsClient } from './tls.js'

export const LDAP_IMPLEMENTATIONS: readonly LdapImplementation[] = ['custom', 'activedirectory', 'rfc2307bis', 'freeipa', 'lldap', 'glauth']

export interface LdapImplementationDefaults {
  timeoutSeconds: number
  additionalUsersDn: string
  additionalGroupsDn: string
  usersFilter: string
  groupsFilter: string
  groupSearchMode: 'filter' | 'memberof'
  attributes: LdapBackendConfig['attributes']
}

const none = { distinguishedName: '', memberOf: '' }

/** What each implementation sets when the key is absent (empty string: no default). */
export const LDAP_DEFAULTS: Readonly<Record<LdapImplementation, LdapImplementationDefaults>> = {
  custom: {
    timeoutSeconds: 20,
    additionalUsersDn: '',
    additionalGroupsDn: '',
    usersFilter: '',
    groupsFilter: '',
    groupSearchMode: 'filter',
    attributes: { ...none, username: 'uid', displayName: 'displayName', mail: 'mail', groupName: 'cn' },
  },
  activedirectory: {
    timeoutSeconds: 5,
    additionalUsersDn: '',
    additionalGroupsDn: '',
    usersFilter:
      '(&(|({username_attribute}={input})({mail_attribute}={input}))(sAMAccountType=805306368)(!(userAccountControl:1.2.840.113556.1.4.803:=2))(!(pwdLastSet=0))(|(!(accountExpires=*))(accountExpires=0)(accountExpires>={date-time:microsoft-nt})))',
    groupsFilter: '(&(member={dn})(|(sAMAccountType=268435456)(sAMAccountType=536870912)))',
    groupSearchMode: 'filter',
    attributes: { distinguishedName: 'distinguishedName', username: 'sAMAccountName', displayName: 'displayName', mail: 'mail', memberOf: 'memberOf', groupName: 'cn' },
  },
  rfc2307bis: {
    timeoutSeconds: 5,
    additionalUsersDn: '',
    additionalGroupsDn: '',
    usersFilter: '(&(|({username_attribute}={input})({mail_attribute}={input}))(|(objectClass=inetOrgPerson)(objectClass=organizationalPerson)))',
    groupsFilter: '(&(|(member={dn})(uniqueMember={dn}))(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=groupOfMembers))(!(pwdReset=TRUE)))',
    groupSearchMode: 'filter',
    attributes: { distinguishedName: '', username: 'uid', displayName: 'displayName', mail: 'mail', memberOf: 'memberOf', groupName: 'cn' },
  },
  freeipa: {
    timeoutSeconds: 5,
    additionalUsersDn: '',
    additionalGroupsDn: '',
    usersFilter:
      '(&(|({username_attribute}={input})({mail_attribute}={input}))(objectClass=person)(!(nsAccountLock=TRUE))(krbPasswordExpiration>={date-time:generalized})(|(!(krbPrincipalExpiration=*))(krbPrincipalExpiration>={date-time:generalized})))',
    groupsFilter: '(&(member={dn})(objectClass=groupOfNames))',
    groupSearchMode: 'filter',
    attributes: { distinguishedName: '', username: 'uid', displayName: 'displayName', mail: 'mail', memberOf: 'memberOf', groupName: 'cn' },
  },
  lldap: {
    timeoutSeconds: 5,
    additionalUsersDn: 'OU=people',
    additionalGroupsDn: 'OU=groups',
    usersFilter: '(&(|({username_attribute}={input})({mail_attribute}={input}))(objectClass=person))',
    groupsFilter: '(&(member={dn})(objectClass=groupOfUniqueNames))',
    groupSearchMode: 'filter',
    attributes: { distinguishedName: '', username: 'uid', displayName: 'cn', mail: 'mail', memberOf: 'memberOf', groupName: 'cn' },
  },
  glauth: {
    timeoutSeconds: 5,
    additionalUsersDn: '',
    additionalGroupsDn: '',
    usersFilter: '(&(|({username_attribute}={input})({mail_attribute}={input}))(objectClass=posixAccount)(!(accountStatus=inactive)))',
    groupsFilter: '(&(uniqueMember={dn})(objectClass=posixGroup))',
    groupSearchMode: 'filter',
    attributes: { distinguishedName: '', username: 'cn', displayName: 'description', mail: 'mail', memberOf: 'memberOf', groupName: 'cn' },
  },
}

/** `ldap://h:389`, `ldaps://h:636`, `h` (ldaps), `[::1]:636`. ldapi:// sockets are not supported by the client. */
export function parseLdapAddress(raw: string): { scheme: 'ldap' | 'ldaps'; host: string; port: number } | { error: string } {
  if (/^ldapi:/i.test(raw.trim())) return { error: "the 'ldapi' scheme (a unix socket) is not supported by Latchkey's LDAP client: use ldap:// or ldaps://" }
  const m = /^(?:([a-zA-Z]+):\/\/)?(\[[^\]]+\]|[^:/[\]?#]*)(?::(\d{1,5}))?\/?$/.exec(raw.trim())
  if (!m) return { error: 'could not parse the address' }
  const scheme = (m[1] ?? 'ldaps').toLowerCase()
  if (scheme === 'ldapi') return { error: "the 'ldapi' scheme (a unix socket) is not supported by Latchkey's LDAP client: use ldap:// or ldaps://" }
  if (scheme !== 'ldap' && scheme !== 'ldaps') return { error: `scheme must be one of 'ldap', 'ldaps', or 'ldapi' but is configured as '${scheme}'` }
  const host = m[2]!.replace(/^\[|\]$/g, '')
  if (host === '') return { error: 'the address has no host' }
  const port = m[3] ? Number(m[3]) : scheme === 'ldap' ? 389 : 636
  if (port < 1 || port > 65535) return { error: `the port must be between 1 and 65535, got ${port}` }
  return { scheme, host, port }
}

export function readLdap(v: MapView, opts: { passwordResetDisabled: boolean }): LdapBackendConfig {
  const implementation =
    v.oneOf('implementation', LDAP_IMPLEMENTATIONS, (x) => `option 'implementation' must be one of ${quoteList(LDAP_IMPLEMENTATIONS)} but it's configured as '${x}'`, {
      normalise: (x) => x.toLowerCase(),
    }) ?? 'custom'
  const d = LDAP_DEFAULTS[implementation]

  const addressKey = v.has('address') ? 'address' : 'url'
  const rawAddress = v.str(addressKey)
  let scheme: 'ldap' | 'ldaps' = 'ldaps'
  let host = ''
  let port = 636
  if (!rawAddress) v.missing('address', "option 'address' is required", 'e.g. ldap://ldap.example.com:389 with start_tls: true, or ldaps://ldap.example.com')
  else {
    const parsed = parseLdapAddress(rawAddress)
    if ('error' in parsed) v.error(addressKey, `option '${addressKey}' with value '${rawAddress}' is invalid: ${parsed.error}`)
    else ({ scheme, host, port } = parsed)
  }
  const startTls = v.bool('start_tls') ?? false
  if (startTls && scheme === 'ldaps') v.error('start_tls', "option 'start_tls' cannot be used with an ldaps:// address (the connection is TLS already)", 'use ldap://host:389 with start_tls, or ldaps:// without')

  const t = v.map('tls')
  const tls = readTlsClient(t)
  // 4.25's flat names, still read by 4.37 (the structure check warns).
  if (!t.has('skip_verify')) tls.skipVerify = v.bool('skip_verify') ?? tls.skipVerify
  if (!t.has('minimum_version') && v.has('minimum_tls_version')) {
    const old = v.oneOf('minimum_tls_version', ['TLS1.0', 'TLS1.1', 'TLS1.2', 'TLS1.3'] as const, (x) => `option 'minimum_tls_version' must be one of 'TLS1.0', 'TLS1.1', 'TLS1.2', 'TLS1.3' but it's configured as '${x}'`, {
      normalise: (x) => x.toUpperCase(),
    })
    if (old) tls.minimumVersion = old
  }

  const a = v.map('attributes')
  const attr = (name: string, old: string | undefined, fallback: string) => a.str(name) || (old ? v.str(old) : undefined) || fallback
  const attributes: LdapBackendConfig['attributes'] = {
    distinguishedName: attr('distinguished_name', undefined, d.attributes.distinguishedName),
    username: attr('username', 'username_attribute', d.attributes.username),
    displayName: attr('display_name', 'display_name_attribute', d.attributes.displayName),
    mail: attr('mail', 'mail_attribute', d.attributes.mail),
    memberOf: attr('member_of', undefined, d.attributes.memberOf),
    groupName: attr('group_name', 'group_name_attribute', d.attributes.groupName),
  }
  for (const [key, value] of Object.entries(attributes)) {
    // An attribute description (RFC 4512 §2.5): a name or an OID, options after ';'. Anything else
    // would be pasted into filters by the placeholders.
    if (value !== '' && !/^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)(?:;[A-Za-z0-9-]+)*$/.test(value)) {
      const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
      a.error(snake, `option '${snake}' must be an attribute name (letters, digits and '-'), got '${value}'`)
    }
  }

  const groupSearchMode =
    v.oneOf('group_search_mode', ['filter', 'memberof'] as const, (x) => `option 'group_search_mode' must be one of 'filter' or 'memberof' but it's configured as '${x}'`, {
      normalise: (x) => x.toLowerCase(),
    }) ?? d.groupSearchMode

  const usersFilter = v.str('users_filter') || d.usersFilter
  const groupsFilter = v.str('groups_filter') || d.groupsFilter
  checkFilters(v, { usersFilter, groupsFilter, groupSearchMode, attributes })

  const baseDn = v.str('base_dn') ?? ''
  if (!baseDn) v.missing('base_dn', "option 'base_dn' is required", 'e.g. dc=example,dc=com')

  const permitUnauthenticatedBind = v.bool('permit_unauthenticated_bind') ?? false
  const user = v.str('user') ?? ''
  const password = v.str('password')
  if (permitUnauthenticatedBind) {
    if (password) v.error('permit_unauthenticated_bind', "option 'permit_unauthenticated_bind' can't be enabled when a password is specified")
    if (!opts.passwordResetDisabled)
      v.error('permit_unauthenticated_bind', "option 'permit_unauthenticated_bind' can't be enabled when password reset is enabled", 'set authentication_backend.password_reset.disable: true')
  } else {
    if (!user) v.missing('user', "option 'user' is required", 'the DN of a service account that may search users and groups')
    if (!password) v.missing('password', "option 'password' is required", 'or AUTHELIA_AUTHENTICATION_BACKEND_LDAP_PASSWORD_FILE')
  }

  const pooling = v.map('pooling')
  const count = pooling.int('count')
  let poolSize = 5
  if (count !== undefined) {
    if (count >= 1 && count <= 64) poolSize = count
    else pooling.error('count', `option 'count' must be between 1 and 64 but it's configured as '${count}'`)
  }
  const timeout = v.duration('timeout')
  if (timeout !== undefined && timeout < 1 && timeout !== 0) v.error('timeout', "option 'timeout' must be 1 second or more")

  const out: LdapBackendConfig = {
    implementation,
    url: `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`,
    host,
    port,
    timeoutSeconds: timeout || d.timeoutSeconds,
    startTls,
    tls,
    baseDn,
    additionalUsersDn: v.str('additional_users_dn') || d.additionalUsersDn,
    additionalGroupsDn: v.str('additional_groups_dn') || d.additionalGroupsDn,
    usersFilter,
    groupsFilter,
    groupSearchMode,
    attributes,
    permitReferrals: v.bool('permit_referrals') ?? false,
    permitUnauthenticatedBind,
    user,
    poolSize,
  }
  if (password) out.password = password
  return out
}

/** Authelia's checks on the two filters, plus a balanced-parentheses check (a typo fails here, not at the first sign-in). */
function checkFilters(v: MapView, c: { usersFilter: string; groupsFilter: string; groupSearchMode: string; attributes: LdapBackendConfig['attributes'] }): void {
  const enclosed = (key: string, f: string) => {
    if (!f.startsWith('(') || !f.endsWith(')')) v.error(key, `option '${key}' must contain enclosing parenthesis: '${f}' should probably be '(${f})'`)
    else if (!balanced(f)) v.error(key, `option '${key}' has unbalanced parentheses: '${f}'`)
  }
  if (!c.usersFilter) v.missing('users_filter', "option 'users_filter' is required", "e.g. (&({username_attribute}={input})(objectClass=person)), or set 'implementation'")
  else {
    enclosed('users_filter', c.usersFilter)
    if (!c.usersFilter.includes('{username_attribute}')) v.error('users_filter', "option 'users_filter' must contain the placeholder '{username_attribute}' but it's absent")
    if (!c.usersFilter.includes('{input}')) v.error('users_filter', "option 'users_filter' must contain the placeholder '{input}' but it's absent")
    if (c.usersFilter.includes('{0}')) v.error('users_filter', "option 'users_filter' has an invalid placeholder: '{0}' has been removed, please use '{input}' instead")
  }
  if (!c.groupsFilter) v.missing('groups_filter', "option 'groups_filter' is required", "e.g. (&(member={dn})(objectClass=groupOfNames)), or set 'implementation'")
  else {
    enclosed('groups_filter', c.groupsFilter)
    if (c.groupsFilter.includes('{0}')) v.error('groups_filter', "option 'groups_filter' has an invalid placeholder: '{0}' has been removed, please use '{input}' instead")
    if (c.groupsFilter.includes('{1}')) v.error('groups_filter', "option 'groups_filter' has an invalid placeholder: '{1}' has been removed, please use '{username}' instead")
  }
  const memberOfDn = c.groupsFilter.includes('{memberof:dn}')
  const memberOfRdn = c.groupsFilter.includes('{memberof:rdn}')
  if (c.groupSearchMode === 'memberof' && !memberOfDn && !memberOfRdn)
    v.error('groups_filter', "option 'groups_filter' must contain one of the '{memberof:rdn}' or '{memberof:dn}' placeholders when using a group_search_mode of 'memberof' but they're absent")
  if (memberOfDn && !c.attributes.distinguishedName)
    v.error('attributes', "option 'distinguished_name' must be provided when using the '{memberof:dn}' placeholder but it's absent")
  if ((memberOfDn || memberOfRdn) && !c.attributes.memberOf)
    v.error('attributes', "option 'member_of' must be provided when using the '{memberof:rdn}' or '{memberof:dn}' placeholder but it's absent")
}

function balanced(f: string): boolean {
  let depth = 0
  for (let i = 0; i < f.length; i++) {
    const ch = f[i]
    if (ch === '\\') i += 2
    else if (ch === '(') depth++
    else if (ch === ')' && --depth < 0) return false
  }
  return depth === 0
}

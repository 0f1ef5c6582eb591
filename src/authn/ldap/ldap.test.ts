/**
 * Pure parts of the LDAP backend: RFC 4515 / RFC 4514 escaping, placeholder resolution, and the
 * configuration with each implementation's defaults as Authelia documents them (lldap, Active
 * Directory, FreeIPA and glauth cannot run here: their defaults are checked against Authelia's text).
 */
import { describe, expect, test } from 'vitest'
import { escapeDnValue, escapeFilterValue, rdnValue, splitDn } from './escape.js'
import { generalizedTime, groupsFilterFor, microsoftNtTime, resolveAttributePlaceholders, usersFilterFor } from './filters.js'
import { LDAP_DEFAULTS, parseLdapAddress } from '../../config/validate/ldap.js'
import { ldapBackendYaml, loadWithBackend } from '../../../test/support/slapd.js'
import { ConfigError } from '../../config/load.js'

describe('escaping (security.md L1)', () => {
  test('filter values: *, (, ), \\ and NUL are hex-escaped; UTF-8 passes; control characters too', () => {
    expect(escapeFilterValue('*')).toBe('\\2a')
    expect(escapeFilterValue('a)(uid=*')).toBe('a\\29\\28uid=\\2a')
    expect(escapeFilterValue('x\u0000y\\z')).toBe('x\\00y\\5cz')
    expect(escapeFilterValue('Zoë 日本')).toBe('Zoë 日本')
    expect(escapeFilterValue('a\nb')).toBe('a\\0ab')
  })

  test('DN values: RFC 4514 specials, leading # or space, trailing space, NUL', () => {
    expect(escapeDnValue('Doe, John')).toBe('Doe\\, John')
    expect(escapeDnValue('a+b"c;d<e>f\\g=h')).toBe('a\\+b\\"c\\;d\\<e\\>f\\\\g\\=h')
    expect(escapeDnValue('#x ')).toBe('\\#x\\ ')
    expect(escapeDnValue(' x')).toBe('\\ x')
    expect(escapeDnValue('a\u0000')).toBe('a\\00')
  })

  test('DNs split at unescaped commas; RDN values unescape both forms', () => {
    expect(splitDn('cn=Brien\\2C O,ou=users,dc=example,dc=com')).toEqual(['cn=Brien\\2C O', 'ou=users', 'dc=example', 'dc=com'])
    expect(splitDn('cn=Doe\\, John,ou=x')).toEqual(['cn=Doe\\, John', 'ou=x'])
    expect(splitDn('cn="a,b",ou=x')).toEqual(['cn="a,b"', 'ou=x'])
    expect(rdnValue('cn=Brien\\2C O \\5C')).toBe('Brien, O \\')
    expect(rdnValue('cn=Doe\\, John')).toBe('Doe, John')
    expect(rdnValue('cn=Zo\\C3\\AB')).toBe('Zoë')
  })
})

describe('placeholders', () => {
  const attrs = { distinguishedName: 'distinguishedName', username: 'sAMAccountName', displayName: 'displayName', mail: 'mail', memberOf: 'memberOf', groupName: 'cn' }
  const now = new Date('2026-01-02T03:04:05Z')

  test('attribute placeholders once, input escaped per request, date-times in three formats', () => {
    const f = resolveAttributePlaceholders('(&(|({username_attribute}={input})({mail_attribute}={input}))({display_name_attribute}=*)({member_of_attribute}=*)({distinguished_name_attribute}=*))', attrs)
    expect(f).toBe('(&(|(sAMAccountName={input})(mail={input}))(displayName=*)(memberOf=*)(distinguishedName=*))')
    expect(usersFilterFor('(&(uid={input})(t>={date-time:generalized})(u>={date-time:unix})(n>={date-time:microsoft-nt}))', 'a*)', now)).toBe(
      '(&(uid=a\\2a\\29)(t>=20260102030405.0Z)(u>=1767323045)(n>=134117966450000000))',
    )
    expect(generalizedTime(now)).toBe('20260102030405.0Z')
    // 100 ns ticks since 1601-01-01: the Unix epoch is 116444736000000000.
    expect(microsoftNtTime(new Date(0))).toBe('116444736000000000')
  })

  test('groups filter: {input}, {username}, {dn} escaped; {memberof:dn} and {memberof:rdn} one item per group', () => {
    const profile = { dn: 'cn=Doe\\2C J (x),ou=users,dc=ex', username: 'j*', memberOf: ['cn=admins,ou=groups,dc=ex', 'cn=a\\2Cb,ou=groups,dc=ex'] }
    expect(groupsFilterFor('(&(member={dn})(memberUid={username})(x={input}))', 'in(', profile, attrs, now)).toBe('(&(member=cn=Doe\\5c2C J \\28x\\29,ou=users,dc=ex)(memberUid=j\\2a)(x=in\\28))')
    expect(groupsFilterFor('(|{memberof:dn})', 'x', profile, attrs, now)).toBe('(|(distinguishedName=cn=admins,ou=groups,dc=ex)(distinguishedName=cn=a\\5c2Cb,ou=groups,dc=ex))')
    expect(groupsFilterFor('(|{memberof:rdn})', 'x', profile, attrs, now)).toBe('(|(cn=admins)(cn=a,b))')
  })
})

describe('authentication_backend.ldap configuration', () => {
  const section = (ldap: Record<string, unknown>, top: Record<string, unknown> = {}) => ldapBackendYaml({ port: 389 }, ldap, top)

  test('Authelia 4.39 defaults per implementation (users_filter, groups_filter, attributes, bases, timeout)', () => {
    expect(LDAP_DEFAULTS.activedirectory).toMatchObject({
      usersFilter:
        '(&(|({username_attribute}={input})({mail_attribute}={input}))(sAMAccountType=805306368)(!(userAccountControl:1.2.840.113556.1.4.803:=2))(!(pwdLastSet=0))(|(!(accountExpires=*))(accountExpires=0)(accountExpires>={date-time:microsoft-nt})))',
      groupsFilter: '(&(member={dn})(|(sAMAccountType=268435456)(sAMAccountType=536870912)))',
      attributes: { distinguishedName: 'distinguishedName', username: 'sAMAccountName', displayName: 'displayName', mail: 'mail', memberOf: 'memberOf', groupName: 'cn' },
    })
    expect(LDAP_DEFAULTS.freeipa.usersFilter).toBe(
      '(&(|({username_attribute}={input})({mail_attribute}={input}))(objectClass=person)(!(nsAccountLock=TRUE))(krbPasswordExpiration>={date-time:generalized})(|(!(krbPrincipalExpiration=*))(krbPrincipalExpiration>={date-time:generalized})))',
    )
    expect(LDAP_DEFAULTS.freeipa.groupsFilter).toBe('(&(member={dn})(objectClass=groupOfNames))')
    expect(LDAP_DEFAULTS.lldap).toMatchObject({
      additionalUsersDn: 'OU=people',
      additionalGroupsDn: 'OU=groups',
      usersFilter: '(&(|({username_attribute}={input})({mail_attribute}={input}))(objectClass=person))',
      groupsFilter: '(&(member={dn})(objectClass=groupOfUniqueNames))',
      attributes: { username: 'uid', displayName: 'cn', mail: 'mail', memberOf: 'memberOf', groupName: 'cn' },
    })
    expect(LDAP_DEFAULTS.glauth).toMatchObject({
      usersFilter: '(&(|({username_attribute}={input})({mail_attribute}={input}))(objectClass=posixAccount)(!(accountStatus=inactive)))',
      groupsFilter: '(&(uniqueMember={dn})(objectClass=posixGroup))',
      attributes: { username: 'cn', displayName: 'description', mail: 'mail', groupName: 'cn' },
    })
    expect(LDAP_DEFAULTS.rfc2307bis.groupsFilter).toBe(
      '(&(|(member={dn})(uniqueMember={dn}))(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=groupOfMembers))(!(pwdReset=TRUE)))',
    )
    expect(LDAP_DEFAULTS.custom).toMatchObject({ timeoutSeconds: 20, usersFilter: '', groupsFilter: '', attributes: { username: 'uid', displayName: 'displayName', mail: 'mail', groupName: 'cn' } })
    for (const impl of ['activedirectory', 'rfc2307bis', 'freeipa', 'lldap', 'glauth'] as const) expect(LDAP_DEFAULTS[impl].timeoutSeconds).toBe(5)
  })

  test('each implementation loads with only address, base_dn, user and password, and gets its defaults', () => {
    for (const implementation of ['activedirectory', 'rfc2307bis', 'freeipa', 'lldap', 'glauth'] as const) {
      const { config } = loadWithBackend({ ldap: { implementation, address: 'ldaps://dir.example.com', base_dn: 'dc=example,dc=com', user: 'cn=svc,dc=example,dc=com', password: 'x' } })
      const ldap = config.authenticationBackend.ldap!
      expect(ldap).toMatchObject({ implementation, url: 'ldaps://dir.example.com:636', usersFilter: LDAP_DEFAULTS[implementation].usersFilter, groupsFilter: LDAP_DEFAULTS[implementation].groupsFilter, attributes: LDAP_DEFAULTS[implementation].attributes })
      expect(config.authenticationBackend.refreshIntervalSeconds).toBe(300)
    }
  })

  test('4.37 names (url, *_attribute, skip_verify, minimum_tls_version) load as their 4.38 renames, with a warning each', () => {
    const old = loadWithBackend({
      refresh_interval: 'always',
      ldap: { url: 'ldap://dir.example.com', base_dn: 'dc=ex', user: 'cn=svc', password: 'x', users_filter: '(&({username_attribute}={input})(objectClass=person))', groups_filter: '(member={dn})', username_attribute: 'sAMAccountName', mail_attribute: 'userPrincipalName', display_name_attribute: 'name', group_name_attribute: 'sAMAccountName', skip_verify: true, minimum_tls_version: 'TLS1.3' },
    })
    expect(old.config.authenticationBackend).toMatchObject({ refreshIntervalSeconds: 0, ldap: { url: 'ldap://dir.example.com:389', attributes: { username: 'sAMAccountName', mail: 'userPrincipalName', displayName: 'name', groupName: 'sAMAccountName' }, tls: { skipVerify: true, minimumVersion: 'TLS1.3' } } })
    expect(old.warnings.map((w) => w.path).filter((p) => p.startsWith('authentication_backend')).sort()).toEqual(
      ['display_name_attribute', 'group_name_attribute', 'mail_attribute', 'minimum_tls_version', 'skip_verify', 'url', 'username_attribute'].map((k) => `authentication_backend.ldap.${k}`).sort(),
    )
    const disabled = loadWithBackend({ refresh_interval: 'disable', ...section({}) })
    expect(disabled.config.authenticationBackend.refreshIntervalSeconds).toBeNull()
    expect(loadWithBackend({ refresh_interval: '90s', ...section({}) }).config.authenticationBackend.refreshIntervalSeconds).toBe(90)
  })

  test('addresses: default scheme ldaps, default ports, ldapi refused with the reason', () => {
    expect(parseLdapAddress('dir.example.com')).toEqual({ scheme: 'ldaps', host: 'dir.example.com', port: 636 })
    expect(parseLdapAddress('ldap://[::1]')).toEqual({ scheme: 'ldap', host: '::1', port: 389 })
    expect(parseLdapAddress('ldapi:///run/slapd/ldapi')).toMatchObject({ error: expect.stringMatching(/ldapi.*not supported/) })
    expect(parseLdapAddress('http://x')).toMatchObject({ error: "scheme must be one of 'ldap', 'ldaps', or 'ldapi' but is configured as 'http'" })
  })

  test('broken sections are refused with the key path and a reason, before listening', () => {
    const problems = (ldap: Record<string, unknown>, top: Record<string, unknown> = {}) => {
      try {
        loadWithBackend({ ...top, ldap })
        return []
      } catch (err) {
        return (err as ConfigError).problems.filter((p) => p.path.startsWith('authentication_backend')).map((p) => `${p.path}: ${p.message}`)
      }
    }
    expect(problems({ implementation: 'novell', address: 'ldap://x', base_dn: 'dc=x', user: 'u', password: 'p' })).toContain(
      "authentication_backend.ldap.implementation: option 'implementation' must be one of 'custom', 'activedirectory', 'rfc2307bis', 'freeipa', 'lldap', 'glauth' but it's configured as 'novell'",
    )
    const custom = problems({ address: 'ldap://x' })
    expect(custom).toEqual(
      expect.arrayContaining([
        "authentication_backend.ldap.users_filter: option 'users_filter' is required",
        "authentication_backend.ldap.groups_filter: option 'groups_filter' is required",
        "authentication_backend.ldap.base_dn: option 'base_dn' is required",
        "authentication_backend.ldap.user: option 'user' is required",
        "authentication_backend.ldap.password: option 'password' is required",
      ]),
    )
    expect(problems({ address: 'ldap://x', base_dn: 'dc=x', user: 'u', password: 'p', users_filter: 'uid={input}', groups_filter: '(member={dn})' })).toEqual(
      expect.arrayContaining(["authentication_backend.ldap.users_filter: option 'users_filter' must contain enclosing parenthesis: 'uid={input}' should probably be '(uid={input})'"]),
    )
    expect(problems({ address: 'ldap://x', base_dn: 'dc=x', user: 'u', password: 'p', users_filter: '(uid={0})', groups_filter: '(member={1})' })).toEqual(
      expect.arrayContaining([
        "authentication_backend.ldap.users_filter: option 'users_filter' must contain the placeholder '{username_attribute}' but it's absent",
        "authentication_backend.ldap.users_filter: option 'users_filter' has an invalid placeholder: '{0}' has been removed, please use '{input}' instead",
        "authentication_backend.ldap.groups_filter: option 'groups_filter' has an invalid placeholder: '{1}' has been removed, please use '{username}' instead",
      ]),
    )
    expect(problems({ implementation: 'rfc2307bis', address: 'ldap://x', base_dn: 'dc=x', user: 'u', password: 'p', group_search_mode: 'memberof' })).toContain(
      "authentication_backend.ldap.groups_filter: option 'groups_filter' must contain one of the '{memberof:rdn}' or '{memberof:dn}' placeholders when using a group_search_mode of 'memberof' but they're absent",
    )
    expect(problems({ implementation: 'rfc2307bis', address: 'ldaps://x', start_tls: true, base_dn: 'dc=x', user: 'u', password: 'p' })).toEqual([expect.stringMatching(/start_tls: option 'start_tls' cannot be used with an ldaps:\/\/ address/)])
    expect(problems({ implementation: 'rfc2307bis', address: 'ldap://x', base_dn: 'dc=x', permit_unauthenticated_bind: true, password: 'p' })).toEqual(
      expect.arrayContaining(["authentication_backend.ldap.permit_unauthenticated_bind: option 'permit_unauthenticated_bind' can't be enabled when a password is specified"]),
    )
    expect(problems({ implementation: 'rfc2307bis', address: 'ldap://x', base_dn: 'dc=x', permit_unauthenticated_bind: true })).toContain(
      "authentication_backend.ldap.permit_unauthenticated_bind: option 'permit_unauthenticated_bind' can't be enabled when password reset is enabled",
    )
    expect(problems({ implementation: 'rfc2307bis', address: 'ldap://x', base_dn: 'dc=x', permit_unauthenticated_bind: true }, { password_reset: { disable: true } })).toEqual([])
    expect(problems({ implementation: 'rfc2307bis', address: 'ldap://x', base_dn: 'dc=x', user: 'u', password: 'p', attributes: { username: 'uid)(x' } })).toContain(
      "authentication_backend.ldap.attributes.username: option 'username' must be an attribute name (letters, digits and '-'), got 'uid)(x'",
    )
  })
})

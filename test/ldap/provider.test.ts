/**
 * The LDAP users backend against a real OpenLDAP slapd started by the test (test/support/slapd.ts):
 * bind-as-user password checks, groups from groupOfNames and memberOf, filter injection, StartTLS
 * with a test CA, refresh_interval, and a directory that stops mid-run and comes back.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { LdapUserProvider } from '../../src/authn/users-ldap.js'
import { DirectoryUnavailableError } from '../../src/authn/ldap/pool.js'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { runCli } from '../../src/cli/index.js'
import type { CliIo } from '../../src/cli/io.js'
import { ROOT } from '../support/app.js'
import { ldapBackendYaml, ldapUserDn, loadWithBackend, slapdAvailable, startOwnSlapd, type OwnSlapd } from '../support/slapd.js'

const run = slapdAvailable()
let slapd: OwnSlapd
let provider: LdapUserProvider | undefined

async function open(ldap: Record<string, unknown> = {}, opts: { refresh?: string; extraCa?: string[]; now?: () => number } = {}): Promise<LdapUserProvider> {
  const { config } = loadWithBackend(ldapBackendYaml(slapd, ldap, opts.refresh ? { refresh_interval: opts.refresh } : {}))
  const b = config.authenticationBackend
  provider = await LdapUserProvider.open(b.ldap!, { refreshIntervalSeconds: b.refreshIntervalSeconds, ...(opts.extraCa ? { extraCa: opts.extraCa } : {}), ...(opts.now ? { now: opts.now } : {}) })
  return provider
}

describe.runIf(run)('LDAP users backend on a real slapd', () => {
  beforeAll(async () => {
    slapd = await startOwnSlapd()
  }, 30_000)
  afterAll(async () => {
    await slapd?.dispose()
  })
  afterEach(async () => {
    await provider?.close()
    provider = undefined
  })

  test('a password is checked by binding as the user found; groups come from groupOfNames', async () => {
    const p = await open()
    const ok = await p.checkPassword('alice', 'alice-password')
    expect(ok).toMatchObject({ ok: true, user: { username: 'alice', displayName: 'Alice Admin', emails: ['alice@example.com'], groups: ['admins', 'dev'] } })
    expect(await p.checkPassword('alice', 'wrong')).toEqual({ ok: false, reason: 'wrong_password' })
    expect(await p.checkPassword('nobody', 'alice-password')).toEqual({ ok: false, reason: 'unknown_user' })
    // Users filter of rfc2307bis: the mail attribute signs in too, and the username stays the uid.
    expect(await p.checkPassword('builder@example.org', 'bob-password')).toMatchObject({ ok: true, user: { username: 'bob', emails: ['bob@example.com', 'builder@example.org'], groups: ['dev'] } })
    expect(await p.checkPassword('carol', 'carol-password')).toMatchObject({ ok: true, user: { groups: [] } })
    expect(await p.findUser('ALICE')).toMatchObject({ username: 'alice', groups: ['admins', 'dev'] })
  })

  test('a DN with specials (comma, parentheses, backslash, star) is escaped into the groups filter', async () => {
    const p = await open()
    expect(ldapUserDn('obrien')).toBe('cn=Brien\\, O (ops) \\\\ *,ou=users,dc=example,dc=com')
    expect(await p.checkPassword('obrien', 'obrien-password')).toMatchObject({ ok: true, user: { username: 'obrien', displayName: 'Brien, O (ops) \\ *', groups: ['dev'] } })
  })

  test('an empty password is refused without an unauthenticated bind, whatever the directory would say', async () => {
    const p = await open()
    expect(await p.checkPassword('alice', '')).toEqual({ ok: false, reason: 'wrong_password' })
  })

  test.each([
    ['*', 'a wildcard'],
    ['al*', 'a prefix wildcard that would match alice alone'],
    ['*)(uid=alice', 'a closing parenthesis and a new item'],
    ['alice)(|(uid=*', 'an OR of everything'],
    ['alice\u0000', 'a NUL'],
    ['alice\\', 'a backslash'],
    ['\\2a', 'an escape typed in'],
    ['alice)', 'an unbalanced parenthesis'],
  ])('injection in the login is inert: %j (%s)', async (login) => {
    const p = await open()
    expect(await p.findUser(login)).toBeUndefined()
    const r = await p.checkPassword(login, 'alice-password')
    expect(r.ok).toBe(false)
  })

  test('memberof mode: groups named by the user entry memberOf ({memberof:rdn}, {memberof:dn})', async () => {
    let p = await open({ group_search_mode: 'memberof', groups_filter: '(&(|{memberof:rdn})(objectClass=groupOfNames))' })
    expect(await p.findUser('alice')).toMatchObject({ groups: ['admins', 'dev'] })
    expect(await p.findUser('carol')).toMatchObject({ groups: [] })
    await p.close()
    p = await open({ group_search_mode: 'memberof', groups_filter: '(&(|{memberof:dn})(objectClass=groupOfNames))', attributes: { distinguished_name: 'entryDN' } })
    expect(await p.findUser('bob')).toMatchObject({ groups: ['dev'] })
  })

  test('StartTLS with a test CA: verified against certificates_directory; an unknown CA is an outage, not a sign-in', async () => {
    let p = await open({ start_tls: true, tls: { server_name: 'localhost' } }, { extraCa: [slapd.pki.caPem] })
    expect(await p.checkPassword('alice', 'alice-password')).toMatchObject({ ok: true })
    await p.close()
    p = await open({ start_tls: true, tls: { server_name: 'localhost' } })
    await expect(p.checkPassword('alice', 'alice-password')).rejects.toBeInstanceOf(DirectoryUnavailableError)
    await p.close()
    p = await open({ start_tls: true, tls: { server_name: 'wrong.example.net' } }, { extraCa: [slapd.pki.caPem] })
    await expect(p.findUser('alice')).rejects.toThrow(/unavailable/)
  })

  test('a refused service account stops the start with the reason', async () => {
    await expect(open({ password: 'not-the-password' })).rejects.toThrow(/service account .* was refused: invalid credentials/)
  })

  test('refresh_interval: groups and the disabled state are read again once the interval has passed', async () => {
    let now = Date.now()
    const p = await open({ users_filter: '(&({username_attribute}={input})(objectClass=inetOrgPerson)(!(employeeType=disabled)))' }, { refresh: '5m', now: () => now })
    expect(await p.findUser('bob')).toMatchObject({ groups: ['dev'] })
    slapd.modify(`dn: cn=admins,ou=groups,dc=example,dc=com\nchangetype: modify\nadd: member\nmember: ${ldapUserDn('bob')}\n`)
    now += 60_000
    expect(await p.findUser('bob')).toMatchObject({ groups: ['dev'] })
    now += 240_001
    expect(await p.findUser('bob')).toMatchObject({ groups: ['admins', 'dev'] })
    slapd.modify(`dn: ${ldapUserDn('bob')}\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n`)
    expect(await p.findUser('bob')).toBeDefined()
    now += 300_001
    expect(await p.findUser('bob')).toBeUndefined()
    expect(await p.checkPassword('bob', 'bob-password')).toEqual({ ok: false, reason: 'unknown_user' })
    slapd.modify(`dn: ${ldapUserDn('bob')}\nchangetype: modify\ndelete: employeeType\n`)
    slapd.modify(`dn: cn=admins,ou=groups,dc=example,dc=com\nchangetype: modify\ndelete: member\nmember: ${ldapUserDn('bob')}\n`)
  })

  test('a directory that stops mid-run: fast refusals while down, service again once it is back', async () => {
    let now = Date.now()
    const p = await open({}, { refresh: 'always', now: () => now })
    expect(await p.checkPassword('alice', 'alice-password')).toMatchObject({ ok: true })
    await slapd.stop()
    const started = performance.now()
    await expect(p.checkPassword('alice', 'alice-password')).rejects.toBeInstanceOf(DirectoryUnavailableError)
    await expect(p.findUser('bob')).rejects.toBeInstanceOf(DirectoryUnavailableError)
    expect(performance.now() - started).toBeLessThan(1000)
    expect(await p.ping()).toBe(false)
    await slapd.start()
    now += 1001
    // The pooled connections died with the old slapd: dropped, and a fresh one used.
    expect(await p.checkPassword('alice', 'alice-password')).toMatchObject({ ok: true, user: { groups: ['admins', 'dev'] } })
    expect(await p.ping()).toBe(true)
  }, 30_000)

  test('the CLI with an LDAP backend: doctor finds the user and their groups; a TOTP is generated only for a user the directory knows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-ldap-cli-'))
    try {
      const yaml = parse(readFileSync(join(ROOT, 'fixtures/config/kasm-authelia.yml'), 'utf8'))
      yaml.authentication_backend = ldapBackendYaml(slapd)
      yaml.storage = { ...yaml.storage, local: { path: join(dir, 'db.sqlite3') } }
      yaml.notifier = { filesystem: { filename: join(dir, 'notification.txt') } }
      const file = join(dir, 'configuration.yml')
      writeFileSync(file, stringify(yaml))
      const cli = async (...argv: string[]) => {
        let out = ''
        let err = ''
        const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env: {}, cwd: dir }
        return { code: await runCli(argv, io), out, err }
      }
      const doctor = await cli('doctor', '--config', file, '--user', 'bob')
      expect(doctor.out).toContain(`[ok]      ldap: ldap://127.0.0.1:${slapd.port} answers the service account (implementation rfc2307bis)`)
      expect(doctor.out).toContain("[ok]      ldap: --user 'bob' is bob, groups: dev")
      const missing = await cli('doctor', '--config', file, '--user', 'mallory')
      expect(missing.out).toContain("[problem] ldap: --user 'mallory' is not found")
      const totp = await cli('storage', 'user', 'totp', 'generate', 'alice', '--config', file)
      expect(totp.out).toMatch(/^Successfully generated TOTP configuration for user 'alice' with URI 'otpauth:\/\/totp\//)
      const unknown = await cli('storage', 'user', 'totp', 'generate', 'al*', '--config', file)
      expect(unknown.code).not.toBe(0)
      expect(unknown.err).toContain("user 'al*' is not in the LDAP directory (or is disabled)")
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

/**
 * OpenLDAP for tests (bench/slapd.ts starts it): a slapd of the test's own on a free loopback port,
 * StartTLS with a CA made at run time, the users below. On CI (CI=true) a missing slapd/ldapadd
 * fails the run; elsewhere the tests skip with a message.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { loadConfig } from '../../src/config/load.js'
import type { ConfigProblem } from '../../src/config/problems.js'
import type { Config } from '../../src/config/schema.js'
import { BASE_DN, READER_DN, READER_PASSWORD, SERVICE_DN, SERVICE_PASSWORD, startSlapd, userDn, type LdapUser, type OwnSlapd as BaseSlapd } from '../../bench/slapd.js'
import { ROOT } from './app.js'
import { createTestPki, type TestPki } from './tls.js'

export { BASE_DN, READER_DN, READER_PASSWORD, SERVICE_DN, SERVICE_PASSWORD }
/** A user whose cn holds DN specials: `{dn}` in the groups filter must be escaped to find their groups. */
export const ODD_CN = 'Brien, O (ops) \\ *'

export const LDAP_USERS: LdapUser[] = [
  { uid: 'alice', cn: 'Alice Admin', password: 'alice-password', mail: ['alice@example.com'], groups: ['admins', 'dev'] },
  { uid: 'bob', cn: 'Bob Builder', password: 'bob-password', mail: ['bob@example.com', 'builder@example.org'], groups: ['dev'] },
  { uid: 'carol', cn: 'Carol NoGroups', password: 'carol-password', mail: ['carol@example.com'], groups: [] },
  { uid: 'obrien', cn: ODD_CN, password: 'obrien-password', mail: ['obrien@example.com'], groups: ['dev'] },
]

export function slapdAvailable(): boolean {
  const missing = ['slapd', 'ldapadd'].filter((p) => spawnSync('sh', ['-c', `command -v ${p} || test -x /usr/sbin/${p}`]).status !== 0)
  if (missing.length === 0) return true
  const message = `${missing.join(', ')} not found`
  if (process.env.CI === 'true') throw new Error(`${message}: CI must install slapd and ldap-utils (.ci/run)`)
  console.warn(`${message}: the LDAP tests are skipped (apt-get install slapd ldap-utils)`)
  return false
}

export interface OwnSlapd extends BaseSlapd {
  pki: TestPki
}

export async function startOwnSlapd(users: LdapUser[] = LDAP_USERS): Promise<OwnSlapd> {
  const pki = createTestPki()
  try {
    const s = await startSlapd(users, { tls: pki })
    return {
      ...s,
      pki,
      async dispose() {
        await s.dispose()
        pki.dispose()
      },
    }
  } catch (err) {
    pki.dispose()
    throw err
  }
}

export function ldapUserDn(uid: string): string {
  return userDn(LDAP_USERS.find((u) => u.uid === uid)!)
}

/** The `authentication_backend` section for this slapd (OpenLDAP: rfc2307bis defaults fit it). */
export function ldapBackendYaml(s: Pick<OwnSlapd, 'port'>, ldap: Record<string, unknown> = {}, top: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...top,
    ldap: {
      implementation: 'rfc2307bis',
      address: `ldap://127.0.0.1:${s.port}`,
      base_dn: BASE_DN,
      additional_users_dn: 'ou=users',
      additional_groups_dn: 'ou=groups',
      user: SERVICE_DN,
      password: SERVICE_PASSWORD,
      timeout: '3s',
      ...ldap,
    },
  }
}

/** A whole configuration (the Kasm fixture) loaded with this authentication_backend: what serve would get. */
export function loadWithBackend(backend: Record<string, unknown>): { config: Config; warnings: ConfigProblem[] } {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-ldapconf-'))
  try {
    const yaml = parse(readFileSync(join(ROOT, 'fixtures/config/kasm-authelia.yml'), 'utf8'))
    yaml.authentication_backend = backend
    yaml.storage = { ...yaml.storage, local: { path: 'db.sqlite3' } }
    yaml.notifier = { filesystem: { filename: 'notification.txt' } }
    writeFileSync(join(dir, 'configuration.yml'), stringify(yaml))
    return loadConfig({ files: [join(dir, 'configuration.yml')], env: {} })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

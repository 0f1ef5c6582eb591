/**
 * OpenLDAP for tests: a slapd of the test's own on a free loopback port, with a generated slapd.conf
 * (mdb in a temporary folder, the memberof overlay, StartTLS with a CA made at run time) and an LDIF
 * loaded through ldapadd, so the memberof overlay writes memberOf as it would in production.
 * On CI (CI=true) a missing slapd/ldapadd fails the run; elsewhere the tests skip with a message.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { parse, stringify } from 'yaml'
import { loadConfig } from '../../src/config/load.js'
import type { ConfigProblem } from '../../src/config/problems.js'
import type { Config } from '../../src/config/schema.js'
import { ROOT } from './app.js'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'node:net'
import { freePort } from './redis.js'
import { createTestPki, type TestPki } from './tls.js'
import { escapeDnValue } from '../../src/authn/ldap/escape.js'

export const SLAPD = '/usr/sbin/slapd'
export const BASE_DN = 'dc=example,dc=com'
export const SERVICE_DN = `cn=latchkey,ou=services,${BASE_DN}`
export const SERVICE_PASSWORD = 'service-password'
/** A user whose cn holds DN specials: `{dn}` in the groups filter must be escaped to find their groups. */
export const ODD_CN = 'Brien, O (ops) \\ *'

export interface LdapUser {
  uid: string
  cn: string
  password: string
  mail?: string[]
  groups: string[]
}

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

export interface OwnSlapd {
  port: number
  url: string
  pki: TestPki
  /** Stops slapd (SIGTERM, then SIGKILL); the data stays for start(). */
  stop(): Promise<void>
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>
  /** ldapmodify as the root DN with this LDIF. */
  modify(ldif: string): void
  /** Stops slapd and removes its folder. */
  dispose(): Promise<void>
}

function userDn(u: LdapUser): string {
  return `cn=${escapeDnValue(u.cn)},ou=users,${BASE_DN}`
}

function ldif(users: LdapUser[]): string {
  const out = [
    `dn: ${BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n`,
    `dn: ou=users,${BASE_DN}\nobjectClass: organizationalUnit\nou: users\n`,
    `dn: ou=groups,${BASE_DN}\nobjectClass: organizationalUnit\nou: groups\n`,
    `dn: ou=services,${BASE_DN}\nobjectClass: organizationalUnit\nou: services\n`,
    `dn: ${SERVICE_DN}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\ncn: latchkey\nuserPassword: ${SERVICE_PASSWORD}\n`,
  ]
  for (const u of users) {
    // base64 (`::`) for values LDIF cannot carry plainly.
    const cn = Buffer.from(u.cn).toString('base64')
    out.push(
      `dn:: ${Buffer.from(userDn(u)).toString('base64')}\nobjectClass: inetOrgPerson\ncn:: ${cn}\nsn: ${u.uid}\nuid: ${u.uid}\ndisplayName:: ${cn}\n${(u.mail ?? []).map((m) => `mail: ${m}\n`).join('')}userPassword: ${u.password}\n`,
    )
  }
  for (const g of ['admins', 'dev']) {
    const members = users.filter((u) => u.groups.includes(g))
    // groupOfNames needs a member: the service account stands in for an empty group.
    const lines = members.length ? members.map((u) => `member:: ${Buffer.from(userDn(u)).toString('base64')}\n`).join('') : `member: ${SERVICE_DN}\n`
    out.push(`dn: cn=${g},ou=groups,${BASE_DN}\nobjectClass: groupOfNames\ncn: ${g}\n${lines}`)
  }
  return out.join('\n')
}

function config(dir: string, pki: TestPki): string {
  return `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload ppolicy
pidfile ${dir}/slapd.pid
argsfile ${dir}/slapd.args
TLSCACertificateFile ${pki.caFile}
TLSCertificateFile ${pki.certFile}
TLSCertificateKeyFile ${pki.keyFile}
database mdb
maxsize 33554432
suffix "${BASE_DN}"
rootdn "cn=admin,${BASE_DN}"
rootpw admin-password
directory ${dir}/db
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
# Brings pwdReset (read by the rfc2307bis groups filter) and pwdChangedTime.
overlay ppolicy
access to attrs=userPassword by anonymous auth by self write by * none
access to * by dn.exact="${SERVICE_DN}" read by self read by * none
`
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1')
      s.once('connect', () => (s.destroy(), resolve(true)))
      s.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`slapd did not listen on ${port} within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export async function startOwnSlapd(users: LdapUser[] = LDAP_USERS): Promise<OwnSlapd> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-slapd-'))
  mkdirSync(join(dir, 'db'))
  const pki = createTestPki()
  const conf = join(dir, 'slapd.conf')
  writeFileSync(conf, config(dir, pki))
  const port = await freePort()
  const url = `ldap://127.0.0.1:${port}`
  let child: ChildProcess | undefined
  let output = ''
  const start = async () => {
    // -d 0: stay in the foreground (the test owns the process) and log nothing.
    child = spawn(SLAPD, ['-f', conf, '-h', `ldap://127.0.0.1:${port}/`, '-d', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()))
    await waitForPort(port, 10_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${output}`)
    })
  }
  const stop = async () => {
    const c = child
    child = undefined
    if (!c || c.exitCode !== null) return
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()))
    c.kill('SIGTERM')
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
  const ldapTool = (tool: string, text: string) => {
    const r = spawnSync(tool, ['-x', '-H', url, '-D', `cn=admin,${BASE_DN}`, '-w', 'admin-password'], { input: text, encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`${tool} failed (${r.status}): ${r.stderr}`)
  }
  await start()
  try {
    ldapTool('ldapadd', ldif(users))
  } catch (err) {
    await stop()
    rmSync(dir, { recursive: true, force: true })
    pki.dispose()
    throw err
  }
  return {
    port,
    url,
    pki,
    stop,
    start,
    modify: (text) => ldapTool('ldapmodify', text),
    async dispose() {
      await stop()
      rmSync(dir, { recursive: true, force: true })
      pki.dispose()
    },
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

/**
 * A slapd of its own (OpenLDAP from Debian) for the LDAP tests and the `ldap` bench stage: a generated
 * slapd.conf (mdb in a temporary folder, memberof and ppolicy overlays, optional StartTLS files) on a
 * free loopback port, loaded through ldapadd so the memberof overlay writes memberOf as it would in
 * production. Users live under `ou=users`, `groupOfNames` groups `admins` and `dev` under `ou=groups`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { escapeDnValue } from '../src/authn/ldap/escape.js'
import { freePort } from './server.js'

export const SLAPD = '/usr/sbin/slapd'
export const BASE_DN = 'dc=example,dc=com'
export const SERVICE_DN = `cn=latchkey,ou=services,${BASE_DN}`
export const SERVICE_PASSWORD = 'service-password'
/** A second service account that may read the directory but not set passwords (reset refusal tests). */
export const READER_DN = `cn=reader,ou=services,${BASE_DN}`
export const READER_PASSWORD = 'reader-password'
export const PPOLICY_DN = `cn=default,ou=policies,${BASE_DN}`
/** The default ppolicy's pwdMinLength: shorter new passwords are refused by the directory itself. */
export const PPOLICY_MIN_LENGTH = 12

export interface LdapUser {
  uid: string
  cn: string
  password: string
  mail?: string[]
  groups: string[]
}

export interface SlapdTls {
  caFile: string
  certFile: string
  keyFile: string
}

export interface OwnSlapd {
  port: number
  url: string
  /** Stops slapd (SIGTERM, then SIGKILL); the data stays for start(). */
  stop(): Promise<void>
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>
  /** ldapmodify as the root DN with this LDIF. */
  modify(ldif: string): void
  /** Stops slapd and removes its folder. */
  dispose(): Promise<void>
}

export function userDn(u: Pick<LdapUser, 'cn'>): string {
  return `cn=${escapeDnValue(u.cn)},ou=users,${BASE_DN}`
}

/** `{SSHA}` (salted SHA-1), the userPassword scheme OpenLDAP writes by default. */
export function sshaPassword(password: string): string {
  const salt = randomBytes(8)
  return `{SSHA}${Buffer.concat([createHash('sha1').update(password).update(salt).digest(), salt]).toString('base64')}`
}

function ldif(users: LdapUser[], hashPasswords: boolean): string {
  const out = [
    `dn: ${BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n`,
    `dn: ou=users,${BASE_DN}\nobjectClass: organizationalUnit\nou: users\n`,
    `dn: ou=groups,${BASE_DN}\nobjectClass: organizationalUnit\nou: groups\n`,
    `dn: ou=services,${BASE_DN}\nobjectClass: organizationalUnit\nou: services\n`,
    `dn: ou=policies,${BASE_DN}\nobjectClass: organizationalUnit\nou: policies\n`,
    `dn: ${PPOLICY_DN}\nobjectClass: device\nobjectClass: pwdPolicy\ncn: default\npwdAttribute: userPassword\npwdMinLength: ${PPOLICY_MIN_LENGTH}\npwdCheckQuality: 2\n`,
    `dn: ${READER_DN}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: ${READER_PASSWORD}\n`,
    `dn: ${SERVICE_DN}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\ncn: latchkey\nuserPassword: ${SERVICE_PASSWORD}\n`,
  ]
  for (const u of users) {
    // base64 (`::`) for values LDIF cannot carry plainly.
    const cn = Buffer.from(u.cn).toString('base64')
    const password = hashPasswords ? sshaPassword(u.password) : u.password
    out.push(
      `dn:: ${Buffer.from(userDn(u)).toString('base64')}\nobjectClass: inetOrgPerson\ncn:: ${cn}\nsn: ${u.uid}\nuid: ${u.uid}\ndisplayName:: ${cn}\n${(u.mail ?? []).map((m) => `mail: ${m}\n`).join('')}userPassword: ${password}\n`,
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

function config(dir: string, tls: SlapdTls | undefined): string {
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
${tls ? `TLSCACertificateFile ${tls.caFile}\nTLSCertificateFile ${tls.certFile}\nTLSCertificateKeyFile ${tls.keyFile}\n` : ''}database mdb
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
# Brings pwdReset (read by the rfc2307bis groups filter) and pwdChangedTime. The default policy
# refuses passwords under ${PPOLICY_MIN_LENGTH} characters (password reset tests); a cleartext
# userPassword written by a modify is hashed, as the Password Modify operation does.
overlay ppolicy
ppolicy_default "${PPOLICY_DN}"
ppolicy_hash_cleartext
# The service account may set (not read) passwords: password reset writes through it (docs/ldap.md).
access to attrs=userPassword by anonymous auth by self write by dn.exact="${SERVICE_DN}" =w by * none
access to * by dn.exact="${SERVICE_DN}" read by dn.exact="${READER_DN}" read by self read by * none
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

/** Starts slapd on a free loopback port and loads the users; `hashPasswords` stores them as {SSHA}. */
export async function startSlapd(users: LdapUser[], opts: { tls?: SlapdTls; hashPasswords?: boolean } = {}): Promise<OwnSlapd> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-slapd-'))
  mkdirSync(join(dir, 'db'))
  const conf = join(dir, 'slapd.conf')
  writeFileSync(conf, config(dir, opts.tls))
  const port = await freePort()
  const url = `ldap://127.0.0.1:${port}`
  let child: ChildProcess | undefined
  let output = ''
  const start = async () => {
    // -d 0: stay in the foreground (the caller owns the process) and log nothing.
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
    ldapTool('ldapadd', ldif(users, opts.hashPasswords ?? false))
  } catch (err) {
    await stop()
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  return {
    port,
    url,
    stop,
    start,
    modify: (text) => ldapTool('ldapmodify', text),
    async dispose() {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

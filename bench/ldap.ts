/**
 * `npm run bench -- ldap`: password sign-ins/s (POST /api/firstfactor) with the LDAP backend against
 * the users file, on the same machine in the same run. The server is the built binary in a child
 * process; slapd (Debian's, started here on loopback with {SSHA} passwords, OpenLDAP's default
 * scheme) runs beside it, so the two share the second core with the load generator. Beside them:
 * the calibration of this run (a bare Fastify `hello world`, and one argon2id verification, which
 * is what bounds the file backend).
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { benchCalibration } from './calibrate.js'
import { rawLoad, round } from './load.js'
import { hashTimeMs } from './portal.js'
import { prepareKasmConfig, startServer, stopServer } from './server.js'
import { BASE_DN, SERVICE_DN, SERVICE_PASSWORD, startSlapd, type OwnSlapd } from './slapd.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const CONNECTIONS = 8

async function signInsPerSecond(configFile: string, username: string, password: string): Promise<Record<string, unknown>> {
  let child: ChildProcess | undefined
  try {
    const server = await startServer(configFile)
    child = server.child
    const body = JSON.stringify({ username, password })
    // Warm-up: connection pools, JIT.
    await rawLoad({ port: server.port, path: '/api/firstfactor', method: 'POST', headers: { 'content-type': 'application/json' }, body, connections: CONNECTIONS, durationMs: 1000, expectStatus: 200 })
    const r = await rawLoad({ port: server.port, path: '/api/firstfactor', method: 'POST', headers: { 'content-type': 'application/json' }, body, connections: CONNECTIONS, durationMs: SECONDS * 1000, expectStatus: 200 })
    return { per_second: r.rps, connections: CONNECTIONS, p50_ms: r.p50Ms, p99_ms: r.p99Ms, errors: r.errors }
  } finally {
    await stopServer(child)
  }
}

export async function benchLdap(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-ldap-'))
  let slapd: OwnSlapd | undefined
  try {
    slapd = await startSlapd([{ uid: 'alice', cn: 'Alice Admin', password: 'alice-password', mail: ['alice@example.com'], groups: ['admins', 'dev'] }], { hashPasswords: true })
    const port = slapd.port
    // Regulation off: the load repeats one user.
    const fileConfig = prepareKasmConfig(join(dir, '.'), (y) => (y.regulation.max_retries = 0))
    const file = await signInsPerSecond(fileConfig, 'john', 'password')
    const ldapDir = mkdtempSync(join(dir, 'ldap-'))
    const ldapConfig = prepareKasmConfig(ldapDir, (y) => {
      y.regulation.max_retries = 0
      y.authentication_backend = {
        ldap: { implementation: 'rfc2307bis', address: `ldap://127.0.0.1:${port}`, base_dn: BASE_DN, additional_users_dn: 'ou=users', additional_groups_dn: 'ou=groups', user: SERVICE_DN, password: SERVICE_PASSWORD },
      }
    })
    const ldap = await signInsPerSecond(ldapConfig, 'alice', 'alice-password')
    const calibration = await benchCalibration(0, SECONDS * 1000, CONNECTIONS)
    const perHashMs = await hashTimeMs()
    return {
      what: 'POST /api/firstfactor, one user, regulation off; a successful sign-in each time (session created)',
      file_backend: { ...file, password: 'argon2id m=65536 KiB, t=3, p=4 (Authelia defaults)' },
      ldap_backend: { ...ldap, directory: 'OpenLDAP slapd (Debian) on loopback, {SSHA} userPassword, rfc2307bis defaults: user search + bind as the user + groups search per sign-in' },
      ldap_vs_file: round((ldap.per_second as number) / Math.max(1e-9, file.per_second as number), 1),
      calibration: { argon2id_per_hash_ms_median: perHashMs, ...calibration },
      seconds_per_measure: SECONDS,
    }
  } finally {
    await slapd?.dispose()
    rmSync(dir, { recursive: true, force: true })
  }
}

// `node dist/bench/ldap.js` runs it alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  benchLdap().then((r) => process.stdout.write(JSON.stringify(r, null, 2) + '\n'))
}

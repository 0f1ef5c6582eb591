/**
 * Portal throughput (issue #3): argon2id sign-ins/s at Authelia's defaults (with the per-hash time,
 * which is the limit), TOTP checks/s through HTTP, and GET /api/state requests/s with p50/p99,
 * anonymous and signed in. The server is the built binary in a child process (one core); the load
 * comes from this process (the other core) over keep-alive connections (bench/load.ts).
 * Targets (2 cores): TOTP checks ≥ 3,000/s, /api/state ≥ 10,000/s.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { projectRoot } from '../src/common/project-root.js'
import { loadConfig } from '../src/config/load.js'
import { openStorage } from '../src/storage/index.js'
import { parseDigest } from '../src/authn/hashes/index.js'
import { generateTotpCode, generateTotpConfiguration } from '../src/totp/index.js'
import { rawLoad, round } from './load.js'
import { prepareKasmConfig, startServer, stopServer } from './server.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)

async function signIn(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/api/firstfactor`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'john', password: 'password' }),
  })
  const set = res.headers.get('set-cookie') ?? ''
  const m = /authelia_session=([A-Za-z0-9]+)/.exec(set)
  if (res.status !== 200 || !m) throw new Error(`portal bench: sign-in failed (${res.status})`)
  return `authelia_session=${m[1]}`
}

/** Median time of one argon2id verification of the fixture digest (m=65536 KiB, t=3, p=4). */
export async function hashTimeMs(): Promise<number> {
  const users = readFileSync(join(projectRoot(), 'fixtures/config/users_database.yml'), 'utf8')
  const digest = parseDigest(/password: "(\$argon2id\$[^"]+)"/.exec(users)![1]!)
  const times: number[] = []
  for (let i = 0; i < 9; i++) {
    const t0 = performance.now()
    await digest.verify('password')
    times.push(performance.now() - t0)
  }
  times.sort((a, b) => a - b)
  return round(times[4]!, 1)
}

export async function benchPortal(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-portal-'))
  let child: ChildProcess | undefined
  try {
    // Regulation off, so failing TOTP checks never ban.
    const configFile = prepareKasmConfig(dir, (y) => (y.regulation.max_retries = 0))
    // A TOTP device for john, saved before the server starts (the server opens the same file).
    const { config } = loadConfig({ files: [configFile], env: {} })
    const storage = await openStorage(config.storage)
    const now = Math.floor(Date.now() / 1000)
    const totp = generateTotpConfiguration(config.totp, 'john', now).configuration
    await storage.saveTotpConfiguration(totp)
    await storage.close()

    const server = await startServer(configFile)
    child = server.child
    const { port } = server
    const duration = SECONDS * 1000

    const perHashMs = await hashTimeMs()
    const signIns = await rawLoad({
      port,
      path: '/api/firstfactor',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'john', password: 'password' }),
      connections: 8,
      durationMs: duration,
      expectStatus: 200,
    })

    const cookie = await signIn(port)
    // A well-formed code that is wrong for every step the server accepts around now: each request
    // runs the whole check (session, decrypt, three HMACs, attempt record) without ever winning.
    const valid = new Set([-2, -1, 0, 1, 2].map((d) => generateTotpCode(totp, Math.floor(Date.now() / 1000) + d * 30)))
    let wrong = 0
    while (valid.has(String(wrong).padStart(6, '0'))) wrong++
    const totpChecks = await rawLoad({
      port,
      path: '/api/secondfactor/totp',
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie },
      body: JSON.stringify({ token: String(wrong).padStart(6, '0') }),
      connections: 16,
      durationMs: duration,
      expectStatus: 403,
    })

    const stateSignedIn = await rawLoad({ port, method: 'GET', path: '/api/state', headers: { cookie }, connections: 16, durationMs: duration, expectStatus: 200 })
    const stateAnonymous = await rawLoad({ port, method: 'GET', path: '/api/state', headers: {}, connections: 16, durationMs: duration, expectStatus: 200 })
    // The session must still be signed in after the load (nothing expired or was refused).
    const check = await new Promise<string>((resolve) => {
      http.get({ host: '127.0.0.1', port, path: '/api/state', headers: { cookie } }, (res) => {
        let data = ''
        res.on('data', (c: Buffer) => (data += c.toString()))
        res.on('end', () => resolve(data))
      })
    })

    return {
      argon2id: { parameters: 'm=65536 KiB, t=3, p=4 (Authelia defaults)', per_hash_ms_median: perHashMs },
      sign_ins: { per_second: signIns.rps, connections: 8, p50_ms: signIns.p50Ms, p99_ms: signIns.p99Ms, errors: signIns.errors },
      totp_checks: { per_second: totpChecks.rps, connections: 16, p50_ms: totpChecks.p50Ms, p99_ms: totpChecks.p99Ms, errors: totpChecks.errors, target: '>= 3000/s' },
      api_state_signed_in: { per_second: stateSignedIn.rps, connections: 16, p50_ms: stateSignedIn.p50Ms, p99_ms: stateSignedIn.p99Ms, errors: stateSignedIn.errors, target: '>= 10000/s' },
      api_state_anonymous: { per_second: stateAnonymous.rps, connections: 16, p50_ms: stateAnonymous.p50Ms, p99_ms: stateAnonymous.p99Ms, errors: stateAnonymous.errors },
      session_still_signed_in: JSON.parse(check).data.authentication_level === 1,
      seconds_per_measure: SECONDS,
    }
  } finally {
    await stopServer(child)
    rmSync(dir, { recursive: true, force: true })
  }
}

// `node dist/bench/portal.js` runs it alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  benchPortal().then((r) => process.stdout.write(JSON.stringify(r, null, 2) + '\n'))
}

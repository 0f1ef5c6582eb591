/**
 * Sign-in under a password-hash flood (issue #9 point 3, docs/security.md B5): the p95 of a legitimate
 * sign-in (real users in turn, right password, one at a time) while 200 connections keep sending wrong sign-ins
 * with made-up names (a new name each time, so regulation never bans them and each would cost a
 * dummy argon2id). Beside it, from the same run: the machine's calibration (one argon2id
 * verification, a sign-in with nothing else running, a bare Fastify route) and, once the flood
 * stops, how long an ordinary failure takes (the failure delay must not have learnt the flood).
 * The server is the built binary in a child process, regulation as configured; the flood and
 * the timed sign-ins come from this process. Target (2 cores): legitimate sign-in p95 < 1.5 s.
 */
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { benchCalibration } from './calibrate.js'
import { RawClient, cpuSeconds, percentile, round } from './load.js'
import { hashTimeMs } from './portal.js'
import { prepareKasmConfig, PRODUCTION_NODE_FLAGS, startServer, stopServer } from './server.js'

const BOGUS_CONNECTIONS = Number(process.env.BENCH_FLOOD_CONNECTIONS ?? 200)
/** Timed legitimate sign-ins under the flood: this many, or fewer when they run out of time. */
const LEGIT_SAMPLES = 40
const LEGIT_BUDGET_MS = 60_000
const FLOOD_WARMUP_MS = 2_000

function signInRequest(port: number, username: string, password: string): Buffer {
  const body = JSON.stringify({ username, password })
  return Buffer.from(
    `POST /api/firstfactor HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
}

/**
 * Real users signing in in turn: until regulation stops counting successes (issue #9 point 2),
 * ~23 successes of one user inside find_time would ban him mid-bench.
 */
const LEGIT_USERS = ['john', 'harry', ...Array.from({ length: 6 }, (_, i) => `user${i}`)]

/** Adds user0… to the copied fixture users file, with john's digest (password `password`). */
function addLegitUsers(usersFile: string): void {
  const text = readFileSync(usersFile, 'utf8')
  const digest = /password: "(\$argon2id\$[^"]+)"/.exec(text)![1]!
  const extra = LEGIT_USERS.filter((u) => !text.includes(`  ${u}:`))
    .map((u) => `  ${u}:\n    displayname: "${u}"\n    password: "${digest}"\n    email: ${u}@example.com\n`)
    .join('')
  writeFileSync(usersFile, text.replace(/\n*$/, '\n') + extra)
}

const madeUpName = () => `nobody-${randomBytes(8).toString('hex')}`

/** Latencies (ms, sorted) of `count` sequential sign-ins, each on a fresh connection; stops early at `budgetMs`. */
async function timedSignIns(port: number, count: number, budgetMs: number, make: () => Buffer, expectStatus: number) {
  const latencies: number[] = []
  const unexpected: Record<string, number> = {}
  const deadline = performance.now() + budgetMs
  while (latencies.length < count && performance.now() < deadline) {
    const client = new RawClient(port)
    const t0 = performance.now()
    const reply = await client.request(make())
    latencies.push(performance.now() - t0)
    if (reply.status !== expectStatus) unexpected[reply.status] = (unexpected[reply.status] ?? 0) + 1
    client.close()
  }
  latencies.sort((a, b) => a - b)
  return {
    samples: latencies.length,
    p50_ms: round(percentile(latencies, 50), 1),
    p95_ms: round(percentile(latencies, 95), 1),
    max_ms: round(latencies.at(-1) ?? 0, 1),
    unexpected_status: unexpected,
  }
}

/** `connections` closed loops of wrong sign-ins with made-up names until `stop` resolves. */
function flood(port: number, connections: number, stop: Promise<void>) {
  const statuses: Record<string, number> = {}
  const latencies: number[] = []
  let stopped = false
  void stop.then(() => (stopped = true))
  const started = performance.now()
  const done = Promise.all(
    Array.from(
      { length: connections },
      () =>
        new Promise<void>((resolve) => {
          const socket = net.connect(port, '127.0.0.1')
          socket.setNoDelay(true)
          let pending: Buffer = Buffer.alloc(0)
          let sentAt = 0
          const send = () => {
            if (stopped) {
              socket.destroy()
              resolve()
              return
            }
            sentAt = performance.now()
            socket.write(signInRequest(port, madeUpName(), 'wrong-password'))
          }
          socket.on('connect', send)
          socket.on('data', (chunk: Buffer) => {
            pending = pending.length ? Buffer.concat([pending, chunk]) : chunk
            for (;;) {
              const end = pending.indexOf('\r\n\r\n')
              if (end === -1) return
              const head = pending.subarray(0, end).toString('latin1')
              const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0)
              if (pending.length < end + 4 + length) return
              const status = head.slice(9, 12)
              statuses[status] = (statuses[status] ?? 0) + 1
              latencies.push(performance.now() - sentAt)
              pending = pending.subarray(end + 4 + length)
              send()
            }
          })
          socket.on('error', () => {
            statuses.socket_error = (statuses.socket_error ?? 0) + 1
            resolve()
          })
          // A stop while a request is pending: the answer may never come in time.
          void stop.then(() => {
            socket.destroy()
            resolve()
          })
        }),
    ),
  )
  return done.then(() => {
    latencies.sort((a, b) => a - b)
    const seconds = (performance.now() - started) / 1000
    return {
      connections,
      answers_per_second: Math.round(latencies.length / seconds),
      statuses,
      p50_ms: round(percentile(latencies, 50), 1),
      p95_ms: round(percentile(latencies, 95), 1),
    }
  })
}

export async function benchStarvation(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-starvation-'))
  let child: ChildProcess | undefined
  try {
    const configFile = prepareKasmConfig(dir)
    addLegitUsers(join(dir, 'users_database.yml'))
    const server = await startServer(configFile)
    child = server.child
    const { port } = server
    let turn = 0
    const legit = () => signInRequest(port, LEGIT_USERS[turn++ % LEGIT_USERS.length]!, 'password')

    const perHashMs = await hashTimeMs()
    const bare = await benchCalibration(2, 2000, 32, PRODUCTION_NODE_FLAGS)
    const alone = await timedSignIns(port, 10, 20_000, legit, 200)

    let stopFlood!: () => void
    const stop = new Promise<void>((r) => (stopFlood = r))
    const flooding = flood(port, BOGUS_CONNECTIONS, stop)
    await new Promise((r) => setTimeout(r, FLOOD_WARMUP_MS))
    const cpu0 = { all: cpuSeconds(child.pid!), main: cpuSeconds(child.pid!, true), at: performance.now() }
    const underFlood = await timedSignIns(port, LEGIT_SAMPLES, LEGIT_BUDGET_MS, legit, 200)
    const wall = (performance.now() - cpu0.at) / 1000
    const serverCpu = {
      server_cpu_percent: round((100 * (cpuSeconds(child.pid!) - cpu0.all)) / wall, 0),
      server_main_thread_cpu_percent: round((100 * (cpuSeconds(child.pid!, true) - cpu0.main)) / wall, 0),
    }
    stopFlood()
    const bogus = await flooding
    // Let the server drain what it had accepted before the flood stopped.
    await timedSignIns(port, 1, 60_000, legit, 200)
    const failureAfter = await timedSignIns(port, 5, 60_000, () => signInRequest(port, madeUpName(), 'wrong-password'), 401)

    return {
      legit_sign_in_under_flood: { ...underFlood, bogus_connections: BOGUS_CONNECTIONS, target_p95_ms: '< 1500' },
      bogus_flood: { ...bogus, ...serverCpu },
      failure_after_flood: failureAfter,
      calibration: {
        argon2id_per_hash_ms_median: perHashMs,
        legit_sign_in_alone: alone,
        bare_fastify_hello_rps: (bare as Record<string, { rps: number }>).bare_fastify_hello!.rps,
      },
    }
  } finally {
    await stopServer(child)
    rmSync(dir, { recursive: true, force: true })
  }
}

// `node dist/bench/starvation.js` (or `npm run bench -- starvation`) runs it alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  benchStarvation().then((r) => process.stdout.write(JSON.stringify(r, null, 2) + '\n'))
}

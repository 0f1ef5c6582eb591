/**
 * Several instances (issue 8): full OIDC flows/s and p99 (authorize → token → userinfo, bench/oidc.ts
 * benchFlows, 16 users in parallel) for one instance on SQLite, then for two instances sharing that
 * SQLite file behind haproxy running docs/high-availability.md's configuration (round robin, health
 * checks), with both servers' CPU per flow and RSS. On this 2-core machine the load generator, haproxy
 * and the servers share the cores: two instances cannot be faster than one here; the stage shows
 * what the balancer and the shared store cost, not scaling. haproxy listens without TLS in the bench
 * (the load generator speaks plain HTTP). Then one instance on PostgreSQL (the loopback server, a
 * schema made for the run and dropped after; LATCHKEY_BENCH_PG_* to point elsewhere), to set beside
 * the SQLite figure (target: within 30% of its flows/s), and two instances on that schema with
 * sessions in Redis (the loopback server, a key prefix of the run; LATCHKEY_BENCH_REDIS_*) behind
 * the same haproxy block.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { projectRoot } from '../src/common/project-root.js'
import { randomString } from '../src/common/random.js'
import { loadConfig } from '../src/config/load.js'
import { openSessionStore, openStorage } from '../src/storage/index.js'
import { generateKeyPair, SignJWT } from 'jose'
import { benchCalibration } from './calibrate.js'
import { cpuSeconds, round } from './load.js'
import { benchFlows } from './oidc.js'
import { freePort, prepareKasmConfig, PRODUCTION_NODE_FLAGS, rssMb, startServer, stopServer } from './server.js'
import pg from 'pg'

const PG = {
  host: process.env.LATCHKEY_BENCH_PG_HOST ?? '127.0.0.1',
  port: Number(process.env.LATCHKEY_BENCH_PG_PORT ?? 5432),
  user: process.env.LATCHKEY_BENCH_PG_USER ?? 'postgres',
  database: process.env.LATCHKEY_BENCH_PG_DATABASE ?? 'test',
}

async function pgAdmin(sql: string): Promise<boolean> {
  const c = new pg.Client({ ...PG, connectionTimeoutMillis: 3000 })
  try {
    await c.connect()
    await c.query(sql)
    return true
  } catch {
    return false
  } finally {
    await c.end().catch(() => undefined)
  }
}

/** A signed-in (two-factor) user written straight into the instance's session store; resolves the Cookie header. */
async function signedInCookie(configFile: string): Promise<string> {
  const { config } = loadConfig({ files: [configFile], env: {} })
  const sessions = await openSessionStore(config.session)
  const storage = sessions ? undefined : await openStorage(config.storage)
  const store = sessions ?? storage!
  const id = randomString(32)
  const now = Math.floor(Date.now() / 1000)
  await store.saveSession(id, { username: 'john', level: 2, firstFactorAt: now, secondFactorAt: now, amr: ['pwd', 'otp', 'mfa'], rememberMe: true, csrfToken: 'x', createdAt: now, lastActivityAt: now }, now + 3600, now)
  await (sessions ?? storage!).close()
  return `authelia_session=${id}`
}

const HAPROXY = '/usr/sbin/haproxy'
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)

/** The block of docs/high-availability.md marked `<!-- fleet-test: NAME -->` (also run by test/e2e/fleet-haproxy.test.ts). */
export function fleetBlock(name: string): string {
  const doc = readFileSync(join(projectRoot(), 'docs/high-availability.md'), 'utf8')
  const m = new RegExp(`^<!-- fleet-test: ${name} -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)^\`\`\`$`, 'm').exec(doc)
  if (!m) throw new Error(`docs/high-availability.md has no block marked <!-- fleet-test: ${name} -->`)
  return m[1]!
}

/**
 * The PostgreSQL server processes serving Latchkey's connections of this run (same machine), so their
 * CPU is counted beside Latchkey's: on PostgreSQL part of a flow's work moves to them.
 */
async function databaseBackends(): Promise<number[]> {
  const c = new pg.Client({ ...PG, connectionTimeoutMillis: 3000 })
  try {
    await c.connect()
    // Every Latchkey connection to the database: another Latchkey using it during the run would count too.
    const rows = await c.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'latchkey%' AND datname = $1", [PG.database])
    return rows.rows.map((r) => r.pid).filter((pid) => existsSync(`/proc/${pid}/stat`))
  } catch {
    return []
  } finally {
    await c.end().catch(() => undefined)
  }
}

/** Flows with the CPU seconds of every server process summed, per flow (and the database's, on PostgreSQL). */
async function measured(pids: number[], port: number, cookie: string, onPostgres = false) {
  const db = onPostgres ? await databaseBackends() : []
  const cpu0 = pids.map((p) => cpuSeconds(p))
  const db0 = db.map((p) => cpuSeconds(p))
  const r = await benchFlows(port, cookie, 16, SECONDS * 1000)
  const cpu = pids.reduce((sum, p, i) => sum + cpuSeconds(p) - cpu0[i]!, 0)
  // Connections opened during the run count whole (their CPU so far is all from the run).
  const dbAfter = onPostgres ? await databaseBackends() : []
  const dbCpu = dbAfter.reduce((sum, p) => sum + cpuSeconds(p) - (db.includes(p) ? db0[db.indexOf(p)]! : 0), 0)
  return {
    flows_per_second: r.flows_per_second,
    flows: r.flows,
    errors: r.errors,
    flow_p99_ms: round(r.steps.authorize.p99_ms + r.steps.token.p99_ms + r.steps.userinfo.p99_ms, 1),
    steps: r.steps,
    servers_cpu_us_per_flow: r.flows > 0 ? round((cpu * 1e6) / r.flows, 0) : 0,
    ...(onPostgres ? { database_cpu_us_per_flow: r.flows > 0 ? round((dbCpu * 1e6) / r.flows, 0) : 0, database_backends: dbAfter.length } : {}),
    rss_mb: pids.map((p) => rssMb(p)),
  }
}

/**
 * A second instance on the same configuration beside `a`, both behind docs/high-availability.md's
 * haproxy block (plain HTTP on loopback), measured through the balancer.
 */
async function behindHaproxy(dir: string, configFile: string, a: { child: ChildProcess; port: number }, cookie: string, children: ChildProcess[], onPostgres = false) {
  const b = await startServer(configFile)
  children.push(b.child)
  const haPort = await freePort()
  const cfg = fleetBlock('haproxy')
    .replace('bind :443 ssl crt /etc/haproxy/certs/auth.example.com.pem', `bind 127.0.0.1:${haPort}`)
    .replace('log stdout format raw local0 info', 'log stdout format raw local0 warning')
    .replace('10.0.0.11:9091', `127.0.0.1:${a.port}`)
    .replace('10.0.0.12:9091', `127.0.0.1:${b.port}`)
  const file = join(dir, `haproxy-${haPort}.cfg`)
  writeFileSync(file, cfg)
  const check = spawnSync(HAPROXY, ['-c', '-q', '-f', file], { encoding: 'utf8' })
  if (check.status !== 0) throw new Error(`haproxy -c: ${check.stdout}${check.stderr}`)
  const haproxy = spawn(HAPROXY, ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'inherit'] })
  children.push(haproxy)
  for (let i = 0; ; i++) {
    if ((await fetch(`http://127.0.0.1:${haPort}/api/health`).catch(() => undefined))?.ok) break
    if (i > 200) throw new Error('haproxy never answered')
    await new Promise((r) => setTimeout(r, 25))
  }
  await benchFlows(haPort, cookie, 4, 1000)
  return measured([a.child.pid!, b.child.pid!], haPort, cookie, onPostgres)
}

/** Two instances on one PostgreSQL schema with sessions in Redis (LATCHKEY_BENCH_REDIS_*), behind haproxy. */
async function pgRedisPair(dir: string, schema: string, children: ChildProcess[]): Promise<Record<string, unknown>> {
  const redis = { host: process.env.LATCHKEY_BENCH_REDIS_HOST ?? '127.0.0.1', port: Number(process.env.LATCHKEY_BENCH_REDIS_PORT ?? 6379) }
  const prefix = `latchkey-bench-${process.pid}-${randomString(6)}:`
  const configFile = prepareKasmConfig(dir, (y) => {
    y.storage = { encryption_key: y.storage.encryption_key, postgres: { address: `tcp://${PG.host}:${PG.port}`, database: PG.database, schema, username: PG.user } }
    y.server = { trusted_proxies: ['127.0.0.1'] }
    y.session.secret = randomString(64)
    y.session.redis = { host: redis.host, port: redis.port, key_prefix: prefix }
  })
  let a: Awaited<ReturnType<typeof startServer>>
  try {
    a = await startServer(configFile)
  } catch (e) {
    return { skipped: `could not start on PostgreSQL + Redis (${redis.host}:${redis.port}): ${(e as Error).message}` }
  }
  children.push(a.child)
  try {
    const cookie = await signedInCookie(configFile)
    return await behindHaproxy(dir, configFile, a, cookie, children, true)
  } finally {
    // The run's Redis keys (under its own prefix) expire with their sessions' TTL.
    for (const c of children.splice(0).reverse()) await stopServer(c)
  }
}

/** The machine's speed in the same run, after the servers stopped: bare Fastify and RS256 signatures. */
async function calibration(): Promise<Record<string, unknown>> {
  const bare = (await benchCalibration(1024, SECONDS * 1000, 32, PRODUCTION_NODE_FLAGS)) as Record<string, { rps: number }>
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048 })
  const until = Date.now() + 1000
  let signs = 0
  while (Date.now() < until) {
    await new SignJWT({ sub: 'calibration' }).setProtectedHeader({ alg: 'RS256' }).sign(privateKey)
    signs++
  }
  return { bare_fastify_hello_rps: bare.bare_fastify_hello!.rps, rs256_signs_per_second: signs }
}

export async function benchFleet(): Promise<Record<string, unknown>> {
  if (!existsSync(HAPROXY)) return { skipped: `needs haproxy (${HAPROXY})` }
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-fleet-'))
  const children: ChildProcess[] = []
  try {
    const configFile = prepareKasmConfig(dir, (y) => {
      y.storage.local.path = join(dir, 'db.sqlite3')
      y.server = { trusted_proxies: ['127.0.0.1'] }
    })
    const a = await startServer(configFile)
    children.push(a.child)
    const cookie = await signedInCookie(configFile)

    await benchFlows(a.port, cookie, 4, 1000)
    const one = await measured([a.child.pid!], a.port, cookie)

    const two = await behindHaproxy(dir, configFile, a, cookie, children)

    for (const c of children.splice(0).reverse()) await stopServer(c)

    let onePg: Record<string, unknown> = { skipped: `PostgreSQL not reachable at ${PG.host}:${PG.port}` }
    let twoPgRedis: Record<string, unknown> = { skipped: `PostgreSQL not reachable at ${PG.host}:${PG.port}` }
    const schema = `latchkey_bench_${process.pid}_${randomString(6).toLowerCase()}`
    if (await pgAdmin(`CREATE SCHEMA ${schema}`)) {
      try {
        const pgDir = mkdtempSync(join(tmpdir(), 'latchkey-bench-fleet-pg-'))
        try {
          const pgConfig = prepareKasmConfig(pgDir, (y) => {
            y.storage = { encryption_key: y.storage.encryption_key, postgres: { address: `tcp://${PG.host}:${PG.port}`, database: PG.database, schema, username: PG.user } }
          })
          const p = await startServer(pgConfig)
          children.push(p.child)
          const pgCookie = await signedInCookie(pgConfig)
          await benchFlows(p.port, pgCookie, 4, 1000)
          onePg = await measured([p.child.pid!], p.port, pgCookie, true)
          await stopServer(children.pop())
          twoPgRedis = await pgRedisPair(pgDir, schema, children)
        } finally {
          rmSync(pgDir, { recursive: true, force: true })
        }
      } finally {
        await pgAdmin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      }
    }

    return {
      calibration: await calibration(),
      one_instance_sqlite: one,
      two_instances_sqlite_haproxy: two,
      one_instance_postgres: onePg,
      two_instances_postgres_redis_haproxy: twoPgRedis,
      note: 'load generator, haproxy and the servers share 2 cores; haproxy without TLS',
    }
  } finally {
    for (const c of children.reverse()) await stopServer(c)
    rmSync(dir, { recursive: true, force: true })
  }
}

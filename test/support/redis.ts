/**
 * Redis for tests. The shared server on 127.0.0.1:6379 (this machine and CI run one) holds each run's
 * keys under a prefix of its own, deleted afterwards. Tests that stop Redis, use a unix socket or a
 * Sentinel start their own redis-server / redis-sentinel on free loopback ports and stop them.
 * On CI (CI=true) a missing Redis fails the run; elsewhere the Redis tests skip with a message.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'

export const SHARED_REDIS = { host: '127.0.0.1', port: 6379 } as const

/** True when the shared Redis answers; on CI its absence throws instead. */
export async function sharedRedisAvailable(): Promise<boolean> {
  const client = new Redis({ ...SHARED_REDIS, lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.ping()
    return true
  } catch (err) {
    const message = `Redis is not answering on ${SHARED_REDIS.host}:${SHARED_REDIS.port} (${(err as Error).message})`
    if (process.env.CI === 'true') throw new Error(`${message}: CI must run it`)
    console.warn(`${message}: the Redis tests are skipped`)
    return false
  } finally {
    client.disconnect()
  }
}

/**
 * True when these programs are on PATH (Debian: redis-server, redis-sentinel); on CI their absence
 * throws (.ci/run installs them), elsewhere the tests needing them skip with a message.
 */
export function redisProgramsAvailable(...programs: string[]): boolean {
  const missing = programs.filter((p) => spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0)
  if (missing.length === 0) return true
  const message = `${missing.join(', ')} not found on PATH`
  if (process.env.CI === 'true') throw new Error(`${message}: CI must install it (.ci/run)`)
  console.warn(`${message}: the tests that start their own Redis are skipped`)
  return false
}

/** A key prefix no other run uses. */
export function uniquePrefix(): string {
  return `latchkey-test:${randomUUID()}:`
}

/** A plain client on the shared server, for looking at keys and TTLs from outside. */
export function sharedClient(): Redis {
  const client = new Redis({ ...SHARED_REDIS, connectTimeout: 2000, maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  return client
}

export async function keysUnder(client: Redis, prefix: string): Promise<string[]> {
  const out: string[] = []
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    out.push(...keys)
    cursor = next
  } while (cursor !== '0')
  return out.sort()
}

export async function deleteKeysUnder(client: Redis, prefix: string): Promise<void> {
  const keys = await keysUnder(client, prefix)
  if (keys.length > 0) await client.del(...keys)
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
    srv.on('error', reject)
  })
}

async function waitFor(what: string, check: () => Promise<boolean>, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}: ${output()}`)
    if (await check().catch(() => false)) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${what} did not come up: ${output()}`)
}

async function answers(options: { host?: string; port?: number; path?: string }, command: (c: Redis) => Promise<boolean>): Promise<boolean> {
  const client = new Redis({ ...options, lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    await client.connect()
    return await command(client)
  } finally {
    client.disconnect()
  }
}

function spawnLogged(cmd: string, args: string[]): { child: ChildProcess; output: () => string; exited: Promise<void> } {
  let output = ''
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  return { child, output: () => output, exited }
}

export interface OwnRedis {
  port: number
  /** The unix socket, when asked for. */
  socket?: string
  /** Stops the server (SIGKILL: an outage, not a shutdown). */
  stop(): Promise<void>
  /** Starts it again on the same port (and socket), empty: no persistence. */
  start(): Promise<void>
  /** Stops it and removes its folder: call once at the end. */
  dispose(): Promise<void>
}

/** A redis-server of this test's own on a free loopback port, without persistence. */
export async function startOwnRedis(opts: { unixSocket?: boolean; replicaOf?: number } = {}): Promise<OwnRedis> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-redis-'))
  const socket = opts.unixSocket ? join(dir, 'redis.sock') : undefined
  let running: ReturnType<typeof spawnLogged> | undefined
  const start = async () => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(socket ? ['--unixsocket', socket, '--unixsocketperm', '700'] : []), ...(opts.replicaOf ? ['--replicaof', '127.0.0.1', String(opts.replicaOf)] : [])]
    const r = spawnLogged('redis-server', args)
    running = r
    await waitFor('redis-server', () => answers({ host: '127.0.0.1', port }, async (c) => (await c.ping()) === 'PONG'), r.child, r.output)
  }
  const stop = async () => {
    if (running && running.child.exitCode === null) {
      running.child.kill('SIGKILL')
      await running.exited
    }
  }
  await start()
  return {
    port,
    ...(socket ? { socket } : {}),
    start,
    stop,
    async dispose() {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface OwnSentinel {
  port: number
  masterName: string
  stop(): Promise<void>
}

/** A redis-sentinel of this test's own monitoring 127.0.0.1:`masterPort` under `masterName`. */
export async function startOwnSentinel(masterPort: number, masterName = 'latchkey-test'): Promise<OwnSentinel> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-sentinel-'))
  // The sentinel rewrites its configuration file as it learns: it must be writable.
  const conf = join(dir, 'sentinel.conf')
  writeFileSync(conf, [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 1`, `sentinel down-after-milliseconds ${masterName} 5000`, ''].join('\n'))
  const r = spawnLogged('redis-sentinel', [conf])
  await waitFor(
    'redis-sentinel',
    () => answers({ host: '127.0.0.1', port }, async (c) => Array.isArray(await c.call('SENTINEL', 'get-master-addr-by-name', masterName))),
    r.child,
    r.output,
  )
  return {
    port,
    masterName,
    async stop() {
      if (r.child.exitCode === null) {
        r.child.kill('SIGKILL')
        await r.exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

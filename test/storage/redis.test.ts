/**
 * The Redis session store (`session.redis`) against real servers: the shared Redis on loopback (a key
 * prefix per run, deleted afterwards), and servers of the test's own for outages, a unix socket and
 * a real redis-sentinel.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { sha256Hex } from '../../src/common/hashing.js'
import { openRedisSessionStore, redisClientOptions, type ConnectedSessionStore, type RedisSessionStoreOptions } from '../../src/storage/redis/sessions.js'
import { StorageError, StorageUnavailableError } from '../../src/storage/storage.js'
import { redisSessionOptions } from '../../src/storage/index.js'
import { loadConfig } from '../../src/config/load.js'
import type { SessionConfig } from '../../src/config/schema.js'
import { runSessionStoreContract, session } from '../session-store-contract.js'
import { deleteKeysUnder, freePort, keysUnder, redisProgramsAvailable, SHARED_REDIS, sharedClient, sharedRedisAvailable, startOwnRedis, startOwnSentinel, uniquePrefix, type OwnRedis } from '../support/redis.js'

const NOW = 1_700_000_000
const SECRET = 'a-session-secret-for-the-redis-tests-only'
const available = await sharedRedisAvailable()
const hasServer = redisProgramsAvailable('redis-server')
const hasSentinel = hasServer && redisProgramsAvailable('redis-sentinel')
const redisDescribe = available ? describe : describe.skip

function options(overrides: Partial<RedisSessionStoreOptions> = {}): RedisSessionStoreOptions {
  return { ...SHARED_REDIS, databaseIndex: 0, timeoutMs: 2000, maxRetries: 0, keyPrefix: uniquePrefix(), secret: SECRET, ...overrides }
}

const admin = available ? sharedClient() : undefined
afterAll(() => admin?.disconnect())

const stores: ConnectedSessionStore[] = []
const prefixes: string[] = []
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close()
  for (const p of prefixes.splice(0)) await deleteKeysUnder(admin!, p)
})

async function openShared(overrides: Partial<RedisSessionStoreOptions> = {}): Promise<{ store: ConnectedSessionStore; prefix: string }> {
  const o = options(overrides)
  prefixes.push(o.keyPrefix)
  const store = await openRedisSessionStore(o)
  stores.push(store)
  return { store, prefix: o.keyPrefix }
}

if (available) {
  runSessionStoreContract('redis', async () => {
    const o = options()
    const connect = async () => {
      const store = await openRedisSessionStore(o)
      return { store, close: () => store.close() }
    }
    const first = await connect()
    return {
      ...first,
      another: connect,
      async close() {
        await first.close()
        await deleteKeysUnder(admin!, o.keyPrefix)
      },
    }
  })
} else {
  test.skip('session-store contract: redis (no Redis on 127.0.0.1:6379)', () => {})
}

redisDescribe('redis session store', () => {
  test('the key is the prefix and the SHA-256 of the id; neither the id nor the data appear in clear', async () => {
    const { store, prefix } = await openShared()
    const id = 'AbCdEfGhIjKlMnOpQrStUvWxYz012345'
    await store.saveSession(id, session({ username: 'alice-in-clear' }), NOW + 600, NOW)
    const keys = await keysUnder(admin!, prefix)
    expect(keys).toEqual([`${prefix}session:${sha256Hex(id)}`])
    const raw = await admin!.getBuffer(keys[0]!)
    expect(raw).not.toBeNull()
    for (const clear of [id, 'alice-in-clear', 'alice@example.com']) expect(raw!.includes(Buffer.from(clear))).toBe(false)
  })

  test('the TTL follows expiresAt: set on save, replaced on the next save', async () => {
    const { store, prefix } = await openShared()
    await store.saveSession('sid', session(), NOW + 360, NOW)
    const [key] = await keysUnder(admin!, prefix)
    expect(await admin!.ttl(key!)).toBeGreaterThan(350)
    expect(await admin!.ttl(key!)).toBeLessThanOrEqual(360)
    await store.saveSession('sid', session({ rememberMe: true }), NOW + 2_592_000, NOW)
    expect(await admin!.ttl(key!)).toBeGreaterThan(2_591_990)
  })

  test('Redis removes the key by itself once its TTL has run out', async () => {
    const { store, prefix } = await openShared()
    const now = Math.floor(Date.now() / 1000)
    await store.saveSession('short', session(), now + 1, now)
    expect(await keysUnder(admin!, prefix)).toHaveLength(1)
    const deadline = Date.now() + 10_000
    while ((await keysUnder(admin!, prefix)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    expect(await keysUnder(admin!, prefix)).toEqual([])
  })

  test('a session sealed under another session.secret (or altered) is not found', async () => {
    const { store, prefix } = await openShared()
    await store.saveSession('sid', session(), NOW + 600, NOW)
    const other = await openRedisSessionStore(options({ keyPrefix: prefix, secret: 'another-secret-after-a-rotation' }))
    stores.push(other)
    expect(await other.findSession('sid', NOW)).toBeUndefined()
    // A value moved under another session's key does not open there either (bound to the key).
    const [key] = await keysUnder(admin!, prefix)
    await admin!.copy(key!, `${prefix}session:${sha256Hex('stolen')}`)
    expect(await store.findSession('stolen', NOW)).toBeUndefined()
    expect(await store.findSession('sid', NOW)).toBeDefined()
  })

  test('database_index selects the database', async () => {
    const { store, prefix } = await openShared({ databaseIndex: 3 })
    await store.saveSession('sid', session(), NOW + 600, NOW)
    expect(await keysUnder(admin!, prefix)).toEqual([])
    await admin!.select(3)
    try {
      expect(await keysUnder(admin!, prefix)).toHaveLength(1)
      await deleteKeysUnder(admin!, prefix)
    } finally {
      await admin!.select(0)
    }
  })

  test('ping answers true while connected', async () => {
    const { store } = await openShared()
    expect(await store.ping()).toBe(true)
  })
})

describe.skipIf(!hasServer)('redis session store: connection behaviour', () => {
  let own: OwnRedis | undefined
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close()
    await own?.dispose()
    own = undefined
  })

  test('nothing listening: opening fails within the timeout with StorageUnavailableError naming the server', async () => {
    const port = await freePort()
    const err = await openRedisSessionStore(options({ port, timeoutMs: 500 })).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(StorageUnavailableError)
    expect(err).toBeInstanceOf(StorageError)
    expect(err).toMatchObject({ code: 'UNAVAILABLE', dependency: 'redis', message: expect.stringContaining(`cannot connect to 127.0.0.1:${port}`) })
  })

  test('Redis goes away: operations fail at once with StorageUnavailableError, one debug line (the server\'s monitor writes the warning); it comes back by itself', async () => {
    own = await startOwnRedis()
    const lines: Array<[string, unknown, string | undefined]> = []
    const logger = {
      info: (o: object | string, m?: string) => lines.push(['info', o, m]),
      warn: (o: object | string, m?: string) => lines.push(['warn', o, m]),
      debug: (o: object | string, m?: string) => lines.push(['debug', o, m]),
    }
    const store = await openRedisSessionStore(options({ host: '127.0.0.1', port: own.port, timeoutMs: 1000, logger }))
    stores.push(store)
    await store.saveSession('sid', session(), NOW + 600, NOW)
    expect(await store.findSession('sid', NOW)).toBeDefined()

    await own.stop()
    const failures = await Promise.all([store.findSession('sid', NOW), store.saveSession('sid', session(), NOW + 600, NOW), store.destroySession('sid')].map((p) => p.then(() => 'answered', (e: unknown) => e)))
    for (const f of failures) expect(f).toBeInstanceOf(StorageUnavailableError)
    expect(await store.ping()).toBe(false)
    expect(lines.filter(([level]) => level === 'debug')).toEqual([['debug', expect.objectContaining({ dependency: 'redis', server: `127.0.0.1:${own.port}` }), 'session store (Redis) is unavailable']])

    await own.start()
    const deadline = Date.now() + 15_000
    while (!(await store.ping()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    expect(await store.ping()).toBe(true)
    // No persistence here: the session is gone, but the store works again without a restart.
    await store.saveSession('sid', session(), NOW + 600, NOW)
    expect(await store.findSession('sid', NOW)).toBeDefined()
    expect(lines.filter(([level]) => level !== 'debug')).toEqual([])
    expect(lines.filter(([level]) => level === 'debug')).toEqual([
      ['debug', expect.objectContaining({ dependency: 'redis' }), 'session store (Redis) is unavailable'],
      ['debug', expect.objectContaining({ dependency: 'redis' }), 'session store (Redis) is available again'],
    ])
  })

  test('a unix socket: host is its path and port 0', async () => {
    own = await startOwnRedis({ unixSocket: true })
    const store = await openRedisSessionStore(options({ host: own.socket!, port: 0 }))
    stores.push(store)
    await store.saveSession('sid', session(), NOW + 600, NOW)
    expect(await store.findSession('sid', NOW)).toEqual(session({ csrfToken: expect.any(String) }))
  })
})

describe.skipIf(!hasSentinel)('redis session store: Sentinel (high_availability)', () => {
  let own: OwnRedis | undefined
  let replica: OwnRedis | undefined
  let sentinel: Awaited<ReturnType<typeof startOwnSentinel>> | undefined
  beforeAll(async () => {
    own = await startOwnRedis()
    // Attached before the sentinel starts, so its first look at the master lists the replica.
    replica = await startOwnRedis({ replicaOf: own.port })
    sentinel = await startOwnSentinel(own.port)
  })
  afterAll(async () => {
    for (const s of stores.splice(0)) await s.close()
    await sentinel?.stop()
    await replica?.dispose()
    await own?.dispose()
  })

  test('the store asks the sentinel for the master and keeps sessions there', async () => {
    const store = await openRedisSessionStore(options({ host: '', port: 0, sentinel: { name: sentinel!.masterName, nodes: [{ host: '127.0.0.1', port: sentinel!.port }] } }))
    stores.push(store)
    await store.saveSession('sid', session(), NOW + 600, NOW)
    expect(await store.findSession('sid', NOW)).toBeDefined()
    expect(await store.ping()).toBe(true)
    // The key is on the master the sentinel named, under its hashed name.
    const { Redis } = await import('ioredis')
    const master = new Redis({ host: '127.0.0.1', port: own!.port })
    try {
      expect((await master.keys('*session:*')).length).toBe(1)
    } finally {
      master.disconnect()
    }
  })

  test('a fail-over: the store follows the sentinel to the promoted replica, sessions included', async () => {
    const { Redis } = await import('ioredis')
    const watcher = new Redis({ host: '127.0.0.1', port: sentinel!.port })
    const oldMaster = new Redis({ host: '127.0.0.1', port: own!.port })
    try {
      const until = async (what: string, check: () => Promise<boolean>) => {
        const deadline = Date.now() + 30_000
        while (!(await check().catch(() => false))) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
          await new Promise((r) => setTimeout(r, 200))
        }
      }
      const replicaSeen = async () => ((await watcher.call('SENTINEL', 'replicas', sentinel!.masterName)) as unknown[]).length > 0
      await until('the sentinel to see the replica', replicaSeen)
      await until('the replica to be in sync', async () => (await oldMaster.info('replication')).includes('state=online'))
      const o = options({ host: '127.0.0.1', port: sentinel!.port, sentinel: { name: sentinel!.masterName, nodes: [] } })
      const store = await openRedisSessionStore(o)
      stores.push(store)
      const data = session()
      await store.saveSession('before-failover', data, NOW + 600, NOW)
      expect(await oldMaster.wait(1, 5000)).toBe(1)

      await watcher.call('SENTINEL', 'failover', sentinel!.masterName)
      const masterPort = async () => Number(((await watcher.call('SENTINEL', 'get-master-addr-by-name', sentinel!.masterName)) as string[])[1])
      await until('the sentinel to promote the replica', async () => (await masterPort()) === replica!.port)
      // The store now writes to the promoted replica (the old master refuses writes once demoted).
      await until('a write through the store to succeed on the new master', async () => {
        await store.saveSession('after-failover', data, NOW + 600, NOW)
        const promoted = new Redis({ host: '127.0.0.1', port: replica!.port })
        try {
          return (await promoted.keys(`${o.keyPrefix}*`)).length === 2
        } finally {
          promoted.disconnect()
        }
      })
      expect(await store.findSession('before-failover', NOW)).toEqual(data)
      expect(await store.findSession('after-failover', NOW)).toEqual(data)
    } finally {
      watcher.disconnect()
      oldMaster.disconnect()
    }
  })

  test('a master name the sentinels do not know: opening fails with StorageUnavailableError', async () => {
    const err = await openRedisSessionStore(options({ host: '127.0.0.1', port: sentinel!.port, timeoutMs: 1000, sentinel: { name: 'no-such-master', nodes: [] } })).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(StorageUnavailableError)
    expect((err as Error).message).toContain("sentinel master 'no-such-master'")
  })
})

describe('redis session store: options', () => {
  test('from the configuration: host and nodes are all sentinels; tls reaches both the master and the sentinels', () => {
    const { config } = loadConfig({ files: ['fixtures/config/kasm-authelia.yml'], env: {} })
    const session: SessionConfig = {
      ...config.session,
      redis: {
        host: 's1.example.com',
        port: 26379,
        password: 'redis-pw',
        databaseIndex: 2,
        timeoutSeconds: 3,
        maxRetries: 0,
        maximumActiveConnections: 8,
        minimumIdleConnections: 0,
        keyPrefix: 'latchkey:',
        tls: { serverName: 'redis.example.com', skipVerify: false, minimumVersion: 'TLS1.2', maximumVersion: 'TLS1.3' },
        highAvailability: { sentinelName: 'mymaster', sentinelUsername: 'watcher', sentinelPassword: 'sentinel-pw', nodes: [{ host: 's2.example.com', port: 26380 }], routeByLatency: false, routeRandomly: false },
      },
    }
    const tls = { servername: 'redis.example.com', rejectUnauthorized: true, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' }
    expect(redisClientOptions(redisSessionOptions(session)!)).toMatchObject({
      sentinels: [
        { host: 's1.example.com', port: 26379 },
        { host: 's2.example.com', port: 26380 },
      ],
      name: 'mymaster',
      role: 'master',
      password: 'redis-pw',
      db: 2,
      connectTimeout: 3000,
      commandTimeout: 3000,
      sentinelUsername: 'watcher',
      sentinelPassword: 'sentinel-pw',
      enableTLSForSentinelMode: true,
      tls,
      sentinelTLS: tls,
      enableOfflineQueue: false,
    })
    // Without a server_name, an address or a sentinel list names no certificate: none is asked for.
    const plain = redisClientOptions(redisSessionOptions({ ...session, redis: { ...session.redis!, host: '10.0.0.5', port: 6379, highAvailability: undefined, tls: { skipVerify: false, minimumVersion: 'TLS1.2' } } })!)
    expect(plain).toMatchObject({ host: '10.0.0.5', port: 6379, tls: { rejectUnauthorized: true, minVersion: 'TLSv1.2' } })
    expect(plain.tls).not.toHaveProperty('servername')
  })
})

/**
 * Sessions in Redis (`session.redis`), so several Latchkey instances share them. One key per
 * session: `<prefix>session:<SHA-256 of the id>` (the id itself, the cookie value, is never a key
 * nor a value), holding the data sealed with `session.secret` (AES-256-GCM, bound to the key name),
 * with a TTL that follows the record's `expiresAt`: Redis drops expired and idle sessions by itself.
 */
import type { ConnectionOptions } from 'node:tls'
import { Redis, type RedisOptions } from 'ioredis'
import { sha256Hex } from '../../common/hashing.js'
import { createSecretBox, SecretBoxError } from '../../common/secret-box.js'
import type { ConnectedSessionStore, SessionData } from '../storage.js'
import { StorageUnavailableError } from '../storage.js'
import type { StorageLogger } from '../common/migration-files.js'

export type { ConnectedSessionStore }

export interface RedisSessionStoreOptions {
  /** Host, or with `port: 0` the path of a unix socket; with `sentinel`, a sentinel (may be empty). */
  host: string
  port: number
  username?: string
  password?: string
  databaseIndex: number
  /** Bounds connecting and every command. */
  timeoutMs: number
  /** Reconnections a command interrupted by a broken connection waits for before failing. */
  maxRetries: number
  /** Every key starts with it; tests use one per run. */
  keyPrefix: string
  /** `session.secret`: the values are sealed with it. */
  secret: string
  /** TLS towards Redis and the sentinels (Node's options: storage/index.ts tlsOptions). */
  tls?: ConnectionOptions
  sentinel?: {
    name: string
    username?: string
    password?: string
    nodes: Array<{ host: string; port: number }>
  }
  /** One line when the connection is lost (with the reason) and one when it is back. */
  logger?: StorageLogger
}

/** Reconnection delays grow by this much per attempt, up to RECONNECT_MAX_MS: a returning server is found within seconds. */
const RECONNECT_STEP_MS = 100
const RECONNECT_MAX_MS = 2000

/** The ioredis options for these settings (exported for tests of the mapping). */
export function redisClientOptions(o: RedisSessionStoreOptions): RedisOptions {
  const common: RedisOptions = {
    ...(o.username ? { username: o.username } : {}),
    ...(o.password ? { password: o.password } : {}),
    db: o.databaseIndex,
    connectTimeout: o.timeoutMs,
    commandTimeout: o.timeoutMs,
    // Fail fast while disconnected (StorageUnavailableError: the request is refused at once) instead
    // of queueing commands until the server returns; reconnecting goes on in the background, forever.
    enableOfflineQueue: false,
    maxRetriesPerRequest: o.maxRetries,
    retryStrategy: (times) => Math.min(times * RECONNECT_STEP_MS, RECONNECT_MAX_MS),
    lazyConnect: true,
    // After a fail-over the old master turns replica and refuses writes: find the new one.
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
    ...(o.tls ? { tls: o.tls } : {}),
  }
  if (o.sentinel) {
    const sentinels = [...(o.host ? [{ host: o.host, port: o.port }] : []), ...o.sentinel.nodes]
    return {
      ...common,
      sentinels,
      name: o.sentinel.name,
      role: 'master',
      ...(o.sentinel.username ? { sentinelUsername: o.sentinel.username } : {}),
      ...(o.sentinel.password ? { sentinelPassword: o.sentinel.password } : {}),
      sentinelRetryStrategy: (times) => Math.min(times * RECONNECT_STEP_MS, RECONNECT_MAX_MS),
      sentinelCommandTimeout: o.timeoutMs,
      // Reconnect to the new master as soon as a sentinel announces a fail-over (+switch-master).
      failoverDetector: true,
      ...(o.tls ? { enableTLSForSentinelMode: true, sentinelTLS: o.tls } : {}),
    }
  }
  if (o.port === 0) return { ...common, path: o.host }
  return { ...common, host: o.host, port: o.port }
}

/** What an operator may read in a log line: the driver's message, no data. */
function reasonOf(err: unknown): string {
  return ((err as { message?: string } | undefined)?.message ?? String(err)).slice(0, 300)
}

/** Connects (within the timeout) and returns the store; rejects with StorageUnavailableError. */
export async function openRedisSessionStore(o: RedisSessionStoreOptions): Promise<ConnectedSessionStore> {
  const client = new Redis(redisClientOptions(o))
  const box = createSecretBox(o.secret)
  const where = o.sentinel ? `sentinel master '${o.sentinel.name}'` : o.port === 0 ? o.host : `${o.host}:${o.port}`
  // Debug lines only: the server's availability monitor writes the one line per outage an admin
  // acts on (server/availability.ts); ioredis would report every failed reconnection otherwise.
  let up = false
  let closing = false
  let opened = false
  const markDown = (reason: string) => {
    if (up && !closing) o.logger?.debug?.({ dependency: 'redis', server: where, reason }, 'session store (Redis) is unavailable')
    up = false
  }
  const markUp = () => {
    if (!up && opened && !closing) o.logger?.debug?.({ dependency: 'redis', server: where }, 'session store (Redis) is available again')
    up = true
  }
  client.on('error', (err: unknown) => markDown(reasonOf(err)))
  client.on('close', () => markDown('connection closed'))
  client.on('ready', markUp)
  let lastError = 'no answer'
  const noteError = (err: unknown) => {
    lastError = reasonOf(err)
  }
  client.on('error', noteError)
  try {
    // A sentinel that does not know the master makes ioredis retry forever: bound it here too.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connection within ${o.timeoutMs} ms (${lastError})`)), o.timeoutMs + 100)
      client.connect().then(
        () => {
          clearTimeout(timer)
          resolve()
        },
        (err: unknown) => {
          clearTimeout(timer)
          reject(err)
        },
      )
    })
  } catch (err) {
    closing = true
    client.disconnect()
    throw new StorageUnavailableError('redis', `cannot connect to ${where}: ${reasonOf(err)}`)
  }
  client.off('error', noteError)
  opened = true
  up = client.status === 'ready'

  const keyOf = (id: string) => `${o.keyPrefix}session:${sha256Hex(id)}`
  const run = async <T>(command: () => Promise<T>): Promise<T> => {
    try {
      const result = await command()
      markUp()
      return result
    } catch (err) {
      markDown(reasonOf(err))
      throw new StorageUnavailableError('redis', reasonOf(err))
    }
  }

  return {
    async findSession(id, now) {
      const key = keyOf(id)
      const sealed = await run(() => client.getBuffer(key))
      if (sealed === null) return undefined
      let record: { data: SessionData; expiresAt: number }
      try {
        record = JSON.parse(box.open(sealed, key).toString('utf8')) as { data: SessionData; expiresAt: number }
      } catch (err) {
        // Sealed under another session.secret (rotated), or altered: not a session of ours.
        if (err instanceof SecretBoxError || err instanceof SyntaxError) return undefined
        throw err
      }
      // Redis counts the TTL on its own clock; the caller's `now` is what decides.
      return now < record.expiresAt ? record.data : undefined
    },
    async saveSession(id, data, expiresAt, now) {
      const key = keyOf(id)
      const ttl = expiresAt - now
      if (ttl <= 0) {
        await run(() => client.del(key))
        return
      }
      const sealed = box.seal(Buffer.from(JSON.stringify({ data, expiresAt }), 'utf8'), key)
      await run(() => client.set(key, sealed, 'EX', ttl))
    },
    async updateSession(id, data, expiresAt, now) {
      // Only a session that still exists (SET … XX: never one another instance destroyed, security.md
      // H1) and that is unexpired by the caller's clock (read first; an id is never reused, so
      // nothing between the read and the SET can make a gone session come back).
      if ((await (this as ConnectedSessionStore).findSession(id, now)) === undefined) return false
      const key = keyOf(id)
      const ttl = expiresAt - now
      if (ttl <= 0) {
        await run(() => client.del(key))
        return false
      }
      const sealed = box.seal(Buffer.from(JSON.stringify({ data, expiresAt }), 'utf8'), key)
      return (await run(() => client.set(key, sealed, 'EX', ttl, 'XX'))) === 'OK'
    },
    async destroySession(id) {
      await run(() => client.del(keyOf(id)))
    },
    async destroyUserSessions(username) {
      // No per-user index is kept (the key names reveal nothing): scan this deployment's sessions.
      let removed = 0
      let cursor = '0'
      do {
        const [next, keys] = await run(() => client.scan(cursor, 'MATCH', `${escapeGlob(o.keyPrefix)}session:*`, 'COUNT', 500))
        cursor = next
        for (const key of keys) {
          const sealed = await run(() => client.getBuffer(key))
          if (sealed === null) continue
          try {
            const record = JSON.parse(box.open(sealed, key).toString('utf8')) as { data: SessionData }
            if (record.data.username === username) removed += await run(() => client.del(key))
          } catch (err) {
            if (!(err instanceof SecretBoxError || err instanceof SyntaxError)) throw err
          }
        }
      } while (cursor !== '0')
      return removed
    },
    async deleteExpiredSessions() {
      return 0
    },
    async ping() {
      try {
        return (await run(() => client.ping())) === 'PONG'
      } catch {
        return false
      }
    },
    async close() {
      closing = true
      try {
        await client.quit()
      } catch {
        client.disconnect()
      }
    },
  }
}

/** A key prefix as a literal in a SCAN pattern (`*`, `?`, `[`, `]` and `\\` escaped). */
function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
}

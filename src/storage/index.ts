import { isIP } from 'node:net'
import type { ConnectionOptions, SecureVersion } from 'node:tls'
import type { SessionConfig, StorageConfig, TlsClientConfig } from '../config/schema.js'
import type { StorageLogger } from './common/migration-files.js'
import type { MysqlStorageOptions } from './mysql/index.js'
import { openMysqlStorage } from './mysql/index.js'
import type { PostgresStorageOptions } from './postgres/index.js'
import { openPostgresStorage } from './postgres/index.js'
import type { Storage } from './storage.js'
import { openSqliteStorage } from './sqlite/index.js'
import { openRedisSessionStore, type ConnectedSessionStore, type RedisSessionStoreOptions } from './redis/sessions.js'

export type * from './storage.js'
export { StorageError, StorageUnavailableError } from './storage.js'
export { openRedisSessionStore, type ConnectedSessionStore, type RedisSessionStoreOptions } from './redis/sessions.js'
export { openSqliteStorage } from './sqlite/index.js'
export { openPostgresStorage } from './postgres/index.js'
export { openMysqlStorage } from './mysql/index.js'
export type { SqliteStorageOptions } from './sqlite/index.js'
export type { PostgresStorageOptions } from './postgres/index.js'
export type { MysqlStorageOptions } from './mysql/index.js'
export type { StorageLogger } from './common/migration-files.js'

export interface OpenStorageOptions {
  /** Apply pending migrations at open (default true); the CLI passes false to list or roll back. */
  migrate?: boolean
}

/** Opens the configured backend: `local` (SQLite), `postgres` or `mysql`. */
export async function openStorage(config: StorageConfig, logger?: StorageLogger, opts: OpenStorageOptions = {}): Promise<Storage> {
  if (config.local) return openSqliteStorage({ path: config.local.path, encryptionKey: config.encryptionKey, logger, migrate: opts.migrate })
  if (config.postgres) return openPostgresStorage({ ...postgresOptions(config), logger, migrate: opts.migrate })
  if (config.mysql) return openMysqlStorage({ ...mysqlOptions(config), logger, migrate: opts.migrate })
  throw new Error('storage: no backend configured (storage.local, storage.postgres or storage.mysql)')
}

/** The plain options the MySQL/MariaDB backend takes, from `storage.mysql`. */
export function mysqlOptions(config: StorageConfig): Omit<MysqlStorageOptions, 'logger' | 'migrate'> {
  const m = config.mysql!
  const options: Omit<MysqlStorageOptions, 'logger' | 'migrate'> = {
    host: m.host,
    port: m.port,
    database: m.database,
    username: m.username,
    connectTimeoutSeconds: m.timeoutSeconds,
    encryptionKey: config.encryptionKey,
  }
  if (m.socketPath !== undefined) options.socketPath = m.socketPath
  if (m.password !== undefined) options.password = m.password
  if (m.tls) {
    // mysql2 checks the certificate against `host` (validation refuses another server_name).
    options.ssl = { rejectUnauthorized: !m.tls.skipVerify, verifyIdentity: !m.tls.skipVerify, minVersion: nodeVersion(m.tls.minimumVersion) }
    if (m.tls.maximumVersion) options.ssl.maxVersion = nodeVersion(m.tls.maximumVersion)
    if (m.tls.certificateChain) options.ssl.cert = m.tls.certificateChain
    if (m.tls.privateKey) options.ssl.key = m.tls.privateKey
  }
  return options
}

/** The plain options the PostgreSQL backend takes, from `storage.postgres`. */
export function postgresOptions(config: StorageConfig): PostgresStorageOptions {
  const p = config.postgres!
  const options: PostgresStorageOptions = {
    host: p.host,
    port: p.port,
    database: p.database,
    schema: p.schema,
    username: p.username,
    connectTimeoutSeconds: p.timeoutSeconds,
    encryptionKey: config.encryptionKey,
  }
  if (p.password !== undefined) options.password = p.password
  if (p.tls) options.ssl = tlsOptions(p.tls, p.host)
  return options
}

const nodeVersion = (v: string): SecureVersion => v.replace('TLS', 'TLSv') as SecureVersion

/**
 * Authelia's `tls` block as Node's TLS options; the server is verified against the system CAs, by
 * `server_name`, else by the host when it is a name (not an address, a socket or a sentinel list).
 */
export function tlsOptions(tls: TlsClientConfig, host: string): ConnectionOptions {
  const servername = tls.serverName ?? (host !== '' && isIP(host) === 0 && !host.startsWith('/') ? host : undefined)
  const out: ConnectionOptions = {
    ...(servername ? { servername } : {}),
    rejectUnauthorized: !tls.skipVerify,
    minVersion: nodeVersion(tls.minimumVersion),
  }
  if (tls.maximumVersion) out.maxVersion = nodeVersion(tls.maximumVersion)
  if (tls.certificateChain) out.cert = tls.certificateChain
  if (tls.privateKey) out.key = tls.privateKey
  return out
}

/**
 * The session store `session.redis` names, connected; undefined without it (sessions then stay in
 * the storage backend). Rejects with StorageUnavailableError when Redis does not answer in time.
 */
export async function openSessionStore(session: SessionConfig, logger?: StorageLogger): Promise<ConnectedSessionStore | undefined> {
  const options = redisSessionOptions(session, logger)
  return options ? openRedisSessionStore(options) : undefined
}

/** The plain options the Redis session store takes, from `session.redis` (undefined without it). */
export function redisSessionOptions(session: SessionConfig, logger?: StorageLogger): RedisSessionStoreOptions | undefined {
  const r = session.redis
  if (!r) return undefined
  return {
    host: r.host,
    port: r.port,
    ...(r.username ? { username: r.username } : {}),
    ...(r.password ? { password: r.password } : {}),
    databaseIndex: r.databaseIndex,
    timeoutMs: r.timeoutSeconds * 1000,
    maxRetries: r.maxRetries,
    keyPrefix: r.keyPrefix,
    // Validation requires session.secret with redis.
    secret: session.secret ?? '',
    ...(r.tls ? { tls: tlsOptions(r.tls, r.highAvailability ? '' : r.host) } : {}),
    ...(r.highAvailability
      ? {
          sentinel: {
            name: r.highAvailability.sentinelName,
            nodes: r.highAvailability.nodes,
            ...(r.highAvailability.sentinelUsername ? { username: r.highAvailability.sentinelUsername } : {}),
            ...(r.highAvailability.sentinelPassword ? { password: r.highAvailability.sentinelPassword } : {}),
          },
        }
      : {}),
    ...(logger ? { logger } : {}),
  }
}

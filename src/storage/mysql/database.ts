import { createHash } from 'node:crypto'
import mysql from 'mysql2/promise'
import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket, SslOptions } from 'mysql2/promise'
import { StorageError } from '../storage.js'

export type MysqlPool = Pool
export type MysqlConnection = PoolConnection
/** A pool or a connection inside a transaction: both run queries. */
export type MysqlQueryable = Pick<Pool, 'query'>

export interface MysqlConnectionOptions {
  /** A host name or address; ignored when `socketPath` is set. */
  host: string
  port: number
  /** The server's unix socket file (4.38 `address: unix:///run/mysqld/mysqld.sock`). */
  socketPath?: string
  database: string
  username: string
  password?: string
  connectTimeoutSeconds: number
  /** TLS towards the server (mysql2 checks the certificate against `host`); absent: plain TCP or the socket. */
  ssl?: SslOptions
  /** Pool size (default 10). */
  maxConnections?: number
}

export const describeServer = (o: MysqlConnectionOptions): string =>
  `MySQL at ${o.socketPath ? `unix socket ${o.socketPath}` : `${o.host}:${o.port}`} (database ${o.database}, user ${o.username})`

/**
 * Every connection runs READ COMMITTED (as PostgreSQL does by default): locking reads and guarded
 * UPDATEs see the latest committed row after waiting for its lock, and no gap locks are taken, so
 * the single-use guards below reason the same way on both engines and parallel inserts do not
 * deadlock on gaps as they do under InnoDB's REPEATABLE READ. STRICT_ALL_TABLES: a value that does
 * not fit is an error, never silently truncated.
 */
const SESSION_SETUP = ['SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED', "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"]

export function connectionConfig(o: MysqlConnectionOptions, extra: { multipleStatements?: boolean } = {}): mysql.ConnectionOptions {
  return {
    ...(o.socketPath ? { socketPath: o.socketPath } : { host: o.host, port: o.port }),
    database: o.database,
    user: o.username,
    password: o.password,
    ssl: o.ssl,
    connectTimeout: o.connectTimeoutSeconds * 1000,
    charset: 'UTF8MB4_BIN',
    // FOUND_ROWS off: affectedRows counts rows changed, which the guards below rely on.
    // LOCAL_FILES off: a server may never ask this process for a local file (LOAD DATA LOCAL).
    flags: ['-FOUND_ROWS', '-LOCAL_FILES'],
    // BIGINT (Unix seconds, TOTP steps, COUNT(*)) as a JS number: every value stored is far below 2^53.
    supportBigNumbers: false,
    multipleStatements: extra.multipleStatements ?? false,
    connectAttributes: { program_name: 'latchkey' },
  }
}

export function createPool(o: MysqlConnectionOptions): MysqlPool {
  const pool = mysql.createPool({ ...connectionConfig(o), connectionLimit: o.maxConnections ?? 10, enableKeepAlive: true })
  // Queued on the new connection before the query it was opened for.
  // The event hands over mysql2's callback-style connection, whatever the promise typings say. A
  // connection that could not be set up is destroyed: its first query then fails instead of running
  // at the server's default isolation.
  pool.on('connection', (connection) => {
    const core = connection as unknown as { query(sql: string, callback: (err: Error | null) => void): void; destroy(): void }
    for (const sql of SESSION_SETUP) core.query(sql, (err) => err && core.destroy())
  })
  return pool
}

/** One unpooled connection (the migrator's: it alone may run a file of several statements). */
export async function connect(o: MysqlConnectionOptions, extra: { multipleStatements?: boolean } = {}): Promise<mysql.Connection> {
  const connection = await mysql.createConnection(connectionConfig(o, extra))
  for (const sql of SESSION_SETUP) await connection.query(sql)
  return connection
}

export async function queryRows<R>(db: MysqlQueryable, sql: string, params: unknown[] = []): Promise<R[]> {
  const [rows] = await db.query<RowDataPacket[]>(sql, params)
  return rows as unknown as R[]
}

/** Rows as arrays, in column order (the token hot path, like SQLite's raw rows). */
export async function queryArrays<R extends unknown[]>(db: MysqlQueryable, sql: string, params: unknown[] = []): Promise<R[]> {
  const [rows] = await db.query<RowDataPacket[]>({ sql, rowsAsArray: true }, params)
  return rows as unknown as R[]
}

/** Resolves the number of rows changed (FOUND_ROWS is off). */
export async function execute(db: MysqlQueryable, sql: string, params: unknown[] = []): Promise<number> {
  const [result] = await db.query<ResultSetHeader>(sql, params)
  return result.affectedRows
}

const ER_LOCK_DEADLOCK = 1213

/**
 * Runs `fn` in one transaction on one pooled connection, after taking the named locks (sorted, so
 * two callers never wait on each other crosswise) and releasing them only after COMMIT, so the next
 * holder reads what this one committed. A deadlock aborts one side whole; running it again is safe
 * because nothing of it was committed. A connection whose ROLLBACK or unlock failed is destroyed,
 * which also ends its locks on the server.
 */
export async function inTransaction<T>(pool: MysqlPool, fn: (tx: MysqlConnection) => Promise<T>, locks: string[] = []): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await once(pool, fn, locks)
    } catch (err) {
      if ((err as { errno?: number }).errno !== ER_LOCK_DEADLOCK || attempt === 3) throw err
    }
  }
}

async function once<T>(pool: MysqlPool, fn: (tx: MysqlConnection) => Promise<T>, locks: string[]): Promise<T> {
  const connection = await pool.getConnection()
  let broken = false
  const names = [...new Set(locks)].sort().map(lockName)
  const held: string[] = []
  try {
    for (const name of names) {
      await getLock(connection, name)
      held.push(name)
    }
    await connection.query('START TRANSACTION')
    try {
      const result = await fn(connection)
      await connection.query('COMMIT')
      return result
    } catch (err) {
      await connection.query('ROLLBACK').catch(() => {
        broken = true
      })
      throw err
    }
  } finally {
    for (const name of held.reverse()) await connection.query('DO RELEASE_LOCK(?)', [name]).catch(() => (broken = true))
    if (broken) connection.destroy()
    else connection.release()
  }
}

/**
 * GET_LOCK names are server-wide (not per database) and at most 64 characters: the SHA-256 of the
 * database and the key keeps two Latchkey databases on one server apart.
 */
export const lockName = (key: string): string => createHash('sha256').update(key).digest('hex')

/** Waits (up to 60 s) for a named lock on this connection's session. */
export async function getLock(db: MysqlQueryable, name: string, timeoutSeconds = 60): Promise<void> {
  const [row] = await queryRows<{ locked: number | null }>(db, 'SELECT GET_LOCK(?, ?) AS locked', [name, timeoutSeconds])
  if (row?.locked !== 1) throw new StorageError('OPEN_FAILED', `storage: could not take the database lock within ${timeoutSeconds} s`)
}

const ER_BAD_DB_ERROR = 1049

export function connectionError(o: MysqlConnectionOptions, err: unknown): StorageError {
  if ((err as { errno?: number }).errno === ER_BAD_DB_ERROR) {
    return new StorageError(
      'OPEN_FAILED',
      `storage: cannot use ${describeServer(o)}: the database '${o.database}' does not exist (hint: CREATE DATABASE ${o.database} CHARACTER SET utf8mb4; and grant ${o.username} all privileges on it)`,
    )
  }
  return new StorageError('OPEN_FAILED', `storage: cannot use ${describeServer(o)}: ${(err as Error).message}`)
}

import { createHash } from 'node:crypto'
import type { ConnectionOptions } from 'node:tls'
import pg from 'pg'
import type { PoolClient, QueryResultRow } from 'pg'
import { StorageError } from '../storage.js'

export type PgPool = pg.Pool
export type PgClient = PoolClient
/** A pool or a client inside a transaction: both run queries. */
export type PgQueryable = Pick<pg.Pool, 'query'> | PoolClient

export interface PgConnectionOptions {
  /** A host name or address, or the absolute path of the folder holding the server's unix socket. */
  host: string
  port: number
  database: string
  /** Unquoted identifier (validated by the configuration): the search_path of every connection. */
  schema: string
  username: string
  password?: string
  connectTimeoutSeconds: number
  /** TLS towards the server; absent: plain TCP (or the unix socket). */
  ssl?: ConnectionOptions
  /** Pool size (default 10). */
  maxConnections?: number
}

// BIGINT (Unix seconds, TOTP steps, COUNT(*)) as a JS number, like better-sqlite3's INTEGER: every
// value stored is far below 2^53. Per pool, not the global pg.types, so nothing else is affected.
const INT8_OID = 20
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
}

/** Connections of the durable pool (createPool); the ephemeral one has `maxConnections`. */
export const DURABLE_CONNECTIONS = 4

export const describeServer = (o: PgConnectionOptions): string =>
  `PostgreSQL at ${o.host.startsWith('/') ? `unix socket ${o.host}` : `${o.host}:${o.port}`} (database ${o.database}, schema ${o.schema}, user ${o.username})`

/**
 * `ephemeral`: a pool for sign-in artifacts (sessions, authorization codes, tokens) whose commits
 * don't wait for the WAL flush (`synchronous_commit = off`). A crash of the database server or its
 * host can lose the last fraction of a second of them (people signing in at that moment sign in
 * again), never a device, consent, subject or ban, which go through the durable pool; SQLite's
 * default (WAL, `synchronous = NORMAL`) makes the same trade on power loss. An authorization
 * commits twice (the code, then its redemption with the tokens), and a flush takes milliseconds on
 * ordinary disks. Its single statements are pipelined (PipelinedStatements).
 */
export function createPool(o: PgConnectionOptions, onIdleError: (err: Error) => void, kind: 'durable' | 'ephemeral' = 'durable'): PgPool {
  const config: pg.PoolConfig = {
    host: o.host,
    port: o.port,
    database: o.database,
    user: o.username,
    password: o.password,
    ssl: o.ssl ?? false,
    connectionTimeoutMillis: o.connectTimeoutSeconds * 1000,
    // search_path as a start-up parameter: set before the first query of every pooled connection.
    options: `-c search_path=${o.schema}` + (kind === 'ephemeral' ? ' -c synchronous_commit=off' : ''),
    // Devices, consents and subjects are written rarely: a few connections serve them.
    max: kind === 'ephemeral' ? (o.maxConnections ?? 10) : DURABLE_CONNECTIONS,
    // Tells the two pools apart in pg_stat_activity.
    application_name: kind === 'ephemeral' ? 'latchkey-ephemeral' : 'latchkey',
    types,
  }
  const pool = new pg.Pool(config)
  // An idle connection the server dropped (restart, failover) must not crash the process: the pool
  // discards it and the next query opens a new one.
  pool.on('error', onIdleError)
  if (kind === 'ephemeral') {
    const lines = new pg.Pool({ ...config, max: PIPELINED_CONNECTIONS, pipeline: true } as pg.PoolConfig)
    lines.on('error', onIdleError)
    pipelines.set(pool, new PipelinedStatements(lines, onIdleError))
  }
  return pool
}

/** Connections each ephemeral pool keeps for pipelined single statements (see PipelinedStatements). */
export const PIPELINED_CONNECTIONS = 2

/**
 * Single statements on the ephemeral pool (outside a transaction: reading a session, saving a
 * code, redeeming one, reading a token) go out pipelined on a couple of long-lived connections
 * (node-postgres `pipeline: true`) instead of each checking a connection out of the pool: a
 * statement is written while earlier ones are still running, and each still ends with its own
 * Sync, so it commits (or fails) alone, exactly as it would on a connection of its own. What it
 * saves is the server process's wake-up per statement: on a busy instance the pipelined
 * connection's server process rarely sleeps, and on this 2-core machine that wake-up cost more
 * than the statement itself (npm run bench: fleet, one instance on PostgreSQL).
 *
 * The price is head-of-line waiting: a statement that waits for a row lock holds up the ones
 * behind it on its connection. Row locks here are held only by short transactions (revokeGrant,
 * a refresh rotation) that never wait on a pipelined statement themselves (they run on their own
 * pooled connection), so the wait is bounded by those. A connection that fails is dropped, every
 * statement on it fails like a statement on a dropped pooled connection, and the next one opens
 * a new connection.
 */
class PipelinedStatements {
  private readonly lines: Array<Promise<Line> | undefined> = Array.from({ length: PIPELINED_CONNECTIONS }, () => undefined)
  private next = 0

  constructor(
    private readonly pool: pg.Pool,
    private readonly onLost: (err: Error) => void,
  ) {}

  query(config: pg.QueryConfig): Promise<pg.QueryResult> {
    const i = this.next
    this.next = (i + 1) % this.lines.length
    return this.line(i).then((line) => line.query(config))
  }

  private line(i: number): Promise<Line> {
    const existing = this.lines[i]
    if (existing) return existing
    const opening: Promise<Line> = this.pool.connect().then((client) => {
      const line = new Line(client, (err) => {
        if (this.lines[i] === opening) this.lines[i] = undefined
        if (err) this.onLost(err)
      })
      return line
    })
    // A failed connect fails the statements waiting for it; the next statement tries again.
    opening.catch(() => {
      if (this.lines[i] === opening) this.lines[i] = undefined
    })
    this.lines[i] = opening
    return opening
  }

  async end(): Promise<void> {
    const open = await Promise.all(this.lines.map((l) => l?.catch(() => undefined)))
    this.lines.fill(undefined)
    for (const line of open) line?.close()
    await this.pool.end()
  }
}

/** One pipelined connection, given back (destroyed) exactly once: when it fails, ends, or at close. */
class Line {
  private done = false
  private readonly onError = (err: Error) => this.finish(err)
  private readonly onEnd = () => this.finish(undefined)

  constructor(
    readonly client: PoolClient,
    private readonly onDropped: (err: Error | undefined) => void,
  ) {
    client.on('error', this.onError)
    client.on('end', this.onEnd)
  }

  /**
   * Statements issued in one turn of the event loop leave in one write: the socket is corked at the
   * first and uncorked once the turn's I/O callbacks have run (setImmediate), so one system call and
   * one wake-up of the server process carry them all.
   */
  query(config: pg.QueryConfig): Promise<pg.QueryResult> {
    const stream = (this.client as unknown as { connection?: { stream?: { cork?: () => void; uncork?: () => void } } }).connection?.stream
    if (!this.corked && stream?.cork && stream.uncork) {
      this.corked = true
      stream.cork()
      setImmediate(() => {
        this.corked = false
        stream.uncork!()
      })
    }
    return this.client.query(config)
  }

  private corked = false

  close(): void {
    this.finish(undefined, false)
  }

  private finish(err: Error | undefined, dropped = true): void {
    if (this.done) return
    this.done = true
    // The listeners stay: a connection can emit 'error' after 'end' (a server shutting it down),
    // and an 'error' nobody listens to would end the process.
    if (dropped) this.onDropped(err)
    // Destroyed, never reused: whatever was written on it has failed or will fail.
    this.client.release(err ?? true)
  }
}

const pipelines = new WeakMap<pg.Pool, PipelinedStatements>()
/** Where a single statement on `db` runs: a pooled connection of its own, or the ephemeral pool's pipeline. */
const runner = (db: PgQueryable): PgQueryable => (pipelines.get(db as pg.Pool) as unknown as PgQueryable | undefined) ?? db

/** Ends a pool made by createPool, with its pipelined connections. */
export async function endPool(pool: PgPool): Promise<void> {
  await Promise.all([pipelines.get(pool)?.end(), pool.end()])
}

/**
 * Every statement runs as a named prepared statement: PostgreSQL parses and plans it once per
 * pooled connection instead of on each call, which is most of its CPU on the short queries of a
 * sign-in. The name is a digest of the text, so one text always has one name (node-postgres
 * refuses a name reused for another text), and every text here is a constant.
 */
const statementNames = new Map<string, string>()
function prepared(text: string, values: unknown[]) {
  let name = statementNames.get(text)
  if (name === undefined) {
    name = 'lk_' + createHash('sha256').update(text).digest('base64url').slice(0, 24)
    statementNames.set(text, name)
  }
  return { name, text, values }
}

export async function queryRows<R extends QueryResultRow>(db: PgQueryable, sql: string, params: unknown[] = []): Promise<R[]> {
  return (await runner(db).query<R>(prepared(sql, params))).rows
}

export async function queryArrays<R extends unknown[]>(db: PgQueryable, sql: string, params: unknown[] = []): Promise<R[]> {
  return (await runner(db).query<R>({ ...prepared(sql, params), rowMode: 'array' })).rows
}

export async function execute(db: PgQueryable, sql: string, params: unknown[] = []): Promise<number> {
  return (await runner(db).query(prepared(sql, params))).rowCount ?? 0
}

/**
 * Runs `fn` in one READ COMMITTED transaction on one pooled connection. Decisions that need a read
 * take row locks (`SELECT … FOR UPDATE`) or an advisory lock inside `fn`; a connection whose
 * ROLLBACK failed is discarded, not returned to the pool.
 */
export async function inTransaction<T>(pool: PgPool, fn: (client: PgClient) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await once(pool, fn)
    } catch (err) {
      // A deadlock between instances (housekeeping against a revocation, say) aborts one side whole;
      // running it again is safe because nothing of it was committed.
      if ((err as { code?: string }).code !== DEADLOCK_DETECTED || attempt === 3) throw err
    }
  }
}

const DEADLOCK_DETECTED = '40P01'

async function once<T>(pool: PgPool, fn: (client: PgClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    await client.query('BEGIN')
    const result = await fn(client)
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackErr: Error) => {
      broken = rollbackErr
    })
    throw err
  } finally {
    client.release(broken)
  }
}

/** Serialises transactions on one key (released at COMMIT/ROLLBACK); keys are namespaced strings. */
export async function lockKey(client: PgClient, key: string): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [key])
}

export function connectionError(o: PgConnectionOptions, err: unknown): StorageError {
  return new StorageError('OPEN_FAILED', `storage: cannot use ${describeServer(o)}: ${(err as Error).message}`)
}

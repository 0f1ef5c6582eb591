import Database from 'better-sqlite3'
import type { ConnectionOptions } from 'node:tls'
import mysql from 'mysql2/promise'
import pg from 'pg'

/**
 * A read-only view of an Authelia database: SQLite opened read-only, or one PostgreSQL / MySQL
 * connection. The import only reads through it, so a wrong key or a refused schema changes nothing.
 */
export interface AutheliaSource {
  /** For messages: "SQLite /var/lib/authelia/db.sqlite3", "PostgreSQL at host:port (database d, schema s)". */
  description: string
  query<R>(sql: string, params?: unknown[]): Promise<R[]>
  tableExists(name: string): Promise<boolean>
  /** The column names of `table`, lower case. */
  columns(table: string): Promise<string[]>
  close(): Promise<void>
}

export type AutheliaSourceSpec =
  | { kind: 'sqlite'; path: string }
  | { kind: 'postgres'; host: string; port: number; database: string; schema: string; username: string; password?: string; timeoutSeconds: number; ssl?: ConnectionOptions }
  | { kind: 'mysql'; host: string; port: number; socketPath?: string; database: string; username: string; password?: string; timeoutSeconds: number; ssl?: mysql.SslOptions }

export class AutheliaSourceError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'AutheliaSourceError'
  }
}

export async function openAutheliaSource(spec: AutheliaSourceSpec): Promise<AutheliaSource> {
  if (spec.kind === 'sqlite') return openSqlite(spec.path)
  if (spec.kind === 'postgres') return openPostgres(spec)
  return openMysql(spec)
}

function openSqlite(path: string): AutheliaSource {
  let db: Database.Database
  try {
    db = new Database(path, { readonly: true, fileMustExist: true })
    db.prepare('SELECT 1').get()
  } catch (err) {
    throw new AutheliaSourceError(`cannot open the Authelia SQLite database ${path}: ${(err as Error).message}`)
  }
  return {
    description: `SQLite ${path}`,
    async query<R>(sql: string, params: unknown[] = []) {
      return db.prepare(sql).all(...params) as R[]
    },
    async tableExists(name) {
      return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined
    },
    async columns(table) {
      return (db.prepare('SELECT name FROM pragma_table_info(?)').all(table) as Array<{ name: string }>).map((r) => r.name.toLowerCase())
    },
    async close() {
      db.close()
    },
  }
}

async function openPostgres(spec: Extract<AutheliaSourceSpec, { kind: 'postgres' }>): Promise<AutheliaSource> {
  const description = `PostgreSQL at ${spec.host.startsWith('/') ? spec.host : `${spec.host}:${spec.port}`} (database ${spec.database}, schema ${spec.schema}, user ${spec.username})`
  const client = new pg.Client({
    host: spec.host,
    port: spec.port,
    database: spec.database,
    user: spec.username,
    password: spec.password,
    ssl: spec.ssl ?? false,
    connectionTimeoutMillis: spec.timeoutSeconds * 1000,
    options: `-c search_path=${spec.schema} -c default_transaction_read_only=on`,
    application_name: 'latchkey-import',
  })
  try {
    await client.connect()
  } catch (err) {
    await client.end().catch(() => undefined)
    throw new AutheliaSourceError(`cannot connect to the Authelia database, ${description}: ${(err as Error).message}`)
  }
  return {
    description,
    async query<R>(sql: string, params: unknown[] = []) {
      return (await client.query(sql, params)).rows as R[]
    },
    async tableExists(name) {
      return (await client.query('SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2', [spec.schema, name])).rowCount === 1
    },
    async columns(table) {
      const rows = (await client.query<{ column_name: string }>('SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2', [spec.schema, table])).rows
      return rows.map((r) => r.column_name.toLowerCase())
    },
    async close() {
      await client.end()
    },
  }
}

async function openMysql(spec: Extract<AutheliaSourceSpec, { kind: 'mysql' }>): Promise<AutheliaSource> {
  const description = `MySQL at ${spec.socketPath ?? `${spec.host}:${spec.port}`} (database ${spec.database}, user ${spec.username})`
  let conn: mysql.Connection
  try {
    conn = await mysql.createConnection({
      ...(spec.socketPath ? { socketPath: spec.socketPath } : { host: spec.host, port: spec.port }),
      database: spec.database,
      user: spec.username,
      ...(spec.password !== undefined ? { password: spec.password } : {}),
      connectTimeout: spec.timeoutSeconds * 1000,
      ...(spec.ssl ? { ssl: spec.ssl } : {}),
      // Authelia writes UTC; read DATETIME/TIMESTAMP as UTC too.
      timezone: 'Z',
    })
  } catch (err) {
    throw new AutheliaSourceError(`cannot connect to the Authelia database, ${description}: ${(err as Error).message}`)
  }
  return {
    description,
    async query<R>(sql: string, params: unknown[] = []) {
      const [rows] = await conn.query(sql, params)
      return rows as R[]
    },
    async tableExists(name) {
      const [rows] = await conn.query('SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?', [name])
      return (rows as unknown[]).length === 1
    },
    async columns(table) {
      const [rows] = await conn.query('SELECT column_name AS c FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?', [table])
      return (rows as Array<{ c: string }>).map((r) => r.c.toLowerCase())
    },
    async close() {
      await conn.end()
    },
  }
}

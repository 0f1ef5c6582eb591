/**
 * MySQL/MariaDB for tests: the server on loopback (user `root` with an empty password; CI has the
 * same). Each test file creates its own databases, named with the pid and random bytes so parallel
 * runs never collide, and drops them afterwards.
 */
import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import type { MysqlConnectionOptions } from '../../src/storage/mysql/index.js'

export const MYSQL_HOST = process.env.LATCHKEY_TEST_MYSQL_HOST ?? '127.0.0.1'
export const MYSQL_PORT = Number(process.env.LATCHKEY_TEST_MYSQL_PORT ?? 3306)
export const MYSQL_USER = process.env.LATCHKEY_TEST_MYSQL_USER ?? 'root'
const MYSQL_PASSWORD = process.env.LATCHKEY_TEST_MYSQL_PASSWORD ?? ''

const admin = () => mysql.createConnection({ host: MYSQL_HOST, port: MYSQL_PORT, user: MYSQL_USER, password: MYSQL_PASSWORD, connectTimeout: 3000, multipleStatements: true })

/**
 * Whether the test server answers. On CI (CI=true) a missing server is a failure, never a skip:
 * this throws. Locally the caller skips with the reason printed once.
 */
export async function mysqlAvailable(): Promise<boolean> {
  try {
    const connection = await admin()
    await connection.query('SELECT 1')
    await connection.end()
    return true
  } catch (err) {
    const reason = `MySQL/MariaDB is not reachable at ${MYSQL_HOST}:${MYSQL_PORT} as ${MYSQL_USER}: ${(err as Error).message}`
    if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: the MySQL tests must run)`)
    console.warn(`skipping the MySQL tests: ${reason}`)
    return false
  }
}

export interface TestDatabase {
  name: string
  /** Connection options for Latchkey's storage on this database. */
  options: MysqlConnectionOptions
  drop(): Promise<void>
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `latchkey_test_${process.pid}_${randomBytes(6).toString('hex')}`
  await adminQuery(`CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`)
  let dropped = false
  const options: MysqlConnectionOptions = { host: MYSQL_HOST, port: MYSQL_PORT, database: name, username: MYSQL_USER, connectTimeoutSeconds: 5 }
  if (MYSQL_PASSWORD) options.password = MYSQL_PASSWORD
  return {
    name,
    options,
    async drop() {
      if (dropped) return
      dropped = true
      await adminQuery(`DROP DATABASE IF EXISTS ${name}`)
    },
  }
}

/** Runs statements as the admin user (for tests that must reach under the storage API). */
export async function adminQuery<R = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<R[]> {
  const connection = await admin()
  try {
    const [rows] = await connection.query(sql, params)
    return rows as R[]
  } finally {
    await connection.end()
  }
}

/** A connected admin session of its own (to hold a lock or a transaction open across calls); the caller ends it. */
export async function adminSession(): Promise<mysql.Connection> {
  return admin()
}

let kept: mysql.Connection | undefined

/** Deletes every row except the bookkeeping (migrations, the encryption check value). */
export async function emptyTestDatabase(db: TestDatabase): Promise<void> {
  // One connection kept for the whole file (closed by closeAdmin), one round trip per call.
  kept ??= await admin()
  const [rows] = await kept.query("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ? AND table_name NOT IN ('migrations', 'encryption')", [db.name])
  const tables = (rows as Array<{ t: string }>).map((r) => r.t)
  if (tables.length) await kept.query(tables.map((t) => `DELETE FROM ${db.name}.${t}`).join('; '))
}

export async function closeAdmin(): Promise<void> {
  await kept?.end().catch(() => undefined)
  kept = undefined
}

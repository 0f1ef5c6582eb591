/**
 * PostgreSQL for tests: the server on loopback (trust auth, user `postgres`, database `test`; CI
 * has the same). Each test gets its own schema, named with the pid and random bytes so parallel
 * runs never collide, and drops it afterwards.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { PgConnectionOptions } from '../../src/storage/postgres/index.js'

export const PG_HOST = process.env.LATCHKEY_TEST_PG_HOST ?? '127.0.0.1'
export const PG_PORT = Number(process.env.LATCHKEY_TEST_PG_PORT ?? 5432)
export const PG_USER = process.env.LATCHKEY_TEST_PG_USER ?? 'postgres'
export const PG_DATABASE = process.env.LATCHKEY_TEST_PG_DATABASE ?? 'test'

const admin = () => new pg.Client({ host: PG_HOST, port: PG_PORT, user: PG_USER, database: PG_DATABASE, connectionTimeoutMillis: 3000 })

/**
 * Whether the test server answers. On CI (CI=true) a missing server is a failure, never a skip:
 * this throws. Locally the caller skips with the reason printed once.
 */
export async function postgresAvailable(): Promise<boolean> {
  const client = admin()
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch (err) {
    const reason = `PostgreSQL is not reachable at ${PG_HOST}:${PG_PORT} as ${PG_USER}, database ${PG_DATABASE}: ${(err as Error).message}`
    if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: the PostgreSQL tests must run)`)
    console.warn(`skipping the PostgreSQL tests: ${reason}`)
    return false
  } finally {
    await client.end().catch(() => undefined)
  }
}

export interface TestSchema {
  name: string
  /** Connection options for Latchkey's storage on this schema. */
  options: PgConnectionOptions
  drop(): Promise<void>
}

export async function createTestSchema(): Promise<TestSchema> {
  const name = `latchkey_test_${process.pid}_${randomBytes(6).toString('hex')}`
  const client = admin()
  await client.connect()
  try {
    await client.query(`CREATE SCHEMA ${name}`)
  } finally {
    await client.end()
  }
  let dropped = false
  return {
    name,
    options: { host: PG_HOST, port: PG_PORT, database: PG_DATABASE, schema: name, username: PG_USER, connectTimeoutSeconds: 5 },
    async drop() {
      if (dropped) return
      dropped = true
      const c = admin()
      await c.connect()
      try {
        await c.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`)
      } finally {
        await c.end()
      }
    },
  }
}

/** Runs one statement as the admin user (for tests that must reach under the storage API). */
export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
  const client = admin()
  await client.connect()
  try {
    return (await client.query<R>(sql, params)).rows
  } finally {
    await client.end()
  }
}

/** A connected admin session of its own (to hold a transaction open across calls); the caller ends it. */
export async function adminSession(): Promise<pg.Client> {
  const client = admin()
  await client.connect()
  return client
}

/** Deletes every row except the schema's bookkeeping (migrations, the encryption check value). */
export async function emptyTestSchema(schema: TestSchema): Promise<void> {
  // One connection kept for the whole file (closed by closeAdmin), one round trip per call.
  keptAdmin ??= admin()
  if (!keptAdminReady) {
    await keptAdmin.connect()
    keptAdminReady = true
  }
  const { rows } = await keptAdmin.query<{ table_name: string }>(
    "SELECT tablename AS table_name FROM pg_tables WHERE schemaname = $1 AND tablename NOT IN ('migrations', 'encryption')",
    [schema.name],
  )
  // DELETE, not TRUNCATE: on a dozen near-empty tables TRUNCATE's file work costs ~0.7 s.
  if (rows.length) await keptAdmin.query(rows.map((t) => `DELETE FROM ${schema.name}.${t.table_name}`).join('; '))
}

let keptAdmin: pg.Client | undefined
let keptAdminReady = false

export async function closeAdmin(): Promise<void> {
  await keptAdmin?.end().catch(() => undefined)
  keptAdmin = undefined
  keptAdminReady = false
}

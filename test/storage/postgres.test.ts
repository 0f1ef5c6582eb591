import { randomBytes, randomUUID } from 'node:crypto'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import { afterAll, afterEach, describe, expect, test } from 'vitest'
import { loadConfig } from '../../src/config/load.js'
import { openStorage } from '../../src/storage/index.js'
import { openPostgresStorage } from '../../src/storage/postgres/index.js'
import { createPool, endPool, PIPELINED_CONNECTIONS, queryRows } from '../../src/storage/postgres/database.js'
import type { Storage, TokenRecord } from '../../src/storage/storage.js'
import { StorageError } from '../../src/storage/storage.js'
import { runStorageContract } from '../storage-contract.js'
import { findInterpolatedSql } from '../support/sql-lint.js'
import type { TestSchema } from '../support/postgres.js'
import { adminQuery, adminSession, closeAdmin, createTestSchema, emptyTestSchema, postgresAvailable } from '../support/postgres.js'

const KEY = 'a-very-long-test-encryption-key-of-64-characters-0123456789abcdef'

/** The Kasm fixture with this storage backend block instead of its `local` one. */
function fixtureWith(backend: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-pg-config-'))
  copyFileSync('fixtures/config/users_database.yml', join(dir, 'users_database.yml'))
  writeFileSync(join(dir, 'configuration.yml'), readFileSync('fixtures/config/kasm-authelia.yml', 'utf8').replace(/  local:\n    path: db\.sqlite3\n/, backend))
  return join(dir, 'configuration.yml')
}
const available = await postgresAvailable()

const schemas: TestSchema[] = []
afterEach(async () => {
  for (const s of schemas.splice(0)) await s.drop()
})

let latest: TestSchema | undefined
const openFresh = async (): Promise<Storage> => {
  latest = await createTestSchema()
  schemas.push(latest)
  return openPostgresStorage({ ...latest.options, encryptionKey: KEY })
}

// The contract suite shares one schema, emptied before each test: a fresh schema per test would
// spend most of the suite's time creating and migrating tables.
let contractSchema: TestSchema | undefined
afterAll(async () => {
  await contractSchema?.drop()
  await closeAdmin()
})
const openContract = async (): Promise<Storage> => {
  if (contractSchema === undefined) contractSchema = await createTestSchema()
  else await emptyTestSchema(contractSchema)
  latest = contractSchema
  return openPostgresStorage({ ...contractSchema.options, encryptionKey: KEY })
}

describe.runIf(available)('postgres', () => {
  runStorageContract('postgres', openContract, { openPeer: () => openPostgresStorage({ ...latest!.options, encryptionKey: KEY }) })

  describe('postgres storage', () => {
    test('two instances opening one fresh schema together both start, and each migration is applied once', async () => {
      const schema = await createTestSchema()
      schemas.push(schema)
      const [a, b] = await Promise.all([openPostgresStorage({ ...schema.options, encryptionKey: KEY }), openPostgresStorage({ ...schema.options, encryptionKey: KEY })])
      try {
        const versions = (await a.listMigrations()).map((m) => m.version)
        expect(new Set(versions).size).toBe(versions.length)
        expect(await b.listMigrations()).toEqual(await a.listMigrations())
        const rows = await adminQuery<{ n: number }>(`SELECT COUNT(*)::int AS n FROM ${schema.name}.encryption`)
        expect(rows[0]!.n).toBe(1)
      } finally {
        await Promise.all([a.close(), b.close()])
      }
    })

    test('sign-in artifacts commit without waiting for the WAL flush; devices and subjects wait for it (high-availability.md)', async () => {
      const storage = await openFresh()
      try {
        const now = Math.floor(Date.now() / 1000)
        await storage.saveSession('s'.repeat(32), { username: 'john', level: 1, firstFactorAt: now, amr: ['pwd'], rememberMe: false, csrfToken: 'x', createdAt: now, lastActivityAt: now }, now + 60, now)
        await storage.ensureSubjectIdentifier('sector', 'john', randomUUID())
        // Each pooled connection's last statement, and which pool it belongs to.
        const all = await adminQuery<{ application_name: string; query: string }>("SELECT application_name, query FROM pg_stat_activity WHERE application_name IN ('latchkey', 'latchkey-ephemeral')")
        const poolsOf = (text: string) => [...new Set(all.filter((r) => r.query.includes(text)).map((r) => r.application_name))]
        expect(poolsOf('INSERT INTO sessions')).toEqual(['latchkey-ephemeral'])
        expect(poolsOf('user_opaque_identifier')).toEqual(['latchkey'])
      } finally {
        await storage.close()
      }
      for (const [kind, expected] of [['ephemeral', 'off'], ['durable', 'on']] as const) {
        const pool = createPool(latest!.options, () => undefined, kind)
        try {
          expect((await pool.query('SHOW synchronous_commit')).rows[0].synchronous_commit).toBe(expected)
          // Single statements (the ephemeral pool's pipelined connections) too.
          expect((await queryRows<{ synchronous_commit: string }>(pool, 'SHOW synchronous_commit'))[0]!.synchronous_commit).toBe(expected)
        } finally {
          await endPool(pool)
        }
      }
    })

    test('a schema newer than this code is refused with SCHEMA_TOO_NEW', async () => {
      const storage = await openFresh()
      await storage.close()
      await adminQuery(`INSERT INTO ${latest!.name}.migrations (version, name, applied_at) VALUES (9999, 'future', 0)`)
      const err = await openPostgresStorage({ ...latest!.options, encryptionKey: KEY }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(StorageError)
      expect((err as StorageError).code).toBe('SCHEMA_TOO_NEW')
      expect((err as Error).message).toContain('version 9999')
    })

    test('a wrong encryption key is refused at open with ENCRYPTION_KEY_MISMATCH, and changes nothing', async () => {
      const storage = await openFresh()
      await storage.close()
      const err = await openPostgresStorage({ ...latest!.options, encryptionKey: 'another-key-of-twenty-characters-or-more' }).catch((e: unknown) => e)
      expect((err as StorageError).code).toBe('ENCRYPTION_KEY_MISMATCH')
      const reopened = await openPostgresStorage({ ...latest!.options, encryptionKey: KEY })
      expect(await reopened.ping()).toBe(true)
      await reopened.close()
    })

    test('an Authelia-shaped migrations table is refused with NOT_LATCHKEY', async () => {
      const schema = await createTestSchema()
      schemas.push(schema)
      await adminQuery(`CREATE TABLE ${schema.name}.migrations (id SERIAL PRIMARY KEY, applied TIMESTAMP, version_before INTEGER, version_after INTEGER, application_version TEXT)`)
      const err = await openPostgresStorage({ ...schema.options, encryptionKey: KEY }).catch((e: unknown) => e)
      expect((err as StorageError).code).toBe('NOT_LATCHKEY')
    })

    test('a schema that does not exist is named in the error, with the statement that creates it', async () => {
      const schema = await createTestSchema()
      await schema.drop()
      const err = await openPostgresStorage({ ...schema.options, encryptionKey: KEY }).catch((e: unknown) => e)
      expect((err as StorageError).code).toBe('OPEN_FAILED')
      expect((err as Error).message).toContain(`the schema '${schema.name}' does not exist`)
      expect((err as Error).message).toContain('CREATE SCHEMA')
    })

    // Debian's socket folder; CI's PostgreSQL is Debian's too. LATCHKEY_TEST_PG_SOCKET names another.
    const socketDir = process.env.LATCHKEY_TEST_PG_SOCKET ?? '/var/run/postgresql'
    test.runIf(existsSync(`${socketDir}/.s.PGSQL.5432`))('openStorage connects through the unix socket folder that address unix:// names', async () => {
      const schema = await createTestSchema()
      schemas.push(schema)
      const { config } = loadConfig({
        files: [fixtureWith(`  postgres:\n    address: 'unix://${socketDir}/.s.PGSQL.5432'\n    database: ${schema.options.database}\n    schema: ${schema.name}\n    username: ${schema.options.username}\n`)],
        env: {},
      })
      expect(config.storage.postgres).toMatchObject({ host: socketDir, port: 5432 })
      const storage = await openStorage(config.storage)
      try {
        expect(await storage.ping()).toBe(true)
        expect(await storage.recordTotpUse('alice', 1, 1)).toBe(true)
        const [row] = await adminQuery<{ n: number }>(`SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE application_name = 'latchkey' AND client_port = -1 AND datname = $1`, [schema.options.database])
        expect(row!.n).toBeGreaterThan(0)
      } finally {
        await storage.close()
      }
    })

    test('an unreachable server is an OPEN_FAILED naming the server, within the timeout', async () => {
      const schema = await createTestSchema()
      schemas.push(schema)
      const err = await openPostgresStorage({ ...schema.options, port: 1, encryptionKey: KEY, connectTimeoutSeconds: 2 }).catch((e: unknown) => e)
      expect((err as StorageError).code).toBe('OPEN_FAILED')
      expect((err as Error).message).toContain('PostgreSQL at 127.0.0.1:1')
    })

    test('migrate down to 0 then up again; times are stored as Unix seconds like SQLite', async () => {
      const storage = await openFresh()
      try {
        const all = (await storage.listMigrations()).map((m) => m.version)
        expect(await storage.migrateDown(0)).toEqual([...all].reverse())
        expect(await adminQuery(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, [latest!.name])).toEqual([{ table_name: 'migrations' }])
        expect(await storage.migrateUp()).toEqual(all)
        await storage.saveSession('sid', { level: 1, amr: ['pwd'], rememberMe: false, csrfToken: 'x', createdAt: 1_700_000_000, lastActivityAt: 1_700_000_000 }, 1_700_000_600, 1_700_000_000)
        const [row] = await adminQuery<{ expires_at: string; type: string }>(`SELECT expires_at::text, pg_typeof(expires_at)::text AS type FROM ${latest!.name}.sessions`)
        expect(row).toEqual({ expires_at: '1700000600', type: 'bigint' })
      } finally {
        await storage.close()
      }
    })

    test('no TOTP secret and no session id is stored in clear (security.md F2, C5)', async () => {
      const storage = await openFresh()
      try {
        const secret = Buffer.from('0123456789abcdefghij')
        await storage.saveTotpConfiguration({ username: 'alice', issuer: 'Latchkey', algorithm: 'SHA1', digits: 6, periodSeconds: 30, secret, createdAt: 1 })
        await storage.saveSession('the-cookie-value', { level: 1, amr: [], rememberMe: false, csrfToken: 'x', createdAt: 1, lastActivityAt: 1 }, 10, 1)
        const [totp] = await adminQuery<{ secret: Buffer }>(`SELECT secret FROM ${latest!.name}.totp_configurations`)
        expect(totp!.secret.includes(secret)).toBe(false)
        const sessions = await adminQuery<{ id_hash: string }>(`SELECT id_hash FROM ${latest!.name}.sessions`)
        expect(sessions.map((s) => s.id_hash)).not.toContain('the-cookie-value')
      } finally {
        await storage.close()
      }
    })

    describe('pipelined single statements on the ephemeral pool', () => {
      const pidOf = async (pool: pg.Pool): Promise<number> => (await queryRows<{ pid: number }>(pool, 'SELECT pg_backend_pid() AS pid'))[0]!.pid

      test('parallel statements share the pipelined connections; one that fails fails alone, and each commits on its own', async () => {
        await openFresh().then((s) => s.close())
        const pool = createPool(latest!.options, () => undefined, 'ephemeral')
        try {
          const pids = await Promise.all(Array.from({ length: 40 }, () => pidOf(pool)))
          expect(new Set(pids).size).toBeLessThanOrEqual(PIPELINED_CONNECTIONS)
          const table = `${latest!.name}.encryption`
          const settled = await Promise.allSettled([
            queryRows(pool, `INSERT INTO ${table} (name, value) VALUES ('pipelined-a', '\\x01') RETURNING name`),
            queryRows(pool, 'SELECT 1 / 0 AS boom'),
            queryRows(pool, `INSERT INTO ${table} (name, value) VALUES ('pipelined-a', '\\x02') RETURNING name`),
            queryRows(pool, `INSERT INTO ${table} (name, value) VALUES ('pipelined-b', '\\x03') RETURNING name`),
            pidOf(pool),
          ])
          expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled'])
          expect(String((settled[1] as PromiseRejectedResult).reason)).toMatch(/division by zero/)
          expect((settled[2] as PromiseRejectedResult).reason).toMatchObject({ code: '23505' })
          // Nothing was rolled back with its neighbours: each statement committed alone.
          const rows = await adminQuery<{ name: string }>(`SELECT name FROM ${table} WHERE name LIKE 'pipelined-%' ORDER BY name`)
          expect(rows.map((r) => r.name)).toEqual(['pipelined-a', 'pipelined-b'])
        } finally {
          await endPool(pool)
        }
      })

      test('a pipelined connection the server ends fails only what was on it; the next statement opens a new one', async () => {
        await openFresh().then((s) => s.close())
        const lost: Error[] = []
        const pool = createPool(latest!.options, (err) => lost.push(err), 'ephemeral')
        try {
          const before = new Set(await Promise.all(Array.from({ length: 8 }, () => pidOf(pool))))
          // Settled into a value at once: it fails while the test is still terminating connections.
          const slow = queryRows(pool, 'SELECT pg_sleep(5) AS slept').then(() => undefined, (err: Error) => err)
          await sleep(100)
          for (const pid of before) await adminQuery('SELECT pg_terminate_backend($1)', [pid])
          expect(await slow).toMatchObject({ code: '57P01' })
          const after = new Set(await Promise.all(Array.from({ length: 8 }, () => pidOf(pool))))
          expect(after.size).toBeGreaterThan(0)
          for (const pid of after) expect(before.has(pid)).toBe(false)
          expect((await queryRows<{ ok: number }>(pool, 'SELECT 1 AS ok'))[0]).toEqual({ ok: 1 })
        } finally {
          await endPool(pool)
        }
      })
    })

    describe('one grant: saving issued tokens and revoking the grant never overlap (security.md C1, T1)', () => {
      // Under READ COMMITTED, revokeGrant's UPDATE misses token rows committed while it runs, so both
      // take the grant's lock. An admin session plays one side by hand inside that lock, held open
      // until the storage call is seen waiting for it: the order is fixed, not timed.
      const NOW = 1_700_000_000
      const grantId = randomUUID()
      const rt = (overrides: Partial<TokenRecord> = {}): TokenRecord => ({
        grantId, clientId: 'kasm', username: 'alice', subject: 's', scopes: ['openid', 'offline_access'], audience: ['kasm'], authTime: NOW, amr: ['pwd'], requestedAt: NOW,
        tokenHash: randomBytes(32).toString('hex'), kind: 'refresh', issuedAt: NOW, expiresAt: NOW + 3600, ...overrides,
      })
      const LOCK = 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))'

      /** Resolves once a session waits for the grant's lock; fails if `call` settles first. */
      async function untilWaitingForGrantLock(admin: pg.Client, call: Promise<unknown>): Promise<void> {
        let settled = false
        call.then(() => (settled = true), () => (settled = true))
        for (;;) {
          const { rows } = await admin.query<{ n: number }>(
            "SELECT COUNT(*)::int AS n FROM pg_locks l, hashtextextended($1, 0) AS k WHERE l.locktype = 'advisory' AND NOT l.granted " +
              'AND l.classid::bigint = (k >> 32) & 4294967295 AND l.objid::bigint = k & 4294967295',
            [`latchkey:grant:${grantId}`],
          )
          if (rows[0]!.n > 0) return
          if (settled) throw new Error('the storage call finished without waiting for the grant lock')
          await sleep(10)
        }
      }

      test('a revocation holding the lock first: the save waits for it, then is refused and saves nothing', async () => {
        const storage = await openFresh()
        const admin = await adminSession()
        try {
          const parent = rt()
          await storage.saveToken(parent)
          expect((await storage.consumeRefreshToken(parent.tokenHash, 'kasm', NOW)).kind).toBe('ok')
          await admin.query('BEGIN')
          await admin.query(LOCK, [`latchkey:grant:${grantId}`])
          const next = [rt({ kind: 'access' }), rt({ parentHash: parent.tokenHash })]
          const save = storage.saveIssuedTokens({ kind: 'refresh', hash: parent.tokenHash }, next)
          await untilWaitingForGrantLock(admin, save)
          // What revokeGrant does inside the lock.
          await admin.query(`UPDATE ${latest!.name}.oauth2_token SET revoked = 1 WHERE grant_id = $1`, [grantId])
          await admin.query('COMMIT')
          expect(await save).toBe(false)
          for (const t of next) expect(await storage.findToken(t.tokenHash, NOW)).toBeUndefined()
        } finally {
          await admin.end()
          await storage.close()
        }
      })

      test('a save holding the lock first: the revocation waits for it, then revokes the new rows too', async () => {
        const storage = await openFresh()
        const admin = await adminSession()
        try {
          await admin.query('BEGIN')
          await admin.query(LOCK, [`latchkey:grant:${grantId}`])
          // What saveIssuedTokens does inside the lock: a new token of the grant, not committed yet.
          const child = rt()
          await admin.query(
            `INSERT INTO ${latest!.name}.oauth2_token (token_hash, kind, grant_id, client_id, username, subject, scopes, audience, auth_time, amr, requested_at, issued_at, expires_at) ` +
              "VALUES ($1, 'refresh', $2, 'kasm', 'alice', 's', '[\"openid\"]', '[\"kasm\"]', $3, '[\"pwd\"]', $3, $3, $4)",
            [child.tokenHash, grantId, NOW, NOW + 3600],
          )
          const revoke = storage.revokeGrant(grantId)
          await untilWaitingForGrantLock(admin, revoke)
          await admin.query('COMMIT')
          await revoke
          expect(await storage.findToken(child.tokenHash, NOW)).toBeUndefined()
          const [row] = await adminQuery<{ revoked: number }>(`SELECT revoked FROM ${latest!.name}.oauth2_token WHERE token_hash = $1`, [child.tokenHash])
          expect(row).toEqual({ revoked: 1 })
        } finally {
          await admin.end()
          await storage.close()
        }
      })
    })

    test('every SQLite migration has a PostgreSQL twin with the same number and name, up and down', async () => {
      const { readdirSync } = await import('node:fs')
      const { defaultMigrationsDir } = await import('../../src/storage/common/migration-files.js')
      expect(readdirSync(defaultMigrationsDir('postgres')).filter((f) => f.endsWith('.sql')).sort()).toEqual(
        readdirSync(defaultMigrationsDir('sqlite')).filter((f) => f.endsWith('.sql')).sort(),
      )
    })
  })
})

test('no query of the PostgreSQL backend interpolates into SQL: values go as $n parameters (security.md X4 lint)', () => {
  const { files, offenders } = findInterpolatedSql('postgres')
  expect(files.length).toBeGreaterThan(5)
  expect(offenders).toEqual([])
})

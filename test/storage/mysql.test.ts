import { randomBytes, randomUUID } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import type mysql from 'mysql2/promise'
import { afterAll, afterEach, describe, expect, test } from 'vitest'
import { defaultMigrationsDir } from '../../src/storage/common/migration-files.js'
import { openStorage } from '../../src/storage/index.js'
import { lockName } from '../../src/storage/mysql/database.js'
import { openMysqlStorage } from '../../src/storage/mysql/index.js'
import type { Storage, TokenRecord } from '../../src/storage/storage.js'
import { StorageError } from '../../src/storage/storage.js'
import { runStorageContract } from '../storage-contract.js'
import { findInterpolatedSql } from '../support/sql-lint.js'
import type { TestDatabase } from '../support/mysql.js'
import { adminQuery, adminSession, closeAdmin, createTestDatabase, emptyTestDatabase, mysqlAvailable } from '../support/mysql.js'

const KEY = 'a-very-long-test-encryption-key-of-64-characters-0123456789abcdef'
const available = await mysqlAvailable()

const databases: TestDatabase[] = []
afterEach(async () => {
  for (const d of databases.splice(0)) await d.drop()
})

let latest: TestDatabase | undefined
const openFresh = async (): Promise<Storage> => {
  latest = await createTestDatabase()
  databases.push(latest)
  return openMysqlStorage({ ...latest.options, encryptionKey: KEY })
}

// The contract suite shares one database, emptied before each test: a fresh one per test would
// spend most of the suite's time creating and migrating tables.
let contractDatabase: TestDatabase | undefined
afterAll(async () => {
  await contractDatabase?.drop()
  await closeAdmin()
})
const openContract = async (): Promise<Storage> => {
  if (contractDatabase === undefined) contractDatabase = await createTestDatabase()
  else await emptyTestDatabase(contractDatabase)
  latest = contractDatabase
  return openMysqlStorage({ ...contractDatabase.options, encryptionKey: KEY })
}

describe.runIf(available)('mysql', () => {
  // The peer is a second pool on the same database, as a second instance would have: the races
  // (20 redemptions of one code, 20 uses of one refresh token, two TOTP steps…) run across both.
  runStorageContract('mysql', openContract, { openPeer: () => openMysqlStorage({ ...latest!.options, encryptionKey: KEY }) })

  describe('mysql storage', () => {
    test('two instances opening one fresh database together both start, and each migration is applied once', async () => {
      const db = await createTestDatabase()
      databases.push(db)
      const [a, b] = await Promise.all([openMysqlStorage({ ...db.options, encryptionKey: KEY }), openMysqlStorage({ ...db.options, encryptionKey: KEY })])
      try {
        const versions = (await a.listMigrations()).map((m) => m.version)
        expect(versions).toEqual([1, 2, 3, 4, 5, 6, 7])
        expect(await b.listMigrations()).toEqual(await a.listMigrations())
        const rows = await adminQuery<{ n: number }>(`SELECT COUNT(*) AS n FROM ${db.name}.encryption`)
        expect(rows[0]!.n).toBe(1)
      } finally {
        await Promise.all([a.close(), b.close()])
      }
    })

    test('tables are InnoDB in utf8mb4, and connections run READ COMMITTED', async () => {
      const storage = await openFresh()
      await storage.close()
      const tables = await adminQuery<{ engine: string; collation: string }>(
        'SELECT ENGINE AS engine, TABLE_COLLATION AS collation FROM information_schema.tables WHERE table_schema = ?',
        [latest!.name],
      )
      expect(tables.length).toBeGreaterThan(10)
      expect(new Set(tables.map((t) => `${t.engine} ${t.collation}`))).toEqual(new Set(['InnoDB utf8mb4_bin']))
      // A session of the pool, seen from the server: what a stored procedure would see too.
      const { createPool, queryRows } = await import('../../src/storage/mysql/database.js')
      const pool = createPool(latest!.options)
      try {
        // tx_isolation on MariaDB 10.11, transaction_isolation on MySQL 8.
        const rows = await queryRows<{ Value: string }>(pool, "SHOW SESSION VARIABLES WHERE Variable_name IN ('tx_isolation', 'transaction_isolation')")
        expect(rows.length).toBeGreaterThan(0)
        for (const row of rows) expect(row.Value).toBe('READ-COMMITTED')
      } finally {
        await pool.end()
      }
    })

    test('a schema newer than this code is refused with SCHEMA_TOO_NEW', async () => {
      const storage = await openFresh()
      await storage.close()
      await adminQuery(`INSERT INTO ${latest!.name}.migrations (version, name, applied_at) VALUES (9999, 'future', 0)`)
      const err = await openMysqlStorage({ ...latest!.options, encryptionKey: KEY }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(StorageError)
      expect((err as StorageError).code).toBe('SCHEMA_TOO_NEW')
      expect((err as Error).message).toContain('version 9999')
    })

    test('a wrong encryption key is refused at open with ENCRYPTION_KEY_MISMATCH, and changes nothing', async () => {
      const storage = await openFresh()
      await storage.close()
      const err = await openMysqlStorage({ ...latest!.options, encryptionKey: 'another-key-of-twenty-characters-or-more' }).catch((e: unknown) => e)
      expect((err as StorageError).code).toBe('ENCRYPTION_KEY_MISMATCH')
      const reopened = await openMysqlStorage({ ...latest!.options, encryptionKey: KEY })
      expect(await reopened.ping()).toBe(true)
      await reopened.close()
    })

    test('an Authelia-shaped migrations table is refused with NOT_LATCHKEY', async () => {
      const db = await createTestDatabase()
      databases.push(db)
      await adminQuery(`CREATE TABLE ${db.name}.migrations (id INT AUTO_INCREMENT PRIMARY KEY, applied TIMESTAMP, version_before INT, version_after INT, application_version TEXT)`)
      const err = await openMysqlStorage({ ...db.options, encryptionKey: KEY }).catch((e: unknown) => e)
      expect((err as StorageError).code).toBe('NOT_LATCHKEY')
    })

    test('a database that does not exist is named in the error, with the statement that creates it', async () => {
      const db = await createTestDatabase()
      await db.drop()
      const err = await openMysqlStorage({ ...db.options, encryptionKey: KEY }).catch((e: unknown) => e)
      expect((err as StorageError).code).toBe('OPEN_FAILED')
      expect((err as Error).message).toContain(`the database '${db.name}' does not exist`)
      expect((err as Error).message).toContain(`CREATE DATABASE ${db.name} CHARACTER SET utf8mb4`)
    })

    test('an unreachable server is an OPEN_FAILED naming the server, within the timeout', async () => {
      const db = await createTestDatabase()
      databases.push(db)
      const err = await openMysqlStorage({ ...db.options, port: 1, encryptionKey: KEY, connectTimeoutSeconds: 2 }).catch((e: unknown) => e)
      expect((err as StorageError).code).toBe('OPEN_FAILED')
      expect((err as Error).message).toContain('MySQL at 127.0.0.1:1')
    })

    test('the unix socket works as well as TCP', async () => {
      const socketPath = process.env.LATCHKEY_TEST_MYSQL_SOCKET ?? '/run/mysqld/mysqld.sock'
      const { existsSync } = await import('node:fs')
      if (!existsSync(socketPath)) {
        if (process.env.CI === 'true') throw new Error(`no MySQL socket at ${socketPath}`)
        return
      }
      const db = await createTestDatabase()
      databases.push(db)
      const storage = await openMysqlStorage({ ...db.options, host: 'ignored', socketPath, encryptionKey: KEY })
      try {
        expect(await storage.ping()).toBe(true)
      } finally {
        await storage.close()
      }
    })

    test('migrate down to 0 then up again; times are stored as Unix seconds like SQLite', async () => {
      const storage = await openFresh()
      try {
        const all = (await storage.listMigrations()).map((m) => m.version)
        expect(await storage.migrateDown(0)).toEqual([...all].reverse())
        expect(await adminQuery('SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ? ORDER BY 1', [latest!.name])).toEqual([{ t: 'migrations' }])
        expect(await storage.migrateUp()).toEqual(all)
        await storage.saveSession('sid', { level: 1, amr: ['pwd'], rememberMe: false, csrfToken: 'x', createdAt: 1_700_000_000, lastActivityAt: 1_700_000_000 }, 1_700_000_600, 1_700_000_000)
        const [row] = await adminQuery<{ expires_at: number; type: string }>(
          `SELECT s.expires_at, c.DATA_TYPE AS type FROM ${latest!.name}.sessions s, information_schema.columns c WHERE c.table_schema = ? AND c.table_name = 'sessions' AND c.column_name = 'expires_at'`,
          [latest!.name],
        )
        expect(row).toEqual({ expires_at: 1_700_000_600, type: 'bigint' })
      } finally {
        await storage.close()
      }
    })

    test('migration 0004 gives the regulator its keys on authentication_logs, and its down file takes them away', async () => {
      const storage = await openFresh()
      const keys = async () =>
        (
          await adminQuery<{ k: string; c: string }>(
            "SELECT INDEX_NAME AS k, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) AS c FROM information_schema.statistics WHERE table_schema = ? AND table_name = 'authentication_logs' AND INDEX_NAME LIKE 'authentication_logs_%' GROUP BY INDEX_NAME",
            [latest!.name],
          )
        )
          .map((r) => `${r.k}(${r.c})`)
          .sort()
      try {
        expect(await keys()).toEqual([
          'authentication_logs_ip_regulation(remote_ip,banned,time)',
          'authentication_logs_time(time)',
          'authentication_logs_user_regulation(username,banned,time)',
          'authentication_logs_username_time(username,time)',
        ])
        expect(await storage.migrateDown(3)).toEqual([7, 6, 5, 4])
        expect(await keys()).toEqual(['authentication_logs_username_time(username,time)'])
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

    test('openStorage dispatches storage.mysql to this backend', async () => {
      const db = await createTestDatabase()
      databases.push(db)
      const storage = await openStorage({ encryptionKey: KEY, mysql: { host: db.options.host, port: db.options.port, database: db.name, username: db.options.username, timeoutSeconds: 5 } })
      try {
        expect((await storage.listMigrations()).every((m) => m.appliedAt !== undefined)).toBe(true)
      } finally {
        await storage.close()
      }
    })

    describe('one grant: saving issued tokens and revoking the grant never overlap (security.md C1, T1)', () => {
      // Under READ COMMITTED, revokeGrant's UPDATE skips token rows not committed yet, so both take
      // the grant's GET_LOCK. An admin session plays one side by hand inside that lock, held until
      // the storage call is seen waiting for it: the order is fixed, not timed.
      const NOW = 1_700_000_000
      const grantId = randomUUID()
      const rt = (overrides: Partial<TokenRecord> = {}): TokenRecord => ({
        grantId, clientId: 'kasm', username: 'alice', subject: 's', scopes: ['openid', 'offline_access'], audience: ['kasm'], authTime: NOW, amr: ['pwd'], requestedAt: NOW,
        tokenHash: randomBytes(32).toString('hex'), kind: 'refresh', issuedAt: NOW, expiresAt: NOW + 3600, ...overrides,
      })
      const grantLock = () => lockName(`latchkey:${latest!.name}:grant:${grantId}`)

      /** Resolves once a session waits for the grant's lock; fails if `call` settles first. */
      async function untilWaitingForGrantLock(admin: mysql.Connection, call: Promise<unknown>): Promise<void> {
        let settled = false
        call.then(
          () => (settled = true),
          () => (settled = true),
        )
        for (;;) {
          // The waiting statement's text carries the lock name (mysql2 substitutes parameters client-side).
          const [rows] = await admin.query("SELECT COUNT(*) AS n FROM information_schema.processlist WHERE STATE = 'User lock' AND INFO LIKE ?", [`%GET_LOCK('${grantLock()}'%`])
          if ((rows as Array<{ n: number }>)[0]!.n > 0) return
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
          await admin.query('SELECT GET_LOCK(?, 10)', [grantLock()])
          const next = [rt({ kind: 'access' }), rt({ parentHash: parent.tokenHash })]
          const save = storage.saveIssuedTokens({ kind: 'refresh', hash: parent.tokenHash }, next)
          await untilWaitingForGrantLock(admin, save)
          // What revokeGrant does inside the lock.
          await admin.query(`UPDATE ${latest!.name}.oauth2_token SET revoked = 1 WHERE grant_id = ?`, [grantId])
          await admin.query('DO RELEASE_LOCK(?)', [grantLock()])
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
          await admin.query('SELECT GET_LOCK(?, 10)', [grantLock()])
          await admin.query('START TRANSACTION')
          // What saveIssuedTokens does inside the lock: a new token of the grant, not committed yet.
          const child = rt()
          await admin.query(
            `INSERT INTO ${latest!.name}.oauth2_token (token_hash, kind, grant_id, client_id, username, subject, scopes, audience, auth_time, amr, requested_at, issued_at, expires_at) ` +
              "VALUES (?, 'refresh', ?, 'kasm', 'alice', 's', '[\"openid\"]', '[\"kasm\"]', ?, '[\"pwd\"]', ?, ?, ?)",
            [child.tokenHash, grantId, NOW, NOW, NOW, NOW + 3600],
          )
          const revoke = storage.revokeGrant(grantId)
          await untilWaitingForGrantLock(admin, revoke)
          await admin.query('COMMIT')
          await admin.query('DO RELEASE_LOCK(?)', [grantLock()])
          await revoke
          expect(await storage.findToken(child.tokenHash, NOW)).toBeUndefined()
          const [row] = await adminQuery<{ revoked: number }>(`SELECT revoked FROM ${latest!.name}.oauth2_token WHERE token_hash = ?`, [child.tokenHash])
          expect(row).toEqual({ revoked: 1 })
        } finally {
          await admin.end()
          await storage.close()
        }
      })
    })

    test('every SQLite migration has a MySQL twin with the same number and name, up and down', () => {
      const sql = (engine: 'sqlite' | 'mysql') => readdirSync(defaultMigrationsDir(engine)).filter((f) => f.endsWith('.sql')).sort()
      expect(sql('mysql')).toEqual(sql('sqlite'))
    })
  })
})

test('no query of the MySQL backend interpolates into SQL: values go as ? parameters (security.md X4 lint)', () => {
  const { files, offenders } = findInterpolatedSql('mysql')
  expect(files.length).toBeGreaterThan(5)
  expect(offenders).toEqual([])
})

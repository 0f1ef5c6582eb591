import { createMysqlClientAssertionStore } from './client-assertions.js'
import { createSecretBox } from '../../common/secret-box.js'
import { createMysqlImportStore } from './import.js'
import type { StorageLogger } from '../common/migration-files.js'
import { defaultMigrationsDir, readMigrationFiles } from '../common/migration-files.js'
import { checkEncryptionKey } from '../common/encryption-check.js'
import type { Storage } from '../storage.js'
import { StorageError } from '../storage.js'
import { createMysqlConsentStore } from './consent.js'
import type { MysqlConnectionOptions, MysqlQueryable } from './database.js'
import { connectionError, createPool, describeServer, execute, queryRows } from './database.js'
import { createMysqlIdentityVerificationStore } from './identity-verification.js'
import { createMysqlLogoutSessionStore } from './logout-sessions.js'
import { MysqlMigrator } from './migrate.js'
import { createMysqlRegulationStore, createMysqlSessionStore, createMysqlSubjectStore } from './misc.js'
import { createMysqlOidcStore } from './oidc.js'
import { createMysqlTotpStore } from './totp.js'
import { openSchema } from '../common/migration-plan.js'
import { createMysqlWebauthnStore } from './webauthn.js'

export type { MysqlConnectionOptions } from './database.js'

export interface MysqlStorageOptions extends MysqlConnectionOptions {
  /** storage.encryption_key: seals TOTP secrets and is checked against the database at open. */
  encryptionKey: string
  /** Apply pending migrations at open (default true); the CLI passes false to list or roll back. */
  migrate?: boolean
  logger?: StorageLogger
  /** Defaults to migrations/mysql at the package root. */
  migrationsDir?: string
}

/**
 * Connects a pool to MySQL 8 or MariaDB 10.11, refuses a schema newer than this code and a wrong
 * encryption key, and applies pending migrations, all under the database's migration lock so
 * several instances can start together. Each method is atomic across every process sharing the
 * database (see oidc.ts, totp.ts).
 */
export async function openMysqlStorage(opts: MysqlStorageOptions): Promise<Storage> {
  if (opts.encryptionKey.length === 0) throw new StorageError('OPEN_FAILED', 'storage: storage.encryption_key is empty')
  const box = createSecretBox(opts.encryptionKey)
  const files = readMigrationFiles(opts.migrationsDir ?? defaultMigrationsDir('mysql'))
  const server = describeServer(opts)
  const migrator = new MysqlMigrator(opts, files, opts.logger)
  // Named locks are server-wide: scoped to this database.
  const lockKey = (key: string) => `latchkey:${opts.database}:${key}`

  const verifyKey = async (db: MysqlQueryable) => {
    const result = await checkEncryptionKey(
      {
        tableExists: async () =>
          (await queryRows(db, "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'encryption'")).length === 1,
        read: async (name) => (await queryRows<{ value: Buffer }>(db, 'SELECT value FROM encryption WHERE name = ?', [name]))[0]?.value,
        insertIfMissing: async (name, value) => {
          // A no-op update rather than INSERT IGNORE, which would also hide real errors.
          await execute(db, 'INSERT INTO encryption (name, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE name = name', [name, value])
        },
      },
      box,
    )
    if (result === 'created') opts.logger?.info({ server }, 'storage: created the encryption check value')
  }

  try {
    await migrator.locked((db) =>
      openSchema(migrator, db, verifyKey, opts.migrate ?? true, (version) => opts.logger?.warn({ server, version }, 'storage: the database has pending migrations')),
    )
  } catch (err) {
    throw err instanceof StorageError ? err : connectionError(opts, err)
  }

  const pool = createPool(opts)
  let closed = false
  return {
    ...createMysqlSubjectStore(pool),
    ...createMysqlTotpStore(pool, box),
    ...createMysqlWebauthnStore(pool),
    ...createMysqlRegulationStore(pool),
    ...createMysqlSessionStore(pool),
    ...createMysqlIdentityVerificationStore(pool, lockKey),
    ...createMysqlConsentStore(pool),
    ...createMysqlOidcStore(pool, lockKey),
    ...createMysqlImportStore(pool, box),
    ...createMysqlClientAssertionStore(pool),
    ...createMysqlLogoutSessionStore(pool),

    async listMigrations() {
      return migrator.locked((db) => migrator.list(db))
    },
    async migrateUp(target) {
      return migrator.locked(async (db) => {
        const applied = await migrator.up(db, target)
        await verifyKey(db)
        return applied
      })
    },
    async migrateDown(target) {
      return migrator.locked((db) => migrator.down(db, target))
    },
    async ping() {
      if (closed) return false
      try {
        return (await queryRows(pool, 'SELECT 1 AS ok')).length === 1
      } catch {
        return false
      }
    },
    async close() {
      if (closed) return
      closed = true
      await pool.end()
    },
  }
}

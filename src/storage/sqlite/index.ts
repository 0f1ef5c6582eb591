import { createClientAssertionStore } from './client-assertions.js'
import { createSecretBox } from '../../common/secret-box.js'
import type { Storage } from '../storage.js'
import { StorageError } from '../storage.js'
import { createConsentStore } from './consent.js'
import { openDatabase } from './database.js'
import { checkEncryptionKey } from './encryption.js'
import { createIdentityVerificationStore } from './identity-verification.js'
import { createSqliteImportStore } from './import.js'
import type { StorageLogger } from '../common/migration-files.js'
import { defaultMigrationsDir, readMigrationFiles } from '../common/migration-files.js'
import { createLogoutSessionStore } from './logout-sessions.js'
import { Migrator } from './migrate.js'
import { createOidcStore } from './oidc.js'
import { createRegulationStore } from './regulation.js'
import { createSessionStore } from './sessions.js'
import { createSubjectStore } from './subjects.js'
import { createTotpStore } from './totp.js'
import { createWebauthnStore } from './webauthn.js'

export type { StorageLogger } from '../common/migration-files.js'

export interface SqliteStorageOptions {
  /** The database file; its folder is created (owner-only) when missing. ':memory:' for tests. */
  path: string
  /** storage.encryption_key: seals TOTP secrets and is checked against the database at open. */
  encryptionKey: string
  /** Apply pending migrations at open (default true); the CLI passes false to list or roll back. */
  migrate?: boolean
  logger?: StorageLogger
  /** Defaults to migrations/sqlite at the package root; tests point it elsewhere. */
  migrationsDir?: string
}

/**
 * Opens (creating if needed) the SQLite database, refuses a schema newer than this code and a
 * wrong encryption key, and applies pending migrations. better-sqlite3 is synchronous: every method
 * finishes its work before its promise settles, so each is atomic against the others.
 */
export async function openSqliteStorage(opts: SqliteStorageOptions): Promise<Storage> {
  if (opts.encryptionKey.length === 0) throw new StorageError('OPEN_FAILED', 'storage: storage.encryption_key is empty')
  const box = createSecretBox(opts.encryptionKey)
  const files = readMigrationFiles(opts.migrationsDir ?? defaultMigrationsDir('sqlite'))
  const db = openDatabase(opts.path)
  const migrator = new Migrator(db, files, opts.logger)

  const verifyKey = async () => {
    if ((await checkEncryptionKey(db, box)) === 'created') opts.logger?.info({ path: opts.path }, 'storage: created the encryption check value')
  }

  try {
    migrator.prepare()
    // Check the key before migrating, so a wrong key never changes the file.
    await verifyKey()
    if (opts.migrate ?? true) {
      migrator.up()
      await verifyKey()
    } else if (migrator.currentVersion() < (files.at(-1)?.version ?? 0)) {
      opts.logger?.warn({ path: opts.path, version: migrator.currentVersion() }, 'storage: the database has pending migrations')
    }
  } catch (err) {
    db.close()
    throw err
  }

  let closed = false
  return {
    ...createSubjectStore(db),
    ...createTotpStore(db, box),
    ...createWebauthnStore(db),
    ...createRegulationStore(db),
    ...createSessionStore(db),
    ...createIdentityVerificationStore(db),
    ...createConsentStore(db),
    ...createOidcStore(db),
    ...createSqliteImportStore(db, box),
    ...createClientAssertionStore(db),
    ...createLogoutSessionStore(db),

    async listMigrations() {
      return migrator.list()
    },
    async migrateUp(target) {
      const applied = migrator.up(target)
      await verifyKey()
      return applied
    },
    async migrateDown(target) {
      return migrator.down(target)
    },
    async ping() {
      try {
        return db.prepare('SELECT 1 AS ok').get() !== undefined
      } catch {
        return false
      }
    },
    async close() {
      if (closed) return
      closed = true
      db.close()
    },
  }
}

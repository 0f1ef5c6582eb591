import type { Connection } from 'mysql2/promise'
import type { MigrationInfo } from '../storage.js'
import { StorageError } from '../storage.js'
import type { MigrationFile, StorageLogger } from '../common/migration-files.js'
import { migrationLabel } from '../common/migration-files.js'
import { checkMigrationsShape, checkNotTooNew, mergeMigrationList, migrationsToApply, migrationsToRevert } from '../common/migration-plan.js'
import type { MysqlConnectionOptions } from './database.js'
import { connect, getLock, lockName, queryRows } from './database.js'

/**
 * Applies and reverts numbered SQL files (migrations/mysql, the same numbers as SQLite's), recorded
 * in `migrations`. Every operation holds a GET_LOCK named after the database on its own connection
 * (the only one allowed several statements per query), so instances starting together migrate one
 * after the other: the second finds the work done.
 *
 * MySQL commits each DDL statement by itself: a migration cannot be rolled back as a whole. A file
 * that fails part way is not recorded, and the error says so: restore the backup taken before.
 */
export class MysqlMigrator {
  readonly latest: number

  constructor(
    private readonly options: MysqlConnectionOptions,
    private readonly files: MigrationFile[],
    private readonly logger?: StorageLogger,
  ) {
    this.latest = files.at(-1)?.version ?? 0
  }

  /** Runs `fn` on a fresh connection holding the migration lock of this database. */
  async locked<T>(fn: (db: Connection) => Promise<T>): Promise<T> {
    const db = await connect(this.options, { multipleStatements: true })
    try {
      // Long: a first start may wait for another instance's whole migration.
      await getLock(db, lockName(`latchkey:${this.options.database}:migrations`), 600)
      return await fn(db)
    } finally {
      // Ending the session releases the lock.
      await db.end().catch(() => db.destroy())
    }
  }

  /**
   * Refuses a database this code cannot understand, and creates the bookkeeping table unless
   * `create` is false (listing and `doctor` leave a fresh database untouched).
   */
  async prepare(db: Connection, create = true): Promise<void> {
    const shape = await queryRows<{ column_name: string }>(
      db,
      "SELECT COLUMN_NAME AS column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'migrations'",
    )
    if (shape.length === 0) {
      if (!create) return
      await db.query(
        'CREATE TABLE IF NOT EXISTS migrations (version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin',
      )
    } else checkMigrationsShape(shape.map((c) => c.column_name), 'storage.mysql at a new database')
    checkNotTooNew(await this.currentVersion(db), this.latest)
  }

  async currentVersion(db: Connection): Promise<number> {
    if (!(await hasMigrationsTable(db))) return 0
    const [row] = await queryRows<{ version: number | null }>(db, 'SELECT MAX(version) AS version FROM migrations')
    return row?.version ?? 0
  }

  async list(db: Connection): Promise<MigrationInfo[]> {
    const applied = (await hasMigrationsTable(db)) ? await queryRows<{ version: number; name: string; applied_at: number }>(db, 'SELECT version, name, applied_at FROM migrations') : []
    return mergeMigrationList(this.files, applied)
  }

  async up(db: Connection, target = this.latest): Promise<number[]> {
    await this.prepare(db)
    const done: number[] = []
    for (const file of migrationsToApply(this.files, await this.currentVersion(db), target)) {
      await this.run(file, 'up', async () => {
        await db.query(file.up)
        await db.query('INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, UNIX_TIMESTAMP())', [file.version, file.name])
      })
      done.push(file.version)
    }
    return done
  }

  /** Reverts every applied migration above `target`, newest first; `target` itself stays. */
  async down(db: Connection, target: number): Promise<number[]> {
    await this.prepare(db)
    const applied = (await queryRows<{ version: number }>(db, 'SELECT version FROM migrations WHERE version > ? ORDER BY version DESC', [target])).map((r) => r.version)
    const done: number[] = []
    for (const file of migrationsToRevert(this.files, applied)) {
      await this.run(file, 'down', async () => {
        await db.query(file.down)
        await db.query('DELETE FROM migrations WHERE version = ?', [file.version])
      })
      done.push(file.version)
    }
    return done
  }

  private async run(file: MigrationFile, direction: 'up' | 'down', body: () => Promise<void>): Promise<void> {
    const label = migrationLabel(file)
    try {
      await body()
    } catch (err) {
      throw new StorageError(
        'MIGRATION_FAILED',
        `storage: migration ${label} (${direction}) failed and was not recorded; MySQL commits each schema change by itself, so the statements before the failing one stay applied (restore the backup taken before migrating): ${(err as Error).message}`,
      )
    }
    this.logger?.info({ version: file.version, name: file.name, direction }, `storage: migration ${label} ${direction === 'up' ? 'applied' : 'reverted'}`)
  }
}

async function hasMigrationsTable(db: Connection): Promise<boolean> {
  return (await queryRows(db, "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'migrations'")).length === 1
}

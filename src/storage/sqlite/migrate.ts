import type { MigrationInfo } from '../storage.js'
import { StorageError } from '../storage.js'
import type { MigrationFile, StorageLogger } from '../common/migration-files.js'
import { checkMigrationsShape, checkNotTooNew, mergeMigrationList, migrationsToApply, migrationsToRevert } from '../common/migration-plan.js'
import type { SqliteDatabase } from './database.js'

export type { MigrationFile, StorageLogger } from '../common/migration-files.js'

interface AppliedRow {
  version: number
  name: string
  applied_at: number
}

/** Applies and reverts numbered SQL files, each in its own transaction, recorded in `migrations`. */
export class Migrator {
  private readonly latest: number

  constructor(
    private readonly db: SqliteDatabase,
    private readonly files: MigrationFile[],
    private readonly logger?: StorageLogger,
  ) {
    this.latest = files.at(-1)?.version ?? 0
  }

  /** Creates the bookkeeping table and refuses a database this code cannot understand. */
  prepare(): void {
    const shape = this.db.prepare('SELECT name FROM pragma_table_info(?)').all('migrations') as Array<{ name: string }>
    if (shape.length === 0) {
      this.db.exec('CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)')
    } else checkMigrationsShape(shape.map((c) => c.name), 'storage.local.path at a new file')
    checkNotTooNew(this.currentVersion(), this.latest)
  }

  currentVersion(): number {
    const row = this.db.prepare('SELECT MAX(version) AS version FROM migrations').get() as { version: number | null }
    return row.version ?? 0
  }

  list(): MigrationInfo[] {
    return mergeMigrationList(this.files, this.db.prepare('SELECT version, name, applied_at FROM migrations').all() as AppliedRow[])
  }

  up(target = this.latest): number[] {
    this.prepare()
    const record = this.db.prepare("INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, CAST(strftime('%s', 'now') AS INTEGER))")
    const done: number[] = []
    for (const file of migrationsToApply(this.files, this.currentVersion(), target)) {
      this.run(file, 'up', () => {
        this.db.exec(file.up)
        record.run(file.version, file.name)
      })
      done.push(file.version)
    }
    return done
  }

  /** Reverts every applied migration above `target`, newest first; `target` itself stays. */
  down(target: number): number[] {
    this.prepare()
    const forget = this.db.prepare('DELETE FROM migrations WHERE version = ?')
    const applied = (this.db.prepare('SELECT version FROM migrations WHERE version > ? ORDER BY version DESC').all(target) as Array<{ version: number }>).map((r) => r.version)
    const done: number[] = []
    for (const file of migrationsToRevert(this.files, applied)) {
      this.run(file, 'down', () => {
        this.db.exec(file.down)
        forget.run(file.version)
      })
      done.push(file.version)
    }
    return done
  }

  private run(file: MigrationFile, direction: 'up' | 'down', body: () => void): void {
    const label = `${String(file.version).padStart(4, '0')}_${file.name}`
    try {
      this.db.transaction(body).immediate()
    } catch (err) {
      throw new StorageError('MIGRATION_FAILED', `storage: migration ${label} (${direction}) failed and was rolled back: ${(err as Error).message}`)
    }
    this.logger?.info({ version: file.version, name: file.name, direction }, `storage: migration ${label} ${direction === 'up' ? 'applied' : 'reverted'}`)
  }
}

import type { MigrationInfo } from '../storage.js'
import { StorageError } from '../storage.js'
import type { MigrationFile, StorageLogger } from '../common/migration-files.js'
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
    } else if (!['version', 'name', 'applied_at'].every((column) => shape.some((c) => c.name === column))) {
      // Authelia's own database also has a `migrations` table, with other columns.
      throw new StorageError(
        'NOT_LATCHKEY',
        'storage: this database was not created by Latchkey (its migrations table has another shape, as in an Authelia database): point storage.local.path at a new file',
      )
    }
    const current = this.currentVersion()
    if (current > this.latest) {
      throw new StorageError(
        'SCHEMA_TOO_NEW',
        `the database schema is at version ${current} but this Latchkey only knows up to ${this.latest}: upgrade Latchkey or restore a backup`,
      )
    }
  }

  currentVersion(): number {
    const row = this.db.prepare('SELECT MAX(version) AS version FROM migrations').get() as { version: number | null }
    return row.version ?? 0
  }

  list(): MigrationInfo[] {
    const all = new Map<number, MigrationInfo>()
    for (const file of this.files) all.set(file.version, { version: file.version, name: file.name })
    // Applied rows win: they also list versions this code no longer ships.
    for (const row of this.db.prepare('SELECT version, name, applied_at FROM migrations').all() as AppliedRow[]) {
      all.set(row.version, { version: row.version, name: row.name, appliedAt: row.applied_at })
    }
    return [...all.values()].sort((a, b) => a.version - b.version)
  }

  up(target = this.latest): number[] {
    this.prepare()
    if (target > this.latest) throw new StorageError('MIGRATION_FAILED', `storage: no migration ${target}; the latest is ${this.latest}`)
    const current = this.currentVersion()
    const record = this.db.prepare("INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, CAST(strftime('%s', 'now') AS INTEGER))")
    const done: number[] = []
    for (const file of this.files) {
      if (file.version <= current || file.version > target) continue
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
    for (const version of applied) {
      const file = this.files.find((f) => f.version === version)
      if (file?.down === undefined) throw new StorageError('MIGRATION_FAILED', `storage: migration ${version} has no .down.sql file, cannot roll back past it`)
      this.run(file, 'down', () => {
        this.db.exec(file.down!)
        forget.run(version)
      })
      done.push(version)
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

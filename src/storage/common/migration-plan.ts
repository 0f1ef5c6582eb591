import type { MigrationInfo } from '../storage.js'
import { StorageError } from '../storage.js'
import type { MigrationFile } from './migration-files.js'

/**
 * What every backend's migrator decides the same way; each runs the SQL its own way (a SQLite or
 * PostgreSQL transaction, MySQL's statement-by-statement commits).
 */

/** Refuses another program's `migrations` table (Authelia's has other columns). */
export function checkMigrationsShape(columns: readonly string[], newTarget: string): void {
  if (['version', 'name', 'applied_at'].every((column) => columns.includes(column))) return
  throw new StorageError(
    'NOT_LATCHKEY',
    `storage: this database was not created by Latchkey (its migrations table has another shape, as in an Authelia database): point ${newTarget}`,
  )
}

export function checkNotTooNew(version: number, latest: number): void {
  if (version <= latest) return
  throw new StorageError('SCHEMA_TOO_NEW', `the database schema is at version ${version} but this Latchkey only knows up to ${latest}: upgrade Latchkey or restore a backup`)
}

/** Shipped and applied migrations, oldest first; applied rows win (they also list versions this code no longer ships). */
export function mergeMigrationList(files: readonly MigrationFile[], applied: ReadonlyArray<{ version: number; name: string; applied_at: number }>): MigrationInfo[] {
  const all = new Map<number, MigrationInfo>()
  for (const file of files) all.set(file.version, { version: file.version, name: file.name })
  for (const row of applied) all.set(row.version, { version: row.version, name: row.name, appliedAt: row.applied_at })
  return [...all.values()].sort((a, b) => a.version - b.version)
}

/** The files to apply, in order, from `current` up to `target`. */
export function migrationsToApply(files: readonly MigrationFile[], current: number, target: number): MigrationFile[] {
  const latest = files.at(-1)?.version ?? 0
  if (target > latest) throw new StorageError('MIGRATION_FAILED', `storage: no migration ${target}; the latest is ${latest}`)
  return files.filter((file) => file.version > current && file.version <= target)
}

/** The files to revert for these applied versions (newest first), each with its down SQL. */
export function migrationsToRevert(files: readonly MigrationFile[], appliedNewestFirst: readonly number[]): Array<MigrationFile & { down: string }> {
  return appliedNewestFirst.map((version) => {
    const file = files.find((f) => f.version === version)
    if (file?.down === undefined) throw new StorageError('MIGRATION_FAILED', `storage: migration ${version} has no .down.sql file, cannot roll back past it`)
    return file as MigrationFile & { down: string }
  })
}

/** The part of a server backend's migrator that opening a database needs. */
export interface SchemaMigrator<D> {
  readonly latest: number
  prepare(db: D, create?: boolean): Promise<void>
  currentVersion(db: D): Promise<number>
  up(db: D): Promise<unknown>
}

/**
 * Opening a server database, the same for every backend: prepare the migrations table, check the
 * encryption key before any change (a wrong key never alters the database), migrate and check again;
 * or, with migrations off, only warn that some are pending.
 */
export async function openSchema<D>(migrator: SchemaMigrator<D>, db: D, verifyKey: (db: D) => Promise<void>, migrate: boolean, warnPending: (version: number) => void): Promise<void> {
  await migrator.prepare(db, migrate)
  await verifyKey(db)
  if (migrate) {
    await migrator.up(db)
    await verifyKey(db)
    return
  }
  const version = await migrator.currentVersion(db)
  if (version < migrator.latest) warnPending(version)
}

import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { projectRoot } from '../../common/project-root.js'
import { StorageError } from '../storage.js'

export interface MigrationFile {
  version: number
  name: string
  up: string
  down?: string
}

export interface StorageLogger {
  info(obj: object | string, msg?: string): void
  warn(obj: object | string, msg?: string): void
  /** Optional: connection-level detail an admin only needs when debugging. */
  debug?(obj: object | string, msg?: string): void
}

const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$/

/**
 * migrations/<engine> beside package.json, wherever the code runs from (src/, dist/ or the bundle).
 * Every engine has the same numbers: version N means the same schema on each.
 */
export function defaultMigrationsDir(engine: 'sqlite' | 'postgres' | 'mysql'): string {
  return join(projectRoot(), 'migrations', engine)
}

export function readMigrationFiles(dir: string): MigrationFile[] {
  const byVersion = new Map<number, { name: string; up?: string; down?: string }>()
  for (const file of readdirSync(dir)) {
    const match = FILE_PATTERN.exec(file)
    if (!match) continue
    const version = Number(match[1])
    const entry = byVersion.get(version) ?? { name: match[2]! }
    if (entry.name !== match[2]) throw new StorageError('MIGRATION_FAILED', `storage: migration ${match[1]} has two names (${entry.name}, ${match[2]})`)
    entry[match[3] as 'up' | 'down'] = readFileSync(join(dir, file), 'utf8')
    byVersion.set(version, entry)
  }
  return [...byVersion.entries()]
    .sort(([a], [b]) => a - b)
    .map(([version, entry]) => {
      if (entry.up === undefined) throw new StorageError('MIGRATION_FAILED', `storage: migration ${version} has no .up.sql file`)
      return { version, name: entry.name, up: entry.up, down: entry.down }
    })
}

export const migrationLabel = (file: MigrationFile): string => `${String(file.version).padStart(4, '0')}_${file.name}`

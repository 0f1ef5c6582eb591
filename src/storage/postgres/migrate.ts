import type { MigrationInfo } from '../storage.js'
import { StorageError } from '../storage.js'
import type { MigrationFile, StorageLogger } from '../common/migration-files.js'
import { migrationLabel } from '../common/migration-files.js'
import { checkMigrationsShape, checkNotTooNew, mergeMigrationList, migrationsToApply, migrationsToRevert } from '../common/migration-plan.js'
import type { PgClient, PgPool } from './database.js'
import { queryRows } from './database.js'

/**
 * Applies and reverts numbered SQL files (migrations/postgres, the same numbers as SQLite's), each
 * in its own transaction, recorded in `migrations`. Every operation holds a session advisory lock
 * named after the schema, so instances starting together migrate one after the other: the second
 * finds the work done.
 */
export class PgMigrator {
  readonly latest: number

  constructor(
    private readonly pool: PgPool,
    private readonly schema: string,
    private readonly files: MigrationFile[],
    private readonly logger?: StorageLogger,
  ) {
    this.latest = files.at(-1)?.version ?? 0
  }

  /** Runs `fn` on one connection holding the migration lock of this schema. */
  async locked<T>(fn: (client: PgClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect()
    const key = `latchkey:migrations:${this.schema}`
    try {
      await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key])
      try {
        return await fn(client)
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key])
      }
    } finally {
      client.release()
    }
  }

  /**
   * Refuses a database this code cannot understand, and creates the bookkeeping table unless
   * `create` is false (listing and `doctor` leave a fresh database untouched).
   */
  async prepare(client: PgClient, create = true): Promise<void> {
    const [current] = await queryRows<{ schema: string | null }>(client, 'SELECT current_schema() AS schema')
    if (!current?.schema) {
      throw new StorageError(
        'OPEN_FAILED',
        `storage: the schema '${this.schema}' does not exist in this database (hint: CREATE SCHEMA ${this.schema} AUTHORIZATION <username>; or leave storage.postgres.schema unset for 'public')`,
      )
    }
    // pg_catalog, not information_schema: its views cost ~50 ms per query on a busy server.
    const shape = await queryRows<{ column_name: string }>(
      client,
      "SELECT attname AS column_name FROM pg_attribute WHERE attrelid = to_regclass('migrations') AND attnum > 0 AND NOT attisdropped",
    )
    if (shape.length === 0) {
      if (!create) return
      await client.query('CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)')
    } else checkMigrationsShape(shape.map((c) => c.column_name), 'storage.postgres at a new database or schema')
    checkNotTooNew(await this.currentVersion(client), this.latest)
  }

  async currentVersion(client: PgClient): Promise<number> {
    if (!(await hasMigrationsTable(client))) return 0
    const [row] = await queryRows<{ version: number | null }>(client, 'SELECT MAX(version) AS version FROM migrations')
    return row?.version ?? 0
  }

  async list(client: PgClient): Promise<MigrationInfo[]> {
    const applied = (await hasMigrationsTable(client))
      ? await queryRows<{ version: number; name: string; applied_at: number }>(client, 'SELECT version, name, applied_at FROM migrations')
      : []
    return mergeMigrationList(this.files, applied)
  }

  async up(client: PgClient, target = this.latest): Promise<number[]> {
    await this.prepare(client)
    const done: number[] = []
    for (const file of migrationsToApply(this.files, await this.currentVersion(client), target)) {
      await this.run(client, file, 'up', async () => {
        await client.query(file.up)
        await client.query('INSERT INTO migrations (version, name, applied_at) VALUES ($1, $2, EXTRACT(EPOCH FROM now())::bigint)', [file.version, file.name])
      })
      done.push(file.version)
    }
    return done
  }

  /** Reverts every applied migration above `target`, newest first; `target` itself stays. */
  async down(client: PgClient, target: number): Promise<number[]> {
    await this.prepare(client)
    const applied = (await queryRows<{ version: number }>(client, 'SELECT version FROM migrations WHERE version > $1 ORDER BY version DESC', [target])).map((r) => r.version)
    const done: number[] = []
    for (const file of migrationsToRevert(this.files, applied)) {
      await this.run(client, file, 'down', async () => {
        await client.query(file.down)
        await client.query('DELETE FROM migrations WHERE version = $1', [file.version])
      })
      done.push(file.version)
    }
    return done
  }

  private async run(client: PgClient, file: MigrationFile, direction: 'up' | 'down', body: () => Promise<void>): Promise<void> {
    const label = migrationLabel(file)
    try {
      await client.query('BEGIN')
      await body()
      await client.query('COMMIT')
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined)
      throw new StorageError('MIGRATION_FAILED', `storage: migration ${label} (${direction}) failed and was rolled back: ${(err as Error).message}`)
    }
    this.logger?.info({ version: file.version, name: file.name, direction }, `storage: migration ${label} ${direction === 'up' ? 'applied' : 'reverted'}`)
  }
}

async function hasMigrationsTable(client: PgClient): Promise<boolean> {
  return (await queryRows<{ found: boolean }>(client, "SELECT to_regclass('migrations') IS NOT NULL AS found"))[0]!.found
}

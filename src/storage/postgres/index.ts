import { createPgClientAssertionStore } from './client-assertions.js'
import { createSecretBox } from '../../common/secret-box.js'
import { createPgImportStore } from './import.js'
import type { StorageLogger } from '../common/migration-files.js'
import { defaultMigrationsDir, readMigrationFiles } from '../common/migration-files.js'
import { checkEncryptionKey } from '../common/encryption-check.js'
import type { Storage } from '../storage.js'
import { StorageError } from '../storage.js'
import { createPgConsentStore } from './consent.js'
import type { PgClient, PgConnectionOptions } from './database.js'
import { connectionError, createPool, describeServer, endPool, execute, queryRows } from './database.js'
import { createPgIdentityVerificationStore } from './identity-verification.js'
import { createPgLogoutSessionStore } from './logout-sessions.js'
import { PgMigrator } from './migrate.js'
import { createPgRegulationStore, createPgSessionStore, createPgSubjectStore } from './misc.js'
import { createPgOidcStore } from './oidc.js'
import { createPgTotpStore } from './totp.js'
import { openSchema } from '../common/migration-plan.js'
import { createPgWebauthnStore } from './webauthn.js'

export type { PgConnectionOptions } from './database.js'

export interface PostgresStorageOptions extends PgConnectionOptions {
  /** storage.encryption_key: seals TOTP secrets and is checked against the database at open. */
  encryptionKey: string
  /** Apply pending migrations at open (default true); the CLI passes false to list or roll back. */
  migrate?: boolean
  logger?: StorageLogger
  /** Defaults to migrations/postgres at the package root. */
  migrationsDir?: string
}

/**
 * Connects a pool to PostgreSQL, refuses a schema newer than this code and a wrong encryption key,
 * and applies pending migrations, all under the schema's migration lock so several instances can
 * start together. Each method is atomic across every process sharing the database (see oidc.ts).
 */
export async function openPostgresStorage(opts: PostgresStorageOptions): Promise<Storage> {
  if (opts.encryptionKey.length === 0) throw new StorageError('OPEN_FAILED', 'storage: storage.encryption_key is empty')
  const box = createSecretBox(opts.encryptionKey)
  const files = readMigrationFiles(opts.migrationsDir ?? defaultMigrationsDir('postgres'))
  const server = describeServer(opts)
  // The pool replaces a dropped idle connection on the next query. Debug only: when the server
  // went away the availability monitor writes the one line per outage (server/availability.ts).
  const lostIdle = (err: Error) => opts.logger?.debug?.({ err: err.message }, `storage: lost an idle connection to ${server}`)
  const pool = createPool(opts, lostIdle)
  const ephemeral = createPool(opts, lostIdle, 'ephemeral')
  const migrator = new PgMigrator(pool, opts.schema, files, opts.logger)

  const verifyKey = async (client: PgClient) => {
    const result = await checkEncryptionKey(
      {
        tableExists: async () => (await queryRows<{ found: boolean }>(client, "SELECT to_regclass('encryption') IS NOT NULL AS found"))[0]!.found,
        read: async (name) => (await queryRows<{ value: Buffer }>(client, 'SELECT value FROM encryption WHERE name = $1', [name]))[0]?.value,
        insertIfMissing: async (name, value) => {
          await execute(client, 'INSERT INTO encryption (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, value])
        },
      },
      box,
    )
    if (result === 'created') opts.logger?.info({ server }, 'storage: created the encryption check value')
  }

  try {
    await migrator.locked((client) =>
      openSchema(migrator, client, verifyKey, opts.migrate ?? true, (version) => opts.logger?.warn({ server, version }, 'storage: the database has pending migrations')),
    )
  } catch (err) {
    await Promise.all([endPool(pool), endPool(ephemeral)]).catch(() => undefined)
    throw err instanceof StorageError ? err : connectionError(opts, err)
  }

  let closed = false
  return {
    ...createPgSubjectStore(pool),
    ...createPgTotpStore(pool, box),
    ...createPgWebauthnStore(pool),
    ...createPgRegulationStore(pool),
    ...createPgSessionStore(ephemeral),
    ...createPgIdentityVerificationStore(pool),
    ...createPgConsentStore(pool),
    ...createPgOidcStore(ephemeral),
    // Devices, subjects and consents are durable state: the durable pool.
    ...createPgImportStore(pool, box),
    // A client assertion's jti guards against replay until the assertion expires: durable, like bans.
    ...createPgClientAssertionStore(pool),
    // Sign-ins per session are sign-in artifacts, like sessions and tokens.
    ...createPgLogoutSessionStore(ephemeral),

    async listMigrations() {
      return migrator.locked((client) => migrator.list(client))
    },
    async migrateUp(target) {
      return migrator.locked(async (client) => {
        const applied = await migrator.up(client, target)
        await verifyKey(client)
        return applied
      })
    },
    async migrateDown(target) {
      return migrator.locked((client) => migrator.down(client, target))
    },
    async ping() {
      if (closed) return false
      try {
        const answers = await Promise.all([pool, ephemeral].map((p) => queryRows(p, 'SELECT 1 AS ok')))
        return answers.every((rows) => rows.length === 1)
      } catch {
        return false
      }
    },
    async close() {
      if (closed) return
      closed = true
      await Promise.all([endPool(pool), endPool(ephemeral)])
    },
  }
}

import type { StorageConfig } from '../config/schema.js'
import type { Storage } from './storage.js'
import type { StorageLogger } from './sqlite/index.js'
import { openSqliteStorage } from './sqlite/index.js'

export type * from './storage.js'
export { StorageError } from './storage.js'
export { openSqliteStorage } from './sqlite/index.js'
export type { SqliteStorageOptions, StorageLogger } from './sqlite/index.js'

/** Opens the configured backend, migrated. Only `local` (SQLite) exists in this version. */
export async function openStorage(config: StorageConfig, logger?: StorageLogger): Promise<Storage> {
  if (config.local) return openSqliteStorage({ path: config.local.path, encryptionKey: config.encryptionKey, logger })
  throw new Error('storage: only the local (SQLite) backend is available in this version; PostgreSQL support is planned')
}

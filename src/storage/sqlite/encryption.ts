import type { SecretBox } from '../../common/secret-box.js'
import { checkEncryptionKey as check } from '../common/encryption-check.js'
import type { SqliteDatabase } from './database.js'

/** The shared check (common/encryption-check.ts) on the SQLite `encryption` table. */
export function checkEncryptionKey(db: SqliteDatabase, box: SecretBox): Promise<'created' | 'verified' | 'skipped'> {
  return check(
    {
      tableExists: async () => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get('encryption') !== undefined,
      read: async (name) => (db.prepare('SELECT value FROM encryption WHERE name = ?').get(name) as { value: Buffer } | undefined)?.value,
      insertIfMissing: async (name, value) => {
        db.prepare('INSERT OR IGNORE INTO encryption (name, value) VALUES (?, ?)').run(name, value)
      },
    },
    box,
  )
}

import type { SecretBox } from '../../common/secret-box.js'
import { SecretBoxError } from '../../common/secret-box.js'
import { StorageError } from '../storage.js'
import type { SqliteDatabase } from './database.js'

const CHECK_NAME = 'check'
const CHECK_PLAINTEXT = Buffer.from('latchkey encryption check', 'utf8')
// Distinct from any username (which is the associated data of TOTP secrets).
const CHECK_AAD = '\u0000latchkey-encryption-check'

/**
 * Verifies the configured key against the sealed constant in `encryption`, creating it on a fresh
 * database, so a wrong storage.encryption_key stops start-up rather than every TOTP sign-in.
 * Does nothing while the table does not exist yet (migrate: false on an empty file).
 */
export function checkEncryptionKey(db: SqliteDatabase, box: SecretBox): 'created' | 'verified' | 'skipped' {
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get('encryption')
  if (!exists) return 'skipped'
  const row = db.prepare('SELECT value FROM encryption WHERE name = ?').get(CHECK_NAME) as { value: Buffer } | undefined
  if (!row) {
    // OR IGNORE: two processes opening a fresh file at once both try to create it; the re-read
    // below then checks whichever won.
    db.prepare('INSERT OR IGNORE INTO encryption (name, value) VALUES (?, ?)').run(CHECK_NAME, box.seal(CHECK_PLAINTEXT, CHECK_AAD))
    const stored = db.prepare('SELECT value FROM encryption WHERE name = ?').get(CHECK_NAME) as { value: Buffer }
    verify(box, stored.value)
    return 'created'
  }
  verify(box, row.value)
  return 'verified'
}

function verify(box: SecretBox, sealed: Buffer): void {
  let opened: Buffer
  try {
    opened = box.open(sealed, CHECK_AAD)
  } catch (err) {
    if (!(err instanceof SecretBoxError)) throw err
    throw mismatch()
  }
  if (!opened.equals(CHECK_PLAINTEXT)) throw mismatch()
}

const mismatch = () =>
  new StorageError(
    'ENCRYPTION_KEY_MISMATCH',
    'storage.encryption_key does not match the key this database was created with (the encryption check value failed to decrypt): restore the original key',
  )

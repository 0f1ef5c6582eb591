import type { SecretBox } from '../../common/secret-box.js'
import { SecretBoxError } from '../../common/secret-box.js'
import { StorageError } from '../storage.js'

/** The row name of the check value in every backend's `encryption` table. */
export const ENCRYPTION_CHECK_NAME = 'check'
const CHECK_PLAINTEXT = Buffer.from('latchkey encryption check', 'utf8')
// Distinct from any username (which is the associated data of TOTP secrets).
const CHECK_AAD = '\u0000latchkey-encryption-check'

/**
 * What a backend provides to the check: its `encryption` row access, nothing else. `insertIfMissing`
 * must not overwrite a value another process stored meanwhile (INSERT OR IGNORE, ON CONFLICT DO NOTHING).
 */
export interface EncryptionCheckRows {
  tableExists(): Promise<boolean>
  read(name: string): Promise<Buffer | undefined>
  insertIfMissing(name: string, value: Buffer): Promise<void>
}

/**
 * Verifies the configured key against the sealed constant in `encryption`, creating it on a fresh
 * database, so a wrong storage.encryption_key stops start-up rather than every TOTP sign-in.
 * Does nothing while the table does not exist yet (migrate: false on an empty database).
 */
export async function checkEncryptionKey(rows: EncryptionCheckRows, box: SecretBox): Promise<'created' | 'verified' | 'skipped'> {
  if (!(await rows.tableExists())) return 'skipped'
  const stored = await rows.read(ENCRYPTION_CHECK_NAME)
  if (stored !== undefined) {
    verify(box, stored)
    return 'verified'
  }
  // Two processes opening a fresh database at once both try to create it; the re-read then
  // checks whichever won.
  await rows.insertIfMissing(ENCRYPTION_CHECK_NAME, box.seal(CHECK_PLAINTEXT, CHECK_AAD))
  const winner = await rows.read(ENCRYPTION_CHECK_NAME)
  if (winner === undefined) throw new StorageError('OPEN_FAILED', 'storage: the encryption check value could not be stored')
  verify(box, winner)
  return 'created'
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

import { randomBytes } from 'node:crypto'
import { closeSync, fchownSync, fsyncSync, openSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { isAlias, isMap, isScalar, parseDocument, Scalar } from 'yaml'
import type { FileBackendConfig } from '../config/schema.js'
import { MAX_USERS_FILE_BYTES, parseUsersFile } from './users-file.js'

/**
 * Writes one user's new password digest into the users file (password reset) without losing anybody
 * else's edit (docs/security.md G4):
 * - Writers take `<file>.lock` (created exclusively; one left behind by a dead process is taken over
 *   after `staleLockMs`). Two Latchkey instances, or a script that takes the same lock, never
 *   interleave: each reads the file afresh under the lock.
 * - Only the bytes of that user's `password` value change: comments, order, quoting and every
 *   other user stay exactly as they were. The result must parse, and parse to the same users with
 *   only that password different, or nothing is written.
 * - The new text goes to a temporary file in the same folder (same mode, same owner when allowed),
 *   synced, then renamed over the file: a reader sees the old file or the new one, never half.
 * - An editor that does not take the lock is caught by comparing the file before the rename with
 *   what was read: if it changed, the temporary file is dropped and the whole step runs again on
 *   the new text, so the edit is kept and the password still lands.
 * A symbolic link is followed and the file it names is replaced (the link stays).
 */

export class UsersFileWriteError extends Error {
  constructor(
    readonly code: 'USER_NOT_FOUND' | 'NOT_EDITABLE' | 'INVALID' | 'LOCKED' | 'CHANGING',
    message: string,
  ) {
    super(message)
    this.name = 'UsersFileWriteError'
  }
}

export interface WriteOptions {
  /** Longest wait for the lock (default 10 s). */
  lockTimeoutMs?: number
  /** A lock file older than this is taken to be left by a dead writer (default 30 s; a write holds it for milliseconds). */
  staleLockMs?: number
  /** Tests only: runs after the new text is ready and before the file is compared and replaced. */
  beforeCommit?: () => void | Promise<void>
}

const MAX_ROUNDS = 10

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function stampOf(path: string): string {
  const s = statSync(path, { bigint: true })
  return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`
}

/** Takes `<file>.lock`; resolves the function that releases it. */
export async function lockUsersFile(path: string, opts: Pick<WriteOptions, 'lockTimeoutMs' | 'staleLockMs'> = {}): Promise<() => void> {
  const lockPath = `${path}.lock`
  const token = `${process.pid} ${randomBytes(8).toString('hex')}\n`
  const deadline = Date.now() + (opts.lockTimeoutMs ?? 10_000)
  const stale = opts.staleLockMs ?? 30_000
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600)
      try {
        writeSync(fd, token)
      } finally {
        closeSync(fd)
      }
      return () => {
        try {
          // Only our own lock: one taken over as stale meanwhile belongs to someone else now.
          if (readFileSync(lockPath, 'utf8') === token) unlinkSync(lockPath)
        } catch {
          // Already gone.
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    try {
      if (Date.now() - statSync(lockPath).mtimeMs > stale) {
        unlinkSync(lockPath)
        continue
      }
    } catch {
      continue
    }
    if (Date.now() >= deadline) throw new UsersFileWriteError('LOCKED', `the users file is locked by another writer (${lockPath}); try again`)
    await sleep(wait + Math.floor(Math.random() * wait))
  }
}

/**
 * The text with `users.<username>.password` replaced by `digest`, everything else byte for byte.
 * Throws UsersFileWriteError when the user is not there, the value cannot be edited in place (an
 * alias or merge key), or the result would not be the same users with only that password changed.
 */
export function replacePasswordInText(text: string, username: string, digest: string, opts: Pick<FileBackendConfig, 'searchEmail' | 'searchCaseInsensitive'>): string {
  const doc = parseDocument(text, { uniqueKeys: false, merge: true })
  if (doc.errors.length) throw new UsersFileWriteError('INVALID', 'the users file does not parse')
  const root = doc.contents
  const users = isMap(root) ? root.get('users', true) : undefined
  const pair = isMap(users) ? users.items.find((p) => isScalar(p.key) && String(p.key.value) === username) : undefined
  if (!pair) throw new UsersFileWriteError('USER_NOT_FOUND', `user '${username}' is not in the users file`)
  const entry = pair.value
  const passwordPair = isMap(entry) ? entry.items.find((p) => isScalar(p.key) && p.key.value === 'password') : undefined
  const node = passwordPair?.value
  if (!node || isAlias(node) || !isScalar(node) || !node.range) {
    throw new UsersFileWriteError('NOT_EDITABLE', `the password of user '${username}' is not a plain value in the users file (an alias or merge key?)`)
  }
  const [start, end] = node.range
  const old = text.slice(start, end)
  let rendered: string
  switch (node.type) {
    case Scalar.PLAIN:
      rendered = digest
      break
    case Scalar.QUOTE_SINGLE:
      rendered = `'${digest}'`
      break
    default:
      // Double-quoted stays so; a block scalar becomes a double-quoted value on the same line.
      rendered = `"${digest}"${node.type === Scalar.QUOTE_DOUBLE ? '' : old.endsWith('\n') ? '\n' : ''}`
  }
  const next = text.slice(0, start) + rendered + text.slice(end)
  // The proof: the new text loads, and is the old content with exactly this one value changed.
  try {
    parseUsersFile(next, opts)
  } catch (err) {
    throw new UsersFileWriteError('INVALID', `the users file would not load after the change: ${(err as Error).message}`)
  }
  const before = doc.toJS({ maxAliasCount: 100 }) as { users: Record<string, Record<string, unknown>> }
  before.users[username]!.password = digest
  const after = parseDocument(next, { uniqueKeys: false, merge: true }).toJS({ maxAliasCount: 100 })
  if (!isDeepStrictEqual(before, after)) throw new UsersFileWriteError('NOT_EDITABLE', `the password of user '${username}' could not be replaced in place`)
  return next
}

/** Sets one user's password digest in the users file (see the module comment for the guarantees). */
export async function writeUserPassword(config: Pick<FileBackendConfig, 'path' | 'searchEmail' | 'searchCaseInsensitive'>, username: string, digest: string, opts: WriteOptions = {}): Promise<void> {
  const path = realpathSync(config.path)
  const release = await lockUsersFile(path, opts)
  try {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const stamp = stampOf(path)
      const info = statSync(path)
      if (info.size > MAX_USERS_FILE_BYTES) throw new UsersFileWriteError('INVALID', 'the users file is too large')
      const text = readFileSync(path, 'utf8')
      const next = replacePasswordInText(text, username, digest, config)
      const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
      const fd = openSync(tmp, 'wx', info.mode & 0o7777)
      try {
        try {
          fchownSync(fd, info.uid, info.gid)
        } catch {
          // Only root may give a file away; otherwise it is ours, as the old one presumably was.
        }
        writeSync(fd, next)
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
      await opts.beforeCommit?.()
      // Someone wrote without the lock after we read: start again from their text.
      if (stampOf(path) !== stamp || readFileSync(path, 'utf8') !== text) {
        unlinkSync(tmp)
        continue
      }
      renameSync(tmp, path)
      syncFolder(dirname(path))
      return
    }
    throw new UsersFileWriteError('CHANGING', 'the users file kept changing while the password was being written; try again')
  } finally {
    release()
  }
}

function syncFolder(dir: string): void {
  try {
    const fd = openSync(dir, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  } catch {
    // Not every platform can sync a folder; the rename is still atomic.
  }
}

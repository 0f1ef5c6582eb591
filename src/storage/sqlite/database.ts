import { mkdirSync, closeSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { findWriteProblem } from '../../common/writable.js'
import { StorageError } from '../storage.js'

export type SqliteDatabase = Database.Database
export type SqliteStatement = Database.Statement

/**
 * Opens the file with the PRAGMAs docs/security.md D1 relies on: WAL + synchronous=NORMAL survives
 * kill -9 with every commit intact (FULL is ~6× slower and only adds OS-crash durability);
 * busy_timeout lets the CLI and the server share the file.
 */
export function openDatabase(path: string): SqliteDatabase {
  try {
    if (path !== ':memory:') {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
      // Pre-create owner-only: SQLite gives the -wal and -shm files the database file's mode, and
      // the file holds sessions and sealed secrets.
      closeSync(openSync(path, 'a', 0o600))
    }
    const db = new Database(path)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.pragma('busy_timeout = 5000')
    db.pragma('foreign_keys = ON')
    // better-sqlite3 builds SQLite with a 16 MiB page cache, all of it held by the process once a
    // busy table has been walked; 8 MiB keeps the hot pages of sessions, codes and tokens (the OS
    // file cache serves the rest at no measurable cost: npm run bench) and the RSS ~10 MB lower.
    db.pragma('cache_size = -8192')
    return db
  } catch (err) {
    // Diagnosed only after a failure: permissions are the usual cause (a state folder nobody
    // created, a file left by root), and naming the owner and mode saves a guess.
    const denied = path === ':memory:' ? undefined : findWriteProblem(path)
    if (denied) throw new StorageError('NOT_WRITABLE', `storage: cannot open the SQLite database ${path}: ${denied.message} (hint: ${denied.hint})`)
    throw new StorageError('OPEN_FAILED', `storage: cannot open the SQLite database ${path}: ${(err as Error).message}`)
  }
}

/**
 * A statement prepared on first use and reused afterwards. Lazy because a store is built before
 * its tables may exist (migrate: false, or after migrateDown); SQLite re-prepares it by itself
 * when the schema changes under it.
 */
export function lazyPrepare(db: SqliteDatabase, sql: string, opts: { raw?: boolean } = {}): () => SqliteStatement {
  let statement: SqliteStatement | undefined
  // raw: rows come back as arrays in column order, not objects (no per-row property creation).
  return () => (statement ??= opts.raw ? db.prepare(sql).raw(true) : db.prepare(sql))
}

export const toFlag = (value: boolean): 0 | 1 => (value ? 1 : 0)

/** Lists are JSON text in every table. */
export const toJsonList = (values: readonly string[]): string => JSON.stringify(values)
export const fromJsonList = (text: string): string[] => JSON.parse(text) as string[]

/** `undefined` is not bindable; optional columns hold NULL. */
export const orNull = <T>(value: T | undefined): T | null => (value === undefined ? null : value)
export const orUndefined = <T>(value: T | null): T | undefined => (value === null ? undefined : value)

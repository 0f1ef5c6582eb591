import { spawn } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { openSqliteStorage } from '../../src/storage/sqlite/index.js'
import { openStorage } from '../../src/storage/index.js'
import { openDatabase } from '../../src/storage/sqlite/database.js'
import type { Storage, TotpConfiguration } from '../../src/storage/storage.js'
import { StorageError } from '../../src/storage/storage.js'
import { runStorageContract } from '../storage-contract.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const KEY = 'a-very-long-test-encryption-key-of-64-characters-0123456789abcdef'
const NOW = 1_700_000_000

let dir: string
const tempDirs: string[] = []
const newDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'latchkey-sqlite-'))
  tempDirs.push(d)
  return d
}
afterEach(() => {
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

let contractPath = ''
runStorageContract(
  'sqlite',
  async () => openSqliteStorage({ path: (contractPath = join(newDir(), 'db.sqlite3')), encryptionKey: KEY }),
  // A second connection to the same file, as a second process would open it.
  { openPeer: () => openSqliteStorage({ path: contractPath, encryptionKey: KEY }) },
)

/** Rejection with a StorageError of this code. */
async function expectStorageError(promise: Promise<unknown>, code: StorageError['code']): Promise<StorageError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(StorageError)
  expect((err as StorageError).code).toBe(code)
  return err as StorageError
}

const base32 = (bytes: Buffer): string => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = 0
  let value = 0
  let out = ''
  for (const byte of bytes) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31]
  return out
}

const totp = (username: string, secret: Buffer): TotpConfiguration => ({
  username,
  issuer: 'Latchkey',
  algorithm: 'SHA1',
  digits: 6,
  periodSeconds: 30,
  secret,
  createdAt: NOW,
})

describe('sqlite storage', () => {
  let path: string
  let storage: Storage | undefined

  beforeEach(() => {
    dir = newDir()
    path = join(dir, 'nested', 'folder', 'db.sqlite3')
  })
  afterEach(async () => {
    await storage?.close()
    storage = undefined
  })

  test('a fresh database: the folder is created, owner-only, PRAGMAs set, schema at the latest version', async () => {
    const logs: unknown[] = []
    const logger = { info: (o: object | string, msg?: string) => logs.push([o, msg]), warn: (o: object | string, msg?: string) => logs.push([o, msg]) }
    storage = await openSqliteStorage({ path, encryptionKey: KEY, logger })
    expect(existsSync(path)).toBe(true)
    expect(statSync(path).mode & 0o077).toBe(0)
    expect(await storage.listMigrations()).toEqual([
      { version: 1, name: 'initial', appliedAt: expect.any(Number) },
      { version: 2, name: 'credential_fingerprint', appliedAt: expect.any(Number) },
      { version: 3, name: 'identity_codes', appliedAt: expect.any(Number) },
      { version: 4, name: 'regulation_indexes', appliedAt: expect.any(Number) },
      { version: 5, name: 'client_assertions_par', appliedAt: expect.any(Number) },
      { version: 6, name: 'webauthn', appliedAt: expect.any(Number) },
      { version: 7, name: 'logout_sessions', appliedAt: expect.any(Number) },
    ])
    expect(logs.length).toBeGreaterThan(0)
    const raw = new Database(path, { readonly: true })
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal')
    // Per connection: what the server's own connection runs with (8 MiB page cache, not 16: RSS).
    const own = openDatabase(path)
    expect([own.pragma('synchronous', { simple: true }), own.pragma('foreign_keys', { simple: true }), own.pragma('cache_size', { simple: true })]).toEqual([1, 1, -8192])
    own.close()
    const tables = (raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map((t) => t.name)
    expect(tables).toEqual(
      expect.arrayContaining(['migrations', 'encryption', 'user_opaque_identifier', 'totp_configurations', 'totp_history', 'authentication_logs', 'sessions', 'identity_verification', 'totp_pending_configurations', 'oauth2_consent_session', 'oauth2_consent_preconfiguration', 'oauth2_authorization_code', 'oauth2_token', 'webauthn_credentials', 'webauthn_challenges', 'user_preferences']),
    )
    raw.close()
  })

  test('opening twice re-runs nothing (idempotent migrations) and keeps data', async () => {
    storage = await openSqliteStorage({ path, encryptionKey: KEY })
    await storage.saveSession('sid', { level: 1, amr: ['pwd'], rememberMe: false, csrfToken: 't', createdAt: NOW, lastActivityAt: NOW }, NOW + 60, NOW)
    const first = await storage.listMigrations()
    await storage.close()
    storage = await openSqliteStorage({ path, encryptionKey: KEY })
    expect(await storage.listMigrations()).toEqual(first)
    expect(await storage.migrateUp()).toEqual([])
    expect(await storage.findSession('sid', NOW)).toBeDefined()
  })

  test('a schema newer than this code is refused with SCHEMA_TOO_NEW', async () => {
    storage = await openSqliteStorage({ path, encryptionKey: KEY })
    await storage.close()
    storage = undefined
    const raw = new Database(path)
    raw.prepare('INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, ?)').run(9999, 'future', NOW)
    raw.close()
    const err = await expectStorageError(openSqliteStorage({ path, encryptionKey: KEY }), 'SCHEMA_TOO_NEW')
    expect(err.message).toBe('the database schema is at version 9999 but this Latchkey only knows up to 7: upgrade Latchkey or restore a backup')
    await expectStorageError(openSqliteStorage({ path, encryptionKey: KEY, migrate: false }), 'SCHEMA_TOO_NEW')
  })

  test('an Authelia database is refused with a clear message, not a SQL error', async () => {
    const raw = new Database(path.replace('nested/folder/', ''))
    raw.exec('CREATE TABLE migrations (id INTEGER PRIMARY KEY, applied DATETIME, version_before INTEGER, version_after INTEGER, application_version TEXT)')
    raw.close()
    const err = await expectStorageError(openSqliteStorage({ path: path.replace('nested/folder/', ''), encryptionKey: KEY }), 'NOT_LATCHKEY')
    expect(err.message).toContain('not created by Latchkey')
  })

  test('migrate down to 0 then up again: tables dropped and recreated, statements still work', async () => {
    storage = await openSqliteStorage({ path, encryptionKey: KEY })
    await storage.saveSession('before', { level: 1, amr: [], rememberMe: false, csrfToken: 't', createdAt: NOW, lastActivityAt: NOW }, NOW + 60, NOW)
    expect(await storage.findSession('before', NOW)).toBeDefined()
    expect(await storage.migrateDown(0)).toEqual([7, 6, 5, 4, 3, 2, 1])
    expect(await storage.listMigrations()).toEqual([
      { version: 1, name: 'initial' },
      { version: 2, name: 'credential_fingerprint' },
      { version: 3, name: 'identity_codes' },
      { version: 4, name: 'regulation_indexes' },
      { version: 5, name: 'client_assertions_par' },
      { version: 6, name: 'webauthn' },
      { version: 7, name: 'logout_sessions' },
    ])
    await expect(storage.findSession('before', NOW)).rejects.toThrow(/no such table/)
    expect(await storage.migrateUp()).toEqual([1, 2, 3, 4, 5, 6, 7])
    expect(await storage.findSession('before', NOW)).toBeUndefined()
    await storage.saveTotpConfiguration(totp('alice', Buffer.alloc(20, 7)))
    expect((await storage.findTotpConfiguration('alice'))?.secret).toEqual(Buffer.alloc(20, 7))
    expect(await storage.migrateDown(7)).toEqual([])
    expect(await storage.migrateDown(1)).toEqual([7, 6, 5, 4, 3, 2])
    expect(await storage.migrateUp()).toEqual([2, 3, 4, 5, 6, 7])
  })

  test('migrate: false leaves an empty file unmigrated until migrateUp', async () => {
    const warnings: unknown[] = []
    storage = await openSqliteStorage({ path, encryptionKey: KEY, migrate: false, logger: { info: () => {}, warn: (o) => warnings.push(o) } })
    expect(await storage.listMigrations()).toEqual([
      { version: 1, name: 'initial' },
      { version: 2, name: 'credential_fingerprint' },
      { version: 3, name: 'identity_codes' },
      { version: 4, name: 'regulation_indexes' },
      { version: 5, name: 'client_assertions_par' },
      { version: 6, name: 'webauthn' },
      { version: 7, name: 'logout_sessions' },
    ])
    expect(warnings).toHaveLength(1)
    expect(await storage.migrateUp()).toEqual([1, 2, 3, 4, 5, 6, 7])
    expect(await storage.ensureSubjectIdentifier('', 'alice', 'sub-1')).toBe('sub-1')
  })

  test('a failing migration is rolled back whole and reported as MIGRATION_FAILED', async () => {
    const migrations = join(dir, 'migrations')
    cpSync(join(ROOT, 'migrations', 'sqlite'), migrations, { recursive: true })
    writeFileSync(join(migrations, '0099_broken.up.sql'), 'CREATE TABLE half_done (id INTEGER);\nTHIS IS NOT SQL;\n')
    writeFileSync(join(migrations, '0099_broken.down.sql'), 'DROP TABLE half_done;\n')
    const err = await expectStorageError(openSqliteStorage({ path, encryptionKey: KEY, migrationsDir: migrations }), 'MIGRATION_FAILED')
    expect(err.message).toContain('0099_broken')
    const raw = new Database(path, { readonly: true })
    expect(raw.prepare("SELECT name FROM sqlite_master WHERE name = 'half_done'").get()).toBeUndefined()
    expect(raw.prepare('SELECT MAX(version) AS v FROM migrations').get()).toEqual({ v: 7 })
    raw.close()
  })

  test('no TOTP secret is in clear in the row or anywhere in the database files (security.md F2)', async () => {
    storage = await openSqliteStorage({ path, encryptionKey: KEY })
    const secret = Buffer.from('0123456789abcdefghij0123456789ab', 'utf8')
    await storage.saveTotpConfiguration(totp('alice', secret))
    const b32 = base32(secret)
    const raw = new Database(path, { readonly: true })
    const row = raw.prepare('SELECT * FROM totp_configurations WHERE username = ?').get('alice') as Record<string, unknown>
    raw.close()
    const sealed = row.secret as Buffer
    expect(Buffer.isBuffer(sealed)).toBe(true)
    expect(sealed.length).toBe(12 + secret.length + 16)
    expect(sealed.includes(secret)).toBe(false)
    expect(JSON.stringify(row)).not.toContain(b32)
    for (const file of readdirSync(dirname(path))) {
      const bytes = readFileSync(join(dirname(path), file))
      expect(bytes.includes(secret), file).toBe(false)
      expect(bytes.includes(Buffer.from(b32)), file).toBe(false)
      expect(bytes.includes(Buffer.from(secret.toString('hex'))), file).toBe(false)
      expect(bytes.includes(Buffer.from(secret.toString('base64'))), file).toBe(false)
    }
    expect((await storage.findTotpConfiguration('alice'))?.secret).toEqual(secret)
  })

  test('a wrong encryption key is refused at open with ENCRYPTION_KEY_MISMATCH', async () => {
    storage = await openSqliteStorage({ path, encryptionKey: KEY })
    await storage.close()
    storage = undefined
    const err = await expectStorageError(openSqliteStorage({ path, encryptionKey: KEY + 'x' }), 'ENCRYPTION_KEY_MISMATCH')
    expect(err.message).toBe(
      'storage.encryption_key does not match the key this database was created with (the encryption check value failed to decrypt): restore the original key',
    )
    storage = await openSqliteStorage({ path, encryptionKey: KEY })
    expect(await storage.ping()).toBe(true)
  })

  test('a TOTP row copied to another user fails to decrypt with an error, not garbage', async () => {
    storage = await openSqliteStorage({ path, encryptionKey: KEY })
    await storage.saveTotpConfiguration(totp('alice', Buffer.alloc(20, 1)))
    await storage.saveTotpConfiguration(totp('mallory', Buffer.alloc(20, 2)))
    const raw = new Database(path)
    raw.prepare("UPDATE totp_configurations SET secret = (SELECT secret FROM totp_configurations WHERE username = 'alice') WHERE username = ?").run('mallory')
    raw.close()
    await expectStorageError(storage.findTotpConfiguration('mallory'), 'DECRYPT_FAILED')
    expect((await storage.findTotpConfiguration('alice'))?.secret).toEqual(Buffer.alloc(20, 1))
  })

  test('only hashes of session ids are stored', async () => {
    storage = await openSqliteStorage({ path, encryptionKey: KEY })
    const sid = 'raw-session-cookie-value-0123456789'
    await storage.saveSession(sid, { level: 1, amr: [], rememberMe: false, csrfToken: 't', createdAt: NOW, lastActivityAt: NOW }, NOW + 60, NOW)
    const raw = new Database(path, { readonly: true })
    const row = raw.prepare('SELECT id_hash FROM sessions').get() as { id_hash: string }
    raw.close()
    expect(row.id_hash).toMatch(/^[0-9a-f]{64}$/)
    for (const file of readdirSync(dirname(path))) expect(readFileSync(join(dirname(path), file)).includes(Buffer.from(sid))).toBe(false)
  })

  test('hostile strings in every id leave the database intact (security.md X4)', async () => {
    storage = await openSqliteStorage({ path, encryptionKey: KEY })
    const evil = "' OR '1'='1;-- DROP TABLE oauth2_token; --"
    expect(await storage.findSession(evil, NOW)).toBeUndefined()
    expect(await storage.findToken(evil, NOW)).toBeUndefined()
    expect(await storage.consumeAuthorizationCode(evil, evil, NOW)).toEqual({ kind: 'missing' })
    expect(await storage.consumeRefreshToken(evil, evil, NOW)).toEqual({ kind: 'missing' })
    expect(await storage.findConsentSession(evil)).toBeUndefined()
    expect(await storage.consumeIdentityVerification(evil, NOW)).toEqual({ kind: 'missing' })
    expect(await storage.ensureSubjectIdentifier(evil, evil, evil)).toBe(evil)
    expect(await storage.recordTotpUse(evil, 1, NOW)).toBe(true)
    await storage.revokeGrant(evil)
    const raw = new Database(path, { readonly: true })
    expect(raw.pragma('integrity_check', { simple: true })).toBe('ok')
    expect(raw.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'oauth2_token'").get()).toEqual({ n: 1 })
    raw.close()
  })

  test('a copy of the file opens elsewhere with the same key', async () => {
    storage = await openSqliteStorage({ path, encryptionKey: KEY })
    await storage.saveTotpConfiguration(totp('alice', Buffer.alloc(20, 3)))
    await storage.close()
    storage = undefined
    const copy = join(newDir(), 'copy.sqlite3')
    copyFileSync(path, copy)
    storage = await openSqliteStorage({ path: copy, encryptionKey: KEY })
    expect((await storage.findTotpConfiguration('alice'))?.secret).toEqual(Buffer.alloc(20, 3))
  })

  test('close is idempotent and ping then answers false', async () => {
    storage = await openSqliteStorage({ path, encryptionKey: KEY })
    await storage.close()
    await storage.close()
    expect(await storage.ping()).toBe(false)
    storage = undefined
  })

  test('an empty encryption key is refused', async () => {
    await expectStorageError(openSqliteStorage({ path, encryptionKey: '' }), 'OPEN_FAILED')
  })

  test('openStorage picks SQLite for local and names the keys when no backend is configured', async () => {
    storage = await openStorage({ encryptionKey: KEY, local: { path } })
    expect(await storage.ping()).toBe(true)
    await expect(openStorage({ encryptionKey: KEY })).rejects.toThrow('storage: no backend configured (storage.local, storage.postgres or storage.mysql)')
  })

  test('kill -9 mid-burst loses no reported commit and leaves integrity ok (security.md D1)', async () => {
    storage = await openSqliteStorage({ path, encryptionKey: KEY })
    await storage.close()
    storage = undefined
    const writer = join(ROOT, 'test', 'support', 'sqlite-writer.mjs')
    const BATCH = 50
    const reported: number[] = []
    for (let round = 0; round < 6; round++) {
      const killAfter = 3 + round * 7
      reported.push(await runAndKill(writer, [path, `round-${round}`, String(BATCH)], killAfter))
    }
    storage = await openSqliteStorage({ path, encryptionKey: KEY })
    const raw = new Database(path, { readonly: true })
    expect(raw.pragma('integrity_check', { simple: true })).toBe('ok')
    for (const [round, committed] of reported.entries()) {
      const { n } = raw.prepare('SELECT COUNT(*) AS n FROM authentication_logs WHERE username = ?').get(`round-${round}`) as { n: number }
      expect(n, `round ${round}`).toBeGreaterThanOrEqual(committed)
      // Whole transactions only: never a torn batch.
      expect(n % BATCH, `round ${round}`).toBe(0)
    }
    raw.close()
  }, 60_000)

  test('no prepare() call interpolates into SQL (security.md X4 lint)', () => {
    const offenders: string[] = []
    const walk = (folder: string): string[] =>
      readdirSync(folder, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(folder, e.name)) : e.name.endsWith('.ts') ? [join(folder, e.name)] : []))
    const files = walk(join(ROOT, 'src', 'storage'))
    expect(files.length).toBeGreaterThan(5)
    for (const file of files) {
      const text = readFileSync(file, 'utf8')
      // A template literal with ${…} as (part of) the argument of any *prepare( / exec( call.
      for (const m of text.matchAll(/(?:prepare|exec)\s*\(\s*`[^`]*\$\{/gi)) offenders.push(`${relative(ROOT, file)}: ${m[0].slice(0, 60)}`)
      for (const m of text.matchAll(/(?:prepare|exec)\s*\([^)]*`[^`]*\$\{/gi)) offenders.push(`${relative(ROOT, file)}: ${m[0].slice(0, 60)}`)
    }
    expect(offenders).toEqual([])
  })
})

/** Runs the writer, SIGKILLs it after `commits` reported commits, resolves the last reported total. */
function runAndKill(script: string, args: string[], commits: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let last = 0
    let seen = 0
    let buffer = ''
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.stdout.on('data', (d: Buffer) => {
      buffer += d.toString()
      const lines = buffer.split('\n')
      buffer = lines.pop()!
      for (const line of lines) {
        const m = /^committed (\d+)$/.exec(line)
        if (!m) continue
        last = Number(m[1])
        if (++seen === commits) child.kill('SIGKILL')
      }
    })
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer exited with ${code ?? signal}: ${stderr}`))
      else resolve(last)
    })
  })
}

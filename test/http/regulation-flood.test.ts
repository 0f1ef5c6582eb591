import Database from 'better-sqlite3'
import { afterEach, describe, expect, test } from 'vitest'
import { REFUSED_ATTEMPTS_RECORDED_PER_MINUTE } from '../../src/regulation/regulator.js'
import type { TestApp } from '../support/app.js'
import { Client, portalTestApp } from './portal-helpers.js'

let t: TestApp | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

/** The database's logical size (WAL included: a reader sees the newest snapshot). */
function databaseBytes(dir: string): number {
  const db = new Database(`${dir}/db.sqlite3`, { readonly: true })
  try {
    return (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number)
  } finally {
    db.close()
  }
}

describe('security.md B6: a flood of attempts on banned made-up names', () => {
  test('3,000 attempts from one address on five banned 256-character names grow the database by a bounded amount', async () => {
    t = await portalTestApp()
    const { app, clock, storage, dir } = t
    const names = Array.from({ length: 5 }, (_, i) => `${'x'.repeat(250)}-${String(i).padStart(5, '0')}`)
    // Each made-up name is banned by its own three failures (each costs a dummy hash).
    for (const name of names) for (let i = 0; i < 3; i++) await new Client(app).signIn(name, `guess-${i}`)
    const before = databaseBytes(dir)
    const started = clock.now()
    // 3,000 attempts over 250 s of clock time (the bans last 300 s): none costs a hash.
    for (let i = 0; i < 3000; i++) {
      const res = await new Client(app).signIn(names[i % names.length]!, 'password')
      expect(res.statusCode).toBe(401)
      if (i % 12 === 11) clock.advance(1)
    }
    const after = databaseBytes(dir)
    let refused = 0
    for (const name of names) refused += (await storage.listAuthenticationAttempts(name, started, 10_000)).filter((a) => a.banned).length
    // At most REFUSED_ATTEMPTS_RECORDED_PER_MINUTE rows per started minute of the flood, from one address.
    const minutes = Math.ceil((clock.now() - started + 1) / 60)
    expect(refused).toBeGreaterThan(0)
    expect(refused).toBeLessThanOrEqual(REFUSED_ATTEMPTS_RECORDED_PER_MINUTE * minutes)
    // Before the fix the same flood wrote 3,000 rows, about 1.8 MB.
    const grown = after - before
    console.info(`B6 flood: 3000 attempts on banned made-up names recorded ${refused} rows, database grew by ${grown} bytes`)
    expect(grown).toBeLessThan(128 * 1024)
  }, 120_000)
})

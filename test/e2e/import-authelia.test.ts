/**
 * After `latchkey storage import authelia` (the bundle, dist/latchkey.mjs), the real server signs
 * john in with a code from his Authelia TOTP secret and a relying party (openid-client) receives
 * the `sub` Authelia gave him. Authelia 4.39 SQLite into Latchkey SQLite, and Authelia 4.37.5
 * PostgreSQL into Latchkey PostgreSQL. Run `npm run build` before this file alone.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { ROOT } from '../support/app.js'
import type { AutheliaPgDatabase } from '../support/authelia.js'
import { AUTHELIA_KEY, createAutheliaPostgres, createAutheliaSqlite, JOHN_SECRET, JOHN_SUB } from '../support/authelia.js'
import type { BundleServer } from '../support/bundle-flow.js'
import { runBundleSignInAndCodeFlow } from '../support/bundle-flow.js'
import type { TestSchema } from '../support/postgres.js'
import { createTestSchema, PG_DATABASE, PG_HOST, PG_PORT, PG_USER, postgresAvailable } from '../support/postgres.js'

const MAIN = join(ROOT, 'dist/latchkey.mjs')
const pgAvailable = await postgresAvailable()

let dir: string
let server: BundleServer | undefined
let autheliaPg: AutheliaPgDatabase | undefined
let schema: TestSchema | undefined
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-import-e2e-'))
  writeFileSync(join(dir, 'authelia.key'), AUTHELIA_KEY)
})
afterEach(async () => {
  await server?.stop()
  server = undefined
  await autheliaPg?.drop()
  autheliaPg = undefined
  await schema?.drop()
  schema = undefined
  rmSync(dir, { recursive: true, force: true })
})

function importWith(source: string[]): (config: string) => void {
  return (config) => {
    const r = spawnSync(process.execPath, [MAIN, 'storage', 'import', 'authelia', '--config', config, ...source, '--encryption-key-file', 'authelia.key'], { cwd: dir, env: { PATH: process.env.PATH ?? '' }, encoding: 'utf8' })
    expect(r.stderr).toBe('')
    expect(r.stdout).toContain('Imported: 3 subject identifier(s), 2 TOTP device(s), 1 pre-configured consent(s), 1 WebAuthn credential(s), 2 second-factor preference(s).')
    expect(r.status).toBe(0)
  }
}

describe('signing in after the import from Authelia', () => {
  test('Authelia 4.39 SQLite into Latchkey SQLite: the old TOTP secret signs john in; userinfo carries his Authelia sub', async () => {
    createAutheliaSqlite(join(dir, 'authelia.sqlite3'), 20)
    const { sub } = await runBundleSignInAndCodeFlow(dir, '  local:\n    path: db.sqlite3\n', (s) => (server = s), { prepare: importWith(['--sqlite', 'authelia.sqlite3']), totpSecret: JOHN_SECRET })
    expect(sub).toBe(JOHN_SUB)
  })

  test.runIf(pgAvailable)('Authelia 4.37.5 PostgreSQL into Latchkey PostgreSQL: the same', async () => {
    autheliaPg = await createAutheliaPostgres(7)
    schema = await createTestSchema()
    const storage = `  postgres:\n    address: 'tcp://${PG_HOST}:${PG_PORT}'\n    database: ${PG_DATABASE}\n    schema: ${schema.name}\n    username: ${PG_USER}\n`
    const source = ['--postgres', `tcp://${PG_HOST}:${PG_PORT}`, '--database', autheliaPg.name, '--username', PG_USER]
    const { sub } = await runBundleSignInAndCodeFlow(dir, storage, (s) => (server = s), { prepare: importWith(source), totpSecret: JOHN_SECRET })
    expect(sub).toBe(JOHN_SUB)
  })
})

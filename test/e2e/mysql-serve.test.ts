/**
 * The bundled binary (dist/latchkey.mjs, mysql2 inside) serving on MySQL/MariaDB: a real sign-in
 * through the portal API (password, then TOTP registered by the CLI) and an OIDC code flow with
 * openid-client. `npm test` builds first; run `npm run build` before this file alone.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, test } from 'vitest'
import type { BundleServer } from '../support/bundle-flow.js'
import { runBundleSignInAndCodeFlow } from '../support/bundle-flow.js'
import type { TestDatabase } from '../support/mysql.js'
import { createTestDatabase, MYSQL_HOST, MYSQL_PORT, MYSQL_USER, mysqlAvailable } from '../support/mysql.js'

const available = await mysqlAvailable()

let dir: string
let db: TestDatabase
let server: BundleServer | undefined
beforeEach(async () => {
  if (!available) return
  dir = mkdtempSync(join(tmpdir(), 'latchkey-mysql-serve-'))
  db = await createTestDatabase()
})
afterEach(async () => {
  if (!available) return
  await server?.stop()
  server = undefined
  rmSync(dir, { recursive: true, force: true })
  await db.drop()
})

describe.runIf(available)('latchkey serve on MySQL/MariaDB (the bundle)', () => {
  test('signs in with password and TOTP, and completes an OIDC code flow with openid-client', async () => {
    const storage = `  mysql:\n    address: 'tcp://${MYSQL_HOST}:${MYSQL_PORT}'\n    database: ${db.name}\n    username: ${MYSQL_USER}\n`
    await runBundleSignInAndCodeFlow(dir, storage, (s) => (server = s))
  })
})

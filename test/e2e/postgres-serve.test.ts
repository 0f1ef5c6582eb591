/**
 * The bundled binary (dist/latchkey.mjs, pg inside, pg-native left out) serving on PostgreSQL: a
 * real sign-in through the portal API (password, then TOTP registered by the CLI) and an OIDC code
 * flow with openid-client. `npm test` builds first; run `npm run build` before this file alone.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, test } from 'vitest'
import type { BundleServer } from '../support/bundle-flow.js'
import { runBundleSignInAndCodeFlow } from '../support/bundle-flow.js'
import type { TestSchema } from '../support/postgres.js'
import { createTestSchema, PG_DATABASE, PG_HOST, PG_PORT, PG_USER, postgresAvailable } from '../support/postgres.js'

const available = await postgresAvailable()

let dir: string
let schema: TestSchema
let server: BundleServer | undefined
beforeEach(async () => {
  if (!available) return
  dir = mkdtempSync(join(tmpdir(), 'latchkey-pg-serve-'))
  schema = await createTestSchema()
})
afterEach(async () => {
  if (!available) return
  await server?.stop()
  server = undefined
  rmSync(dir, { recursive: true, force: true })
  await schema.drop()
})

describe.runIf(available)('latchkey serve on PostgreSQL (the bundle)', () => {
  test('signs in with password and TOTP, and completes an OIDC code flow with openid-client', async () => {
    const storage = `  postgres:\n    address: 'tcp://${PG_HOST}:${PG_PORT}'\n    database: ${PG_DATABASE}\n    schema: ${schema.name}\n    username: ${PG_USER}\n`
    await runBundleSignInAndCodeFlow(dir, storage, (s) => (server = s))
  })
})

/** The storage CLI, validate-config and doctor on storage.postgres (a fresh schema per test). */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { runCli } from '../../src/cli/index.js'
import type { CliIo } from '../../src/cli/io.js'
import { ROOT } from '../support/app.js'
import type { TestSchema } from '../support/postgres.js'
import { adminQuery, createTestSchema, PG_DATABASE, PG_HOST, PG_PORT, PG_USER, postgresAvailable } from '../support/postgres.js'

const available = await postgresAvailable()

let dir: string
let schema: TestSchema
beforeEach(async () => {
  if (!available) return
  dir = mkdtempSync(join(tmpdir(), 'latchkey-cli-pg-'))
  schema = await createTestSchema()
})
afterEach(async () => {
  if (!available) return
  rmSync(dir, { recursive: true, force: true })
  await schema.drop()
})

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env: {}, cwd: dir }
  const code = await runCli(argv, io)
  return { code, out, err }
}

/** The Kasm fixture on this test's PostgreSQL schema instead of SQLite. */
function postgresConfig(): string {
  copyFileSync(join(ROOT, 'fixtures/config/users_database.yml'), join(dir, 'users_database.yml'))
  const text = readFileSync(join(ROOT, 'fixtures/config/kasm-authelia.yml'), 'utf8').replace(
    /  local:\n    path: db\.sqlite3\n/,
    `  postgres:\n    address: 'tcp://${PG_HOST}:${PG_PORT}'\n    database: ${PG_DATABASE}\n    schema: ${schema.name}\n    username: ${PG_USER}\n`,
  )
  writeFileSync(join(dir, 'configuration.yml'), text)
  return join(dir, 'configuration.yml')
}

describe.runIf(available)('latchkey storage on PostgreSQL', () => {
  test('validate-config accepts it; migrate up, list and down work on the schema', async () => {
    const config = postgresConfig()
    expect((await cli('validate-config', '--config', config)).code).toBe(0)
    // doctor and list leave a fresh schema as it was.
    expect((await cli('doctor', '--config', config)).out).toMatch(/\[warning\] storage: .*schema at version 0, \d+ migration\(s\) pending/)
    expect(await adminQuery(`SELECT tablename FROM pg_tables WHERE schemaname = $1`, [schema.name])).toEqual([])
    expect((await cli('storage', 'migrate', 'list', '--config', config)).out).toMatch(/^Version  Applied +Name\n +1  pending +initial\n/)
    expect((await cli('storage', 'migrate', 'up', '--config', config, '--target', '1')).out).toBe('Applied migration 1.\n')
    const rest = await cli('storage', 'migrate', 'up', '--config', config)
    expect(rest.out).toMatch(/^Applied migrations 2(, \d+)*\.\n$/)
    const list = await cli('storage', 'migrate', 'list', '--config', config)
    expect(list.out).toMatch(/^Version  Applied +Name\n +1  \d{4}-\d\d-\d\dT[\d:]+Z +initial\n +2  \d{4}-\d\d-\d\dT[\d:]+Z +credential_fingerprint\n/)
    expect(list.out).not.toContain('pending')
    expect((await cli('storage', 'migrate', 'down', '--config', config, '--target', '1')).out).toMatch(/^Reverted migrations? (\d+, )*2\.\n$/)
  })

  test('user totp generate and delete, identifiers export, and doctor', async () => {
    const config = postgresConfig()
    const r = await cli('storage', 'user', 'totp', 'generate', 'john', '--config', config, '--secret', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP')
    expect(r).toEqual({
      code: 0,
      out: "Successfully generated TOTP configuration for user 'john' with URI 'otpauth://totp/example.com:john?algorithm=SHA1&digits=6&issuer=example.com&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'\n",
      err: '',
    })
    expect(await cli('storage', 'user', 'totp', 'generate', 'john', '--config', config)).toMatchObject({ code: 1, err: 'latchkey: john already has a TOTP configuration, use --force to overwrite\n' })
    expect(JSON.parse((await cli('storage', 'user', 'identifiers', 'export', '--config', config)).out)).toEqual({ identifiers: [] })
    const doctor = await cli('doctor', '--config', config)
    expect(doctor.out).toMatch(new RegExp(`\\[ok\\] +storage: PostgreSQL at ${PG_HOST.replace(/\./g, '\\.')}:${PG_PORT} \\(database ${PG_DATABASE}, schema ${schema.name}, user ${PG_USER}\\): opens, encryption key matches, schema current`))
    expect(await cli('storage', 'user', 'totp', 'delete', 'john', '--config', config)).toMatchObject({ code: 0, out: "Successfully deleted TOTP configuration for user 'john'\n" })
  })

  test('a wrong encryption key is one clear line', async () => {
    const config = postgresConfig()
    await cli('storage', 'migrate', 'up', '--config', config)
    writeFileSync(config, readFileSync(config, 'utf8').replace('a_very_long_insecure_storage_encryption_key_for_tests_only', 'another_key_that_is_long_enough_to_pass'))
    const r = await cli('storage', 'user', 'identifiers', 'export', '--config', config)
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^latchkey: storage.encryption_key does not match the key this database was created with/)
  })
})

/** The storage CLI, validate-config and doctor on storage.mysql (a fresh database per test). */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { runCli } from '../../src/cli/index.js'
import type { CliIo } from '../../src/cli/io.js'
import { writeKasmConfig } from '../support/bundle-flow.js'
import type { TestDatabase } from '../support/mysql.js'
import { adminQuery, createTestDatabase, MYSQL_HOST, MYSQL_PORT, MYSQL_USER, mysqlAvailable } from '../support/mysql.js'

const available = await mysqlAvailable()

let dir: string
let db: TestDatabase
beforeEach(async () => {
  if (!available) return
  dir = mkdtempSync(join(tmpdir(), 'latchkey-cli-mysql-'))
  db = await createTestDatabase()
})
afterEach(async () => {
  if (!available) return
  rmSync(dir, { recursive: true, force: true })
  await db.drop()
})

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env: {}, cwd: dir }
  return { code: await runCli(argv, io), out, err }
}

const mysqlConfig = (): string => writeKasmConfig(dir, `  mysql:\n    address: 'tcp://${MYSQL_HOST}:${MYSQL_PORT}'\n    database: ${db.name}\n    username: ${MYSQL_USER}\n`)

describe.runIf(available)('latchkey storage on MySQL/MariaDB', () => {
  test('validate-config accepts it; doctor and migrate list leave a fresh database untouched; migrate up, list and down work', async () => {
    const config = mysqlConfig()
    expect((await cli('validate-config', '--config', config)).code).toBe(0)
    expect((await cli('doctor', '--config', config)).out).toMatch(/\[warning\] storage: MySQL at .*schema at version 0, \d+ migration\(s\) pending.*mysqldump --single-transaction/)
    expect((await cli('storage', 'migrate', 'list', '--config', config)).out).toMatch(/^Version  Applied +Name\n +1  pending +initial\n/)
    expect(await adminQuery('SELECT table_name FROM information_schema.tables WHERE table_schema = ?', [db.name])).toEqual([])
    expect((await cli('storage', 'migrate', 'up', '--config', config, '--target', '1')).out).toBe('Applied migration 1.\n')
    expect((await cli('storage', 'migrate', 'up', '--config', config)).out).toMatch(/^Applied migrations 2(, \d+)*\.\n$/)
    const list = await cli('storage', 'migrate', 'list', '--config', config)
    expect(list.out).toMatch(/^Version  Applied +Name\n +1  \d{4}-\d\d-\d\dT[\d:]+Z +initial\n +2  \d{4}-\d\d-\d\dT[\d:]+Z +credential_fingerprint\n/)
    expect(list.out).not.toContain('pending')
    expect((await cli('storage', 'migrate', 'down', '--config', config, '--target', '1')).out).toMatch(/^Reverted migrations? (\d+, )*2\.\n$/)
  })

  test('user totp generate and delete, identifiers export, and doctor', async () => {
    const config = mysqlConfig()
    const r = await cli('storage', 'user', 'totp', 'generate', 'john', '--config', config, '--secret', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP')
    expect(r).toMatchObject({ code: 0, err: '', out: expect.stringMatching(/^Successfully generated TOTP configuration for user 'john' with URI 'otpauth:/) })
    expect(await cli('storage', 'user', 'totp', 'generate', 'john', '--config', config)).toMatchObject({ code: 1, err: 'latchkey: john already has a TOTP configuration, use --force to overwrite\n' })
    expect(JSON.parse((await cli('storage', 'user', 'identifiers', 'export', '--config', config)).out)).toEqual({ identifiers: [] })
    const doctor = await cli('doctor', '--config', config)
    expect(doctor.out).toContain(`[ok]`)
    expect(doctor.out).toMatch(new RegExp(`storage: MySQL at ${MYSQL_HOST.replace(/\./g, '\\.')}:${MYSQL_PORT} \\(database ${db.name}, user ${MYSQL_USER}\\): opens, encryption key matches, schema current`))
    expect(await cli('storage', 'user', 'totp', 'delete', 'john', '--config', config)).toMatchObject({ code: 0, out: "Successfully deleted TOTP configuration for user 'john'\n" })
  })

  test('a wrong encryption key is one clear line', async () => {
    const config = mysqlConfig()
    await cli('storage', 'migrate', 'up', '--config', config)
    writeFileSync(config, readFileSync(config, 'utf8').replace('a_very_long_insecure_storage_encryption_key_for_tests_only', 'another_key_that_is_long_enough_to_pass'))
    const r = await cli('storage', 'user', 'identifiers', 'export', '--config', config)
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^latchkey: storage.encryption_key does not match the key this database was created with/)
  })
})

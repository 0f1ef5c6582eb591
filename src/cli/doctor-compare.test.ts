import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, test } from 'vitest'
import { doctorCommand } from './doctor.js'
import type { CliIo } from './io.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const FIXTURES = join(ROOT, 'fixtures/config')
const KASM = readFileSync(join(FIXTURES, 'kasm-authelia.yml'), 'utf8')

let dir: string | undefined
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true })
  dir = undefined
})

/** One instance's folder: the Kasm fixture edited, with its own copy of the users file. */
function instance(name: string, edit: (text: string) => string = (t) => t, users: (text: string) => string = (t) => t): string {
  dir ??= mkdtempSync(join(tmpdir(), 'latchkey-compare-'))
  const folder = join(dir, name)
  mkdirSync(folder)
  // Instances share one database: the same absolute path (a relative one is per folder, and differs).
  writeFileSync(join(folder, 'configuration.yml'), edit(KASM.replace('path: db.sqlite3', `path: ${join(dir, 'shared.sqlite3')}`)))
  writeFileSync(join(folder, 'users_database.yml'), users(readFileSync(join(FIXTURES, 'users_database.yml'), 'utf8')))
  return join(folder, 'configuration.yml')
}

async function run(args: string[]): Promise<{ code: number; out: string }> {
  let out = ''
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (out += t), env: {}, cwd: dir ?? ROOT }
  return { code: await doctorCommand(args, io), out }
}

describe('latchkey doctor --compare', () => {
  test('two SQLite files are two databases: storage.local.path is named', async () => {
    const a = instance('a', (t) => t.replace(/path: \/.*shared\.sqlite3/, 'path: db.sqlite3'))
    const b = instance('b', (t) => t.replace(/path: \/.*shared\.sqlite3/, 'path: db.sqlite3'))
    const { code, out } = await run(['--compare', a, '--compare', b])
    expect(out).toContain('[problem] storage.local.path: differs between instances (1 vs 2)\n')
    expect(code).toBe(2)
  })

  test('instances that differ only in what is per machine agree', async () => {
    const a = instance('a')
    const b = instance('b', (t) => t.replace('port: 9091', 'port: 9092').replace('level: info', 'level: debug'))
    const { code, out } = await run(['--compare', a, '--compare', b])
    expect(out).toMatch(/\[ok\] +\d+ settings agree across the 2 instances/)
    expect(code).toBe(0)
  })

  test('differing secrets, clients, cookie domain and users are named by key path, never printed', async () => {
    const a = instance('a')
    const b = instance(
      'b',
      (t) =>
        t
          .replace('secret: insecure_session_secret_change_me_in_production', 'secret: another_session_secret_of_instance_b')
          .replace('hmac_secret: insecure_hmac_secret_for_tests_only_0123456789abcdef', 'hmac_secret: another_hmac_secret_for_instance_b_0123456789')
          .replace("secret: 'insecure-secret'", "secret: 'other-client-secret'")
          .replace('domain: example.com', 'domain: example.org'),
      (u) => u.replace('  harry:\n', '  harry:\n    disabled: true\n'),
    )
    const c = instance('c')
    const { code, out } = await run(['--compare', a, '--compare', b, '--compare', c])
    expect(code).toBe(2)
    expect(out).toContain('[problem] session.secret: differs between instances (1+3 vs 2); the value is a secret and is not shown\n')
    expect(out).toContain('[problem] identity_providers.oidc.hmac_secret: differs between instances (1+3 vs 2); the value is a secret and is not shown\n')
    expect(out).toContain('[problem] identity_providers.oidc.clients[id=kasm].secret: differs')
    expect(out).toContain('[problem] session.cookies[domain=example.com]: set in some instances only (1+3 vs 2)\n')
    expect(out).toContain('[problem] session.cookies[domain=example.org]: set in some instances only (1+3 vs 2)\n')
    expect(out).not.toContain('session.cookies[domain=example.com].name')
    expect(out).toContain('[problem] authentication_backend.file (content): differs between instances (1+3 vs 2)\n')
    for (const secret of ['another_session_secret', 'insecure_session_secret', 'another_hmac', 'insecure_hmac', 'other-client-secret', 'insecure-secret']) expect(out).not.toContain(secret)
  })

  test('several files per instance are merged before comparing; one instance alone is a usage error', async () => {
    const a = instance('a')
    const b = instance('b', (t) => t.replace('secret: insecure_session_secret_change_me_in_production', 'secret: wrong_session_secret_of_instance_b'))
    const fix = join(dirname(b), 'fix.yml')
    writeFileSync(fix, 'session:\n  secret: insecure_session_secret_change_me_in_production\n')
    expect((await run(['--compare', a, '--compare', b])).code).toBe(2)
    expect((await run(['--compare', a, '--compare', `${b},${fix}`])).code).toBe(0)
    await expect(run(['--compare', a])).rejects.toThrow('--compare needs at least two instances')
  })
})

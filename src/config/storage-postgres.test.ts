import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { ConfigError, formatProblem, loadConfig } from './load.js'
import { postgresOptions } from '../storage/index.js'

const KASM = readFileSync('fixtures/config/kasm-authelia.yml', 'utf8')

/** The Kasm fixture with its `storage.local` replaced by this `storage.postgres` block. */
function withPostgres(block: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-config-pg-'))
  writeFileSync(join(dir, 'users_database.yml'), readFileSync('fixtures/config/users_database.yml'))
  const text = KASM.replace(/  local:\n    path: db\.sqlite3\n/, `  postgres:\n${block.replace(/^/gm, '    ')}\n`)
  writeFileSync(join(dir, 'configuration.yml'), text)
  return join(dir, 'configuration.yml')
}

const load = (block: string, env: Record<string, string> = {}) => loadConfig({ files: [withPostgres(block)], env })
function errors(block: string): string[] {
  try {
    load(block)
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.filter((p) => p.severity === 'error').map((p) => formatProblem({ ...p, file: 'c.yml' }))
    throw e
  }
  return []
}

describe('storage.postgres', () => {
  test('the 4.37 keys load, with defaults for port, schema and timeout', () => {
    const { config, warnings } = load('host: db.example.com\ndatabase: latchkey\nusername: latchkey\npassword: pw')
    expect(config.storage.postgres).toEqual({ host: 'db.example.com', port: 5432, database: 'latchkey', schema: 'public', username: 'latchkey', password: 'pw', timeoutSeconds: 5 })
    expect(config.storage.local).toBeUndefined()
    // host and port are the 4.37 spelling: a deprecation warning names the 4.38 key.
    expect(warnings.map((p) => p.path)).toContain('storage.postgres.host')
  })

  test.each([
    ['tcp://db.example.com:5433', 'db.example.com', 5433],
    ['tcp://db.example.com', 'db.example.com', 5432],
    ['tcp4://192.0.2.7:6432', '192.0.2.7', 6432],
    ['tcp6://[2001:db8::1]:5432', '2001:db8::1', 5432],
    ['db.example.com:5434', 'db.example.com', 5434],
    ['unix:///run/postgresql', '/run/postgresql', 5432],
    ['unix:///var/run/postgresql/', '/var/run/postgresql', 5432],
    ['unix:///var/run/postgresql/.s.PGSQL.5433', '/var/run/postgresql', 5433],
  ])('address %s → host %s, port %i', (address, host, port) => {
    const { config } = load(`address: '${address}'\ndatabase: latchkey\nusername: latchkey`)
    expect(config.storage.postgres).toMatchObject({ host, port })
    // No password: peer or trust authentication (on the unix socket, typically).
    expect(config.storage.postgres!.password).toBeUndefined()
  })

  test('schema, timeout and tls load; the tls block becomes Node TLS options that verify the server', () => {
    const { config } = load(
      "address: tcp://db.example.com:5432\ndatabase: latchkey\nschema: auth\nusername: latchkey\ntimeout: 10s\ntls:\n  server_name: pg.internal\n  minimum_version: TLS1.3\n",
    )
    expect(config.storage.postgres).toMatchObject({ schema: 'auth', timeoutSeconds: 10, tls: { serverName: 'pg.internal', skipVerify: false, minimumVersion: 'TLS1.3' } })
    expect(postgresOptions(config.storage).ssl).toEqual({ servername: 'pg.internal', rejectUnauthorized: true, minVersion: 'TLSv1.3' })
    const plain = load('address: tcp://db.example.com:5432\ndatabase: latchkey\nusername: latchkey').config
    expect(postgresOptions(plain.storage).ssl).toBeUndefined()
  })

  test('the password comes from a _FILE variable like every secret', () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-pg-secret-'))
    writeFileSync(join(dir, 'pg-password'), 'from-a-file\n')
    const { config } = load('address: tcp://db:5432\ndatabase: latchkey\nusername: latchkey', { AUTHELIA_STORAGE_POSTGRES_PASSWORD_FILE: join(dir, 'pg-password') })
    expect(config.storage.postgres!.password).toBe('from-a-file')
  })

  test('bad values are reported with key path and line', () => {
    expect(errors('address: tcp://db:5432\nusername: latchkey')).toEqual([expect.stringMatching(/^c\.yml:\d+:\d+: storage\.postgres\.database: option 'database' is required$/)])
    expect(errors('address: unix://relative/path\ndatabase: d\nusername: u')).toEqual([expect.stringMatching(/storage\.postgres\.address: could not parse address 'unix:\/\/relative\/path'/)])
    expect(errors('address: tcp://db:70000\ndatabase: d\nusername: u')).toEqual([expect.stringMatching(/storage\.postgres\.address: the port must be between 1 and 65535, got 70000/)])
    expect(errors('address: tcp://db\ndatabase: d\nusername: u\ntls:\n  certificate_chain: not a pem\n')).toEqual([
      expect.stringMatching(/storage\.postgres\.tls\.private_key: option 'private_key' is required when option 'certificate_chain' is set/),
      expect.stringMatching(/storage\.postgres\.tls\.certificate_chain: option 'certificate_chain' must be PEM certificates/),
    ])
    expect(errors('address: tcp://db\ndatabase: d\nusername: u\nservers:\n  - address: tcp://db2\n')).toEqual([expect.stringMatching(/storage\.postgres\.servers: option 'servers' \(fail-over servers\) is not supported/)])
  })
})

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { ConfigError, formatProblem, loadConfig } from './load.js'
import { mysqlOptions } from '../storage/index.js'

const KASM = readFileSync('fixtures/config/kasm-authelia.yml', 'utf8')

/** The Kasm fixture with its `storage.local` replaced by this `storage.mysql` block. */
function withMysql(block: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-config-mysql-'))
  writeFileSync(join(dir, 'users_database.yml'), readFileSync('fixtures/config/users_database.yml'))
  const text = KASM.replace(/  local:\n    path: db\.sqlite3\n/, `  mysql:\n${block.replace(/^/gm, '    ')}\n`)
  writeFileSync(join(dir, 'configuration.yml'), text)
  return join(dir, 'configuration.yml')
}

const load = (block: string, env: Record<string, string> = {}) => loadConfig({ files: [withMysql(block)], env })
function errors(block: string): string[] {
  try {
    load(block)
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.filter((p) => p.severity === 'error').map((p) => formatProblem({ ...p, file: 'c.yml' }))
    throw e
  }
  return []
}

describe('storage.mysql', () => {
  test('the 4.37 keys load, with defaults for port and timeout', () => {
    const { config, warnings } = load('host: db.example.com\ndatabase: latchkey\nusername: latchkey\npassword: pw')
    expect(config.storage.mysql).toEqual({ host: 'db.example.com', port: 3306, database: 'latchkey', username: 'latchkey', password: 'pw', timeoutSeconds: 5 })
    expect(config.storage.local).toBeUndefined()
    // host and port are the 4.37 spelling: a deprecation warning names the 4.38 key.
    expect(warnings.map((p) => p.path)).toContain('storage.mysql.host')
  })

  test.each([
    ['tcp://db.example.com:3307', { host: 'db.example.com', port: 3307 }],
    ['tcp://db.example.com', { host: 'db.example.com', port: 3306 }],
    ['tcp4://192.0.2.7:3306', { host: '192.0.2.7', port: 3306 }],
    ['tcp6://[2001:db8::1]:3306', { host: '2001:db8::1', port: 3306 }],
    ['db.example.com:3308', { host: 'db.example.com', port: 3308 }],
    ['unix:///run/mysqld/mysqld.sock', { socketPath: '/run/mysqld/mysqld.sock' }],
    ['unix:///var/run/mysqld//mysqld.sock', { socketPath: '/var/run/mysqld/mysqld.sock' }],
  ])('address %s', (address, expected) => {
    const { config } = load(`address: '${address}'\ndatabase: latchkey\nusername: latchkey`)
    expect(config.storage.mysql).toMatchObject(expected)
    expect(mysqlOptions(config.storage)).toMatchObject(expected)
    // The password is optional in the file: it may come from a _FILE variable.
    expect(config.storage.mysql!.password).toBeUndefined()
  })

  test('timeout and tls load; the tls block becomes mysql2 options that verify the server and its name', () => {
    const { config } = load('address: tcp://db.example.com:3306\ndatabase: latchkey\nusername: latchkey\ntimeout: 10s\ntls:\n  server_name: db.example.com\n  minimum_version: TLS1.3\n')
    expect(config.storage.mysql).toMatchObject({ timeoutSeconds: 10, tls: { serverName: 'db.example.com', skipVerify: false, minimumVersion: 'TLS1.3' } })
    expect(mysqlOptions(config.storage)).toMatchObject({ connectTimeoutSeconds: 10, ssl: { rejectUnauthorized: true, verifyIdentity: true, minVersion: 'TLSv1.3' } })
    const plain = load('address: tcp://db.example.com:3306\ndatabase: latchkey\nusername: latchkey').config
    expect(mysqlOptions(plain.storage).ssl).toBeUndefined()
  })

  test('the password comes from a _FILE variable like every secret', () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-mysql-secret-'))
    writeFileSync(join(dir, 'mysql-password'), 'from-a-file\n')
    const { config } = load('address: tcp://db:3306\ndatabase: latchkey\nusername: latchkey', { AUTHELIA_STORAGE_MYSQL_PASSWORD_FILE: join(dir, 'mysql-password') })
    expect(config.storage.mysql!.password).toBe('from-a-file')
  })

  test('bad values are reported with key path and line', () => {
    expect(errors('address: tcp://db:3306\nusername: latchkey')).toEqual([expect.stringMatching(/^c\.yml:\d+:\d+: storage\.mysql\.database: option 'database' is required$/)])
    expect(errors('address: unix://relative/path\ndatabase: d\nusername: u')).toEqual([expect.stringMatching(/storage\.mysql\.address: could not parse address 'unix:\/\/relative\/path'/)])
    expect(errors('address: tcp://db:70000\ndatabase: d\nusername: u')).toEqual([expect.stringMatching(/storage\.mysql\.address: the port must be between 1 and 65535, got 70000/)])
    expect(errors('address: tcp://db\ndatabase: d\nusername: u\ntls:\n  server_name: other.example.com\n')).toEqual([
      expect.stringMatching(/storage\.mysql\.tls\.server_name: option 'server_name' must be the host connected to \('db'\) for mysql, got 'other\.example\.com'/),
    ])
    expect(errors("address: 'unix:///run/mysqld/mysqld.sock'\ndatabase: d\nusername: u\ntls:\n  skip_verify: true\n")).toEqual([expect.stringMatching(/storage\.mysql\.tls: option 'tls' does not apply to a unix socket address/)])
    expect(errors('address: tcp://db\ndatabase: d\nusername: u\nschema: x\n')).toEqual([expect.stringMatching(/storage\.mysql\.schema/)])
  })
})

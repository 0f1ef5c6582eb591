import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { afterEach, describe, expect, test } from 'vitest'
import { createTestPki } from '../../test/support/tls.js'
import { ConfigError, formatProblem, loadConfig, redactConfig, type ConfigProblem } from './load.js'

const KASM = readFileSync('fixtures/config/kasm-authelia.yml', 'utf8')

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
function tempDir(name: string): string {
  const d = mkdtempSync(join(tmpdir(), name))
  dirs.push(d)
  return d
}

/** The Kasm fixture with `redis` under `session` (indented two spaces) and optionally without the session secret. */
function withRedis(redis: string, opts: { secret?: boolean } = {}): { file: string; text: string } {
  let text = KASM.replace('  remember_me_duration: 1M\n', `  remember_me_duration: 1M\n  redis:\n${redis.replace(/^/gm, '    ')}\n`)
  if (opts.secret === false) text = text.replace('  secret: insecure_session_secret_change_me_in_production\n', '')
  const dir = tempDir('latchkey-redis-config-')
  writeFileSync(join(dir, 'configuration.yml'), text)
  writeFileSync(join(dir, 'users_database.yml'), 'users: {}\n')
  return { file: join(dir, 'configuration.yml'), text }
}

function errorsOf(file: string, env: Record<string, string> = {}): ConfigProblem[] {
  try {
    loadConfig({ files: [file], env })
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.filter((p) => p.severity === 'error')
    throw e
  }
  throw new Error('expected the configuration to fail')
}
const shown = (p: ConfigProblem) => formatProblem({ ...p, ...(p.file ? { file: basename(p.file) } : {}) })
const lineOf = (text: string, fragment: string) => text.split('\n').findIndex((l) => l.includes(fragment)) + 1

describe('session.redis', () => {
  test("only host: Authelia's defaults", () => {
    const { file } = withRedis('host: redis.internal')
    expect(loadConfig({ files: [file], env: {} }).config.session.redis).toEqual({
      host: 'redis.internal',
      port: 6379,
      databaseIndex: 0,
      timeoutSeconds: 5,
      maxRetries: 0,
      maximumActiveConnections: 8,
      minimumIdleConnections: 0,
      keyPrefix: 'latchkey:',
    })
  })

  test('every key is read', () => {
    const pki = createTestPki()
    const keyPem = pki.key.toString('utf8').replace(/\r\n/g, '\n')
    const chain = pki.cert.toString('utf8').replace(/\r\n/g, '\n')
    pki.dispose()
    const { file } = withRedis(
      [
        'host: 10.0.0.5',
        'port: 6380',
        'username: latchkey',
        'password: redis-password',
        'database_index: 2',
        'timeout: 2s',
        'max_retries: 1',
        'maximum_active_connections: 16',
        'minimum_idle_connections: 2',
        'key_prefix: "auth-prod:"',
        'tls:',
        '  server_name: redis.example.com',
        '  skip_verify: false',
        '  minimum_version: TLS1.3',
        '  maximum_version: TLS1.3',
        '  certificate_chain: |',
        ...chain.trim().split('\n').map((l) => `    ${l}`),
        '  private_key: |',
        ...keyPem.trim().split('\n').map((l) => `    ${l}`),
      ].join('\n'),
    )
    const { config } = loadConfig({ files: [file], env: {} })
    expect(config.session.redis).toEqual({
      host: '10.0.0.5',
      port: 6380,
      username: 'latchkey',
      password: 'redis-password',
      databaseIndex: 2,
      timeoutSeconds: 2,
      maxRetries: 1,
      maximumActiveConnections: 16,
      minimumIdleConnections: 2,
      keyPrefix: 'auth-prod:',
      tls: { serverName: 'redis.example.com', skipVerify: false, minimumVersion: 'TLS1.3', maximumVersion: 'TLS1.3', certificateChain: chain.trim() + '\n', privateKey: keyPem.trim() + '\n' },
    })
    const printed = JSON.stringify(redactConfig(config))
    expect(printed).not.toContain('redis-password')
    expect(printed).not.toContain('PRIVATE KEY')
  })

  test('a unix socket: an absolute host with port 0', () => {
    const { file } = withRedis('host: /run/redis/redis.sock\nport: 0')
    expect(loadConfig({ files: [file], env: {} }).config.session.redis).toMatchObject({ host: '/run/redis/redis.sock', port: 0 })
  })

  test('high_availability: the sentinel port is the default, nodes are read, secrets come from _FILE variables', () => {
    const { file } = withRedis(['host: sentinel-1', 'high_availability:', '  sentinel_name: mymaster', '  sentinel_username: watcher', '  route_by_latency: true', '  nodes:', '    - host: sentinel-2', '    - host: sentinel-3', '      port: 26380'].join('\n'))
    const dir = tempDir('latchkey-redis-secrets-')
    writeFileSync(join(dir, 'redis'), 'from-a-file\n')
    writeFileSync(join(dir, 'sentinel'), 'sentinel-from-a-file\n')
    const { config } = loadConfig({
      files: [file],
      env: { AUTHELIA_SESSION_REDIS_PASSWORD_FILE: join(dir, 'redis'), AUTHELIA_SESSION_REDIS_HIGH_AVAILABILITY_SENTINEL_PASSWORD_FILE: join(dir, 'sentinel') },
    })
    expect(config.session.redis).toMatchObject({
      host: 'sentinel-1',
      port: 26379,
      password: 'from-a-file',
      highAvailability: {
        sentinelName: 'mymaster',
        sentinelUsername: 'watcher',
        sentinelPassword: 'sentinel-from-a-file',
        nodes: [
          { host: 'sentinel-2', port: 26379 },
          { host: 'sentinel-3', port: 26380 },
        ],
        routeByLatency: true,
        routeRandomly: false,
      },
    })
    expect(JSON.stringify(redactConfig(config))).not.toContain('from-a-file')
  })

  test.each([
    ['port: 6379', 'redis:', "configuration.yml:LINE:3: session.redis.host: option 'host' is required (hint: a host name, or the path of a unix socket with port: 0)"],
    ['host: redis\nport: 70000', 'port: 70000', "configuration.yml:LINE:11: session.redis.port: option 'port' must be between 1 and 65535 but it's configured as '70000'"],
    ['host: redis\ndatabase_index: -1', 'database_index', "configuration.yml:LINE:21: session.redis.database_index: option 'database_index' must be 0 or more but it's configured as '-1'"],
    ['host: redis\nhigh_availability:\n  route_randomly: true', 'high_availability:', "configuration.yml:LINE:5: session.redis.high_availability.sentinel_name: option 'sentinel_name' is required (hint: the master name the sentinels monitor)"],
    ['high_availability:\n  sentinel_name: m\n  nodes:\n    - port: 26379', '- port: 26379', "configuration.yml:LINE:9: session.redis.high_availability.nodes: option 'nodes': option 'host' is required for each node but one or more nodes are missing this"],
    ['high_availability:\n  sentinel_name: m', 'redis:', "configuration.yml:LINE:3: session.redis.host: option 'host' or the 'high_availability' option 'nodes' is required"],
    ['host: redis\ntls:\n  private_key: "-----BEGIN PRIVATE KEY-----"', 'tls:', "configuration.yml:LINE:5: session.redis.tls.certificate_chain: option 'certificate_chain' is required when option 'private_key' is set"],
    ['host: redis\ntls:\n  minimum_version: TLS1.3\n  maximum_version: TLS1.2', 'maximum_version', "configuration.yml:LINE:24: session.redis.tls.maximum_version: option 'maximum_version' (TLS1.2) must not be lower than 'minimum_version' (TLS1.3)"],
    ['host: redis\nsentinel: true', 'sentinel: true', 'configuration.yml:LINE:5: session.redis.sentinel: configuration key not expected: session.redis.sentinel'],
  ])('%j: one error with key path and line', (redis, at, message) => {
    const { file, text } = withRedis(redis)
    expect(errorsOf(file).map(shown)).toEqual([message.replace('LINE', String(lineOf(text, at)))])
  })

  test('session.secret is required with redis', () => {
    const { file } = withRedis('host: redis', { secret: false })
    expect(errorsOf(file).map(shown)).toEqual([
      `configuration.yml:${lineOf(KASM, 'session:')}:1: session.secret: option 'secret' is required when using the 'redis' provider (hint: a random string of 64 characters or more; it encrypts the sessions kept in Redis)`,
    ])
  })

  test('without redis, sessions stay in the storage backend', () => {
    expect(loadConfig({ files: ['fixtures/config/kasm-authelia.yml'], env: {} }).config.session.redis).toBeUndefined()
  })
})

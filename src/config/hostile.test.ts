/**
 * Hostile configuration input: nothing may crash, hang or exhaust memory, and every refusal is one
 * clear problem naming the file, line and key path (issue #2: "hostile input").
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, ftruncateSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { ConfigError, formatProblem, loadConfig, MAX_CONFIG_BYTES, type ConfigProblem } from './load.js'

const ROOT = resolve(new URL('../..', import.meta.url).pathname)
const KASM = join(ROOT, 'fixtures/config/kasm-authelia.yml')
const dir = mkdtempSync(join(tmpdir(), 'latchkey-hostile-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function file(name: string, text: string | Buffer): string {
  const f = join(dir, name)
  writeFileSync(f, text)
  return f
}

/** Loads and returns the formatted errors (cwd = the temporary folder, so names are short). */
function errors(files: string[], env: Record<string, string> = {}): string[] {
  try {
    loadConfig({ files, env, cwd: dir })
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError)
    return (e as ConfigError).problems.filter((p: ConfigProblem) => p.severity === 'error').map(formatProblem)
  }
  throw new Error('expected the configuration to be refused')
}

function timed<T>(fn: () => T): { value: T; ms: number } {
  const start = performance.now()
  const value = fn()
  return { value, ms: performance.now() - start }
}

const laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
for (const [i, name] of ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].entries()) {
  const prev = 'abcdefgh'[i]
  laughs.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`)
}
const BILLION_LAUGHS = laughs.join('\n') + '\n'

describe('hostile configuration files', () => {
  test('a YAML alias bomb (billion laughs) is refused quickly at the alias that explodes', () => {
    const { value, ms } = timed(() => errors([file('laughs.yml', BILLION_LAUGHS)]))
    expect(value).toEqual(['laughs.yml:5:8: e[0]: yaml: document contains excessive aliasing (anchors expand to more than 10000 values)'])
    expect(ms).toBeLessThan(2000)
  })

  test('an alias inside its own anchor is a cycle, not an endless expansion', () => {
    expect(errors([file('cycle.yml', 'server: &s\n  tls: *s\n')])).toEqual(['cycle.yml:2:8: server.tls: yaml: alias *s refers to a node that contains it'])
  })

  test('anchors and merge keys used sensibly still work', () => {
    const text = readFileSync(KASM, 'utf8').replace('log:\n  level: info', 'x-defaults: &log\n  level: debug\nlog:\n  <<: *log\n  format: json')
    // x-defaults is not an Authelia key: the only problem; the merge itself resolved.
    expect(errors([file('anchors.yml', text)], {})).toEqual([expect.stringMatching(/^anchors\.yml:\d+:1: x-defaults: configuration key not expected: x-defaults$/)])
  })

  test('a duplicate key names its path and both lines', () => {
    expect(errors([file('dup.yml', 'server:\n  port: 9091\n  port: 9092\n')])).toEqual(["dup.yml:3:3: server.port: yaml: mapping key 'port' already defined at line 2"])
  })

  test.each([
    ['a list', '- theme: light\n- log: {}\n', 'a list'],
    ['a single value', 'just a string\n', 'a single value'],
    ['a number', '42\n', 'a single value'],
  ])('a root that is %s is refused', (_what, text, got) => {
    expect(errors([file('root.yml', text)])).toEqual([`root.yml:1:1: the configuration must be a map of keys, got ${got}`])
  })

  test('tab indentation is a YAML error with its line', () => {
    expect(errors([file('tabs.yml', 'server:\n\tport: 9091\n')])).toEqual(['tabs.yml:2:1: yaml: Tabs are not allowed as indentation'])
  })

  test('binary garbage is refused as not text, with its line', () => {
    expect(errors([file('garbage.bin', Buffer.from('theme: light\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR', 'latin1'))])).toEqual([
      'garbage.bin:2:1: the file is not YAML text: it contains bytes that are not valid UTF-8',
    ])
    expect(errors([file('nul.yml', 'theme: light\nlog:\n  level: in\x00fo\n')])).toEqual(['nul.yml:3:12: the file is not YAML text: it contains a NUL byte'])
  })

  test('a 50 MB configuration file is refused unread, at once', () => {
    const big = join(dir, 'big.yml')
    const fd = openSync(big, 'w')
    ftruncateSync(fd, 50 * 1024 * 1024)
    closeSync(fd)
    const { value, ms } = timed(() => errors([big]))
    expect(value).toEqual([`big.yml: could not read the configuration file: read big.yml: the file is 50 MiB, larger than the ${MAX_CONFIG_BYTES / 1024 / 1024} MiB limit`])
    expect(ms).toBeLessThan(500)
  })

  test('a file just under the limit full of unknown keys is parsed in bounded time and reports at most 100 problems', () => {
    const lines: string[] = []
    for (let i = 0, size = 0; size < MAX_CONFIG_BYTES - 100; i++) {
      const line = `k${i}: v${i}`
      lines.push(line)
      size += line.length + 1
    }
    const { value, ms } = timed(() => errors([file('many.yml', lines.join('\n'))]))
    expect(value).toHaveLength(101)
    expect(value[0]).toBe('many.yml:1:1: k0: configuration key not expected: k0')
    expect(value[100]).toMatch(/^\.\.\. and \d+ more problems \(fix these first\)$/)
    expect(ms).toBeLessThan(15_000)
  })

  test('deep nesting is refused without recursion blowing the stack: flow and block forms', () => {
    const flow = timed(() => errors([file('flow.yml', `theme: ${'['.repeat(1_000_000)}\n`)]))
    expect(flow.value).toEqual(['flow.yml:1:72: yaml: the document is nested too deeply (more than 64 levels is never a configuration)'])
    expect(flow.ms).toBeLessThan(1000)
    const block = Array.from({ length: 80 }, (_, i) => `${'  '.repeat(i)}k${i}:`).join('\n') + ' 1\n'
    const [problem] = errors([file('block.yml', block)])
    expect(problem).toMatch(/^block\.yml:66:131: k0\.k1\.k2\..*\.k64: yaml: the document is nested too deeply/)
  })

  test('wrong types everywhere: each is reported with its key path and line, nothing throws', () => {
    const text = [
      'server: [9091]',
      'log: debug',
      'totp:',
      '  period: [30]',
      '  digits: {six: 6}',
      'session:',
      '  cookies: {domain: example.com}',
      'authentication_backend:',
      '  file: users.yml',
      'access_control:',
      '  rules: allow-all',
      'identity_providers:',
      '  oidc:',
      '    clients:',
      '      - just-a-string',
      '      - client_id: [x]',
      '        redirect_uris: {a: b}',
      'storage: 12',
      'notifier: true',
      'regulation:',
      '  max_retries: lots',
      '',
    ].join('\n')
    const found = errors([file('types.yml', text)])
    for (const expected of [
      'types.yml:1:9: server: must be a map of options, got a list',
      'types.yml:2:6: log: must be a map of options, got a single value',
      'types.yml:4:11: totp.period: must be an integer, got a list',
      'types.yml:5:11: totp.digits: must be an integer, got a map',
      'types.yml:7:12: session.cookies: must be a list, got a map',
      'types.yml:9:9: authentication_backend.file: must be a map of options, got a single value',
      'types.yml:11:10: access_control.rules: must be a list, got a single value',
      'types.yml:15:9: identity_providers.oidc.clients[0]: must be a map of options, got a single value',
      'types.yml:16:20: identity_providers.oidc.clients[1].client_id: must be a string, got a list',
      'types.yml:17:24: identity_providers.oidc.clients[1].redirect_uris: must be a list of strings, got a map',
      'types.yml:18:10: storage: must be a map of options, got a single value',
      'types.yml:19:11: notifier: must be a map of options, got a single value',
      "types.yml:21:16: regulation.max_retries: must be an integer, got 'lots'",
    ]) {
      expect(found).toContain(expected)
    }
  })

  test('a configuration path that is a directory, a FIFO or a device is refused without blocking', () => {
    mkdirSync(join(dir, 'conf.d'), { recursive: true })
    expect(errors([join(dir, 'conf.d')])).toEqual(['conf.d: could not read the configuration file: read conf.d: is a directory'])
    expect(errors(['/dev/zero'])).toEqual(['/dev/zero: could not read the configuration file: read /dev/zero: not a regular file'])
    const fifo = join(dir, 'fifo.yml')
    if (spawnSync('mkfifo', [fifo]).status === 0) {
      expect(errors([fifo])).toEqual(['fifo.yml: could not read the configuration file: read fifo.yml: not a regular file'])
    }
  })

  test('a missing file names the path in the operating system words', () => {
    expect(errors(['missing.yml'])).toEqual([`missing.yml: could not read the configuration file: open missing.yml: no such file or directory`])
  })

  test('an unreadable file (permissions) is one clear line', () => {
    const f = file('secret.yml', readFileSync(KASM))
    chmodSync(f, 0o000)
    chmodSync(dir, 0o755)
    if (process.getuid?.() !== 0) {
      expect(errors([f])).toEqual(['secret.yml: could not read the configuration file: open secret.yml: permission denied'])
      return
    }
    // root reads anything: check as an unprivileged user through the built CLI, when it can.
    const cli = join(ROOT, 'dist/latchkey.mjs')
    const setpriv = spawnSync('setpriv', ['--version'])
    if (!existsSync(cli) || setpriv.status !== 0) return
    // A checkout inside a private folder (mode 0700) is out of nobody's reach: then there is nothing to check.
    const reach = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', 'require("fs").accessSync(process.argv[1], require("fs").constants.R_OK)', cli])
    if (reach.status !== 0) {
      console.warn('skipped the permission check as nobody: the checkout is not readable by nobody')
      return
    }
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, cli, 'validate-config', '--config', f], { encoding: 'utf8', cwd: dir })
    expect(r.stdout).toBe(`Configuration parsed and loaded with errors:\n\n\t - secret.yml: could not read the configuration file: open secret.yml: permission denied\n\n`)
    expect(r.status).toBe(2)
  })
})

describe('hostile _FILE secrets', () => {
  const noHmac = () => file('no-hmac.yml', readFileSync(KASM, 'utf8').replace(/ {4}hmac_secret: .*\n/, '').replace('path: users_database.yml', `path: ${join(ROOT, 'fixtures/config/users_database.yml')}`))
  const VAR = 'AUTHELIA_IDENTITY_PROVIDERS_OIDC_HMAC_SECRET_FILE'
  const prefix = `environment ${VAR}: identity_providers.oidc.hmac_secret: secrets: error loading secret path`

  test('pointing to a missing file', () => {
    expect(errors([noHmac()], { [VAR]: join(dir, 'nope') })).toContain(`${prefix} ${join(dir, 'nope')} into key 'identity_providers.oidc.hmac_secret': open ${join(dir, 'nope')}: no such file or directory`)
  })

  test('pointing to a directory', () => {
    expect(errors([noHmac()], { [VAR]: dir })).toContain(`${prefix} ${dir} into key 'identity_providers.oidc.hmac_secret': read ${dir}: is a directory`)
  })

  test('pointing to a device never blocks', () => {
    expect(errors([noHmac()], { [VAR]: '/dev/zero' })).toContain(`${prefix} /dev/zero into key 'identity_providers.oidc.hmac_secret': read /dev/zero: not a regular file`)
  })

  test('only one trailing newline is trimmed; CRLF too', () => {
    const base = noHmac()
    for (const [content, expected] of [
      ['s3cret_value_from_a_file_0123456789\n', 's3cret_value_from_a_file_0123456789'],
      ['s3cret_value_from_a_file_0123456789\r\n', 's3cret_value_from_a_file_0123456789'],
      ['s3cret_value_from_a_file_0123456789\n\n', 's3cret_value_from_a_file_0123456789\n'],
      ['s3cret_value_from_a_file_0123456789', 's3cret_value_from_a_file_0123456789'],
    ] as const) {
      const secret = file('hmac', content)
      const { config } = loadConfig({ files: [base], env: { [VAR]: secret }, cwd: dir })
      expect(config.identityProviders.oidc!.hmacSecret).toBe(expected)
    }
  })

  test('a relative _FILE path resolves against the working directory', () => {
    file('rel-hmac', 'relative_secret_from_a_file_0123456789\n')
    const { config } = loadConfig({ files: [noHmac()], env: { [VAR]: 'rel-hmac' }, cwd: dir })
    expect(config.identityProviders.oidc!.hmacSecret).toBe('relative_secret_from_a_file_0123456789')
  })
})

describe('environment precedence and lists', () => {
  test('LATCHKEY_ wins over AUTHELIA_, both win over every file', () => {
    const { config } = loadConfig({ files: [KASM], env: { AUTHELIA_SERVER_PORT: '9001', LATCHKEY_SERVER_PORT: '9002', AUTHELIA_LOG_LEVEL: 'warn' } })
    expect(config.server.port).toBe(9002)
    expect(config.log.level).toBe('warn')
  })

  test('a _FILE form and a plain form of the same prefix for one key is an error; across prefixes LATCHKEY_ wins', () => {
    const secret = file('hmac2', 'secret_from_a_file_for_precedence_0123456789\n')
    const base = file('no-hmac2.yml', readFileSync(KASM, 'utf8').replace(/ {4}hmac_secret: .*\n/, '').replace('path: users_database.yml', `path: ${join(ROOT, 'fixtures/config/users_database.yml')}`))
    expect(errors([base], { AUTHELIA_IDENTITY_PROVIDERS_OIDC_HMAC_SECRET: 'plain_secret_0123456789abcdef', AUTHELIA_IDENTITY_PROVIDERS_OIDC_HMAC_SECRET_FILE: secret })).toContain(
      "environment AUTHELIA_IDENTITY_PROVIDERS_OIDC_HMAC_SECRET_FILE: identity_providers.oidc.hmac_secret: secrets: error loading secret into key 'identity_providers.oidc.hmac_secret': it's already defined in other configuration sources",
    )
    const { config } = loadConfig({ files: [base], env: { AUTHELIA_IDENTITY_PROVIDERS_OIDC_HMAC_SECRET: 'plain_secret_0123456789abcdef', LATCHKEY_IDENTITY_PROVIDERS_OIDC_HMAC_SECRET_FILE: secret } })
    expect(config.identityProviders.oidc!.hmacSecret).toBe('secret_from_a_file_for_precedence_0123456789')
  })

  test.each([
    ['AUTHELIA_IDENTITY_PROVIDERS_OIDC_CLIENTS', 'identity_providers.oidc.clients'],
    ['LATCHKEY_IDENTITY_PROVIDERS_OIDC_CLIENTS_0_CLIENT_ID', 'identity_providers.oidc.clients'],
    ['AUTHELIA_ACCESS_CONTROL_RULES', 'access_control.rules'],
    ['AUTHELIA_SESSION_COOKIES_0_DOMAIN', 'session.cookies'],
  ])('%s (a list) is refused with a clear warning and ignored', (variable, path) => {
    const { config, warnings } = loadConfig({ files: [KASM], env: { [variable]: 'x' } })
    expect(warnings.filter((w) => w.env).map(formatProblem)).toEqual([
      `environment ${variable}: ${path}: configuration environment variable not expected: ${variable}: '${path}' is a list, and lists cannot be set from the environment (it is ignored) (hint: set '${path}' in a configuration file)`,
    ])
    expect(config.identityProviders.oidc!.clients.map((c) => c.id)).toEqual(['kasm'])
  })
})

import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { createServer } from 'node:net'
import pino from 'pino'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import { generateDigest } from '../src/authn/hashes/index.js'
import { runCli } from '../src/cli/index.js'
import { ensureDemoSetup } from '../src/cli/demo.js'
import { startServer, type RunningServer } from '../src/server/runtime.js'
import { loadConfig } from '../src/config/load.js'
import { withGeneratedReference } from '../scripts/render-config-doc.js'
import { ROOT } from './support/app.js'
import { PRODUCTION_NODE_FLAGS } from '../bench/server.js'

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

/** The fenced blocks of one language in a doc, list-item indentation removed. */
function fencedBlocks(doc: string, lang: string): string[] {
  const re = new RegExp(`^( *)\`\`\`(?:${lang})\n([\\s\\S]*?)^\\1\`\`\``, 'gm')
  return [...readFileSync(join(ROOT, doc), 'utf8').matchAll(re)].map((m) => m[2]!.replace(new RegExp(`^${m[1]}`, 'gm'), ''))
}

test('docs/configuration.md lists exactly the keys the loader knows (run npm run docs:config)', () => {
  const doc = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8')
  expect(doc).toBe(withGeneratedReference(doc))
})

test('README gives the install-and-start and the test commands, and .ci/run runs the same test command', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  expect(readme).toContain('npm install && npm start')
  expect(readme).toContain('\n```sh\nnpm test\n```')
  expect(readFileSync(join(ROOT, '.ci/run'), 'utf8')).toMatch(/\nnpm test\n$/)
})

test('npm start, the systemd unit and the bench run node with the same flags', () => {
  const start = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start
  const unit = /^ExecStart=\S+ (.*) \S+latchkey\.mjs /m.exec(readFileSync(join(ROOT, 'docs/deploy/latchkey.service'), 'utf8'))?.[1]
  const flags = PRODUCTION_NODE_FLAGS.join(' ')
  expect(start).toBe(`node ${flags} dist/latchkey.mjs`)
  expect(unit).toBe(flags)
})

/**
 * The configuration examples in the docs load: placeholders (`<random…>`, `...` in a PEM or a digest,
 * /var/lib/latchkey paths) are filled by the test; fragments are merged onto the Kasm fixture the
 * way an operator would add them (`--config base.yml --config fragment.yml`).
 */
describe('configuration examples in docs/ load', () => {
  const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const DIGEST = '$pbkdf2-sha512$310000$c8p78n7pUMln0jzvd4aK4Q$JNRBzwAo0ek5qKn50cFzzvE9RXV88h1wJn5KGiHrD0YKtZaR/nCb2CJPOsKaPK0hjf.9yHxzQGZziziccp6Yng'
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-docs-'))
    copyFileSync(join(ROOT, 'fixtures/config/users_database.yml'), join(dir, 'users_database.yml'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  function yamlBlocks(doc: string): string[] {
    return fencedBlocks(doc, 'ya?ml')
  }

  function fill(block: string): string {
    return block
      .replace(/<[^>\n]*random[^>\n]*>/g, () => randomBytes(32).toString('hex'))
      .replace(/^( *)-----BEGIN PRIVATE KEY-----\n\s*\.\.\.\n/m, (_m, indent: string) => pem.trimEnd().split('\n').map((l) => indent + l).join('\n') + '\n')
      .replace(/'\$pbkdf2-sha512\$310000\$\.\.\.'/g, `'${DIGEST}'`)
      .replaceAll('/var/lib/latchkey/', `${dir}/`)
  }

  function load(...texts: string[]) {
    const files = texts.map((text, i) => {
      const f = join(dir, `doc-${i}-${randomBytes(4).toString('hex')}.yml`)
      writeFileSync(f, text)
      return f
    })
    return loadConfig({ files, env: {}, cwd: dir })
  }

  const kasmBase = () => readFileSync(join(ROOT, 'fixtures/config/kasm-authelia.yml'), 'utf8').replace('path: db.sqlite3', `path: ${dir}/base.sqlite3`)

  test('docs/configuration.md: the minimal configuration validates once its placeholders are filled', () => {
    const blocks = yamlBlocks('docs/configuration.md')
    expect(blocks.length).toBeGreaterThanOrEqual(1)
    const { config, warnings } = load(fill(blocks[0]!))
    expect(config.identityProviders.oidc!.clients.map((c) => c.id)).toEqual(['kasm'])
    expect(warnings.filter((w) => w.severity === 'error')).toEqual([])
  })

  /** The YAML block docs/deploy.md tells the reader to save as /etc/latchkey/configuration.yml. */
  function deployConfiguration(): string {
    const m = /^<!-- deploy-test: file \/etc\/latchkey\/configuration\.yml -->\n```yaml\n([\s\S]*?)^```/m.exec(readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8'))
    expect(m).not.toBeNull()
    return m![1]!
  }

  test('docs/deploy.md: the complete configuration validates with its secrets from the environment and the jwks file, without a warning', () => {
    const jwks = `identity_providers:\n  oidc:\n    jwks:\n      - key: |\n${pem.trimEnd().split('\n').map((l) => `          ${l}`).join('\n')}\n`
    const files = [fill(deployConfiguration()), jwks].map((text, i) => {
      const f = join(dir, `deploy-${i}.yml`)
      writeFileSync(f, text)
      return f
    })
    const secret = () => randomBytes(32).toString('hex')
    const env = {
      AUTHELIA_IDENTITY_VALIDATION_RESET_PASSWORD_JWT_SECRET: secret(),
      AUTHELIA_STORAGE_ENCRYPTION_KEY: secret(),
      AUTHELIA_IDENTITY_PROVIDERS_OIDC_HMAC_SECRET: secret(),
    }
    const { config, warnings } = loadConfig({ files, env, cwd: dir })
    expect(warnings).toEqual([])
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 9091, trustedProxies: ['127.0.0.1'] })
    expect(config.storage.local!.path).toBe(join(dir, 'db.sqlite3'))
    expect(config.identityProviders.oidc!.clients.map((c) => c.id)).toEqual(['kasm'])
  })

  test("configuration.md's minimal configuration and kasm.md's client block agree with deploy.md's complete configuration (one naming generation)", () => {
    const complete = parse(deployConfiguration())
    const [minimalText] = yamlBlocks('docs/configuration.md')
    const [kasmText] = yamlBlocks('docs/integrations/kasm.md')
    const minimal = parse(minimalText!)
    const kasm = parse(kasmText!)
    // The same Kasm client, key for key (only the example digest differs).
    const withoutSecret = (c: Record<string, unknown>) => ({ ...c, client_secret: 'digest' })
    expect(withoutSecret(kasm.identity_providers.oidc.clients[0])).toEqual(withoutSecret(complete.identity_providers.oidc.clients[0]))
    expect(withoutSecret(minimal.identity_providers.oidc.clients[0])).toEqual(withoutSecret(complete.identity_providers.oidc.clients[0]))
    // Every non-secret value of the minimal configuration is the complete one's.
    const leaves = (node: unknown, path: string[] = []): Array<[string, unknown]> =>
      node && typeof node === 'object' && !Array.isArray(node) ? Object.entries(node).flatMap(([k, v]) => leaves(v, [...path, k])) : [[path.join('.'), node]]
    const secretPaths = ['storage.encryption_key', 'identity_validation.reset_password.jwt_secret', 'identity_providers.oidc.hmac_secret', 'identity_providers.oidc.jwks', 'identity_providers.oidc.clients']
    const flatComplete = new Map(leaves(complete))
    for (const [path, value] of leaves(minimal)) {
      if (secretPaths.includes(path)) continue
      expect(flatComplete.get(path), path).toEqual(value)
    }
  })

  test('docs/ldap.md: every example loads onto the Kasm configuration (in place of its users file) with the implementation defaults', () => {
    const blocks = yamlBlocks('docs/ldap.md')
    expect(blocks.length).toBe(7)
    const base = kasmBase().replace(/^authentication_backend:\n {2}file:\n {4}path: users_database\.yml\n/m, '')
    expect(base).not.toContain('authentication_backend')
    const seen: string[] = []
    for (const block of blocks) {
      const { config, warnings } = load(base, fill(block))
      const ldap = config.authenticationBackend.ldap!
      seen.push(ldap.implementation)
      expect(ldap.usersFilter).toContain('{input}')
      expect(ldap.groupsFilter).toMatch(/^\(.*\)$/)
      // Only the 4.37 example warns, once per old name.
      const ours = warnings.filter((w) => w.path.startsWith('authentication_backend'))
      expect(ours.length === 0 || block.includes('url:')).toBe(true)
    }
    expect(seen).toEqual(['rfc2307bis', 'lldap', 'activedirectory', 'freeipa', 'glauth', 'custom', 'custom'])
  })

  test('docs/deploy.md: the regulation example merges onto the Kasm configuration with both modes', () => {
    const m = /^( *)```yaml\n((?:\1 *regulation:\n)[\s\S]*?)^\1```/m.exec(readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8'))
    expect(m).not.toBeNull()
    const block = m![2]!.split('\n').map((l) => l.slice(m![1]!.length)).join('\n')
    const { config } = load(kasmBase(), block)
    expect(config.regulation).toEqual({ modes: ['user', 'ip'], maxRetries: 3, findTimeSeconds: 120, banTimeSeconds: 300 })
  })

  test('docs/integrations/kasm.md: the client block replaces the clients and validates', () => {
    const [block] = yamlBlocks('docs/integrations/kasm.md')
    const { config } = load(kasmBase(), fill(block!))
    expect(config.identityProviders.oidc!.clients[0]).toMatchObject({ id: 'kasm', consentMode: 'implicit', authorizationPolicy: 'two_factor' })
  })
})

describe('docs/migrating-from-authelia.md: the trial on another port works as written', () => {
  let dir: string
  let server: RunningServer | undefined
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-trial-'))
    copyFileSync(join(ROOT, 'fixtures/config/users_database.yml'), join(dir, 'users_database.yml'))
  })
  afterEach(async () => {
    await server?.stop()
    server = undefined
    rmSync(dir, { recursive: true, force: true })
  })

  const BASES = { '4.38+': 'fixtures/config/kasm-authelia-438.yml', '4.37': 'fixtures/config/kasm-authelia.yml' } as const
  const trialBlock = (version: string) => {
    const block = fencedBlocks('docs/migrating-from-authelia.md', 'ya?ml').find((b) => b.startsWith(`# trial.yml for a ${version} configuration`))
    expect(block, `the guide's trial.yml for ${version}`).toBeDefined()
    return block!
  }

  /** The guide's command line, with /etc/latchkey/ as this test's folder, both files loaded by the real loader. */
  async function startTrial(version: keyof typeof BASES, trial: string): Promise<{ port: number; sh: string }> {
    const sh = fencedBlocks('docs/migrating-from-authelia.md', 'sh').find((b) => b.includes('trial.yml'))!
    const argv = /^latchkey (.*)$/m.exec(sh)![1]!.replaceAll('/etc/latchkey/', `${dir}/`).split(' ')
    expect(argv).toEqual(['--config', `${dir}/configuration.yml`, '--config', `${dir}/trial.yml`])
    const port = await freePort()
    writeFileSync(join(dir, 'configuration.yml'), readFileSync(join(ROOT, BASES[version]), 'utf8'))
    writeFileSync(join(dir, 'trial.yml'), trial.replaceAll('9092', String(port)))
    const { config } = loadConfig({ files: [argv[1]!, argv[3]!], env: {}, cwd: dir })
    server = await startServer(config, pino({ level: 'silent' }))
    return { port, sh }
  }

  const signIn = (port: number) =>
    fetch(`http://127.0.0.1:${port}/api/firstfactor`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'john', password: 'password', keepMeLoggedIn: false }),
    })

  test.each(['4.38+', '4.37'] as const)('a %s configuration with its trial.yml: the curl line answers as the comment says, the portal signs john in at 127.0.0.1', async (version) => {
    const { port, sh } = await startTrial(version, trialBlock(version))
    const [, url, said] = /^curl -s (\S+) +# (.*), …$/m.exec(sh)!
    const body = await (await fetch(url!.replace('9092', String(port)))).text()
    expect(body).toContain(said!.replace('9092', String(port)))
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200)
    const res = await signIn(port)
    expect(await res.json()).toEqual({ status: 'OK' })
    // Host-only and not Secure: the browser keeps it on http://127.0.0.1.
    expect(res.headers.get('set-cookie')).toMatch(/^authelia_session=\w{32}; Max-Age=\d+; Path=\/; HttpOnly; SameSite=Lax$/)
  })

  test('without the session part of trial.yml (what the guide used to say), the portal refuses 127.0.0.1', async () => {
    const { port } = await startTrial('4.38+', trialBlock('4.38+').replace(/^session:[\s\S]*$/m, ''))
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(400)
    expect((await signIn(port)).status).not.toBe(200)
  })
})

test('configuration.md and deploy.md say what the logger does with log.file_path: the file instead of standard output, unless keep_stdout (test/http/server.test.ts checks the logger)', () => {
  const row = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8').split('\n').find((l) => l.startsWith('| `log.file_path` |'))!
  expect(row).toContain('instead of standard output')
  const deploy = readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8').replace(/\s+/g, ' ')
  expect(deploy).toContain('`log.file_path` to write to a file instead (add `log.keep_stdout: true` to keep the journal too')
  expect(readFileSync(join(ROOT, 'test/http/server.test.ts'), 'utf8')).toContain("test('log.file_path writes there (text or json), and keep_stdout also writes to stdout'")
})

/**
 * Every `latchkey …` line of the docs' shell blocks, run in the documented order with the real CLI
 * (in-process) on a copy of the Kasm fixture: /etc/latchkey/ and /var/lib/latchkey/ are this test's
 * folder, `[optional]` parts are left out, a `'$argon2id$…'` placeholder becomes a real digest of
 * the password on the same line. Lines that start a server are run by the trial test above.
 */
describe('CLI commands in the docs run as written', () => {
  let dir: string
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-doc-cli-'))
    copyFileSync(join(ROOT, 'fixtures/config/kasm-authelia.yml'), join(dir, 'configuration.yml'))
    copyFileSync(join(ROOT, 'fixtures/config/users_database.yml'), join(dir, 'users_database.yml'))
    await ensureDemoSetup(join(dir, 'data'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  function words(line: string): string[] {
    return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!)
  }

  /**
   * Shell-block lines, then inline `latchkey … --flag` commands without a placeholder (FILE, USER,
   * <…>, …). An inline name without flags (`latchkey doctor`) names a command rather than runs one.
   */
  async function commands(doc: string): Promise<string[][]> {
    const inline = [...readFileSync(join(ROOT, doc), 'utf8').matchAll(/`(latchkey [^`]*--[^`]+)`/g)]
      .map((m) => m[1]!)
      .filter((c) => !/…|<|\||\bFILE\b|\bUSER\b|\bBASE32\b|a\.yml/.test(c))
    const lines = [...fencedBlocks(doc, 'sh').flatMap((b) => b.split('\n')), ...inline]
    const out: string[][] = []
    for (const raw of lines) {
      let line = raw.replace(/\s+#\s.*$/, '').replace(/\s*\[[^\]]*\]/g, '').trim()
      const m = /^(?:latchkey|node dist\/latchkey\.mjs)(?: (.*))?$/.exec(line)
      if (!m) continue
      line = (m[1] ?? '').replaceAll('/etc/latchkey/', `${dir}/`).replaceAll('/var/lib/latchkey/', `${dir}/`)
      const placeholder = /'(\$argon2id\$[^']*…)'/.exec(line)
      if (placeholder) line = line.replace(placeholder[0], `'${await generateDigest(/--password '([^']*)'/.exec(line)![1]!, 'argon2')}'`)
      const argv = words(line)
      // Serving lines are the trial test's; --version and --help are commands of their own.
      if (argv.length === 0 || argv[0] === 'serve' || (argv[0]!.startsWith('-') && !['--version', '--help'].includes(argv[0]!))) continue
      out.push(argv)
    }
    return out
  }

  test.each(['docs/cli.md', 'docs/configuration.md', 'docs/integrations/kasm.md', 'docs/migrating-from-authelia.md'])('%s', async (doc) => {
    const argvs = await commands(doc)
    expect(argvs.length).toBeGreaterThan(0)
    for (const argv of argvs) {
      let stdout = ''
      let stderr = ''
      const code = await runCli(argv, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: {}, cwd: dir })
      expect({ argv, code, stderr: code === 0 ? '' : stderr }).toEqual({ argv, code: 0, stderr: '' })
      expect(stdout, argv.join(' ')).not.toBe('')
    }
  })
})

/**
 * Comments and test names cite promises as `docs/security.md B1, R1–R3` and Authelia behaviour as
 * `docs/authelia-compat.md §2.4` (older spellings: `security.md`, `compat §`, `compat spec §`).
 * Every such id must be defined in the repository, and every promise must name a test that exists.
 */
describe('the ids the code cites resolve inside the repository', () => {
  const ID = String.raw`(?:[A-Z][0-9]+|ERRPAGE|REDIR|TOK|KO401)`
  const SECURITY_CITE = new RegExp(String.raw`security\.md[\s*]+(${ID}(?:\([^)\n]*\))?(?:\s*(?:–|-|/|,|and)\s*${ID}(?:\([^)\n]*\))?)*)`, 'g')
  const COMPAT_CITE = /(?:authelia-compat\.md|compat(?: spec)?) §(\d+(?:\.\d+)?)(?:–(\d+(?:\.\d+)?))?/g

  function sourceFiles(): string[] {
    const out: string[] = []
    const walk = (dir: string) => {
      for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
        const p = `${dir}/${e.name}`
        if (e.isDirectory()) walk(p)
        else if (/\.(ts|mjs|js)$/.test(e.name)) out.push(p)
      }
    }
    for (const d of ['src', 'test', 'bench', 'scripts']) walk(d)
    return out
  }

  /** `R1–R3, S1` → R1, R2, R3, S1 (`REDIR(e)` → REDIR). */
  function expandIds(list: string): string[] {
    const ids: string[] = []
    const parts = list.replace(/\([^)]*\)/g, '').split(/\s*(?:,|\/|\band\b)\s*/)
    for (const part of parts) {
      const range = /^([A-Z])(\d+)\s*[–-]\s*([A-Z])?(\d+)$/.exec(part.trim())
      if (range) for (let n = Number(range[2]); n <= Number(range[4]); n++) ids.push(`${range[1]}${n}`)
      else if (part.trim()) ids.push(part.trim())
    }
    return ids
  }

  function citations(): { security: Map<string, string[]>; compat: Map<string, string[]> } {
    const security = new Map<string, string[]>()
    const compat = new Map<string, string[]>()
    const add = (m: Map<string, string[]>, id: string, where: string) => m.set(id, [...(m.get(id) ?? []), where])
    for (const f of sourceFiles()) {
      if (f === 'test/docs.test.ts') continue
      const text = readFileSync(join(ROOT, f), 'utf8')
      for (const m of text.matchAll(SECURITY_CITE)) for (const id of expandIds(m[1]!)) add(security, id, f)
      for (const m of text.matchAll(COMPAT_CITE)) {
        add(compat, m[1]!, f)
        if (m[2]) add(compat, m[2], f)
      }
    }
    return { security, compat }
  }

  const securityDoc = () => readFileSync(join(ROOT, 'docs/security.md'), 'utf8')
  /** Rows of the promise and notation tables: `| id | … |`. */
  const definedIds = () => new Map([...securityDoc().matchAll(/^\| ([A-Z][A-Z0-9]*) \|(.*)\|$/gm)].map((m) => [m[1]!, m[2]!]))

  test('the citation parser reads the spellings in use', () => {
    expect(expandIds('R1–R3, S1, S3, P2, P4, Q1–Q6, O2')).toEqual(['R1', 'R2', 'R3', 'S1', 'S3', 'P2', 'P4', 'Q1', 'Q2', 'Q3', 'Q4', 'Q5', 'Q6', 'O2'])
    expect(expandIds('T3/I3')).toEqual(['T3', 'I3'])
    expect(expandIds('R4 and P1')).toEqual(['R4', 'P1'])
    expect([...'(security.md\n * X3), and docs/security.md REDIR(e): 303'.matchAll(SECURITY_CITE)].map((m) => m[1])).toEqual(['X3', 'REDIR(e)'])
    expect([...'compat spec §1.1, docs/authelia-compat.md §2.3–2.4'.matchAll(COMPAT_CITE)].map((m) => [m[1], m[2]])).toEqual([['1.1', undefined], ['2.3', '2.4']])
  })

  test('every security.md id cited in src/, test/, bench/ and scripts/ is a row of docs/security.md', () => {
    const { security } = citations()
    expect(security.size).toBeGreaterThan(30)
    const defined = definedIds()
    const missing = [...security].filter(([id]) => !defined.has(id)).map(([id, files]) => `${id} (cited in ${[...new Set(files)].join(', ')})`)
    expect(missing).toEqual([])
  })

  test('every compat section cited is a heading of docs/authelia-compat.md', () => {
    const { compat } = citations()
    expect(compat.size).toBeGreaterThan(5)
    const headings = new Set([...readFileSync(join(ROOT, 'docs/authelia-compat.md'), 'utf8').matchAll(/^#{2,3} (\d+(?:\.\d+)?)\.? /gm)].map((m) => m[1]!))
    const missing = [...compat].filter(([section]) => !headings.has(section)).map(([s, files]) => `§${s} (cited in ${[...new Set(files)].join(', ')})`)
    expect(missing).toEqual([])
  })

  test('every promise of docs/security.md names at least one test file that exists, and every file it names exists (except those marked "added with issue 9")', () => {
    const rows = [...definedIds()].filter(([id]) => /^[A-Z]\d+$/.test(id))
    expect(rows.length).toBeGreaterThanOrEqual(50)
    for (const id of ['B5', 'B6', 'V1', 'W7', 'H1']) expect(rows.map(([i]) => i)).toContain(id)
    const problems: string[] = []
    for (const [id, row] of rows) {
      const [present, pending = ''] = row.split('added with issue 9:')
      const named = [...present!.matchAll(/`((?:test|src|bench)\/[^`]+\.(?:ts|mjs))`/g)].map((m) => m[1]!)
      if (named.length === 0) problems.push(`${id}: names no test file`)
      for (const f of named) if (!existsSync(join(ROOT, f))) problems.push(`${id}: ${f} does not exist`)
      if (pending && ![...pending.matchAll(/`((?:test|src|bench)\/[^`]+)`/g)].length) problems.push(`${id}: "added with issue 9" names no file`)
    }
    expect(problems).toEqual([])
  })
})

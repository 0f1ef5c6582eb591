import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { loadConfig } from '../src/config/load.js'
import { withGeneratedReference } from '../scripts/render-config-doc.js'
import { ROOT } from './support/app.js'
import { PRODUCTION_NODE_FLAGS } from '../bench/server.js'

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
    return [...readFileSync(join(ROOT, doc), 'utf8').matchAll(/^```ya?ml\n([\s\S]*?)^```/gm)].map((m) => m[1]!)
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

  test('docs/integrations/kasm.md: the client block replaces the clients and validates', () => {
    const [block] = yamlBlocks('docs/integrations/kasm.md')
    const { config } = load(kasmBase(), fill(block!))
    expect(config.identityProviders.oidc!.clients[0]).toMatchObject({ id: 'kasm', consentMode: 'implicit', authorizationPolicy: 'two_factor' })
  })
})

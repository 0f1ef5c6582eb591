/**
 * docs/migrating-from-authelia.md's "Import Authelia's database" performed as written: each shell
 * block marked `<!-- import-test: NAME -->` runs with `sh -eu`, then the server signs john in with
 * his Authelia TOTP secret and the relying party sees his Authelia `sub`.
 *
 * Substituted, and only these: /etc and /var/lib become folders of a temporary prefix; `sudo
 * latchkey` becomes this checkout's bundle with deploy.md's wrapper's LATCHKEY_CONFIG (no service
 * user: the wrapper's runuser is deploy-docs.test.ts's business); `systemctl stop authelia` has
 * nothing to stop and `systemctl start latchkey` is the server the test starts itself (CI has no
 * systemd); 127.0.0.1:9091 becomes its free port. Run `npm run build` before this file alone.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, expect, test } from 'vitest'
import { ROOT } from '../support/app.js'
import { AUTHELIA_KEY, createAutheliaSqlite, JOHN_SECRET, JOHN_SUB } from '../support/authelia.js'
import type { BundleServer } from '../support/bundle-flow.js'
import { runBundleSignInAndCodeFlow } from '../support/bundle-flow.js'

const DOC = readFileSync(join(ROOT, 'docs/migrating-from-authelia.md'), 'utf8')
const MAIN = join(ROOT, 'dist/latchkey.mjs')

function block(name: string): string {
  const found = [...DOC.matchAll(/^ *<!-- import-test: (.+?) -->\n *```sh\n([\s\S]*?)^ *```$/gm)].filter((m) => m[1] === name)
  if (found.length !== 1) throw new Error(`docs/migrating-from-authelia.md has ${found.length} blocks marked <!-- import-test: ${name} -->`)
  return found[0]![2]!.replace(/^ {3}/gm, '')
}

let prefix: string
let server: BundleServer | undefined
beforeEach(() => {
  prefix = mkdtempSync(join(tmpdir(), 'latchkey-runbook-'))
})
afterEach(async () => {
  await server?.stop()
  server = undefined
  rmSync(prefix, { recursive: true, force: true })
})

test('the runbook: stop Authelia, dry run, import, start Latchkey; john keeps his authenticator and his sub', async () => {
  for (const d of ['etc/authelia', 'var/lib/authelia', 'etc/latchkey', 'var/lib/latchkey']) mkdirSync(join(prefix, d), { recursive: true })
  createAutheliaSqlite(join(prefix, 'var/lib/authelia/db.sqlite3'), 20)
  // Authelia's own configuration: other sections (LDAP here) are none of the import's business.
  writeFileSync(
    join(prefix, 'etc/authelia/configuration.yml'),
    `authentication_backend:\n  ldap:\n    address: ldap://127.0.0.1\nstorage:\n  encryption_key: ${AUTHELIA_KEY}\n  local:\n    path: /var/lib/authelia/db.sqlite3\n`.replaceAll('/var/lib', `${prefix}/var/lib`),
  )
  const latchkeyConfig = join(prefix, 'etc/latchkey/configuration.yml')
  const latchkeyDb = join(prefix, 'var/lib/latchkey/db.sqlite3')
  let port = 0
  const localize = (text: string) =>
    text
      .replaceAll('sudo systemctl stop authelia', 'true')
      .replaceAll('sudo systemctl start latchkey', 'true')
      .replaceAll('sudo latchkey ', `LATCHKEY_CONFIG=${latchkeyConfig} ${process.execPath} ${MAIN} `)
      .replaceAll('127.0.0.1:9091', `127.0.0.1:${port}`)
      .replace(/(?<![\w.-])\/(etc|var\/lib)\//g, `${prefix}/$1/`)
  const shell = (name: string) => {
    const r = spawnSync('sh', ['-eu', '-c', localize(block(name))], { cwd: prefix, env: { PATH: process.env.PATH ?? '' }, encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`block ${name} exited ${r.status}\n${r.stdout}\n${r.stderr}`)
    expect(r.stderr).toBe('')
    return r.stdout
  }

  const { sub } = await runBundleSignInAndCodeFlow(join(prefix, 'etc/latchkey'), `  local:\n    path: ${latchkeyDb}\n`, (s) => (server = s), {
    prepare: () => {
      shell('stop')
      const plan = shell('dry-run')
      expect(plan).toContain('  add        john (SHA1, 6 digits, 30 s, issuer example.com)\n')
      expect(plan).toContain("  add        harry 'YubiKey' (RP ID auth.example.com, passkey, kid ")
      expect(plan).toContain('Dry run: nothing was written')
      expect(existsSync(latchkeyDb)).toBe(false)
      expect(shell('import')).toContain('Imported: 3 subject identifier(s), 2 TOTP device(s), 1 pre-configured consent(s), 1 WebAuthn credential(s), 2 second-factor preference(s).')
      // As the runbook says: running it again is harmless.
      expect(shell('import')).toContain('Nothing to do: everything was imported already.')
    },
    totpSecret: JOHN_SECRET,
  })
  expect(sub).toBe(JOHN_SUB)
  port = server!.port
  expect(JSON.parse(shell('start'))).toMatchObject({ status: 'OK' })
})

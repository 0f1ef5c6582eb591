import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { generateKeyPairSync } from 'node:crypto'
import { join, relative, resolve } from 'node:path'
import { isMap, isScalar, isSeq, parseDocument } from 'yaml'
import { generateDigest } from '../authn/hashes/index.js'
import { projectRoot } from '../common/project-root.js'
import { randomString } from '../common/random.js'
import { parseArgs, UsageError } from './args.js'
import type { CliIo } from './io.js'

export interface DemoSetup {
  configFile: string
  /** Set only on the run that created the folder: printed once, never stored in clear. */
  created?: { username: string; password: string; kasmSecret: string }
}

export const DEMO_USERNAME = 'demo'
export const DEMO_KASM_CLIENT_ID = 'kasm'

/** The demo folder: LATCHKEY_DATA_DIR, else ./data (for `serve` and `demo` alike). */
export function demoDataDir(io: CliIo): string {
  return resolve(io.cwd, io.env.LATCHKEY_DATA_DIR || 'data')
}

/** The command that prints a new Kasm secret, spelled so that it runs from the caller's folder. */
export function kasmSecretCommandLine(io: CliIo, dir: string): string {
  // Relative when below the working folder (npm start runs in the project), else absolute.
  const shown = (path: string) => {
    const rel = relative(io.cwd, path)
    return rel === '' ? '.' : rel.startsWith('..') ? path : rel
  }
  const program = shown(join(projectRoot(), 'dist', 'latchkey.mjs'))
  const dataDir = dir === resolve(io.cwd, 'data') ? '' : ` --data-dir ${shown(dir)}`
  return `node ${program} demo kasm-secret${dataDir}`
}

/**
 * The embedded default: a complete, working configuration in `dir` with fresh random secrets, an
 * RSA key, the Kasm client (random secret) and one demo user. Reused when it already exists.
 */
export async function ensureDemoSetup(dir: string): Promise<DemoSetup> {
  const configFile = join(dir, 'configuration.yml')
  if (existsSync(configFile)) return { configFile }
  mkdirSync(dir, { recursive: true, mode: 0o700 })

  const password = randomString(20)
  const kasmSecret = randomString(48)
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString().trimEnd()
  const [passwordDigest, secretDigest] = await Promise.all([
    generateDigest(password, 'argon2'),
    generateDigest(kasmSecret, 'pbkdf2'),
  ])

  writeFileSync(
    join(dir, 'users_database.yml'),
    `# Demo users for Latchkey's embedded default. Add users with a digest from:
#   latchkey crypto hash generate argon2 --password 'their password'
users:
  ${DEMO_USERNAME}:
    displayname: "Demo User"
    password: "${passwordDigest}"
    email: demo@example.com
    groups:
      - admins
      - dev
`,
    { mode: 0o600 },
  )

  writeFileSync(
    configFile,
    `# Latchkey embedded default, generated on first start. Every secret here is random and local to
# this folder. Authelia 4.38+ key names (4.37 names work too); docs/configuration.md lists them all.
theme: auto

identity_validation:
  reset_password:
    jwt_secret: ${randomString(64)}

server:
  address: tcp://127.0.0.1:9091/

log:
  level: info
  format: text

totp:
  issuer: Latchkey demo

authentication_backend:
  file:
    path: users_database.yml
    watch: true

access_control:
  default_policy: two_factor

session:
  cookies:
    # A loopback domain gives a host-only cookie that works over plain HTTP on this machine only.
    # No authelia_url: links and redirects follow the address the browser used, whatever the port
    # (LATCHKEY_SERVER_ADDRESS may move it from 9091).
    - domain: 127.0.0.1
    # The same server at http://localhost:9091: security keys and passkeys need a domain name
    # for their relying party ID (WebAuthn never accepts an IP address), and browsers allow
    # them over plain HTTP on localhost only (docs/webauthn.md).
    - domain: localhost
  expiration: 1h
  inactivity: 5m
  remember_me: 1M

regulation:
  max_retries: 3
  find_time: 2m
  ban_time: 5m

storage:
  encryption_key: ${randomString(64)}
  local:
    path: db.sqlite3

notifier:
  # Identity verification links (TOTP registration) are appended to this file.
  filesystem:
    filename: notification.txt

identity_providers:
  oidc:
    hmac_secret: ${randomString(64)}
    jwks:
      - key: |
${pem
  .split('\n')
  .map((l) => `          ${l}`)
  .join('\n')}
    clients:
      - client_id: kasm
        client_name: Kasm Workspaces
        # The digest of the secret printed on first start; paste that secret into Kasm.
        # 'latchkey demo kasm-secret' replaces it with a new one and prints that once.
        client_secret: '${secretDigest}'
        public: false
        authorization_policy: two_factor
        redirect_uris:
          - https://kasm.example.com/api/oidc_callback
        scopes:
          - openid
          - profile
          - groups
          - email
        consent_mode: implicit
        userinfo_signed_response_alg: none
`,
    { mode: 0o600 },
  )
  return { configFile, created: { username: DEMO_USERNAME, password, kasmSecret } }
}

export const DEMO_HELP = `Usage: latchkey demo kasm-secret [--data-dir DIR]

The embedded demo (the folder 'latchkey' creates without a configuration: LATCHKEY_DATA_DIR, else ./data).

  kasm-secret   make a new secret for the demo's Kasm client: its digest replaces the old one in
                DIR/configuration.yml and the secret is printed once. Restart Latchkey to use it.

Flags:
  --data-dir DIR   the demo folder (default: LATCHKEY_DATA_DIR, else ./data)
`

export async function demoCommand(argv: string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = argv
  if (!verb || verb === '--help' || verb === '-h' || verb === 'help' || rest.includes('--help') || rest.includes('-h')) {
    io.stdout(DEMO_HELP)
    return verb ? 0 : 1
  }
  if (verb !== 'kasm-secret') throw new UsageError(`unknown command: demo ${verb} (see latchkey demo --help)`)
  const { flags, positionals } = parseArgs(rest, { 'data-dir': 'string' })
  if (positionals.length) throw new UsageError(`unexpected argument: ${positionals[0]}`)
  const dir = typeof flags['data-dir'] === 'string' ? resolve(io.cwd, flags['data-dir']) : demoDataDir(io)
  const configFile = join(dir, 'configuration.yml')
  const secret = randomString(48)
  replaceClientSecret(configFile, DEMO_KASM_CLIENT_ID, await generateDigest(secret, 'pbkdf2'))
  io.stdout(`Kasm client: id ${DEMO_KASM_CLIENT_ID}  secret: ${secret}   (shown once)\n`)
  io.stdout(`Its digest replaced the old one in ${configFile}. Restart Latchkey to use it, and paste the secret into Kasm.\n`)
  return 0
}

/**
 * Swaps one client's `client_secret` value in place, leaving every other byte of the file (comments,
 * the PEM key, the user's own edits) as it was.
 */
function replaceClientSecret(configFile: string, clientId: string, digest: string): void {
  if (!existsSync(configFile)) throw new UsageError(`${configFile} does not exist: start Latchkey once without a configuration to create the demo`)
  const text = readFileSync(configFile, 'utf8')
  const doc = parseDocument(text)
  const clients = doc.getIn(['identity_providers', 'oidc', 'clients'], true)
  const client = isSeq(clients) ? clients.items.find((c) => isMap(c) && c.get('client_id') === clientId) : undefined
  const node = isMap(client) ? client.get('client_secret', true) : undefined
  if (!isScalar(node) || !node.range) throw new UsageError(`${configFile} has no client '${clientId}' with a client_secret`)
  // A whole new file renamed over the old one: an interrupted run leaves the old secret, not half a file.
  const next = `${configFile}.new`
  writeFileSync(next, text.slice(0, node.range[0]) + `'${digest}'` + text.slice(node.range[1]), { mode: 0o600 })
  renameSync(next, configFile)
}

import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { generateKeyPairSync } from 'node:crypto'
import { join } from 'node:path'
import { generateDigest } from '../authn/hashes/index.js'
import { randomString } from '../common/random.js'

export interface DemoSetup {
  configFile: string
  /** Set only on the run that created the folder: printed once, never stored in clear. */
  created?: { username: string; password: string; kasmSecret: string }
}

export const DEMO_USERNAME = 'demo'

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

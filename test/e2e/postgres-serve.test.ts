/**
 * The bundled binary (dist/latchkey.mjs, pg inside, pg-native left out) serving on PostgreSQL: a
 * real sign-in through the portal API (password, then TOTP registered by the CLI) and an OIDC code
 * flow with openid-client. `npm test` builds first; run `npm run build` before this file alone.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as client from 'openid-client'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { generateTotpCode } from '../../src/totp/index.js'
import { ROOT } from '../support/app.js'
import type { TestSchema } from '../support/postgres.js'
import { createTestSchema, PG_DATABASE, PG_HOST, PG_PORT, PG_USER, postgresAvailable } from '../support/postgres.js'

const MAIN = join(ROOT, 'dist/latchkey.mjs')
const TOTP_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'
const available = await postgresAvailable()

let dir: string
let schema: TestSchema
let server: ChildProcess | undefined
beforeEach(async () => {
  if (!available) return
  dir = mkdtempSync(join(tmpdir(), 'latchkey-pg-serve-'))
  schema = await createTestSchema()
})
afterEach(async () => {
  if (!available) return
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r))
    server.kill('SIGTERM')
    await exited
  }
  server = undefined
  rmSync(dir, { recursive: true, force: true })
  await schema.drop()
})

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

const base32Decode = (text: string): Buffer => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = 0
  let value = 0
  const out: number[] = []
  for (const ch of text) {
    value = (value << 5) | alphabet.indexOf(ch)
    bits += 5
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255)
      bits -= 8
    }
  }
  return Buffer.from(out)
}

/** The Kasm fixture listening on 127.0.0.1:port, its storage this test's PostgreSQL schema. */
function writeConfig(port: number): string {
  copyFileSync(join(ROOT, 'fixtures/config/users_database.yml'), join(dir, 'users_database.yml'))
  const text = readFileSync(join(ROOT, 'fixtures/config/kasm-authelia.yml'), 'utf8')
    .replace('  host: 0.0.0.0\n  port: 9091\n', `  host: 127.0.0.1\n  port: ${port}\n`)
    .replace('  domain: example.com\n', '  domain: 127.0.0.1\n')
    .replace(
      /  local:\n    path: db\.sqlite3\n/,
      `  postgres:\n    address: 'tcp://${PG_HOST}:${PG_PORT}'\n    database: ${PG_DATABASE}\n    schema: ${schema.name}\n    username: ${PG_USER}\n`,
    )
  writeFileSync(join(dir, 'configuration.yml'), text)
  return join(dir, 'configuration.yml')
}

describe.runIf(available)('latchkey serve on PostgreSQL (the bundle)', () => {
  test('signs in with password and TOTP, and completes an OIDC code flow with openid-client', async () => {
    const port = await freePort()
    const config = writeConfig(port)
    const env = { PATH: process.env.PATH ?? '' }
    // TOTP registered through the CLI of the same bundle, on the same schema.
    const totp = spawnSync(process.execPath, [MAIN, 'storage', 'user', 'totp', 'generate', 'john', '--secret', TOTP_SECRET, '--config', config], { cwd: dir, env, encoding: 'utf8' })
    expect(totp.stderr).toBe('')
    expect(totp.stdout).toMatch(/^Successfully generated TOTP configuration for user 'john'/)

    let err = ''
    server = spawn(process.execPath, [MAIN, 'serve', '--config', config], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] })
    server.stderr!.on('data', (d) => (err += d))
    const base = `http://127.0.0.1:${port}`
    const deadline = Date.now() + 20_000
    for (;;) {
      if (server.exitCode !== null) throw new Error(`latchkey exited ${server.exitCode}: ${err}`)
      const ok = await fetch(`${base}/api/health`).then((r) => r.ok, () => false)
      if (ok) break
      if (Date.now() > deadline) throw new Error(`never became healthy: ${err}`)
      await new Promise((r) => setTimeout(r, 50))
    }

    const json = (cookie?: string) => ({ 'content-type': 'application/json', origin: base, ...(cookie ? { cookie } : {}) })
    const first = await fetch(`${base}/api/firstfactor`, { method: 'POST', headers: json(), body: JSON.stringify({ username: 'john', password: 'password', keepMeLoggedIn: false }) })
    expect(await first.json()).toMatchObject({ status: 'OK' })
    const oneFa = first.headers.get('set-cookie')!.split(';')[0]!
    const token = generateTotpCode({ algorithm: 'SHA1', digits: 6, periodSeconds: 30, secret: base32Decode(TOTP_SECRET) }, Math.floor(Date.now() / 1000))
    const second = await fetch(`${base}/api/secondfactor/totp`, { method: 'POST', headers: json(oneFa), body: JSON.stringify({ token }) })
    expect(await second.json()).toMatchObject({ status: 'OK' })
    const cookie = second.headers.get('set-cookie')?.split(';')[0] ?? oneFa
    // The same code again is a replay (security.md F1), refused by the PostgreSQL guard.
    const replay = await fetch(`${base}/api/secondfactor/totp`, { method: 'POST', headers: json(cookie), body: JSON.stringify({ token }) })
    expect(replay.status).toBe(403)

    const rp = await client.discovery(new URL(base), 'kasm', {}, client.ClientSecretPost('insecure-secret'), { execute: [client.allowInsecureRequests] })
    const verifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const nonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(rp, {
      redirect_uri: 'https://kasm.example.com/api/oidc_callback',
      scope: 'openid profile groups email',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    })
    const authorized = await fetch(url, { redirect: 'manual', headers: { cookie } })
    expect(authorized.status).toBe(303)
    const callback = new URL(authorized.headers.get('location')!)
    const tokens = await client.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true })
    expect(tokens.claims()).toMatchObject({ amr: ['pwd', 'otp', 'mfa'] })
    const info = await client.fetchUserInfo(rp, tokens.access_token, tokens.claims()!.sub)
    expect(info).toMatchObject({ preferred_username: 'john', email: 'john.doe@example.com' })
    // The code is spent in PostgreSQL: a second redemption is refused.
    await expect(client.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce })).rejects.toMatchObject({ error: 'invalid_grant' })
  })
})

/**
 * The bundled binary (dist/latchkey.mjs) serving the Kasm fixture on a shared-database backend: a
 * real sign-in through the portal API (password, then TOTP registered by the CLI of the same
 * bundle) and an OIDC code flow with openid-client. One flow for every SQL backend's e2e file.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as client from 'openid-client'
import { expect } from 'vitest'
import { generateTotpCode } from '../../src/totp/index.js'
import { ROOT } from './app.js'
import { freePort } from './tls.js'

const MAIN = join(ROOT, 'dist/latchkey.mjs')
const TOTP_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'

/**
 * The Kasm fixture in `dir` with `storage.local` replaced by `storage` (YAML lines indented under
 * `storage:`, e.g. "  mysql:\n    address: …\n"); listening on 127.0.0.1:port when a port is given.
 */
export function writeKasmConfig(dir: string, storage: string, port?: number): string {
  copyFileSync(join(ROOT, 'fixtures/config/users_database.yml'), join(dir, 'users_database.yml'))
  let text = readFileSync(join(ROOT, 'fixtures/config/kasm-authelia.yml'), 'utf8').replace(/  local:\n    path: db\.sqlite3\n/, storage)
  if (port !== undefined) text = text.replace('  host: 0.0.0.0\n  port: 9091\n', `  host: 127.0.0.1\n  port: ${port}\n`).replace('  domain: example.com\n', '  domain: 127.0.0.1\n')
  writeFileSync(join(dir, 'configuration.yml'), text)
  return join(dir, 'configuration.yml')
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

/** A running bundle; `stop()` ends it (SIGTERM) and waits for the exit. */
export interface BundleServer {
  process: ChildProcess
  /** The loopback port it listens on. */
  port: number
  stop(): Promise<void>
}

/**
 * Registers john's TOTP through the bundle's CLI, starts `latchkey serve` on `storage`, signs in
 * (password, TOTP, a replay of the same code refused), and completes a PKCE code flow whose code
 * cannot be redeemed twice. `started` receives the server first, so the caller stops it whatever fails.
 */
export async function runBundleSignInAndCodeFlow(
  dir: string,
  storage: string,
  started: (server: BundleServer) => void,
  opts: {
    /** Runs with the configuration file's path before the server starts, instead of registering john's TOTP by the CLI (the device must then hold `totpSecret`). */
    prepare?: (config: string) => void
    totpSecret?: string
  } = {},
): Promise<{ sub: string }> {
  const port = await freePort()
  const config = writeKasmConfig(dir, storage, port)
  const env = { PATH: process.env.PATH ?? '' }
  const secret = opts.totpSecret ?? TOTP_SECRET
  if (opts.prepare) opts.prepare(config)
  else {
    const totp = spawnSync(process.execPath, [MAIN, 'storage', 'user', 'totp', 'generate', 'john', '--secret', TOTP_SECRET, '--config', config], { cwd: dir, env, encoding: 'utf8' })
    expect(totp.stderr).toBe('')
    expect(totp.stdout).toMatch(/^Successfully generated TOTP configuration for user 'john'/)
  }

  let err = ''
  const child = spawn(process.execPath, [MAIN, 'serve', '--config', config], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] })
  child.stderr!.on('data', (d) => (err += d))
  started({
    process: child,
    port,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
    },
  })
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`latchkey exited ${child.exitCode}: ${err}`)
    const ok = await fetch(`${base}/api/health`).then((r) => r.ok, () => false)
    if (ok) break
    if (Date.now() > deadline) throw new Error(`never became healthy: ${err}`)
    await new Promise((r) => setTimeout(r, 50))
  }

  const json = (cookie?: string) => ({ 'content-type': 'application/json', origin: base, ...(cookie ? { cookie } : {}) })
  const first = await fetch(`${base}/api/firstfactor`, { method: 'POST', headers: json(), body: JSON.stringify({ username: 'john', password: 'password', keepMeLoggedIn: false }) })
  expect(await first.json()).toMatchObject({ status: 'OK' })
  const oneFa = first.headers.get('set-cookie')!.split(';')[0]!
  const token = generateTotpCode({ algorithm: 'SHA1', digits: 6, periodSeconds: 30, secret: base32Decode(secret) }, Math.floor(Date.now() / 1000))
  const second = await fetch(`${base}/api/secondfactor/totp`, { method: 'POST', headers: json(oneFa), body: JSON.stringify({ token }) })
  expect(await second.json()).toMatchObject({ status: 'OK' })
  const cookie = second.headers.get('set-cookie')?.split(';')[0] ?? oneFa
  // The same code again is a replay (security.md F1), refused by the database's guard.
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
  // The code is spent in the database: a second redemption is refused.
  await expect(client.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce })).rejects.toMatchObject({ error: 'invalid_grant' })
  return { sub: info.sub }
}

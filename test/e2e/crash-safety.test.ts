/**
 * docs/security.md D1: the real server is killed with SIGKILL at random moments (after a code is issued,
 * after it is redeemed, during refreshes) 50 times, and restarted on the same SQLite file each time.
 * Every code and every refresh token still succeeds at most once in total, and the database passes
 * `PRAGMA integrity_check`. Uses the built binary (`npm test` builds first).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, expect, test } from 'vitest'
import { prepareKasmConfig, startServer, type BenchServer } from '../../bench/server.js'
import { loadConfig } from '../../src/config/load.js'
import { openStorage } from '../../src/storage/index.js'

const REDIRECT = 'https://kasm.example.com/api/oidc_callback'
const ROUNDS = 50
const dir = mkdtempSync(join(tmpdir(), 'latchkey-crash-'))
let server: BenchServer | undefined
// A timed-out test body keeps running after afterAll: without this flag it went on starting servers
// that nothing stopped (they outlived vitest, detached, with their folder removed).
let stopped = false
afterAll(() => {
  stopped = true
  if (server?.child.exitCode === null) server.child.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

/** startServer, unless the test is over; a server that came up after afterAll is killed at once. */
async function start(configFile: string): Promise<BenchServer> {
  if (stopped) throw new Error('crash-safety: the test is over (timed out?); no new server')
  const started = await startServer(configFile, { quiet: true })
  server = started
  if (stopped) started.child.kill('SIGKILL')
  return started
}

async function signedInSession(configFile: string): Promise<string> {
  const { config } = loadConfig({ files: [configFile], env: {} })
  const storage = await openStorage(config.storage)
  const id = 'C'.repeat(32)
  const now = Math.floor(Date.now() / 1000)
  await storage.saveSession(id, { username: 'john', level: 2, firstFactorAt: now, secondFactorAt: now, amr: ['pwd', 'otp', 'mfa'], rememberMe: true, csrfToken: 'x', createdAt: now, lastActivityAt: now }, now + 3600, now)
  await storage.close()
  return `authelia_session=${id}`
}

async function authorize(url: string, cookie: string): Promise<string | undefined> {
  const q = new URLSearchParams({ client_id: 'kasm', redirect_uri: REDIRECT, response_type: 'code', scope: 'openid profile offline_access', state: 'crash-state-0001' })
  const res = await fetch(`${url}/api/oidc/authorization?${q}`, { headers: { cookie }, redirect: 'manual' })
  const location = res.headers.get('location')
  return location ? (new URL(location).searchParams.get('code') ?? undefined) : undefined
}

/** The token endpoint's status and, on success, the new refresh token. */
async function tokenRequest(url: string, form: Record<string, string>): Promise<{ status: number; refreshToken?: string }> {
  const body = new URLSearchParams({ ...form, client_id: 'kasm', client_secret: 'insecure-secret' })
  const res = await fetch(`${url}/api/oidc/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body })
  const json = (await res.json().catch(() => ({}))) as { refresh_token?: string }
  return { status: res.status, ...(json.refresh_token ? { refreshToken: json.refresh_token } : {}) }
}
const redeem = (url: string, code: string) => tokenRequest(url, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT })
const refresh = (url: string, token: string) => tokenRequest(url, { grant_type: 'refresh_token', refresh_token: token })

test(`SIGKILL at ${ROUNDS} random moments of code and refresh flows: every code and refresh token succeeds at most once, the database stays intact`, async () => {
  const configFile = prepareKasmConfig(dir, (y) => {
    const kasm = y.identity_providers.oidc.clients[0]
    kasm.scopes.push('offline_access')
    kasm.grant_types = ['authorization_code', 'refresh_token']
  })
  // Create the database (and migrate it) once, then plant a signed-in session in it.
  server = await start(configFile)
  server.child.kill('SIGKILL')
  await new Promise((r) => server!.child.once('exit', r))
  const cookie = await signedInSession(configFile)

  const successes = new Map<string, number>()
  const succeeded = (value: string) => successes.set(value, (successes.get(value) ?? 0) + 1)
  const issued: string[] = []
  const refreshTokens: string[] = []
  for (let round = 0; round < ROUNDS; round++) {
    server = await start(configFile)
    const { url, child } = server
    let killed = false
    // Each flow: a code, its redemption, then refreshes of the newest refresh token until the kill.
    const flows = Array.from({ length: 4 }, async () => {
      while (!killed) {
        const code = await authorize(url, cookie).catch(() => undefined)
        if (!code) continue
        issued.push(code)
        const first = await redeem(url, code).catch(() => ({ status: 0, refreshToken: undefined }))
        if (first.status !== 200) continue
        succeeded(code)
        let current = first.refreshToken
        for (let i = 0; i < 3 && current && !killed; i++) {
          refreshTokens.push(current)
          const next = await refresh(url, current).catch(() => ({ status: 0, refreshToken: undefined }))
          if (next.status !== 200) break
          succeeded(current)
          current = next.refreshToken
        }
      }
    })
    await new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 200)))
    killed = true
    child.kill('SIGKILL')
    await new Promise((r) => child.once('exit', r))
    await Promise.all(flows)
  }

  // After the last crash: every code and refresh token ever seen is tried again, twice.
  server = await start(configFile)
  const { url } = server
  const retries = [...issued.map((code) => () => redeem(url, code).then((r) => r.status === 200 && succeeded(code))), ...refreshTokens.map((token) => () => refresh(url, token).then((r) => r.status === 200 && succeeded(token)))]
  const queue = [...retries, ...retries]
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let next = queue.shift(); next; next = queue.shift()) await next()
  }))
  server.child.kill('SIGTERM')
  await new Promise((r) => server!.child.once('exit', r))

  expect(issued.length).toBeGreaterThan(ROUNDS)
  expect(refreshTokens.length).toBeGreaterThan(ROUNDS)
  expect([...successes.entries()].filter(([, n]) => n !== 1)).toEqual([])
  expect(successes.size).toBeGreaterThan(ROUNDS)
  const db = new Database(join(dir, 'db.sqlite3'), { readonly: true })
  expect(db.pragma('integrity_check', { simple: true })).toBe('ok')
  db.close()
}, 600_000)

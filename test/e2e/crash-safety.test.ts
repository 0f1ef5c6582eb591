/**
 * security.md D1: the real server is killed with SIGKILL in the middle of authorization-code
 * flows, again and again, and restarted on the same SQLite file. Every code still redeems at most
 * once in total, and the database passes `PRAGMA integrity_check`. Uses the built binary
 * (`npm test` builds first).
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
const ROUNDS = 8
const dir = mkdtempSync(join(tmpdir(), 'latchkey-crash-'))
let server: BenchServer | undefined
afterAll(() => {
  if (server?.child.exitCode === null) server.child.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

async function signedInSession(configFile: string): Promise<string> {
  const { config } = loadConfig({ files: [configFile], env: {} })
  const storage = await openStorage(config.storage)
  const id = 'C'.repeat(32)
  const now = Math.floor(Date.now() / 1000)
  await storage.saveSession(id, { username: 'john', level: 2, firstFactorAt: now, secondFactorAt: now, amr: ['pwd', 'otp', 'mfa'], rememberMe: true, csrfToken: 'x', createdAt: now, lastActivityAt: now }, now + 3600)
  await storage.close()
  return `authelia_session=${id}`
}

async function authorize(url: string, cookie: string): Promise<string | undefined> {
  const q = new URLSearchParams({ client_id: 'kasm', redirect_uri: REDIRECT, response_type: 'code', scope: 'openid profile', state: 'crash-state-0001' })
  const res = await fetch(`${url}/api/oidc/authorization?${q}`, { headers: { cookie }, redirect: 'manual' })
  const location = res.headers.get('location')
  return location ? (new URL(location).searchParams.get('code') ?? undefined) : undefined
}

async function redeem(url: string, code: string): Promise<number> {
  const body = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: 'kasm', client_secret: 'insecure-secret' })
  const res = await fetch(`${url}/api/oidc/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body })
  await res.arrayBuffer()
  return res.status
}

test(`SIGKILL during ${ROUNDS} rounds of code flows: every code redeems at most once and the database stays intact`, async () => {
  const configFile = prepareKasmConfig(dir)
  // Create the database (and migrate it) once, then plant a signed-in session in it.
  server = await startServer(configFile)
  server.child.kill('SIGKILL')
  await new Promise((r) => server!.child.once('exit', r))
  const cookie = await signedInSession(configFile)

  const successes = new Map<string, number>()
  const issued: string[] = []
  for (let round = 0; round < ROUNDS; round++) {
    server = await startServer(configFile)
    const { url, child } = server
    let killed = false
    const flows = Array.from({ length: 6 }, async () => {
      while (!killed) {
        const code = await authorize(url, cookie).catch(() => undefined)
        if (!code) continue
        issued.push(code)
        const status = await redeem(url, code).catch(() => 0)
        if (status === 200) successes.set(code, (successes.get(code) ?? 0) + 1)
      }
    })
    await new Promise((r) => setTimeout(r, 80 + Math.floor(Math.random() * 250)))
    killed = true
    child.kill('SIGKILL')
    await new Promise((r) => child.once('exit', r))
    await Promise.all(flows)
  }

  // After the last crash: every code ever issued is tried again, twice.
  server = await startServer(configFile)
  for (const code of issued) {
    for (let i = 0; i < 2; i++) if ((await redeem(server.url, code)) === 200) successes.set(code, (successes.get(code) ?? 0) + 1)
  }
  server.child.kill('SIGTERM')
  await new Promise((r) => server!.child.once('exit', r))

  expect(issued.length).toBeGreaterThan(ROUNDS)
  expect([...successes.values()].every((n) => n === 1)).toBe(true)
  expect(successes.size).toBeGreaterThan(0)
  const db = new Database(join(dir, 'db.sqlite3'), { readonly: true })
  expect(db.pragma('integrity_check', { simple: true })).toBe('ok')
  db.close()
}, 120_000)

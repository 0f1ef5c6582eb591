/**
 * Both generations of Authelia's configuration serve end to end: the 4.38+ spelling through the app,
 * and a 4.37 configuration with `server.path`, `session.domain` (mapped to a cookie) and `server.tls`
 * through the real `latchkey serve` binary over HTTPS. Run `npm run build` before this file alone.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { afterEach, describe, expect, test } from 'vitest'
import { buildTestApp, ROOT, type TestApp } from '../support/app.js'
import { createTestPki, freePort, testFetch, type TestPki } from '../support/tls.js'

let t: TestApp | undefined
let child: ChildProcess | undefined
let pki: TestPki | undefined
let dir: string | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
  if (child && child.exitCode === null) child.kill('SIGKILL')
  child = undefined
  pki?.dispose()
  pki = undefined
  if (dir) rmSync(dir, { recursive: true, force: true })
  dir = undefined
})

describe('Authelia 4.38+ configuration', () => {
  test('fixtures/config/kasm-authelia-438.yml serves discovery and health', async () => {
    t = await buildTestApp({ configFile: join(ROOT, 'fixtures/config/kasm-authelia-438.yml') })
    const health = await t.app.inject({ method: 'GET', url: '/api/health' })
    expect(health.statusCode).toBe(200)
    expect(health.json()).toEqual({ status: 'OK' })
    const discovery = await t.app.inject({ method: 'GET', url: '/.well-known/openid-configuration', headers: { host: 'auth.example.com' } })
    expect(discovery.statusCode).toBe(200)
    expect(discovery.json()).toMatchObject({
      // Plain HTTP here (no TLS, no trusted proxy): the issuer follows the request, as in Authelia.
      issuer: 'http://auth.example.com',
      authorization_endpoint: 'http://auth.example.com/api/oidc/authorization',
      token_endpoint: 'http://auth.example.com/api/oidc/token',
      jwks_uri: 'http://auth.example.com/jwks.json',
    })
    expect(t.deps.config.session.cookies[0]).toMatchObject({ domain: 'example.com', autheliaUrl: 'https://auth.example.com' })
  })
})

describe('Authelia 4.37 configuration through latchkey serve', () => {
  test('server.path, session.domain and server.tls: HTTPS health and discovery under the prefix', async () => {
    pki = createTestPki()
    dir = mkdtempSync(join(tmpdir(), 'latchkey-437-'))
    const port = await freePort()
    const yaml = parse(readFileSync(join(ROOT, 'fixtures/config/kasm-authelia.yml'), 'utf8'))
    copyFileSync(join(ROOT, 'fixtures/config/users_database.yml'), join(dir, 'users_database.yml'))
    yaml.authentication_backend.file.path = 'users_database.yml'
    yaml.server = { host: '127.0.0.1', port, path: 'auth', tls: { key: pki.keyFile, certificate: pki.certFile } }
    yaml.storage.local = { path: 'db.sqlite3' }
    yaml.notifier = { filesystem: { filename: 'notification.txt' } }
    expect(yaml.session.domain).toBe('example.com')
    writeFileSync(join(dir, 'configuration.yml'), stringify(yaml))

    let err = ''
    child = spawn(process.execPath, [join(ROOT, 'dist/latchkey.mjs'), 'serve', '--config', 'configuration.yml'], { cwd: dir, env: { PATH: process.env.PATH }, stdio: ['ignore', 'ignore', 'pipe'] })
    child.stderr!.on('data', (d) => (err += d))
    const fetchTls = testFetch(pki)
    const base = `https://auth.example.com:${port}/auth`
    const deadline = Date.now() + 20_000
    let health: Response | undefined
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`latchkey exited ${child.exitCode}: ${err}`)
      try {
        health = await fetchTls(`${base}/api/health`)
        break
      } catch {
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    expect(health?.status).toBe(200)
    expect(await health!.json()).toEqual({ status: 'OK' })
    const discovery = await fetchTls(`${base}/.well-known/openid-configuration`)
    expect(discovery.status).toBe(200)
    expect(await discovery.json()).toMatchObject({ issuer: base, token_endpoint: `${base}/api/oidc/token` })
    // Outside the prefix nothing is served.
    expect((await fetchTls(`https://auth.example.com:${port}/api/health`)).status).toBe(404)
    child.kill('SIGTERM')
    expect(await new Promise((r) => child!.once('exit', (code) => r(code)))).toBe(0)
  })
})

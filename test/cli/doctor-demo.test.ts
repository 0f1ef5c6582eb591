import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, test } from 'vitest'
import { ensureDemoSetup } from '../../src/cli/demo.js'
import { doctorCommand } from '../../src/cli/doctor.js'
import type { CliIo } from '../../src/cli/io.js'
import { startTestServer, type TestApp } from '../support/app.js'

let dir: string | undefined
let server: (TestApp & { url: string }) | undefined
afterEach(async () => {
  await server?.close()
  server = undefined
  if (dir) rmSync(dir, { recursive: true, force: true })
  dir = undefined
})

test('issue 9.11: doctor on the demo configuration passes and every URL it prints answers on the running demo server', async () => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-doctor-demo-'))
  const { configFile } = await ensureDemoSetup(dir)
  server = await startTestServer({ configFile })
  const port = new URL(server.url).port

  // The demo moved to the test's port the way docs/cli.md says: LATCHKEY_SERVER_ADDRESS.
  let out = ''
  let err = ''
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env: { LATCHKEY_SERVER_ADDRESS: `tcp://127.0.0.1:${port}/` }, cwd: dir }
  const code = await doctorCommand(['--config', configFile], io)
  expect(err).toBe('')
  expect(code).toBe(0)
  const issuer = `http://127.0.0.1:${port}`
  expect(out).toContain(`[warning] issuer: issuer '${issuer}' is plain HTTP on a loopback address`)
  const printed = (label: string) => new RegExp(`^    ${label} +(\\S+)$`, 'm').exec(out)?.[1]
  const urls = {
    authorization: printed('Authorization URL'),
    token: printed('Token URL'),
    userinfo: printed('User Info URL'),
    discovery: printed('Discovery URL'),
  }
  expect(urls).toEqual({
    authorization: `${issuer}/api/oidc/authorization`,
    token: `${issuer}/api/oidc/token`,
    userinfo: `${issuer}/api/oidc/userinfo`,
    discovery: `${issuer}/.well-known/openid-configuration`,
  })

  // Each answers as that endpoint does, not 404.
  const discovery = await fetch(urls.discovery!)
  expect(discovery.status).toBe(200)
  const doc = (await discovery.json()) as Record<string, string>
  expect([doc.issuer, doc.authorization_endpoint, doc.token_endpoint, doc.userinfo_endpoint]).toEqual([issuer, urls.authorization, urls.token, urls.userinfo])
  const authorize = await fetch(`${urls.authorization}?client_id=kasm`, { redirect: 'manual' })
  expect(authorize.status).toBe(400)
  expect(await authorize.text()).toContain('invalid_request')
  const token = await fetch(urls.token!, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=authorization_code' })
  expect([token.status, ((await token.json()) as { error: string }).error]).toEqual([401, 'invalid_client'])
  const userinfo = await fetch(urls.userinfo!)
  expect(userinfo.status).toBe(401)
  expect(userinfo.headers.get('www-authenticate')).toMatch(/^Bearer/)
})

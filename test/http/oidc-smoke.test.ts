import { afterEach, expect, test } from 'vitest'
import { buildTestApp, type TestApp } from '../support/app.js'
import { addTestClients, getAuthorize, getCode, redeem, signedInCookie, userinfo, kasmParams, HOST } from '../support/oidc.js'

let t: TestApp | undefined
afterEach(async () => t?.close())

test('smoke: kasm code flow', async () => {
  t = await buildTestApp({ patch: addTestClients })
  const d = await t.app.inject({ method: 'GET', url: '/.well-known/openid-configuration', headers: { host: HOST } })
  console.log(d.statusCode, d.body.slice(0, 300))
  const cookie = await signedInCookie(t)
  const r = await getAuthorize(t, kasmParams(), cookie)
  console.log(r.statusCode, r.headers, r.body.slice(0, 500))
  const code = await getCode(t, cookie)
  const tok = await redeem(t, code)
  console.log(tok.statusCode, tok.body)
  const ui = await userinfo(t, tok.json().access_token)
  console.log(ui.statusCode, ui.headers, ui.body)
  console.log(t.logs().split('\n').filter((l) => l.includes('refused') || l.includes('error')).join('\n'))
  expect(ui.statusCode).toBe(200)
})

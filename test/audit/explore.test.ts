import { test } from 'vitest'
import { startTestServer } from '../support/app.js'
import { signedInCookie } from '../support/oidc.js'
import { req, raw, rawGet, authorizeQuery } from './probe.js'

test('explore', async () => {
  const t = await startTestServer({ portal: { failureDelay: { minimumMs: 0, jitterMs: 0 } } })
  const b = t.url
  const out: string[] = []
  const show = async (label: string, p: Promise<any>) => {
    try {
      const r = await p
      out.push(`${label} => ${r.status} ${String(r.headers['content-type'] ?? '')} ${r.body.slice(0, 160).replace(/\s+/g, ' ')}`)
    } catch (e) {
      out.push(`${label} => ERR ${(e as Error).message}`)
    }
  }
  const cookie = await signedInCookie(t, 'john', 2)
  const routesGet = ['/', '/api/state', '/api/health', '/api/configuration', '/api/user/info', '/api/user/info/totp', '/2fa/one-time-password', '/one-time-password/register', '/logout', '/error', '/consent', '/api/oidc/consent', '/api/oidc/authorization', '/api/oidc/userinfo', '/.well-known/openid-configuration', '/jwks.json', '/api/oidc/token', '/api/oidc/introspection', '/api/oidc/revocation']
  for (const r of routesGet) {
    for (const q of ['%FF', '%C3%28', '%zz', 'a=%FF', 'rd=%zz', 'id=%C3%28']) {
      await show(`GET ${r}?${q}`, rawGet(b, `${r}?${q}`, `Cookie: ${cookie}\r\n`))
    }
    await show(`GET ${r}%FF path`, rawGet(b, `${r}%FF`))
  }
  const postRoutes = ['/', '/2fa/one-time-password', '/logout', '/consent', '/one-time-password/register', '/2fa/one-time-password/register', '/api/oidc/authorization', '/api/oidc/token', '/api/oidc/introspection', '/api/oidc/revocation', '/api/oidc/userinfo']
  for (const r of postRoutes) {
    for (const body of ['a=%FF', 'a=%zz', '%C3%28=1']) {
      await show(`POST form ${r} ${body}`, req(b, r, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, origin: 'http://auth.example.com' } }))
    }
  }
  for (const r of ['/api/firstfactor', '/api/logout', '/api/secondfactor/totp', '/api/oidc/consent', '/api/checks/safe-redirection', '/api/user/info/2fa_method']) {
    await show(`POST json bad utf8 ${r}`, req(b, r, { method: 'POST', body: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), headers: { 'content-type': 'application/json', cookie } }))
    await show(`POST json proto ${r}`, req(b, r, { method: 'POST', body: '{"__proto__":{"x":1}}', headers: { 'content-type': 'application/json', cookie } }))
    await show(`POST json array ${r}`, req(b, r, { method: 'POST', body: '[1,2]', headers: { 'content-type': 'application/json', cookie } }))
    await show(`POST json null ${r}`, req(b, r, { method: 'POST', body: 'null', headers: { 'content-type': 'application/json', cookie } }))
    await show(`POST json str ${r}`, req(b, r, { method: 'POST', body: '"x"', headers: { 'content-type': 'application/json', cookie } }))
    await show(`GET ${r}`, req(b, r, { headers: { cookie } }))
  }
  for (const r of ['/api/oidc/token', '/api/oidc/introspection', '/api/oidc/revocation', '/api/oidc/authorization', '/api/oidc/userinfo', '/api/oidc/consent', '/consent']) {
    await show(`POST json ${r}`, req(b, r, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json', cookie } }))
    await show(`POST json proto ${r}`, req(b, r, { method: 'POST', body: '{"__proto__":{"a":1}}', headers: { 'content-type': 'application/json', cookie } }))
    await show(`POST multipart ${r}`, req(b, r, { method: 'POST', body: '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n', headers: { 'content-type': 'multipart/form-data; boundary=x', cookie } }))
    await show(`POST text ${r}`, req(b, r, { method: 'POST', body: 'a=1', headers: { 'content-type': 'text/plain', cookie } }))
    await show(`POST none ${r}`, req(b, r, { method: 'POST', body: 'a=1', headers: { cookie } }))
    await show(`PUT ${r}`, req(b, r, { method: 'PUT', body: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } }))
  }
  await show('big body token', req(b, '/api/oidc/token', { method: 'POST', body: 'a=' + 'x'.repeat(10_000_000), headers: { 'content-type': 'application/x-www-form-urlencoded' } }))
  await show('big body ff', req(b, '/api/firstfactor', { method: 'POST', body: '{"a":"' + 'x'.repeat(200_000) + '"}', headers: { 'content-type': 'application/json' } }))
  await show('big body /', req(b, '/', { method: 'POST', body: 'a=' + 'x'.repeat(200_000), headers: { 'content-type': 'application/x-www-form-urlencoded' } }))
  await show('big url', rawGet(b, '/api/oidc/authorization?x=' + 'a'.repeat(100_000)))
  await show('big url 20k', rawGet(b, '/api/oidc/authorization?x=' + 'a'.repeat(20_000)))
  await show('big header', rawGet(b, '/api/state', 'X-Big: ' + 'a'.repeat(100_000) + '\r\n'))
  await show('health after', req(b, '/api/health'))
  // duplicates
  await show('authz dup state', req(b, '/api/oidc/authorization?' + authorizeQuery() + '&state=zzzzzzzzzz', { headers: { cookie } }))
  await show('authz dup client', req(b, '/api/oidc/authorization?' + authorizeQuery() + '&client_id=kasm', { headers: { cookie } }))
  await show('authz a[b]', req(b, '/api/oidc/authorization?' + authorizeQuery() + '&a[b]=c', { headers: { cookie } }))
  await show('authz empty state', req(b, '/api/oidc/authorization?' + authorizeQuery({ state: '' }), { headers: { cookie } }))
  console.log(out.join('\n'))
  await t.close()
}, 120_000)

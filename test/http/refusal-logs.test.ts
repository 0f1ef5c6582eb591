import { readFileSync } from 'node:fs'
import { afterEach, expect, test } from 'vitest'
import { formatTextLine } from '../../src/server/logger.js'
import { ROOT } from '../support/app.js'
import type { TestApp } from '../support/app.js'
import { KASM, basic, getAuthorize, kasmParams, postForm } from '../support/oidc.js'
import { Client, portalTestApp } from './portal-helpers.js'

let t: TestApp | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

/** The client behind the proxy; the proxy itself is 127.0.0.1 (inject's peer), a trusted proxy. */
const CLIENT = '203.0.113.7'
const XFF = { 'x-forwarded-for': `198.51.100.99, ${CLIENT}` }

/** One request per kind of refusal line; each must name the client address as `ip` (issue 14.6, fail2ban). */
const REFUSALS = [
  'first factor failed',
  'second factor failed',
  'client authentication failed',
  'oidc authorization refused',
  'oidc token refused',
  'cross-site request refused',
  'cross-site form refused',
  'form refused',
  'portal API refused a non-JSON body',
  'identity verification refused',
  'request refused',
]

test('issue 14.6: every refusal line carries the client address as `ip` (the rightmost X-Forwarded-For address not in trusted_proxies)', async () => {
  t = await portalTestApp({ patch: (y) => (y.server = { ...y.server, trusted_proxies: ['127.0.0.1'] }) })
  const app = t.app
  const c = new Client(app)
  await c.post('/api/firstfactor', { username: 'john', password: 'wrong' }, XFF)
  await c.post('/api/firstfactor', { username: 'john', password: 'password' }, { ...XFF, origin: 'https://evil.example.net' })
  await c.request({ method: 'POST', url: '/api/firstfactor', payload: 'username=john', headers: { ...XFF, 'content-type': 'text/plain' } })
  await c.form('/', { username: 'john', password: 'password' }, XFF)
  await c.form('/', { username: 'john', password: 'password' }, { ...XFF, origin: 'https://evil.example.net' })
  await c.get('/api/state?x=%zz', XFF)
  expect((await c.signIn()).statusCode).toBe(200)
  await c.post('/api/secondfactor/totp', { token: '123456' }, XFF)
  await c.post('/api/secondfactor/totp/identity/finish', { token: 'not-a-jwt' }, XFF)
  await postForm(t, '/api/oidc/token', { grant_type: 'authorization_code', code: 'x', redirect_uri: KASM.redirectUri }, { ...XFF, authorization: basic(KASM.id, 'wrong-secret') })
  await postForm(t, '/api/oidc/token', { grant_type: 'authorization_code', code: 'not-a-code', redirect_uri: KASM.redirectUri }, { ...XFF, authorization: basic(KASM.id, KASM.secret) })
  await getAuthorize(t, kasmParams({ redirect_uri: 'https://evil.example.net/cb' }), undefined, XFF)

  const lines = t
    .logs()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { msg: string; ip?: string })
  for (const kind of REFUSALS) {
    const found = lines.filter((l) => l.msg.startsWith(kind))
    expect(found.length, kind).toBeGreaterThan(0)
    for (const l of found) expect(l.ip, l.msg).toBe(CLIENT)
  }
  // Not only the listed kinds: no refusal or failure line of any kind goes without the address.
  const refusals = lines.filter((l) => /refused|failed/.test(l.msg))
  for (const l of refusals) expect(l.ip, l.msg).toBe(CLIENT)
  // The address appears once per line (a log object naming `ip` too would duplicate the key).
  for (const raw of t.logs().split('\n').filter((l) => /refused|failed/.test(l))) expect(raw.match(/"ip":/g), raw).toHaveLength(1)
})

test("docs/deploy.md: the fail2ban failregex finds the client address in every refusal line of the text format", async () => {
  const doc = readFileSync(`${ROOT}/docs/deploy.md`, 'utf8')
  const failregex = /^failregex = (.*)$/m.exec(doc)![1]!
  // fail2ban replaces <HOST> with a host pattern; Python's (?:…) and character classes read the same in JavaScript.
  const re = new RegExp(failregex.replace('<HOST>', '(?<host>\\S+)'))
  t = await portalTestApp({ patch: (y) => (y.server = { ...y.server, trusted_proxies: ['127.0.0.1'] }) })
  const c = new Client(t.app)
  await c.post('/api/firstfactor', { username: 'john', password: 'wrong' }, XFF)
  expect((await c.signIn()).statusCode).toBe(200)
  await c.post('/api/secondfactor/totp', { token: '123456' }, XFF)
  await postForm(t, '/api/oidc/token', { grant_type: 'authorization_code', code: 'x', redirect_uri: KASM.redirectUri }, { ...XFF, authorization: basic(KASM.id, 'wrong-secret') })
  await postForm(t, '/api/oidc/token', { grant_type: 'authorization_code', code: 'not-a-code', redirect_uri: KASM.redirectUri }, { ...XFF, authorization: basic(KASM.id, KASM.secret) })
  await getAuthorize(t, kasmParams({ redirect_uri: 'https://evil.example.net/cb' }), undefined, XFF)
  const text = t.logs().split('\n').filter(Boolean).map((l) => formatTextLine(l).trimEnd())
  const matched = text.map((l) => re.exec(l)?.groups?.host).filter((h) => h !== undefined)
  expect(matched).toEqual([CLIENT, CLIENT, CLIENT, CLIENT, CLIENT])
  // A successful sign-in does not match.
  expect(text.filter((l) => l.includes('first factor succeeded')).some((l) => re.test(l))).toBe(false)
})

test("docs/deploy.md: the fail2ban failregex takes the client address, never an address an attacker wrote into a username or client_id", async () => {
  const doc = readFileSync(`${ROOT}/docs/deploy.md`, 'utf8')
  const failregex = /^failregex = (.*)$/m.exec(doc)![1]!
  const re = new RegExp(failregex.replace('<HOST>', '(?<host>\\S+)'))
  t = await portalTestApp({ patch: (y) => (y.server = { ...y.server, trusted_proxies: ['127.0.0.1'] }) })
  const c = new Client(t.app)
  // Each carries " ip=<victim> " so that a greedy match would make fail2ban ban the victim's address.
  const VICTIM = '192.0.2.66'
  await c.post('/api/firstfactor', { username: `x ip=${VICTIM} y`, password: 'wrong' }, XFF)
  await c.post('/api/firstfactor', { username: `x" reqId=r ip=${VICTIM} y`, password: 'wrong' }, XFF)
  await postForm(t, '/api/oidc/token', { grant_type: 'authorization_code', code: 'x', redirect_uri: KASM.redirectUri }, { ...XFF, authorization: basic(`k ip=${VICTIM} z`, 'wrong-secret') })
  await postForm(t, '/api/oidc/token', { grant_type: 'authorization_code', code: 'x', redirect_uri: KASM.redirectUri }, { ...XFF, authorization: basic(`k" reqId=r ip=${VICTIM} z`, 'wrong-secret') })
  const text = t.logs().split('\n').filter(Boolean).map((l) => formatTextLine(l).trimEnd())
  const injected = text.filter((l) => l.includes(VICTIM))
  // Both kinds of line really carry the victim's address (else this test could not fail).
  expect(injected.filter((l) => l.includes('first factor failed')).length).toBeGreaterThanOrEqual(2)
  expect(injected.filter((l) => l.includes('client authentication failed')).length).toBeGreaterThanOrEqual(2)
  const hosts = injected.map((l) => re.exec(l)?.groups?.host)
  expect(hosts.length).toBeGreaterThanOrEqual(4)
  for (const h of hosts) expect(h).toBe(CLIENT)
})

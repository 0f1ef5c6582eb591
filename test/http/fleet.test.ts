import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, test } from 'vitest'
import { ManualClock } from '../../src/common/clock.js'
import type { TestApp } from '../support/app.js'
import { basic, getCode, postForm, redeem, signedInCookie, userinfo, KASM } from '../support/oidc.js'
import { Client, portalTestApp } from './portal-helpers.js'

/**
 * docs/security.md H1: two app instances on one storage file, as two Latchkeys behind a load
 * balancer share one database. What one instance ends, the other refuses on the very next request.
 */
let apps: TestApp[] = []
let dir: string | undefined
afterEach(async () => {
  for (const t of apps) await t.close()
  apps = []
  if (dir) rmSync(dir, { recursive: true, force: true })
  dir = undefined
})

async function twoInstances(opts: { watch?: boolean } = {}): Promise<[TestApp, TestApp]> {
  const clock = new ManualClock(Math.floor(Date.now() / 1000))
  const patch = (yaml: any) => {
    if (opts.watch) yaml.authentication_backend.file.watch = true
  }
  const a = await portalTestApp({ clock, keepDir: true, patch })
  dir = a.dir
  const b = await portalTestApp({ clock, dir, keepDir: true })
  apps.push(a, b)
  return [a, b]
}

/** The same browser, its requests answered by whichever instance the balancer picks. */
function browserOn(from: Client, app: TestApp): Client {
  const c = new Client(app.app)
  c.cookie = from.cookie
  return c
}

describe('H1: two instances on one store', () => {
  test('a sign-out on A is refused on B at once, also when B served the session just before', async () => {
    const [a, b] = await twoInstances()
    const onA = new Client(a.app)
    expect((await onA.signIn()).statusCode).toBe(200)
    const onB = browserOn(onA, b)
    expect((await onB.state()).authentication_level).toBe(1)

    expect((await onA.post('/api/logout', {})).statusCode).toBe(200)
    // Same second: B must not answer from anything it kept of the session.
    expect((await onB.state()).authentication_level).toBe(0)
    // Past the touch interval B would refresh lastActivityAt: it must not write the session back.
    b.clock.advance(6)
    expect((await onB.state()).authentication_level).toBe(0)
    expect((await browserOn(onB, a).state()).authentication_level).toBe(0)
    expect(await b.storage.findSession(onB.cookie!, b.clock.now())).toBeUndefined()
  })

  test('a ban earned on A holds on B, for the right password too', async () => {
    const [a, b] = await twoInstances()
    for (let i = 0; i < 3; i++) expect((await new Client(a.app).signIn('john', 'nope')).statusCode).toBe(401)
    expect((await new Client(b.app).signIn('john', 'password')).statusCode).toBe(401)
    expect(b.logs()).toMatch(/first factor failed: banned until/)
  })

  test('a code redeemed on A is refused on B, and the replay revokes the tokens A issued', async () => {
    const [a, b] = await twoInstances()
    const cookie = await signedInCookie(a, 'john', 2)
    const code = await getCode(a, cookie)
    const first = await redeem(a, code)
    expect(first.statusCode).toBe(200)
    const replay = await redeem(b, code)
    expect(replay.statusCode).toBe(400)
    expect(replay.json()).toMatchObject({ error: 'invalid_grant' })
    expect((await userinfo(a, first.json().access_token)).statusCode).toBe(401)
    expect((await userinfo(b, first.json().access_token)).statusCode).toBe(401)
  })

  test('a grant revoked on A is refused on B at once', async () => {
    const [a, b] = await twoInstances()
    const tokens = (await redeem(a, await getCode(a, await signedInCookie(a, 'john', 2)))).json()
    expect((await userinfo(b, tokens.access_token)).statusCode).toBe(200)
    const revoked = await postForm(a, '/api/oidc/revocation', { token: tokens.access_token }, { authorization: basic(KASM.id, KASM.secret) })
    expect(revoked.statusCode).toBe(200)
    expect((await userinfo(b, tokens.access_token)).statusCode).toBe(401)
  })

  test('a user disabled in the users file is refused by both instances on the next request', async () => {
    const [a, b] = await twoInstances({ watch: true })
    const onA = new Client(a.app)
    expect((await onA.signIn()).statusCode).toBe(200)
    const tokens = (await redeem(b, await getCode(b, await signedInCookie(b, 'john', 2)))).json()
    expect((await userinfo(a, tokens.access_token)).statusCode).toBe(200)

    const users = join(a.dir, 'users_database.yml')
    writeFileSync(users, readFileSync(users, 'utf8').replace('  john:\n', '  john:\n    disabled: true\n'))
    // No wait for the file watcher: the edit holds from the very next request on either instance.
    expect((await browserOn(onA, b).state()).authentication_level).toBe(0)
    expect((await new Client(b.app).signIn('john', 'password')).statusCode).toBe(401)
    expect((await new Client(a.app).signIn('john', 'password')).statusCode).toBe(401)
    expect((await userinfo(a, tokens.access_token)).statusCode).toBe(401)
  })
})

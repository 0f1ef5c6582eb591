import { afterEach, expect, test } from 'vitest'
import { ManualClock } from '../../src/common/clock.js'
import type { TestApp } from '../support/app.js'
import { Client, portalTestApp } from './portal-helpers.js'

const apps: TestApp[] = []
afterEach(async () => {
  while (apps.length) await apps.pop()!.close()
})

test('a signed-in session and a ban both survive a restart on the same SQLite file', async () => {
  const clock = new ManualClock(1_700_000_000)
  const first = await portalTestApp({ clock, keepDir: true })
  apps.push(first)
  const john = new Client(first.app)
  expect((await john.signIn()).statusCode).toBe(200)
  for (let i = 0; i < 3; i++) await new Client(first.app).signIn('harry', 'wrong')
  expect((await new Client(first.app).signIn('harry', 'password')).statusCode).toBe(401)
  const dir = first.dir
  await apps.pop()!.close()

  clock.advance(60)
  const second = await portalTestApp({ clock, dir })
  apps.push(second)
  const resumed = new Client(second.app)
  resumed.cookie = john.cookie
  expect(await resumed.state()).toEqual({ username: 'john', authentication_level: 1, default_redirection_url: 'https://www.example.com/' })
  const banned = await new Client(second.app).signIn('harry', 'password')
  expect(banned.statusCode).toBe(401)
  // The ban was read back from the database: 4 of its 5 minutes remain.
  expect(banned.json()).toEqual({ status: 'KO', message: 'Sign-in is paused after too many failed attempts. Try again in 4 minutes.' })
  clock.advance(300)
  expect((await new Client(second.app).signIn('harry', 'password')).statusCode).toBe(200)
})

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, test } from 'vitest'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ManualClock } from '../common/clock.js'
import { openSqliteStorage } from '../storage/sqlite/index.js'
import type { Storage } from '../storage/storage.js'
import type { Config } from '../config/schema.js'
import { SessionManager } from './session.js'

let storage: Storage | undefined
let dir: string | undefined
afterEach(async () => {
  await storage?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const cookie = { domain: 'example.com', name: 'authelia_session', sameSite: 'lax', expirationSeconds: 3600, inactivitySeconds: 300, rememberMeSeconds: 2592000 } as const

test('a request that loaded the session before a logout cannot write it back afterwards', async () => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-session-'))
  storage = await openSqliteStorage({ path: join(dir, 'db.sqlite3'), encryptionKey: 'a-storage-key-of-enough-length' })
  const clock = new ManualClock(1_700_000_000)
  const manager = new SessionManager({ session: { cookies: [cookie] } } as unknown as Config, storage, clock)
  const reply = { setCookie: () => reply, clearCookie: () => reply } as unknown as FastifyReply
  const request = (id?: string) =>
    ({ hostname: 'auth.example.com', protocol: 'https', cookies: id ? { authelia_session: id } : {}, session: null, log: { info() {} } }) as unknown as FastifyRequest

  const data = manager.newData(clock.now())
  data.level = 1
  data.username = 'john'
  const issued = await manager.issue(request(), reply, data)

  // Request A loads the session, then waits on something (e.g. storage) while request B logs out.
  const a = request(issued.id)
  await manager.load(a)
  expect(a.session?.data.username).toBe('john')
  const b = request(issued.id)
  await manager.load(b)
  await manager.destroy(b, reply)
  expect(await storage.findSession(issued.id, clock.now())).toBeUndefined()

  // A finishes and saves: the ended session must stay ended.
  a.session!.data.extra = { registrationShown: true }
  await manager.save(a.session!)
  expect(await storage.findSession(issued.id, clock.now())).toBeUndefined()
  const replay = request(issued.id)
  await manager.load(replay)
  expect(replay.session).toBeNull()
})

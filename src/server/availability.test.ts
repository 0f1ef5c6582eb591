import { expect, test } from 'vitest'
import { DependencyMonitor, guardDependency, isConnectivityError, UnavailableError } from './availability.js'

const coded = (message: string, code: string) => Object.assign(new Error(message), { code })

test('driver errors that mean "down or overloaded" are told apart from bugs', () => {
  for (const err of [
    coded('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'),
    coded('terminating connection due to administrator command', '57P01'),
    coded('the database system is starting up', '57P03'),
    coded('sorry, too many clients already', '53300'),
    coded('connection failure', '08006'),
    coded('database is locked', 'SQLITE_BUSY'),
    coded('disk I/O error', 'SQLITE_IOERR_WRITE'),
    coded('redis is unavailable: no answer', 'UNAVAILABLE'),
    new Error('Connection terminated unexpectedly'),
    Object.assign(new Error('Reached the max retries per request limit'), { name: 'MaxRetriesPerRequestError' }),
  ]) {
    expect(isConnectivityError(err), err.message).toBe(true)
  }
  for (const err of [coded('UNIQUE constraint failed', 'SQLITE_CONSTRAINT_UNIQUE'), coded('duplicate key value', '23505'), new TypeError('x is undefined'), 'a string']) {
    expect(isConnectivityError(err), String(err)).toBe(false)
  }
})

test('one line when an outage starts, none while it lasts, one when the probe finds it back', async () => {
  const lines: Array<[string, object]> = []
  const log = { error: (o: object, m: string) => void lines.push([m, o]), info: (o: object, m: string) => void lines.push([m, o]) }
  let up = false
  const monitor = new DependencyMonitor(log, { storage: async () => up }, 20)
  const store = guardDependency({ async find() { if (!up) throw coded('connect ECONNREFUSED 10.0.0.5:5432', 'ECONNREFUSED'); return 1 } }, 'storage', monitor, 1000)
  for (let i = 0; i < 3; i++) await expect(store.find()).rejects.toBeInstanceOf(UnavailableError)
  expect(lines).toEqual([['storage unavailable: requests get 503 until it answers again', { dependency: 'storage', reason: 'connect ECONNREFUSED 10.0.0.5:5432' }]])
  up = true
  await new Promise((r) => setTimeout(r, 100))
  expect(lines.map(([m]) => m)).toEqual(['storage unavailable: requests get 503 until it answers again', 'storage available again'])
  expect(await store.find()).toBe(1)
  expect(lines).toHaveLength(2)
  monitor.close()
})

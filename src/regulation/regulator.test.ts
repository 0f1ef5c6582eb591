import { describe, expect, test } from 'vitest'
import type { AuthenticationAttempt } from '../storage/storage.js'
import { decideBan } from './regulator.js'

const CONFIG = { maxRetries: 3, findTimeSeconds: 120, banTimeSeconds: 300 }

function attempt(time: number, successful = false, banned = false): AuthenticationAttempt {
  return { time, successful, banned, username: 'john', type: '1fa', remoteIp: '127.0.0.1' }
}
/** Newest first, as the store lists them. */
const list = (...a: AuthenticationAttempt[]) => a.sort((x, y) => y.time - x.time)

describe('decideBan', () => {
  test('three failures within find_time ban until the newest + ban_time', () => {
    expect(decideBan(list(attempt(100), attempt(150), attempt(200)), 201, CONFIG)).toEqual({ banned: true, until: 500 })
  })
  test('the ban ends at newest + ban_time', () => {
    expect(decideBan(list(attempt(100), attempt(150), attempt(200)), 500, CONFIG)).toEqual({ banned: false })
  })
  test('failures spread over find_time or more do not ban', () => {
    expect(decideBan(list(attempt(100), attempt(150), attempt(220)), 221, CONFIG)).toEqual({ banned: false })
    expect(decideBan(list(attempt(100), attempt(150), attempt(219)), 221, CONFIG)).toEqual({ banned: true, until: 519 })
  })
  test('a success between failures resets the count', () => {
    expect(decideBan(list(attempt(100), attempt(110), attempt(120, true), attempt(130)), 131, CONFIG)).toEqual({ banned: false })
  })
  test('attempts refused during a ban do not count and do not extend it', () => {
    expect(decideBan(list(attempt(100), attempt(110), attempt(120), attempt(200, false, true), attempt(300, false, true)), 301, CONFIG)).toEqual({ banned: true, until: 420 })
  })
  test('two failures are not enough', () => {
    expect(decideBan(list(attempt(100), attempt(110)), 111, CONFIG)).toEqual({ banned: false })
  })
  test('max_retries 0 disables regulation', () => {
    expect(decideBan(list(attempt(100), attempt(110), attempt(120)), 121, { ...CONFIG, maxRetries: 0 })).toEqual({ banned: false })
  })
  test('a page full of banned attempts fails closed', () => {
    expect(decideBan(list(attempt(290, false, true), attempt(291, false, true)), 292, CONFIG, true)).toEqual({ banned: true, until: 591 })
  })
})

/** Hostile users files: refused with a clear, positioned problem; never a crash, a hang or a blow-up. */
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { DEFAULTS, type FileBackendConfig } from '../config/schema.js'
import { FileUserProvider, parseUsersFile, UsersFileError } from './users-file.js'

const FIXTURE = readFileSync(new URL('../../fixtures/config/users_database.yml', import.meta.url), 'utf8')
const DIGEST = /password: "(\$argon2id[^"]+)"/.exec(FIXTURE)![1]!
const dir = mkdtempSync(join(tmpdir(), 'latchkey-users-hostile-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const opts = { searchEmail: false, searchCaseInsensitive: false }

function problems(text: string): string[] {
  try {
    parseUsersFile(text, opts)
  } catch (e) {
    expect(e).toBeInstanceOf(UsersFileError)
    return (e as UsersFileError).problems
  }
  throw new Error('expected the users file to be refused')
}

function backend(path: string): FileBackendConfig {
  return { path, watch: false, searchEmail: false, searchCaseInsensitive: false, password: structuredClone(DEFAULTS.password) as unknown as FileBackendConfig['password'] }
}

const laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
for (const [i, name] of ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].entries()) laughs.push(`${name}: &${name} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(',')}]`)

describe('hostile users files', () => {
  test('a YAML alias bomb is refused quickly (maxAliasCount)', () => {
    const start = performance.now()
    expect(problems(`${laughs.join('\n')}\nusers:\n  bob:\n    displayname: *i\n    password: "${DIGEST}"\n`)).toEqual(['yaml: document contains excessive aliasing'])
    expect(performance.now() - start).toBeLessThan(2000)
  })

  test('a duplicated user or user key names the path and both lines', () => {
    const text = `users:\n  bob:\n    displayname: Bob\n    password: "${DIGEST}"\n    displayname: Robert\n  bob:\n    displayname: Bob2\n    password: "${DIGEST}"\n`
    expect(problems(text)).toEqual(["6:3: users.bob: yaml: mapping key 'bob' already defined at line 2", "5:5: users.bob.displayname: yaml: mapping key 'displayname' already defined at line 3"])
  })

  test.each([
    ['- bob\n- alice\n', "1:1: the users file must be a map with a 'users' key, got a list"],
    ['users\n', "1:1: the users file must be a map with a 'users' key, got a single value"],
    ['users: [bob, alice]\n', '1:8: users: must be a map of username to user'],
    ['users:\n  bob: [x]\n', "2:3: users.bob: must be a map with 'password' and 'displayname'"],
  ])('wrong shapes are refused: %j', (text, expected) => {
    expect(problems(text)).toEqual([expected])
  })

  test('wrong types inside a user are each reported at their line', () => {
    const text = `users:\n  bob:\n    displayname: [Bob]\n    password: "${DIGEST}"\n    email: {a: b}\n    groups: {a: b}\n    disabled: maybe\n`
    expect(problems(text)).toEqual([
      "3:18: users.bob.displayname: option 'displayname' is required",
      "5:12: users.bob.email: option 'email' must be a string or a list of strings",
      "6:13: users.bob.groups: option 'groups' must be a list of strings",
      "7:15: users.bob.disabled: option 'disabled' must be true or false",
    ])
  })

  test('tabs, binary garbage and deep nesting are refused with a position', () => {
    expect(problems('users:\n\tbob: {}\n')).toEqual(['2:1: yaml: Tabs are not allowed as indentation'])
    expect(problems('users:\n  bob\x00\x01\x02: {}\n')).toEqual(['2:6: the file is not YAML text: it contains a NUL byte'])
    const start = performance.now()
    expect(problems(`users: ${'['.repeat(500_000)}\n`)).toEqual(['1:40: yaml: the document is nested too deeply'])
    expect(performance.now() - start).toBeLessThan(1000)
  })

  test('merge keys work as in Authelia (yaml.v3)', () => {
    const text = `x-common: &c\n  displayname: Common\n  groups: [dev]\nusers:\n  bob:\n    <<: *c\n    password: "${DIGEST}"\n`
    expect(() => parseUsersFile(text, opts)).not.toThrow()
  })

  test('10 000 users load in bounded time and every one is found', async () => {
    let text = 'users:\n'
    for (let i = 0; i < 10_000; i++) text += `  user${i}:\n    displayname: "User ${i}"\n    password: "${DIGEST}"\n    email: user${i}@example.com\n    groups: [admins, dev]\n`
    const path = join(dir, 'users10k.yml')
    writeFileSync(path, text)
    const start = performance.now()
    const provider = await FileUserProvider.open(backend(path))
    const ms = performance.now() - start
    expect(provider.size).toBe(10_000)
    expect(provider.findUserNow('user9999')?.emails).toEqual(['user9999@example.com'])
    provider.close()
    // About 1.5 s here (the YAML parser costs ~1 µs per byte); the bound catches quadratic behaviour.
    expect(ms).toBeLessThan(10_000)
  })

  test('a users path that is a directory, a device or missing is one clear line', async () => {
    mkdirSync(join(dir, 'users.d'))
    await expect(FileUserProvider.open(backend(join(dir, 'users.d')))).rejects.toThrow(`users file ${join(dir, 'users.d')}: cannot be read: read ${join(dir, 'users.d')}: is a directory`)
    await expect(FileUserProvider.open(backend('/dev/zero'))).rejects.toThrow('users file /dev/zero: cannot be read: read /dev/zero: not a regular file')
    const fifo = join(dir, 'users.fifo')
    if (spawnSync('mkfifo', [fifo]).status === 0) await expect(FileUserProvider.open(backend(fifo))).rejects.toThrow('not a regular file')
  })

  test.skipIf(process.getuid?.() === 0)('an unreadable users file (permissions) is one clear line', async () => {
    const path = join(dir, 'locked.yml')
    writeFileSync(path, FIXTURE)
    chmodSync(path, 0o000)
    await expect(FileUserProvider.open(backend(path))).rejects.toThrow(`users file ${path}: cannot be read: open ${path}: permission denied`)
  })
})

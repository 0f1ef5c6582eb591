import { mkdtempSync, readFileSync, rmSync, writeFileSync, renameSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { FileUserProvider, parseUsersFile, UsersFileError, MAX_PASSWORD_BYTES } from './users-file.js'
import type { FileBackendConfig } from '../config/schema.js'
import { DEFAULTS } from '../config/schema.js'

// john and harry: password "password" (argon2id at Authelia's defaults), from the shared fixture.
const FIXTURE = readFileSync(new URL('../../fixtures/config/users_database.yml', import.meta.url), 'utf8')
const JOHN_DIGEST = /password: "(\$argon2id[^"]+)"/.exec(FIXTURE)![1]!
// "password" under argon2id m=64 MiB, t=40, p=4.
const SLOW_DIGEST = '$argon2id$v=19$m=65536,t=40,p=4$cRkblkFG9NQ/G0CMUsRe4Q$/VBPvTHQrFCKtaoCHsh4SBKwOkYzOk7AAWqYWSrSBDE'

let dir: string
let provider: FileUserProvider | undefined
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-users-'))
})
afterEach(() => {
  provider?.close()
  provider = undefined
  rmSync(dir, { recursive: true, force: true })
})

function backend(over: Partial<FileBackendConfig> = {}): FileBackendConfig {
  return {
    path: join(dir, 'users.yml'),
    watch: false,
    searchEmail: false,
    searchCaseInsensitive: false,
    password: structuredClone(DEFAULTS.password) as unknown as FileBackendConfig['password'],
    ...over,
  }
}

const logs: string[] = []
const log = {
  info: (_o: object, m: string) => logs.push(`info ${m}`),
  warn: (_o: object, m: string) => logs.push(`warn ${m}`),
  error: (o: object, m: string) => logs.push(`error ${m} ${JSON.stringify(o)}`),
}

describe('users file', () => {
  test('the shared fixture loads and verifies john with "password"', async () => {
    writeFileSync(join(dir, 'users.yml'), FIXTURE)
    provider = await FileUserProvider.open(backend())
    expect(provider.findUserNow('john')).toEqual({
      username: 'john',
      displayName: 'John Doe',
      emails: ['john.doe@example.com'],
      groups: ['admins', 'dev'],
      credentialFingerprint: expect.stringMatching(/^[0-9a-f]{16}$/),
    })
    expect(await provider.checkPassword('john', 'password')).toMatchObject({ ok: true, user: { username: 'john' } })
    expect(await provider.checkPassword('john', 'Password')).toEqual({ ok: false, reason: 'wrong_password' })
    expect(await provider.checkPassword('nobody', 'password')).toEqual({ ok: false, reason: 'unknown_user' })
  })

  test('a disabled user is unknown and cannot sign in even with the right password', async () => {
    writeFileSync(join(dir, 'users.yml'), `users:\n  ann:\n    displayname: Ann\n    password: "${JOHN_DIGEST}"\n    disabled: true\n`)
    provider = await FileUserProvider.open(backend())
    expect(provider.findUserNow('ann')).toBeUndefined()
    expect(await provider.checkPassword('ann', 'password')).toEqual({ ok: false, reason: 'disabled' })
  })

  test('a password over 1024 bytes is refused without hashing', async () => {
    // A deliberately slow digest (t=40, about half a second) makes "no hashing" visible without a
    // fixed time bound: the refusal is compared with one real verification, in the same test.
    writeFileSync(join(dir, 'users.yml'), `users:\n  john:\n    displayname: John\n    password: "${SLOW_DIGEST}"\n`)
    provider = await FileUserProvider.open(backend())
    const timed = async (password: string) => {
      const started = performance.now()
      const result = await provider!.checkPassword('john', password)
      return { result, ms: performance.now() - started }
    }
    const tooLong = await timed('x'.repeat(MAX_PASSWORD_BYTES + 1))
    const tooLongUtf8 = await timed('é'.repeat(600))
    const wrong = await timed('wrong')
    expect(tooLong.result).toEqual({ ok: false, reason: 'too_long' })
    expect(tooLongUtf8.result).toEqual({ ok: false, reason: 'too_long' })
    expect(wrong.result).toMatchObject({ ok: false })
    expect(tooLong.ms + tooLongUtf8.ms).toBeLessThan(wrong.ms / 4)
  })

  test('email lists, login by email and case-insensitive search', async () => {
    writeFileSync(
      join(dir, 'users.yml'),
      `users:\n  Alice:\n    displayname: Alice\n    password: "${JOHN_DIGEST}"\n    email: [alice@example.com, a@example.org]\n    groups: [dev]\n`,
    )
    provider = await FileUserProvider.open(backend({ searchEmail: true, searchCaseInsensitive: true }))
    expect(provider.findUserNow('alice')?.emails).toEqual(['alice@example.com', 'a@example.org'])
    expect(provider.findUserNow('ALICE@example.com')?.username).toBe('Alice')
    expect(provider.findUserNow('a@example.org')?.username).toBe('Alice')
    expect((await provider.checkPassword('alice', 'password')).ok).toBe(true)
  })

  test('every problem of a broken file is reported, naming the user', () => {
    const text = `users:\n  bob:\n    displayname: Bob\n    password: "$argon2id$v=19$m=65536,t=3,p=4$bad"\n  carl:\n    password: "${JOHN_DIGEST}"\n    groups: admins\n    shoe_size: 44\n`
    try {
      parseUsersFile(text, { searchEmail: false, searchCaseInsensitive: false })
      expect.unreachable()
    } catch (err) {
      expect(err).toBeInstanceOf(UsersFileError)
      const problems = (err as UsersFileError).problems
      expect(problems[0]).toMatch(/^4:15: users\.bob\.password: failed to parse hash for user 'bob': /)
      expect(problems).toContain('8:5: users.carl.shoe_size: key not expected: shoe_size')
      expect(problems).toContain("5:3: users.carl: option 'displayname' is required")
      expect(problems).toContain("7:13: users.carl.groups: option 'groups' must be a list of strings")
      expect(problems).toHaveLength(4)
      const named = new UsersFileError(problems, '/etc/latchkey/users.yml')
      expect(named.message).toMatch(/^users file \/etc\/latchkey\/users\.yml:4:15: users\.bob\.password: failed to parse hash for user 'bob': .*; \/etc\/latchkey\/users\.yml:8:5: users\.carl\.shoe_size: /)
    }
  })

  test('a missing file gets a template written and a clear error', async () => {
    await expect(FileUserProvider.open(backend())).rejects.toThrow(/does not exist: a template was written there/)
    expect(readFileSync(join(dir, 'users.yml'), 'utf8')).toContain('latchkey crypto hash generate argon2')
  })

  test('with watch, an edit is picked up and a broken edit keeps the last good users', async () => {
    const path = join(dir, 'users.yml')
    writeFileSync(path, FIXTURE)
    provider = await FileUserProvider.open(backend({ watch: true }), log)
    expect(provider.findUserNow('harry')).toBeDefined()
    // Editors save by writing a new file and renaming it over the old one.
    writeFileSync(join(dir, 'users.tmp'), FIXTURE.replace(/  harry:[\s\S]*$/, ''))
    renameSync(join(dir, 'users.tmp'), path)
    await expect.poll(() => provider!.findUserNow('harry'), { timeout: 3000 }).toBeUndefined()
    expect(provider.findUserNow('john')).toBeDefined()

    writeFileSync(path, 'users:\n  john: [this is not a user\n')
    await expect.poll(() => logs.some((l) => l.startsWith('error users file reload failed')), { timeout: 3000 }).toBe(true)
    expect(provider.findUserNow('john')).toBeDefined()
    expect(existsSync(path)).toBe(true)
  })

  test('an empty or user-less file (a truncating editor, `> users.yml`) keeps the previous users', async () => {
    const path = join(dir, 'users.yml')
    writeFileSync(path, FIXTURE)
    provider = await FileUserProvider.open(backend(), log)
    for (const text of ['', 'users: {}\n']) {
      writeFileSync(path, text)
      expect(provider.reload()).toBe(false)
      expect(provider.findUserNow('john')).toBeDefined()
    }
    // Loud, with the file and what to do.
    const refused =
      `error users file reload refused: ${path} lists no users; the previous 2 user(s) stay in effect until it lists some again. ` +
      'Restore the file (an editor or a script may have emptied it); to lock everybody out on purpose, set `disabled: true` on each user'
    expect(logs.filter((l) => l.startsWith(refused))).toHaveLength(2)
    writeFileSync(path, FIXTURE.replace(/  harry:[\s\S]*$/, ''))
    expect(provider.reload()).toBe(true)
    expect(provider.findUserNow('harry')).toBeUndefined()
  })

  test('a users file that starts, or is reloaded, with no users at all says at warn that nobody can sign in, and how to add one', async () => {
    const path = join(dir, 'users.yml')
    writeFileSync(path, 'users: {}\n')
    logs.length = 0
    provider = await FileUserProvider.open(backend(), log)
    const warning = `warn the users file ${path} lists no users: nobody can sign in. Add a user under \`users:\` with a password digest from \`latchkey crypto hash generate argon2 --password '...'\` (docs/configuration.md)`
    expect(logs).toEqual([warning])
    expect(provider.reload()).toBe(true)
    expect(logs.filter((l) => l === warning)).toHaveLength(2)
  })
})

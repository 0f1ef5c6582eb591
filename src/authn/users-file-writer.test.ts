import { execFile } from 'node:child_process'
import { chmodSync, existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from 'vitest'
import { generateDigest } from './hashes/index.js'
import { lockUsersFile, replacePasswordInText, UsersFileWriteError, writeUserPassword } from './users-file-writer.js'
import { parseUsersFile } from './users-file.js'

const run = promisify(execFile)
const opts = { searchEmail: false, searchCaseInsensitive: false }
const ROOT = resolve(import.meta.dirname, '../..')

let dir: string
let digests: string[]

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-users-writer-'))
  // Real argon2id digests (small cost: these tests are about the file, not the hash).
  digests = await Promise.all(['first new', 'second new', 'third new', 'fourth new'].map((p) => generateDigest(p, 'argon2', { memory: 1024, iterations: 1, parallelism: 1 })))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const OLD = '$argon2id$v=19$m=65536,t=3,p=4$Q5oyGQ/pde4VXP+TByuu8w$hbS5xaMSp9eCjtSfsLm4yzBSVMViqX0IB/eHN/bQvvY'

// Four-space indentation, comments everywhere, three quoting styles, a flow list: all must survive.
const FILE = `# Managed by hand. Do not reformat.
users:
    # The boss.
    john:
        displayname: "John Doe"   # trailing comment
        password: "${OLD}"
        email: john.doe@example.com
        groups: [admins, dev]
    harry:
        displayname: Harry Potter
        password: '${OLD}'
        groups:
            - dev
    plain:
        displayname: Plain
        password: ${OLD}
# end
`

function fresh(name: string, text = FILE, mode = 0o640): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  chmodSync(path, mode)
  return path
}

/** The file with john's, harry's and plain's digests put back to OLD, for comparing the rest byte for byte. */
const normalised = (text: string) => text.split(OLD).join('<old>').replace(/\$argon2id\$v=19\$m=1024,t=1,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+/g, '<old>')

describe('replacing one password in the users file (docs/security.md G4)', () => {
  test('only the value changes: comments, indentation, quoting style and the other users stay byte for byte', async () => {
    const path = fresh('users.yml')
    await writeUserPassword({ path, ...opts }, 'john', digests[0]!)
    await writeUserPassword({ path, ...opts }, 'harry', digests[1]!)
    await writeUserPassword({ path, ...opts }, 'plain', digests[2]!)
    const text = readFileSync(path, 'utf8')
    expect(normalised(text)).toBe(normalised(FILE))
    expect(text).toContain(`        password: "${digests[0]}"\n`)
    expect(text).toContain(`        password: '${digests[1]}'\n`)
    expect(text).toContain(`        password: ${digests[2]}\n`)
    // The file still loads, and each user verifies the new password only.
    const index = parseUsersFile(text, opts)
    const john = [...index.byLogin.values()].find((e) => e.user.username === 'john')!
    expect(await john.digest.verify('first new')).toBe(true)
    expect(await john.digest.verify('password')).toBe(false)
    expect(statSync(path).mode & 0o777).toBe(0o640)
    // No temporary file or lock is left behind.
    expect(readdirSync(dir).filter((f) => f.includes('users.yml') && f !== 'users.yml')).toEqual([])
  })

  test('a symbolic link is followed: the file it names is replaced and the link stays a link', async () => {
    const target = fresh('real-users.yml', FILE, 0o600)
    const link = join(dir, 'linked-users.yml')
    symlinkSync(target, link)
    await writeUserPassword({ path: link, ...opts }, 'john', digests[0]!)
    expect(lstatSync(link).isSymbolicLink()).toBe(true)
    expect(readFileSync(target, 'utf8')).toContain(digests[0])
    expect(statSync(target).mode & 0o777).toBe(0o600)
  })

  test('an unknown user, or a password given by an alias, is refused and the file is not touched', async () => {
    const path = fresh('refused.yml')
    await expect(writeUserPassword({ path, ...opts }, 'nobody', digests[0]!)).rejects.toMatchObject({ code: 'USER_NOT_FOUND' })
    const aliased = `shared: &pw "${OLD}"\nusers:\n  john:\n    displayname: John\n    password: *pw\n`
    expect(() => replacePasswordInText(aliased, 'john', digests[0]!, opts)).toThrow(UsersFileWriteError)
    expect(readFileSync(path, 'utf8')).toBe(FILE)
  })

  test('an edit made without the lock between the read and the rename is detected: the step runs again on the new text and both changes are kept', async () => {
    const path = fresh('edited.yml')
    let edits = 0
    await writeUserPassword({ path, ...opts }, 'john', digests[0]!, {
      beforeCommit: () => {
        // The administrator's editor saves once, while the new text waits to replace the file.
        if (edits++ > 0) return
        writeFileSync(path, readFileSync(path, 'utf8').replace('displayname: Harry Potter', 'displayname: Harry J. Potter'))
      },
    })
    expect(edits).toBe(2)
    const text = readFileSync(path, 'utf8')
    expect(text).toContain('displayname: Harry J. Potter')
    expect(text).toContain(digests[0])
  })

  test('a file that keeps changing is given up on with CHANGING, leaving the last edit in place', async () => {
    const path = fresh('churn.yml')
    let n = 0
    const attempt = writeUserPassword({ path, ...opts }, 'john', digests[0]!, { beforeCommit: () => writeFileSync(path, FILE.replace('# end', `# end ${n++}`)) })
    await expect(attempt).rejects.toMatchObject({ code: 'CHANGING' })
    expect(readFileSync(path, 'utf8')).toBe(FILE.replace('# end', `# end ${n - 1}`))
  })

  test('the lock: a second writer waits for the first, and a lock left by a dead process is taken over once stale', async () => {
    const path = fresh('locked.yml')
    const release = await lockUsersFile(path)
    await expect(writeUserPassword({ path, ...opts }, 'john', digests[0]!, { lockTimeoutMs: 150 })).rejects.toMatchObject({ code: 'LOCKED' })
    const waiting = writeUserPassword({ path, ...opts }, 'john', digests[1]!, { lockTimeoutMs: 5000 })
    await new Promise((r) => setTimeout(r, 100))
    expect(readFileSync(path, 'utf8')).toBe(FILE)
    release()
    await waiting
    expect(readFileSync(path, 'utf8')).toContain(digests[1])
    // A lock whose writer died a minute ago.
    writeFileSync(`${path}.lock`, '999999 dead\n')
    const old = Date.now() / 1000 - 60
    utimesSync(`${path}.lock`, old, old)
    await writeUserPassword({ path, ...opts }, 'harry', digests[2]!, { lockTimeoutMs: 1000 })
    expect(readFileSync(path, 'utf8')).toContain(digests[2])
    expect(existsSync(`${path}.lock`)).toBe(false)
  })

  test('two resets and an administrator adding users, in three processes at once, lose nothing', async () => {
    // Beside the sources, so the bundle's imports of npm packages resolve; removed at the end.
    const racer = join(ROOT, 'test/support', `.users-file-racer-${process.pid}.mjs`)
    onTestFinished(() => rmSync(racer, { force: true }))
    await build({ entryPoints: [join(ROOT, 'test/support/users-file-racer.ts')], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile: racer, logLevel: 'silent' })
    const path = fresh('raced.yml')
    const rounds = 25
    const [john, harry, admin] = await Promise.all([
      run(process.execPath, [racer, 'reset', path, 'john', String(rounds), digests[0]!, digests[1]!], { cwd: ROOT }),
      run(process.execPath, [racer, 'reset', path, 'harry', String(rounds), digests[2]!, digests[3]!], { cwd: ROOT }),
      run(process.execPath, [racer, 'admin', path, String(rounds)], { cwd: ROOT }),
    ])
    expect([john.stdout, harry.stdout, admin.stdout]).toEqual(['done\n', 'done\n', 'done\n'])
    const text = readFileSync(path, 'utf8')
    const users = new Map([...parseUsersFile(text, opts).byLogin.values()].map((e) => [e.user.username, e.digest.encoded]))
    // Each reset process's last write holds (rounds is odd: the first digest of each pair).
    expect(users.get('john')).toBe(digests[0])
    expect(users.get('harry')).toBe(digests[2])
    expect(users.get('plain')).toBe(OLD)
    // Every user the administrator added is there.
    expect([...users.keys()].filter((u) => u.startsWith('admin_added_'))).toHaveLength(rounds)
    expect(text.startsWith('# Managed by hand. Do not reformat.\nusers:\n')).toBe(true)
    expect(text).toContain('    # The boss.\n    john:\n        displayname: "John Doe"   # trailing comment\n')
    expect(text.endsWith('# end\n')).toBe(true)
  }, 60_000)
})

import { sha256Hex } from '../common/hashing.js'
import { accessSync, constants, existsSync, realpathSync, statSync, watch, writeFileSync, type FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node, type Pair, type YAMLMap } from 'yaml'
import { binaryProblem, flowDepthProblem, readTextFile } from '../config/read-text.js'
import type { FileBackendConfig } from '../config/schema.js'
import { dummyDigest, generateDigest, parseDigest, type PasswordDigest } from './hashes/index.js'
import { writeUserPassword, type WriteOptions } from './users-file-writer.js'
import { createHashGate, type BudgetRun, type HashGate } from './hash-budget.js'
import type { FirstFactorResult, User, UserProvider } from './users.js'

/** Passwords longer than this are refused unhashed: a 1 MB password must not cost a KDF run (docs/security.md B4). */
export const MAX_PASSWORD_BYTES = 1024

interface UserEntry {
  user: User
  digest: PasswordDigest
  disabled: boolean
}

interface UsersIndex {
  byLogin: Map<string, UserEntry>
}

export class UsersFileError extends Error {
  constructor(
    readonly problems: string[],
    readonly path: string,
  ) {
    // `users file /etc/latchkey/users.yml:7:15: users.bob.password: failed to parse hash ...`
    super(`users file ${problems.map((p) => (/^\d+:\d+: /.test(p) ? `${path}:${p}` : `${path}: ${p}`)).join('; ')}`)
    this.name = 'UsersFileError'
  }
}

const TEMPLATE = `# Latchkey users file (Authelia format). Generate a password digest with:
#   latchkey crypto hash generate argon2 --password 'your password'
users:
  # john:
  #   displayname: "John Doe"
  #   password: "$argon2id$v=19$m=65536,t=3,p=4$..."
  #   email: john.doe@example.com
  #   groups: [admins, dev]
  #   disabled: false
`

/** A users file larger than this is refused unread (10 000 users at Authelia's defaults take about 2.5 MiB). */
export const MAX_USERS_FILE_BYTES = 64 * 1024 * 1024
const KNOWN_USER_KEYS = ['password', 'displayname', 'email', 'groups', 'disabled']
const MAX_YAML_PROBLEMS = 20

/**
 * Parses a users file's text into an index; every problem is collected (the file is all or nothing).
 * Each problem reads `<line>:<column>: users.<name>.<key>: <message>`; `UsersFileError` puts the file
 * name in front.
 */
export function parseUsersFile(text: string, opts: Pick<FileBackendConfig, 'searchEmail' | 'searchCaseInsensitive'>): UsersIndex {
  const binary = binaryProblem(text)
  if (binary) throw new UsersFileError([`${binary.line}:${binary.column}: ${binary.message}`], '')
  const deep = flowDepthProblem(text, 32)
  if (deep) throw new UsersFileError([`${deep.line}:${deep.column}: yaml: the document is nested too deeply`], '')
  const lineCounter = new LineCounter()
  // Duplicate keys are found below: the library's uniqueKeys check is quadratic in the number of users.
  const doc = parseDocument(text, { uniqueKeys: false, lineCounter, prettyErrors: false, merge: true })
  const pos = (node: unknown): string => {
    const offset = (node as Node | null | undefined)?.range?.[0]
    if (offset === undefined) return ''
    const { line, col } = lineCounter.linePos(offset)
    return `${line}:${col}: `
  }
  const problems: string[] = []
  for (const e of doc.errors) {
    const { line, col } = lineCounter.linePos(e.pos[0])
    let message = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')
    if (/Maximum call stack size exceeded/.test(message)) message = 'the document is nested too deeply'
    const p = `${line}:${col}: yaml: ${message}`
    if (!problems.includes(p)) problems.push(p)
    if (problems.length >= MAX_YAML_PROBLEMS) break
  }
  if (problems.length) throw new UsersFileError(problems, '')
  const rootNode = doc.contents
  if (rootNode === null || (isScalar(rootNode) && (rootNode.value === null || rootNode.value === undefined))) return { byLogin: new Map() }
  if (!isMap(rootNode)) throw new UsersFileError([`${pos(rootNode)}the users file must be a map with a 'users' key, got ${isSeq(rootNode) ? 'a list' : 'a single value'}`], '')
  duplicateKeys(rootNode, '', pos, problems)
  const usersMap = rootNode.get('users', true)
  if (isMap(usersMap)) {
    duplicateKeys(usersMap, 'users', pos, problems)
    for (const p of usersMap.items) if (isMap(p.value)) duplicateKeys(p.value, `users.${String(isScalar(p.key) ? p.key.value : p.key)}`, pos, problems)
  }
  if (problems.length) throw new UsersFileError(problems, '')
  let root: Record<string, unknown>
  try {
    // maxAliasCount: "billion laughs" anchors are refused instead of expanded.
    root = (doc.toJS({ maxAliasCount: 100 }) ?? {}) as Record<string, unknown>
  } catch (err) {
    const msg = (err as Error).message
    throw new UsersFileError([/alias/i.test(msg) ? 'yaml: document contains excessive aliasing' : /call stack/i.test(msg) ? 'yaml: the document is nested too deeply' : `yaml: ${msg}`], '')
  }
  const usersNode = rootNode.get('users', true) as Node | undefined
  const users = root.users
  if (users === null || users === undefined) return { byLogin: new Map() }
  if (typeof users !== 'object' || Array.isArray(users)) throw new UsersFileError([`${pos(usersNode)}users: must be a map of username to user`], '')
  const byLogin = new Map<string, UserEntry>()
  const key = (s: string) => (opts.searchCaseInsensitive ? s.toLowerCase() : s)
  const userPairs = new Map<string, Pair<unknown, unknown>>()
  if (isMap(usersNode)) for (const p of usersNode.items) userPairs.set(String(isScalar(p.key) ? p.key.value : p.key), p)
  for (const [username, raw] of Object.entries(users as Record<string, unknown>)) {
    const pair = userPairs.get(username)
    const userNode = pair?.value
    const fieldNode = (k: string) => (isMap(userNode) ? ((userNode.get(k, true) as Node | undefined) ?? userNode) : userNode)
    const at = `${pos(pair?.key)}users.${username}`
    const field = (k: string) => `${pos(fieldNode(k))}users.${username}.${k}`
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
      problems.push(`${at}: must be a map with 'password' and 'displayname'`)
      continue
    }
    const u = raw as Record<string, unknown>
    for (const k of Object.keys(u)) {
      if (!KNOWN_USER_KEYS.includes(k)) {
        const keyNode = isMap(userNode) ? userNode.items.find((p) => isScalar(p.key) && String(p.key.value) === k)?.key : undefined
        problems.push(`${pos(keyNode ?? userNode)}users.${username}.${k}: key not expected: ${k}`)
      }
    }
    if (typeof u.password !== 'string' || u.password === '') {
      problems.push(`${u.password === undefined ? at : field('password')}: option 'password' is required`)
      continue
    }
    let digest: PasswordDigest
    try {
      digest = parseDigest(u.password)
    } catch (err) {
      problems.push(`${field('password')}: failed to parse hash for user '${username}': ${(err as Error).message}`)
      continue
    }
    if (typeof u.displayname !== 'string' || u.displayname === '') problems.push(`${u.displayname === undefined ? at : field('displayname')}: option 'displayname' is required`)
    const emails = u.email === undefined || u.email === null ? [] : Array.isArray(u.email) ? u.email : [u.email]
    if (!emails.every((e) => typeof e === 'string')) problems.push(`${field('email')}: option 'email' must be a string or a list of strings`)
    const groups = u.groups === undefined || u.groups === null ? [] : u.groups
    if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) problems.push(`${field('groups')}: option 'groups' must be a list of strings`)
    if (u.disabled !== undefined && u.disabled !== null && typeof u.disabled !== 'boolean') problems.push(`${field('disabled')}: option 'disabled' must be true or false`)
    const entry: UserEntry = {
      user: Object.freeze({
        username,
        displayName: String(u.displayname ?? ''),
        emails: Object.freeze([...(emails as string[])]) as string[],
        groups: Object.freeze(Array.isArray(groups) ? [...(groups as string[])] : []) as string[],
        credentialFingerprint: sha256Hex(digest.encoded).slice(0, 16),
      }),
      digest,
      disabled: u.disabled === true,
    }
    if (byLogin.has(key(username))) problems.push(`${at}: the username is defined twice (usernames are case-insensitive here)`)
    byLogin.set(key(username), entry)
    if (opts.searchEmail) {
      for (const email of entry.user.emails) {
        const k = key(email)
        // A login that is both a username and another user's address is ambiguous: refuse it.
        if (byLogin.has(k) && byLogin.get(k) !== entry) problems.push(`${field('email')}: email '${email}' is also another user's login`)
        else byLogin.set(k, entry)
      }
    }
  }
  if (problems.length) throw new UsersFileError(problems, '')
  return { byLogin }
}

/** Reports keys defined twice in one map (`<line>:<col>: users.bob: yaml: mapping key 'bob' already defined at line 3`). */
function duplicateKeys(map: YAMLMap, path: string, pos: (n: unknown) => string, problems: string[]): void {
  const seen = new Map<string, unknown>()
  for (const pair of map.items) {
    const name = String(isScalar(pair.key) ? pair.key.value : pair.key)
    const first = seen.get(name)
    if (first === undefined) {
      seen.set(name, pair.key)
      continue
    }
    const firstLine = pos(first).split(':')[0]
    problems.push(`${pos(pair.key)}${path ? `${path}.` : ''}${name}: yaml: mapping key '${name}' already defined${firstLine ? ` at line ${firstLine}` : ''}`)
  }
}

interface Log {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

/**
 * The `authentication_backend.file` provider. With `watch: true` the file is reloaded on change;
 * a broken edit keeps the last good users and logs why, so a typo never locks everybody out.
 */
export class FileUserProvider implements UserProvider {
  private index: UsersIndex
  /** The file's identity, size and mtime when it was last read (see `lookup`). */
  private stamp: string
  private watcher?: FSWatcher
  private reloadTimer?: NodeJS.Timeout

  private refusedSinceWarning = { known: 0, unknown: 0 }
  private lastRefusalWarningMs = -Infinity

  private constructor(
    private readonly config: FileBackendConfig,
    private readonly dummy: PasswordDigest,
    private readonly log: Log | undefined,
    /** Bounds the hashing (docs/security.md B5); exposed for tests and counts. */
    readonly hashGate: HashGate,
  ) {
    this.stamp = fileStamp(config.path)
    this.index = FileUserProvider.read(config)
  }

  /** Loads the file; when it does not exist, writes a commented template there and fails like Authelia. */
  static async open(config: FileBackendConfig, log?: Log, opts: { hashGate?: HashGate } = {}): Promise<FileUserProvider> {
    if (!existsSync(config.path)) {
      try {
        writeFileSync(config.path, TEMPLATE, { mode: 0o600, flag: 'wx' })
      } catch {
        // The folder may be read-only; the error below says what to do either way.
      }
      throw new UsersFileError(
        [`the file does not exist: a template was written there (if the folder is writable); add users to it and start again`],
        config.path,
      )
    }
    const provider = new FileUserProvider(config, await dummyDigest(), log, opts.hashGate ?? createHashGate())
    if (provider.size === 0) provider.warnNoUsers()
    if (config.watch) provider.startWatching()
    return provider
  }

  private static read(config: FileBackendConfig): UsersIndex {
    try {
      return parseUsersFile(readTextFile(config.path, MAX_USERS_FILE_BYTES), config)
    } catch (err) {
      if (err instanceof UsersFileError) throw new UsersFileError(err.problems, config.path)
      throw new UsersFileError([`cannot be read: ${(err as Error).message}`], config.path)
    }
  }

  get path(): string {
    return this.config.path
  }

  get size(): number {
    return new Set(this.index.byLogin.values()).size
  }

  findUser(login: string): Promise<User | undefined> {
    return Promise.resolve(this.findUserNow(login))
  }

  /** findUser without the promise, for callers that hold the file provider itself (the CLI). */
  findUserNow(login: string): User | undefined {
    const entry = this.lookup(login)
    return entry && !entry.disabled ? entry.user : undefined
  }

  normalizeLogin(login: string): string {
    return this.config.searchCaseInsensitive ? login.toLowerCase() : login
  }

  async checkPassword(login: string, password: string): Promise<FirstFactorResult> {
    if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return { ok: false, reason: 'too_long' }
    const entry = this.lookup(login)
    if (!entry || entry.disabled) {
      // Same work as a wrong password, so timing does not reveal who exists (docs/security.md B2), in
      // the dummy's own small budget so made-up names never take a known user's slot (B5).
      const dummy = await this.hashGate.unknown.run(() => this.dummy.verify(password))
      if (!dummy.ran) return this.refused('unknown', dummy)
      return { ok: false, reason: entry ? 'disabled' : 'unknown_user' }
    }
    const checked = await this.hashGate.known.run(() => entry.digest.verify(password))
    if (!checked.ran) return this.refused('known', checked)
    return checked.value ? { ok: true, user: entry.user } : { ok: false, reason: 'wrong_password' }
  }

  private refused(budget: 'known' | 'unknown', run: BudgetRun<unknown> & { ran: false }): FirstFactorResult {
    this.refusedSinceWarning[budget]++
    const now = performance.now()
    // At most once a minute: under a flood this fires hundreds of times a second.
    if (now - this.lastRefusalWarningMs >= 60_000) {
      const { known, unknown } = this.hashGate
      this.log?.warn(
        { refusedKnownUsers: this.refusedSinceWarning.known, refusedUnknownUsers: this.refusedSinceWarning.unknown, reason: run.reason, knownLimits: known.limits, unknownLimits: unknown.limits },
        'sign-ins refused unchecked: password hashing is at its per-instance bound (a flood of sign-ins?)',
      )
      this.lastRefusalWarningMs = now
      this.refusedSinceWarning = { known: 0, unknown: 0 }
    }
    return { ok: false, reason: 'busy' }
  }

  /**
   * Password reset: hashes `password` with the configured algorithm and writes it into the users
   * file (users-file-writer.ts), then reads the file again, so this instance refuses the old password
   * and, by the changed credential fingerprint, the user's sessions and grants at once
   * (docs/security.md G5). Hashing runs in the known-user budget, before the file lock is taken.
   */
  async changePassword(username: string, password: string, opts: WriteOptions = {}): Promise<void> {
    const p = this.config.password
    const options =
      p.algorithm === 'argon2'
        ? { variant: p.argon2.variant, iterations: p.argon2.iterations, memory: p.argon2.memoryKiB, parallelism: p.argon2.parallelism, keyLength: p.argon2.keyLength, saltLength: p.argon2.saltLength }
        : p[p.algorithm]
    const digest = await generateDigest(password, p.algorithm, options as never)
    await writeUserPassword(this.config, username, digest, opts)
    this.reload()
  }

  /**
   * Why a password cannot be written: the file and its folder (temporary file, lock) must be
   * writable by this process. A read-only mount (systemd's ProtectSystem) says so here too.
   */
  passwordChangeProblem(): string | undefined {
    let path: string
    try {
      path = realpathSync(this.config.path)
    } catch (err) {
      return `${this.config.path} cannot be resolved: ${(err as Error).message}`
    }
    for (const [what, target] of [['the users file', path], ['its folder', dirname(path)]] as const) {
      try {
        accessSync(target, constants.W_OK)
      } catch (err) {
        return `${what} ${target} is not writable by this process (${(err as NodeJS.ErrnoException).code ?? 'error'})`
      }
    }
    return undefined
  }

  /** Re-reads the file now; resolves false (keeping the old users) when it is broken. */
  reload(): boolean {
    // Taken before reading: an edit landing during the read changes it again and is read next time.
    this.stamp = fileStamp(this.config.path)
    try {
      const next = FileUserProvider.read(this.config)
      // An editor that truncates before writing, or `> users.yml`, shows an empty file for a moment.
      // Taken as is, it would sign everybody out and end every grant: keep the users until the file
      // lists some again.
      if (next.byLogin.size === 0 && this.index.byLogin.size > 0) {
        this.log?.error(
          { path: this.config.path, keptUsers: this.size },
          `users file reload refused: ${this.config.path} lists no users; the previous ${this.size} user(s) stay in effect until it lists some again. ` +
            'Restore the file (an editor or a script may have emptied it); to lock everybody out on purpose, set `disabled: true` on each user',
        )
        return false
      }
      this.index = next
      this.log?.info({ path: this.config.path, users: this.size }, 'users file reloaded')
      if (this.size === 0) this.warnNoUsers()
      return true
    } catch (err) {
      const problems = err instanceof UsersFileError ? err.problems : [(err as Error).message]
      this.log?.error({ path: this.config.path, problems }, 'users file reload failed: keeping the previous users')
      return false
    }
  }

  /** Nobody can sign in: said at warn, with the file and the way out. */
  private warnNoUsers(): void {
    this.log?.warn(
      { path: this.config.path },
      `the users file ${this.config.path} lists no users: nobody can sign in. Add a user under \`users:\` with a password digest from \`latchkey crypto hash generate argon2 --password '...'\` (docs/configuration.md)`,
    )
  }

  close(): void {
    this.watcher?.close()
    clearTimeout(this.reloadTimer)
  }

  private lookup(login: string): UserEntry | undefined {
    // With watch, an edit (a user disabled or removed) holds from the very next request, not once the
    // file watcher's debounced event arrives: several instances reading copies of one file then agree
    // as soon as each has the file (docs/security.md H1). One stat per lookup, microseconds.
    if (this.config.watch && fileStamp(this.config.path) !== this.stamp) this.reload()
    return this.index.byLogin.get(this.config.searchCaseInsensitive ? login.toLowerCase() : login)
  }

  private startWatching(): void {
    // Watch the folder, not the file: editors and config managers replace the file by rename.
    const name = basename(this.config.path)
    this.watcher = watch(dirname(this.config.path), (_event, changed) => {
      if (changed && changed.toString() !== name) return
      clearTimeout(this.reloadTimer)
      this.reloadTimer = setTimeout(() => this.reload(), 100)
      this.reloadTimer.unref()
    })
    this.watcher.unref()
  }
}

function fileStamp(path: string): string {
  try {
    const s = statSync(path, { bigint: true })
    return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`
  } catch {
    return 'missing'
  }
}

import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { parse, stringify } from 'yaml'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppDeps } from '../../src/app.js'
import { loadConfig } from '../../src/config/load.js'
import { ManualClock } from '../../src/common/clock.js'
import { openUserProvider } from '../../src/authn/open.js'
import type { HashGate } from '../../src/authn/hash-budget.js'
import { openSessionStore, openStorage, type ConnectedSessionStore } from '../../src/storage/index.js'
import type { Storage } from '../../src/storage/storage.js'
import { createNotifier } from '../../src/notifier/index.js'
import { loggerOptions } from '../../src/server/logger.js'
import { deleteKeysUnder, sharedClient, SHARED_REDIS, uniquePrefix } from './redis.js'

export const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '../..')
export const KASM_CONFIG = join(ROOT, 'fixtures/config/kasm-authelia.yml')

export interface TestApp {
  app: FastifyInstance
  deps: AppDeps
  storage: Storage
  clock: ManualClock
  /** Temporary folder holding the configuration copy, users file, database and notifications. */
  dir: string
  notificationsFile: string
  /** Everything logged so far (JSON lines, level debug). */
  logs: () => string
  close(): Promise<void>
}

export interface TestAppOptions {
  /** A YAML configuration (default: the Kasm fixture); its users file is copied beside it. */
  configFile?: string
  /** Edits the parsed YAML before it is loaded, e.g. to add clients. */
  patch?: (yaml: any) => void
  clock?: ManualClock
  /** Reuse a folder from an earlier TestApp (restart tests): same database, users and config. */
  dir?: string
  /** Keep the folder after close (for a later restart on it). */
  keepDir?: boolean
  /** Serve HTTPS with this key and certificate (production-shaped e2e). */
  https?: { key: Buffer; cert: Buffer }
  /** Portal knobs; the default keeps Authelia's sign-in failure delay. */
  portal?: AppDeps['portal']
  /** Extra trusted CA certificates (PEM) for an LDAP directory (certificates_directory in production). */
  extraCa?: string[]
  /** The users provider's hash budgets (default: the production ones). */
  hashGate?: HashGate
  /**
   * 'redis': sessions in the shared test Redis (session.redis, a key prefix of this app's own,
   * deleted at close) instead of the storage backend. Check sharedRedisAvailable() first.
   */
  sessionStore?: 'redis'
  /** Longest wait for one storage call (AppDeps.dependencyTimeoutMs). */
  dependencyTimeoutMs?: number
  /** Client jwks_uri fetch limits (AppDeps.jwksFetchLimits). */
  jwksFetchLimits?: AppDeps['jwksFetchLimits']
  /** Back-channel logout timeouts and retries (AppDeps.logout). */
  logout?: AppDeps['logout']
}

/** Clocks start at the real time so real relying parties accept `iat`; tests move them by hand. */
export function realTimeClock(): ManualClock {
  return new ManualClock(Math.floor(Date.now() / 1000))
}

function prepareDir(opts: TestAppOptions): string {
  if (opts.dir && existsSync(join(opts.dir, 'configuration.yml'))) return opts.dir
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'latchkey-test-'))
  const source = opts.configFile ?? KASM_CONFIG
  const yaml = parse(readFileSync(source, 'utf8'))
  const usersPath = yaml?.authentication_backend?.file?.path
  if (typeof usersPath === 'string') {
    copyFileSync(resolve(dirname(source), usersPath), join(dir, 'users_database.yml'))
    yaml.authentication_backend.file.path = 'users_database.yml'
  }
  yaml.storage = { ...yaml.storage, local: { path: 'db.sqlite3' } }
  yaml.notifier = { filesystem: { filename: 'notification.txt' } }
  if (opts.sessionStore === 'redis') yaml.session.redis = { host: SHARED_REDIS.host, port: SHARED_REDIS.port, key_prefix: uniquePrefix() }
  opts.patch?.(yaml)
  writeFileSync(join(dir, 'configuration.yml'), stringify(yaml))
  return dir
}

export async function buildTestApp(opts: TestAppOptions = {}): Promise<TestApp> {
  const dir = prepareDir(opts)
  const { config } = loadConfig({ files: [join(dir, 'configuration.yml')], env: {} })
  let captured = ''
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      captured += chunk.toString('utf8')
      cb()
    },
  })
  const logger = pino({ ...loggerOptions({ ...config.log, level: 'debug' }), level: 'debug' }, sink)
  const storage = await openStorage(config.storage, logger)
  const sessions: ConnectedSessionStore | undefined = await openSessionStore(config.session, logger)
  const users = await openUserProvider(config.authenticationBackend, { log: logger, ...(opts.hashGate ? { hashGate: opts.hashGate } : {}), ...(opts.extraCa ? { extraCa: opts.extraCa } : {}) })
  const clock = opts.clock ?? realTimeClock()
  const notifier = createNotifier(config.notifier, logger)
  const deps: AppDeps = { config, storage, ...(sessions ? { sessions } : {}), users, clock, notifier, logger, https: opts.https, portal: opts.portal, dependencyTimeoutMs: opts.dependencyTimeoutMs, ...(opts.jwksFetchLimits ? { jwksFetchLimits: opts.jwksFetchLimits } : {}), logout: opts.logout }
  const app = await buildApp(deps)
  await app.ready()
  let closed = false
  return {
    app,
    deps,
    storage,
    clock,
    dir,
    notificationsFile: join(dir, 'notification.txt'),
    logs: () => captured,
    async close() {
      if (closed) return
      closed = true
      await app.close()
      await users.close()
      await storage.close()
      if (sessions) {
        await sessions.close()
        // A restart test (keepDir) reopens the same prefix: its keys go with the folder.
        if (!opts.keepDir) {
          const admin = sharedClient()
          await deleteKeysUnder(admin, config.session.redis!.keyPrefix).finally(() => admin.disconnect())
        }
      }
      if (!opts.keepDir) rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** The same app on a real loopback port. */
export async function startTestServer(opts: TestAppOptions = {}): Promise<TestApp & { url: string }> {
  const t = await buildTestApp(opts)
  await t.app.listen({ host: '127.0.0.1', port: 0 })
  const address = t.app.server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return { ...t, url: `${opts.https ? 'https' : 'http'}://127.0.0.1:${port}` }
}

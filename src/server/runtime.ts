import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { buildApp } from '../app.js'
import type { Config } from '../config/schema.js'
import { systemClock, type Clock } from '../common/clock.js'
import { FileUserProvider } from '../authn/users-file.js'
import { openUserProvider } from '../authn/open.js'
import type { UserProvider } from '../authn/users.js'
import { readCertificatesDirectory } from '../config/certificates.js'
import { openSessionStore, openStorage, type ConnectedSessionStore } from '../storage/index.js'
import type { Storage } from '../storage/storage.js'
import { createNotifier } from '../notifier/index.js'

export interface RunningServer {
  app: FastifyInstance
  storage: Storage
  /** The Redis session store (`session.redis`), when configured. */
  sessions?: ConnectedSessionStore
  /** The address actually bound, e.g. http://127.0.0.1:9091. */
  url: string
  /** Stops accepting, lets in-flight requests finish, then closes storage and watchers. */
  stop(): Promise<void>
}

const HOUSEKEEPING_INTERVAL_MS = 5 * 60 * 1000

/** Opens everything the configuration names, builds the app and listens. Used by `latchkey serve`. */
export async function startServer(config: Config, logger: Logger, clock: Clock = systemClock): Promise<RunningServer> {
  const storage = await openStorage(config.storage, logger)
  let users: UserProvider | undefined
  let sessions: ConnectedSessionStore | undefined
  try {
    sessions = await openSessionStore(config.session, logger)
    if (sessions) logger.info({ keyPrefix: config.session.redis!.keyPrefix }, 'sessions are kept in Redis')
    users = await openUserProvider(config.authenticationBackend, { log: logger, extraCa: readCertificatesDirectory(config.certificatesDirectory) })
    if (users instanceof FileUserProvider) logger.info({ path: users.path, users: users.size }, 'users file loaded')
    const notifier = createNotifier(config.notifier, logger)
    if (!config.notifier.disableStartupCheck) await notifier.check()
    const https = config.server.tls
      ? { key: readFileSync(config.server.tls.key), cert: readFileSync(config.server.tls.certificate) }
      : undefined
    const app = await buildApp({ config, storage, ...(sessions ? { sessions } : {}), users, clock, notifier, logger, https })
    await app.listen({ host: config.server.host, port: config.server.port })
    const address = app.server.address()
    const port = typeof address === 'object' && address ? address.port : config.server.port
    const host = config.server.host === '0.0.0.0' || config.server.host === '' ? '127.0.0.1' : config.server.host
    const url = `${https ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}${config.server.path ? `/${config.server.path}` : ''}`

    const housekeeping = setInterval(() => {
      const now = clock.now()
      // The storage backend's sessions too with Redis: rows left from before the switch go as they expire.
      Promise.all([storage.deleteExpiredSessions(now), sessions ? sessions.deleteExpiredSessions(now) : 0, storage.deleteExpiredOidcArtifacts(now), storage.deleteExpiredWebauthnChallenges(now)])
        .then(([stored, kept, artifacts, challenges]) => {
          if (stored + kept + artifacts + challenges > 0) logger.debug({ sessions: stored + kept, artifacts, challenges }, 'expired sessions, OIDC artifacts and WebAuthn challenges removed')
        })
        .catch((err: unknown) => logger.error({ err }, 'housekeeping failed'))
    }, HOUSEKEEPING_INTERVAL_MS)
    housekeeping.unref()

    const openedUsers = users
    const openedSessions = sessions
    let stopping: Promise<void> | undefined
    const stop = () =>
      (stopping ??= (async () => {
        clearInterval(housekeeping)
        await app.close()
        await openedUsers.close()
        await openedSessions?.close()
        await storage.close()
      })())
    return { app, storage, ...(sessions ? { sessions } : {}), url, stop }
  } catch (err) {
    await users?.close()
    await sessions?.close()
    await storage.close()
    throw err
  }
}

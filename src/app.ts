import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyBaseLogger } from 'fastify'
import type { JwksFetchLimits } from './oidc/client-jwks.js'
import type { Logger } from 'pino'
import cookie from '@fastify/cookie'
import formbody from '@fastify/formbody'
import type { Config } from './config/schema.js'
import type { ConnectedSessionStore, Storage } from './storage/storage.js'
import type { UserProvider } from './authn/users.js'
import type { Clock } from './common/clock.js'
import type { Notifier } from './notifier/notifier.js'
import { answerClientError, registerSecurityHeaders } from './server/headers.js'
import { healthPlugin } from './server/health.js'
import { makeTrustProxy, registerUntrustedProxyWarning } from './server/proxy.js'
import { replyInternalError } from './server/errors.js'
import { DependencyMonitor, guardDependency, isUnavailable } from './server/availability.js'
import { replyUnavailable } from './server/unavailable.js'
import type { PortalTuning } from './portal/context.js'
import type { BackchannelTuning } from './oidc/logout/backchannel.js'
import { parseForm } from './server/form.js'
import { registerMalformedInputChecks, replyMalformed } from './server/malformed.js'
import { LazyChildLogger, registerClientAddressLogging } from './server/logger.js'
import { replyNotFound } from './server/not-found.js'
import { sessionPlugin } from './session/plugin.js'
import { portalPlugin } from './portal/plugin.js'
import { oidcPlugin } from './oidc/plugin.js'

/** Everything the HTTP application needs, handed in: buildApp never reads files or the environment. */
export interface AppDeps {
  config: Config
  storage: Storage
  /**
   * Where sessions live when not in `storage` (`session.redis`); the caller opens and closes it. Its
   * outages answer 503 and its ping is part of /api/health, as storage's.
   */
  sessions?: ConnectedSessionStore
  users: UserProvider
  clock: Clock
  notifier: Notifier
  /** The pino logger; tests pass a capturing one. */
  logger?: Logger
  /** HTTPS options for the server itself (server.tls), read by the caller. */
  https?: { key: Buffer; cert: Buffer }
  /** Test-only knobs of the portal (e.g. no failure delay, so the suite stays fast). */
  portal?: PortalTuning
  /** Back-channel logout delivery knobs (timeouts, retries); tests shorten them. */
  logout?: BackchannelTuning
  /** Longest wait for one storage call before the request gets a 503 (default 10 s). */
  dependencyTimeoutMs?: number
  /** Limits of client `jwks_uri` fetches (default JWKS_FETCH_LIMITS; tests shorten the timeout). */
  jwksFetchLimits?: JwksFetchLimits
}

const silentLog = { error() {}, info() {} }

/**
 * `ping()` only says false; when it does, one real query fails with the driver's reason (refused,
 * terminated, timed out), which the outage's log line then names.
 */
async function pingWithReason(storage: Storage): Promise<boolean> {
  if (await storage.ping()) return true
  await storage.listMigrations()
  return false
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps
  const isTrustedProxy = makeTrustProxy(config.server.trustedProxies)
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger as unknown as FastifyBaseLogger } : { logger: false }),
    // Node enforces the request timeouts only when it sweeps its connections, every 30 s by default:
    // a client trickling a body could hold a socket for a minute or more. Sweep every 2 s instead.
    ...(deps.https ? { https: { ...deps.https, connectionsCheckingInterval: 2000 } } : { http: { connectionsCheckingInterval: 2000 } }),
    bodyLimit: config.server.bodyLimitBytes,
    trustProxy: isTrustedProxy,
    // Fastify's per-request info lines are replaced by one debug line below (path only).
    logController: new LogController({ disableRequestLogging: true }),
    requestTimeout: config.server.timeouts.readSeconds * 1000 + config.server.timeouts.writeSeconds * 1000,
    keepAliveTimeout: config.server.timeouts.idleSeconds * 1000,
    // Hostile JSON: `__proto__` and `constructor.prototype` keys are refused with 400 (docs/security.md X3).
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    clientErrorHandler: answerClientError,
    // A path with a broken percent-escape gets the same fixed, header-protected 400 as a bad query,
    // instead of Fastify's default answer that echoes the path.
    frameworkErrors: (err, req, reply) => replyMalformed(req as never, reply as never, err.code === 'FST_ERR_BAD_URL'),
    childLoggerFactory: (logger, bindings, options) =>
      new LazyChildLogger(logger as never, bindings, options) as unknown as FastifyBaseLogger,
    routerOptions: { maxParamLength: 200 },
  }) as unknown as FastifyInstance

  // Headers within the read timeout, the whole request within read + write (Node's headersTimeout
  // defaults to 60 s whatever requestTimeout says, and the shorter one only counts when it is set).
  if (config.server.timeouts.readSeconds > 0) app.server.headersTimeout = config.server.timeouts.readSeconds * 1000

  // On shutdown, answers still in flight close their connection (see registerSecurityHeaders).
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
    app.server.closeIdleConnections?.()
  })
  registerSecurityHeaders(app, () => closing)
  registerClientAddressLogging(app)
  // One line per request at debug: method, path without query (codes and tokens travel there), status.
  // Registered only when debug is on: an empty hook still costs every request.
  if (deps.logger?.isLevelEnabled('debug')) {
    app.addHook('onResponse', async (req, reply) => {
      req.log.debug({ method: req.method, path: req.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request served')
    })
  }
  // Storage calls are bounded and their outages answered 503 (src/server/availability.ts).
  const sessionStore = deps.sessions
  const monitor = new DependencyMonitor(deps.logger ?? silentLog, {
    storage: () => pingWithReason(deps.storage),
    ...(sessionStore ? { sessions: () => sessionStore.ping() } : {}),
    ...(deps.users.ping ? { directory: () => deps.users.ping!() } : {}),
  })
  app.addHook('onClose', async () => monitor.close())
  const timeoutMs = deps.dependencyTimeoutMs ?? 10_000
  const live: AppDeps = {
    ...deps,
    storage: guardDependency(deps.storage, 'storage', monitor, timeoutMs),
    ...(sessionStore ? { sessions: guardDependency(sessionStore, 'sessions', monitor, timeoutMs) } : {}),
    // A remote users backend (LDAP) answers 503 while down; the users file cannot go away.
    ...(deps.users.ping ? { users: guardDependency(deps.users, 'directory', monitor, timeoutMs) } : {}),
  }
  app.setErrorHandler((err: FastifyError, req, reply) => (isUnavailable(err) ? replyUnavailable(req, reply, err, config.theme, 'auto') : replyInternalError(err, req, reply)))
  // A known path with another method is 405 with `Allow` (RFC 9110 §15.5.6), not 404.
  // Keyed without a trailing slash: with server.path, Fastify registers `/auth` and `/auth/` apart.
  // Routes that only answer 405 themselves (`config.methodNotAllowed`) are not methods a path allows.
  const methodsByPath = new Map<string, Set<string>>()
  const pathKey = (path: string) => (path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path)
  app.addHook('onRoute', (route) => {
    if ((route.config as { methodNotAllowed?: boolean } | undefined)?.methodNotAllowed) return
    const key = pathKey(route.url)
    const methods = methodsByPath.get(key) ?? new Set<string>()
    for (const m of [route.method].flat()) methods.add(m)
    methodsByPath.set(key, methods)
  })
  app.setNotFoundHandler((req, reply) => {
    const allowed = methodsByPath.get(pathKey(req.url.split('?')[0]!))
    if (allowed && !allowed.has(req.method)) {
      return reply.code(405).header('allow', [...allowed].sort().join(', ')).header('cache-control', 'no-store').type('text/plain; charset=utf-8').send('405 Method Not Allowed')
    }
    return replyNotFound(req, reply, config)
  })
  registerUntrustedProxyWarning(app, isTrustedProxy)
  registerMalformedInputChecks(app)
  await app.register(cookie)
  // Repeated keys stay visible as arrays so OAuth endpoints can refuse them (docs/security.md X2).
  await app.register(formbody, { parser: parseForm, bodyLimit: config.server.bodyLimitBytes })

  const prefix = config.server.path ? `/${config.server.path}` : ''
  await app.register(
    async (scoped) => {
      if (!config.server.disableHealthcheck) await scoped.register(healthPlugin, { ...live, monitor })
      await scoped.register(sessionPlugin, live)
      await scoped.register(portalPlugin, live)
      if (config.identityProviders.oidc) await scoped.register(oidcPlugin, live)
    },
    { prefix },
  )
  return app
}

/**
 * What a request does when a dependency (the database, the Redis session store) goes away
 * (docs/high-availability.md): it fails fast with a 503 instead of a 500 or a hung socket, one log
 * line says which dependency and why when the outage starts and one when it ends, and service
 * resumes by itself. Storage calls are wrapped once (`guardDependency`), so no route has to care.
 */

export type Dependency = 'storage' | 'sessions' | 'directory'

const LABEL: Record<Dependency, string> = { storage: 'storage', sessions: 'session store', directory: 'user directory (LDAP)' }

/** Thrown (instead of the driver's error) when a dependency cannot answer. */
export class UnavailableError extends Error {
  constructor(
    readonly dependency: Dependency,
    /** For the log only: may name hosts and driver messages, never sent to a client. */
    readonly reason: string,
  ) {
    super(`${LABEL[dependency]} unavailable: ${reason}`)
    this.name = 'UnavailableError'
  }
}

export function isUnavailable(err: unknown): err is UnavailableError {
  return err instanceof UnavailableError
}

/** Node socket errors: the server is down, unreachable or cut the connection. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'ENOENT'])
/** SQLite result codes that mean "the file cannot be used now", not "this statement is wrong". */
const SQLITE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL|READONLY|PROTOCOL)/

/**
 * Whether a driver error means the dependency is unreachable or overloaded rather than a bug:
 * socket errors, PostgreSQL's connection classes (08…, 57P01–57P03 shutdown, 53300 too many
 * connections), pool and Redis client give-ups, SQLite's busy and I/O errors. Anything else stays
 * a 500: a constraint violation must not hide behind "try again later".
 */
export function isConnectivityError(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string') {
    // A backend's own StorageError('UNAVAILABLE') (it already decided: down or too slow).
    if (code === 'UNAVAILABLE') return true
    if (NETWORK_CODES.has(code) || SQLITE_CODES.test(code)) return true
    if (/^08[0-9A-Z]{3}$/.test(code) || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return true
  }
  if (err.name === 'MaxRetriesPerRequestError') return true
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Connection is closed|The database connection is not open|Client has encountered a connection error|connect ECONNREFUSED/i.test(
    err.message,
  )
}

interface Log {
  error(obj: object, msg: string): void
  info(obj: object, msg: string): void
}

/**
 * Up or down per dependency. The first failure of an outage logs one error line; while down, a probe
 * (the dependency's ping) runs every `probeMs` until it answers, then one info line says it is back.
 */
export class DependencyMonitor {
  private readonly down = new Map<Dependency, { since: number; probe: NodeJS.Timeout }>()

  constructor(
    private readonly log: Log,
    private readonly pings: Partial<Record<Dependency, () => Promise<boolean>>>,
    private readonly probeMs = 1000,
  ) {}

  isDown(dependency: Dependency): boolean {
    return this.down.has(dependency)
  }

  failed(dependency: Dependency, reason: string): void {
    if (this.down.has(dependency)) return
    this.log.error({ dependency, reason }, `${LABEL[dependency]} unavailable: requests get 503 until it answers again`)
    const probe = setInterval(() => void this.probe(dependency), this.probeMs)
    probe.unref()
    this.down.set(dependency, { since: Date.now(), probe })
  }

  recovered(dependency: Dependency): void {
    const state = this.down.get(dependency)
    if (!state) return
    clearInterval(state.probe)
    this.down.delete(dependency)
    this.log.info({ dependency, downSeconds: Math.round((Date.now() - state.since) / 1000) }, `${LABEL[dependency]} available again`)
  }

  /** Pings every dependency (bounded by `timeoutMs`); records outages and recoveries. */
  async check(timeoutMs: number): Promise<Record<Dependency, boolean>> {
    const out = { storage: true, sessions: true, directory: true } as Record<Dependency, boolean>
    await Promise.all(
      (Object.keys(this.pings) as Dependency[]).map(async (dep) => {
        const ok = await withTimeout(dep, timeoutMs, this.pings[dep]!()).then(
          (answer) => {
            if (!answer) this.failed(dep, 'ping answered false')
            return answer
          },
          (err: unknown) => {
            this.failed(dep, reasonOf(err))
            return false
          },
        )
        if (ok) this.recovered(dep)
        out[dep] = ok
      }),
    )
    return out
  }

  close(): void {
    for (const state of this.down.values()) clearInterval(state.probe)
    this.down.clear()
  }

  private async probe(dependency: Dependency): Promise<void> {
    const ping = this.pings[dependency]
    if (!ping) return this.recovered(dependency)
    const ok = await withTimeout(dependency, this.probeMs, ping()).catch(() => false)
    if (ok) this.recovered(dependency)
  }
}

function reasonOf(err: unknown): string {
  if (err instanceof UnavailableError) return err.reason
  const given = (err as { reason?: unknown } | null)?.reason
  if (typeof given === 'string') return given
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message
  }
  return String(err)
}

function withTimeout<T>(dependency: Dependency, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UnavailableError(dependency, `no answer within ${ms} ms`)), ms)
  })
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}

/**
 * The same object, each async method bounded by `timeoutMs` and its connectivity errors turned into
 * UnavailableError (reported to the monitor); a success while down ends the outage at once.
 * Other errors pass through untouched.
 */
export function guardDependency<T extends object>(target: T, dependency: Dependency, monitor: DependencyMonitor, timeoutMs: number): T {
  const wrapped = new Map<PropertyKey, unknown>()
  return new Proxy(target, {
    get(obj, key, receiver) {
      const value = Reflect.get(obj, key, receiver)
      if (typeof value !== 'function' || key === 'close') return value
      let fn = wrapped.get(key)
      if (!fn) {
        fn = (...args: unknown[]) => {
          let result: unknown
          try {
            // Looked up per call, not captured: the target's methods may be replaced (tests' spies).
            result = (Reflect.get(obj, key) as (...a: unknown[]) => unknown).apply(obj, args)
          } catch (err) {
            throw translate(err)
          }
          if (!(result instanceof Promise)) return result
          return withTimeout(dependency, timeoutMs, result).then(
            (v) => {
              if (monitor.isDown(dependency)) monitor.recovered(dependency)
              return v
            },
            (err: unknown) => {
              throw translate(err)
            },
          )
        }
        wrapped.set(key, fn)
      }
      return fn
    },
  })

  function translate(err: unknown): unknown {
    if (err instanceof UnavailableError) {
      monitor.failed(err.dependency, err.reason)
      return err
    }
    if (!isConnectivityError(err)) return err
    const unavailable = new UnavailableError(dependency, reasonOf(err))
    monitor.failed(dependency, unavailable.reason)
    return unavailable
  }
}

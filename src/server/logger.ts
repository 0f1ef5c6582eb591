import { Writable } from 'node:stream'
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { LogConfig } from '../config/schema.js'

/**
 * Paths pino blanks before anything is written (CONVENTIONS §9, docs/security.md D2). Request bodies
 * and query strings are never logged in the first place; this catches what a handler might pass.
 */
const SECRET_FIELDS = ['password', 'secret', 'client_secret', 'code', 'code_verifier', 'access_token', 'refresh_token', 'id_token', 'token', 'cookie']

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  // Top level and one level down: pino's wildcards need a parent.
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `*.${f}`),
]

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' }

/**
 * Authelia-like logfmt lines (`time=… level=info msg="…" key=value`) for `log.format: text`;
 * JSON stays the default under systemd where journald keeps the structure.
 */
export function formatTextLine(line: string): string {
  let rec: Record<string, unknown>
  try {
    rec = JSON.parse(line) as Record<string, unknown>
  } catch {
    return line
  }
  const { time, level, msg, pid: _pid, hostname: _host, ...rest } = rec
  const parts = [
    `time="${new Date(Number(time)).toISOString()}"`,
    `level=${LEVEL_NAMES[Number(level)] ?? level}`,
    `msg=${JSON.stringify(String(msg ?? ''))}`,
  ]
  for (const [k, v] of Object.entries(rest)) {
    const value = typeof v === 'string' ? v : JSON.stringify(v)
    parts.push(`${k}=${/[\s"=]/.test(value) ? JSON.stringify(value) : value}`)
  }
  return parts.join(' ') + '\n'
}

function textStream(target: DestinationStream): DestinationStream {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) target.write(formatTextLine(line))
      cb()
    },
  }) as unknown as DestinationStream
}

export function loggerOptions(config: LogConfig): LoggerOptions {
  return {
    level: config.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: undefined,
    serializers: {
      // Path only: a query string can carry codes, tokens and state.
      req: (r: FastifyRequest) => ({ method: r.method, path: String(r.url ?? '').split('?')[0], remoteAddress: r.ip }),
      res: (r: { statusCode: number }) => ({ statusCode: r.statusCode }),
    },
  }
}

/** The process logger: stdout, and/or `log.file_path` (with `keep_stdout`), in json or text. */
export function createLogger(config: LogConfig, stdout: DestinationStream = pino.destination(1)): Logger {
  const targets: DestinationStream[] = []
  if (config.filePath) {
    targets.push(pino.destination({ dest: config.filePath, append: true, mkdir: true, sync: false }))
    if (config.keepStdout) targets.push(stdout)
  } else {
    targets.push(stdout)
  }
  const wrapped = targets.map((t) => (config.format === 'text' ? textStream(t) : t))
  const dest = wrapped.length === 1 ? wrapped[0]! : pino.multistream(wrapped.map((stream) => ({ stream, level: config.level })))
  return pino(loggerOptions(config), dest)
}

type LogFn = (...args: unknown[]) => void
interface ParentLogger {
  level: string
  isLevelEnabled(level: string): boolean
  child(bindings: object, options?: object): ParentLogger & Record<string, LogFn>
}

/**
 * The per-request logger Fastify hands to `request.log`, created only when something is actually
 * logged at an enabled level. Building a pino child for every request (with redaction set up)
 * costs more than serving a discovery document.
 */
export class LazyChildLogger {
  private real?: ParentLogger & Record<string, LogFn>
  /** Fields known only once Fastify has built the request (its client address), read at the first line. */
  lateBindings?: () => object
  constructor(
    private readonly parent: ParentLogger,
    private readonly bindings: object,
    private readonly options?: object,
  ) {}
  get level(): string {
    return this.parent.level
  }
  set level(value: string) {
    this.get().level = value
  }
  isLevelEnabled(level: string): boolean {
    return this.parent.isLevelEnabled(level)
  }
  child(bindings: object, options?: object) {
    return this.get().child(bindings, options)
  }
  fatal(...args: unknown[]) {
    this.log('fatal', args)
  }
  error(...args: unknown[]) {
    this.log('error', args)
  }
  warn(...args: unknown[]) {
    this.log('warn', args)
  }
  info(...args: unknown[]) {
    this.log('info', args)
  }
  debug(...args: unknown[]) {
    this.log('debug', args)
  }
  trace(...args: unknown[]) {
    this.log('trace', args)
  }
  silent() {}
  private log(level: string, args: unknown[]): void {
    if (this.parent.isLevelEnabled(level)) this.get()[level]!(...args)
  }
  private get() {
    return (this.real ??= this.parent.child(this.lateBindings ? { ...this.bindings, ...this.lateBindings() } : this.bindings, this.options))
  }
}

/**
 * Every line a request logs carries its client address as `ip` (request.ip: the peer, or the
 * rightmost X-Forwarded-For address not in server.trusted_proxies), so fail2ban can act on any
 * refusal (issue 14.6). Only the closure is set per request; the address is read when a line is.
 */
export function registerClientAddressLogging(app: FastifyInstance): void {
  app.addHook('onRequest', (req, _reply, done) => {
    const log: unknown = req.log
    if (log instanceof LazyChildLogger) log.lateBindings = () => ({ ip: req.ip })
    done()
  })
}

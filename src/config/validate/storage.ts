/** `storage` and `notifier`. */
import { posix } from 'node:path'
import { DEFAULTS, type MysqlConfig, type NotifierConfig, type PostgresConfig, type SmtpConfig, type StorageConfig } from '../schema.js'
import type { MapView } from '../reader.js'
import { readTlsClient } from './tls.js'

/** `tcp://host:port`, `host:port` or `host` (4.38 `address` for databases). */
function parseHostPort(v: string, defaultPort: number): { host: string; port: number } | undefined {
  const m = /^(?:tcp[46]?:\/\/)?(\[[^\]]+\]|[^:/[\]]+)(?::(\d+))?\/?$/.exec(v)
  if (!m) return undefined
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : defaultPort }
}

/**
 * `unix:///run/postgresql` (the socket folder) or `unix:///run/postgresql/.s.PGSQL.5433` (the socket
 * file, which also names the port): node-postgres wants the folder and the port.
 */
function parseUnixAddress(v: string): { host: string; port: number } | undefined {
  const m = /^unix:\/\/(\/[^?#]*)$/.exec(v)
  if (!m) return undefined
  const path = posix.normalize(m[1]!).replace(/(.)\/$/, '$1')
  const socket = /^\.s\.PGSQL\.(\d{1,5})$/.exec(posix.basename(path))
  return socket ? { host: posix.dirname(path), port: Number(socket[1]) } : { host: path, port: 5432 }
}

function readPostgres(p: MapView): PostgresConfig {
  let host = ''
  let port = 5432
  if (p.has('address')) {
    const raw = p.str('address') ?? ''
    const parsed = raw.startsWith('unix:') ? parseUnixAddress(raw) : parseHostPort(raw, 5432)
    if (parsed) ({ host, port } = parsed)
    else p.error('address', `could not parse address '${raw}'`, 'e.g. tcp://db.example.com:5432 or unix:///run/postgresql')
  } else {
    host = p.str('host') ?? ''
    port = p.int('port') ?? 5432
    if (!host) p.missing('host', "option 'host' is required", 'or the 4.38+ address, e.g. tcp://db:5432')
  }
  if (port < 1 || port > 65535) p.error(p.has('address') ? 'address' : 'port', `the port must be between 1 and 65535, got ${port}`)
  for (const key of ['database', 'username']) if (!p.str(key)) p.missing(key, `option '${key}' is required`)
  const schema = p.str('schema') || 'public'
  // Passed as the connection's search_path: a plain identifier keeps it one schema, never a list.
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) p.error('schema', `option 'schema' must be a plain identifier (letters, digits, _), got '${schema}'`)
  if (p.has('ssl')) p.error('ssl', "option 'ssl' (Authelia 4.37's sslmode options) is not supported", "use 'tls' (e.g. tls: { server_name: db.example.com })")
  if (p.has('servers')) p.error('servers', "option 'servers' (fail-over servers) is not supported", 'give one address, e.g. a proxy in front of the replicas')
  const out: PostgresConfig = { host, port, database: p.str('database') ?? '', schema, username: p.str('username') ?? '', timeoutSeconds: p.duration('timeout') || 5 }
  const password = p.str('password')
  if (password) out.password = password
  if (p.has('tls')) out.tls = readTlsClient(p.map('tls'))
  return out
}

/**
 * `storage.mysql`: 4.37 `host`/`port` or 4.38 `address` (`tcp://host:port`, or `unix:///path` to the
 * server's socket file, which mysql2 opens directly).
 */
function readMysql(m: MapView): MysqlConfig {
  let host = ''
  let port = 3306
  let socketPath: string | undefined
  if (m.has('address')) {
    const raw = m.str('address') ?? ''
    const unix = /^unix:\/\/(\/[^?#]*[^/?#])$/.exec(raw)
    const parsed = unix ? undefined : parseHostPort(raw, 3306)
    if (unix) {
      socketPath = posix.normalize(unix[1]!)
      host = 'localhost'
    } else if (parsed) ({ host, port } = parsed)
    else m.error('address', `could not parse address '${raw}'`, 'e.g. tcp://db.example.com:3306 or unix:///run/mysqld/mysqld.sock')
  } else {
    host = m.str('host') ?? ''
    port = m.int('port') ?? 3306
    if (!host) m.missing('host', "option 'host' is required", 'or the 4.38+ address, e.g. tcp://db:3306')
  }
  if (port < 1 || port > 65535) m.error(m.has('address') ? 'address' : 'port', `the port must be between 1 and 65535, got ${port}`)
  for (const key of ['database', 'username']) if (!m.str(key)) m.missing(key, `option '${key}' is required`)
  const out: MysqlConfig = { host, port, database: m.str('database') ?? '', username: m.str('username') ?? '', timeoutSeconds: m.duration('timeout') || 5 }
  if (socketPath) out.socketPath = socketPath
  const password = m.str('password')
  if (password) out.password = password
  if (m.has('tls')) {
    const t = m.map('tls')
    out.tls = readTlsClient(t)
    // mysql2 checks the server certificate against the host it connects to, and nothing else.
    if (out.tls.serverName !== undefined && out.tls.serverName !== host && !out.tls.skipVerify)
      t.error('server_name', `option 'server_name' must be the host connected to ('${host}') for mysql, got '${out.tls.serverName}'`, 'connect by the name in the certificate, or leave server_name unset')
    if (socketPath) m.error('tls', "option 'tls' does not apply to a unix socket address", 'remove tls, or use tcp://host:3306')
  }
  return out
}

export function readStorage(root: MapView): StorageConfig {
  const v = root.map('storage')
  const key = v.str('encryption_key')
  if (!key) v.missing('encryption_key', "option 'encryption_key' is required", 'a random string of 20 characters or more; TOTP secrets are encrypted with it')
  else if (key.length < 20) v.error('encryption_key', "option 'encryption_key' must be 20 characters or longer", 'a random string of 64 characters is a good choice')
  const out: StorageConfig = { encryptionKey: key ?? '' }
  const configured = ['local', 'mysql', 'postgres'].filter((k) => v.has(k))
  if (configured.length === 0) {
    v.problems.error(v.path, "configuration for a 'local', 'mysql' or 'postgres' database must be provided", v.src, "e.g. 'local: { path: db.sqlite3 }'")
    return out
  }
  if (configured.length > 1) {
    v.problems.error(v.path, `option 'local', 'mysql' and 'postgres' are mutually exclusive but ${configured.map((c) => `'${c}'`).join(' and ')} have been configured`, v.src)
    return out
  }
  if (v.has('local')) {
    const local = v.map('local')
    const path = local.filePath('path')
    if (!path) local.missing('path', "option 'path' is required", 'e.g. db.sqlite3')
    out.local = { path: path ?? '' }
  }
  if (v.has('postgres')) out.postgres = readPostgres(v.map('postgres'))
  if (v.has('mysql')) out.mysql = readMysql(v.map('mysql'))
  return out
}

const SMTP_SCHEMES = { smtp: 25, submission: 587, smtps: 465 } as const

export function readNotifier(root: MapView): NotifierConfig {
  const v = root.map('notifier')
  const out: NotifierConfig = { disableStartupCheck: v.bool('disable_startup_check') ?? false }
  const hasFs = v.has('filesystem')
  const hasSmtp = v.has('smtp')
  if (hasFs && hasSmtp) {
    v.problems.error(v.path, "please ensure only one of the 'smtp' or 'filesystem' notifier is configured", v.src)
    return out
  }
  if (!hasFs && !hasSmtp) {
    v.problems.error(v.path, "you must ensure either the 'smtp' or 'filesystem' notifier is configured", v.src, "e.g. 'filesystem: { filename: notification.txt }' for testing")
    return out
  }
  if (hasFs) {
    const f = v.map('filesystem')
    const filename = f.filePath('filename')
    if (!filename) f.missing('filename', "option 'filename' is required")
    out.filesystem = { filename: filename ?? '' }
    return out
  }
  const s = v.map('smtp')
  const d = DEFAULTS.smtp
  let host = ''
  let port: number = d.port
  let scheme: SmtpConfig['scheme'] = 'smtp'
  if (s.has('address')) {
    const raw = s.str('address') ?? ''
    const m = /^(?:([a-z]+):\/\/)?(\[[^\]]+\]|[^:/[\]]+)(?::(\d+))?\/?$/.exec(raw)
    const sch = (m?.[1] ?? 'smtp') as keyof typeof SMTP_SCHEMES
    if (!m || !(sch in SMTP_SCHEMES)) s.error('address', `could not parse address '${raw}': the scheme must be 'smtp', 'submission' or 'smtps'`, 'e.g. submission://smtp.example.com:587')
    else {
      scheme = sch
      host = m[2]!.replace(/^\[|\]$/g, '')
      port = m[3] ? Number(m[3]) : SMTP_SCHEMES[sch]
    }
  } else {
    host = s.str('host') ?? ''
    port = s.int('port') ?? d.port
    if (!host) s.missing('host', "option 'host' is required", 'or the 4.38+ address, e.g. submission://smtp.example.com:587')
    // Authelia 4.37 uses implicit TLS on port 465.
    if (port === 465) scheme = 'smtps'
  }
  const sender = s.str('sender')
  if (!sender) s.missing('sender', "option 'sender' is required", 'e.g. "Latchkey <auth@example.com>"')
  else if (!/^(?:[^<>]*<[^<>@\s]+@[^<>@\s]+>|[^<>@\s]+@[^<>@\s]+)$/.test(sender.trim())) s.error('sender', `option 'sender' must be an email address, optionally with a name, but it's configured as '${sender}'`)
  const tls = s.map('tls')
  const smtp: SmtpConfig = {
    host,
    port,
    scheme,
    sender: sender ?? '',
    identifier: s.str('identifier') || d.identifier,
    subject: s.str('subject') || d.subject,
    timeoutSeconds: s.duration('timeout') || d.timeoutSeconds,
    startupCheckAddress: s.str('startup_check_address') || d.startupCheckAddress,
    disableRequireTls: s.bool('disable_require_tls') ?? false,
    disableStarttls: s.bool('disable_starttls') ?? false,
    disableHtmlEmails: s.bool('disable_html_emails') ?? false,
    tls: {
      skipVerify: tls.bool('skip_verify') ?? false,
      minimumVersion:
        tls.oneOf('minimum_version', ['TLS1.0', 'TLS1.1', 'TLS1.2', 'TLS1.3'] as const, (x) => `option 'minimum_version' must be one of 'TLS1.0', 'TLS1.1', 'TLS1.2', 'TLS1.3' but it's configured as '${x}'`, {
          normalise: (x) => x.toUpperCase(),
        }) ?? 'TLS1.2',
    },
  }
  const serverName = tls.str('server_name')
  if (serverName) smtp.tls.serverName = serverName
  const username = s.str('username')
  if (username) smtp.username = username
  const password = s.str('password')
  if (password) smtp.password = password
  if (username && !password) s.missing('password', "option 'password' is required when option 'username' is set")
  out.smtp = smtp
  return out
}

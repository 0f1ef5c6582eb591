/** Top-level options, `server` and `log`. */
import { existsSync, statSync } from 'node:fs'
import { isIP } from 'node:net'
import { DEFAULTS, type LogConfig, type LogLevel, type ServerConfig, type Theme } from '../schema.js'
import { quoteList, type MapView } from '../reader.js'

const THEMES: readonly Theme[] = ['light', 'dark', 'grey', 'auto', 'oled']
const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error']

export function readTheme(root: MapView): Theme {
  return root.oneOf('theme', THEMES, (v) => `option 'theme' must be one of ${quoteList(THEMES)} but it's configured as '${v}'`) ?? (DEFAULTS.theme as Theme)
}

/** 4.37 `jwt_secret` or 4.38 `identity_validation.reset_password.jwt_secret` (both set was reported already). */
export function readJwtSecret(root: MapView, needed: boolean): string | undefined {
  const secret = root.str('jwt_secret') ?? root.map('identity_validation').map('reset_password').str('jwt_secret')
  if (secret === undefined || secret === '') {
    if (needed)
      root.problems.error('jwt_secret', "option 'jwt_secret' is required", undefined, 'identity-verification links (TOTP registration) are signed with it; set jwt_secret (4.38+: identity_validation.reset_password.jwt_secret) to a long random string')
    return undefined
  }
  return secret
}

export function isAbsoluteUrl(v: string): URL | undefined {
  try {
    const u = new URL(v)
    return u.protocol && u.host !== undefined ? u : undefined
  } catch {
    return undefined
  }
}

export function readDefaultRedirectionUrl(view: MapView, key = 'default_redirection_url'): string | undefined {
  const v = view.str(key)
  if (v === undefined) return undefined
  const u = isAbsoluteUrl(v)
  if (!u || !/^https?:$/.test(u.protocol)) {
    view.error(key, `option '${key}' is invalid: the url '${v}' is not absolute`, 'use a full URL such as https://www.example.com/')
    return undefined
  }
  return v
}

export function readDefault2faMethod(root: MapView, enabled: string[]): string | undefined {
  const v = root.str('default_2fa_method')
  if (v === undefined || v === '') return undefined
  if (!enabled.includes(v)) {
    root.error('default_2fa_method', `option 'default_2fa_method' must be one of the enabled options ${quoteList(enabled)} but it's configured as '${v}'`, 'Latchkey offers `totp` and `webauthn` as second factors')
    return undefined
  }
  return v
}

export function readCertificatesDirectory(root: MapView): string | undefined {
  const dir = root.filePath('certificates_directory')
  if (dir === undefined) return undefined
  if (!existsSync(dir)) root.error('certificates_directory', `the specified certificates directory '${dir}' does not exist`)
  else if (!statSync(dir).isDirectory()) root.error('certificates_directory', `the specified certificates directory '${dir}' is not a directory`)
  return dir
}

/** `tcp://[host]:port/[path]` (also `tcp://:9091`, `tcp4://`, `tcp6://`, or no scheme). */
export function parseListenAddress(v: string): { host: string; port: number; path: string } | { error: string } {
  if (/^unix:/.test(v)) return { error: 'unix sockets are not supported by Latchkey' }
  const m = /^(?:(tcp[46]?):\/\/)?(\[[^\]]*\]|[^:/[\]]*)(?::(\d*))?(\/.*)?$/.exec(v)
  if (!m) return { error: "it must look like 'tcp://[host]:port/[path]'" }
  const host = m[2]!.replace(/^\[|\]$/g, '')
  const port = m[3] ? Number(m[3]) : DEFAULTS.server.port
  const path = (m[4] ?? '').replace(/^\/+|\/+$/g, '')
  return { host: host === '' ? DEFAULTS.server.host : host, port, path }
}

function isIpOrCidr(v: string): boolean {
  const [ip, bits, extra] = v.split('/')
  if (extra !== undefined || !ip) return false
  const family = isIP(ip)
  if (family === 0) return false
  if (bits === undefined) return true
  if (!/^\d+$/.test(bits)) return false
  return Number(bits) <= (family === 4 ? 32 : 128)
}

export function readServer(root: MapView): ServerConfig {
  const v = root.map('server')
  const d = DEFAULTS.server
  let host: string = d.host
  let port: number = d.port
  let path = ''
  let pathKey = 'path'
  if (v.has('address')) {
    pathKey = 'address'
    const raw = v.str('address')
    if (raw !== undefined) {
      const parsed = parseListenAddress(raw)
      if ('error' in parsed) v.error('address', `could not parse address '${raw}': ${parsed.error}`, 'e.g. tcp://:9091/ or tcp://0.0.0.0:9091/authelia')
      else ({ host, port, path } = parsed)
    }
  } else {
    host = v.str('host') || d.host
    port = v.int('port') ?? d.port
    path = v.str('path') ?? ''
  }
  if (port < 0 || port > 65535) v.error(v.has('address') ? 'address' : 'port', `option 'port' must be between 0 and 65535 but it's configured as '${port}'`)
  if (path.includes('/')) v.error(pathKey, "option 'path' must not contain any forward slashes", "write 'authelia', not '/authelia'")
  else if (!/^[a-zA-Z0-9]*$/.test(path)) v.error(pathKey, "option 'path' must only contain alpha numeric characters")

  const server: ServerConfig = {
    host,
    port,
    path,
    trustedProxies: [],
    bodyLimitBytes: d.bodyLimitBytes,
    timeouts: { ...d.timeouts },
    disableHealthcheck: v.bool('disable_healthcheck') ?? d.disableHealthcheck,
  }

  const tls = v.map('tls')
  const key = tls.filePath('key')
  const certificate = tls.filePath('certificate')
  // Ignoring it would let clients without a certificate in: refused, with where mTLS can be done.
  if ((tls.strings('client_certificates') ?? []).length > 0)
    tls.error('client_certificates', "option 'client_certificates' is not supported by Latchkey: it does not require TLS client certificates", 'require them at the reverse proxy in front of Latchkey, or remove the option')
  if (key && !certificate) tls.error('key', "option 'key' must also be accompanied by option 'certificate'")
  else if (certificate && !key) tls.error('certificate', "option 'certificate' must also be accompanied by option 'key'")
  else if (key && certificate) {
    let ok = true
    for (const [name, file] of [['key', key], ['certificate', certificate]] as const) {
      if (!existsSync(file)) {
        tls.error(name, `file path ${file} provided in '${name}' does not exist`)
        ok = false
      }
    }
    if (ok) server.tls = { key, certificate }
  }

  const proxies = v.strings('trusted_proxies') ?? []
  for (const p of proxies) {
    if (isIpOrCidr(p.trim())) server.trustedProxies.push(p.trim())
    else v.error('trusted_proxies', `'${p}' is not an IP address or CIDR`, 'e.g. 127.0.0.1 or 10.0.0.0/8')
  }
  const limit = v.size('body_limit')
  if (limit !== undefined) {
    if (limit < 1024) v.error('body_limit', `must be 1KiB or more, got ${limit} bytes`, 'the default 64KiB suits every endpoint')
    else server.bodyLimitBytes = limit
  }
  const t = v.map('timeouts')
  for (const [key, field] of [['read', 'readSeconds'], ['write', 'writeSeconds'], ['idle', 'idleSeconds']] as const) {
    const s = t.duration(key)
    if (s !== undefined && s > 0) server.timeouts[field] = s
  }
  return server
}

export function readLog(root: MapView): LogConfig {
  const v = root.map('log')
  const d = DEFAULTS.log
  const log: LogConfig = {
    level: v.oneOf('level', LOG_LEVELS, (x) => `option 'level' must be one of ${quoteList(LOG_LEVELS)} but it's configured as '${x}'`, { normalise: (x) => x.toLowerCase() }) ?? d.level,
    format: v.oneOf('format', ['text', 'json'] as const, (x) => `option 'format' must be one of 'text', 'json' but it's configured as '${x}'`, { normalise: (x) => x.toLowerCase() }) ?? d.format,
    keepStdout: v.bool('keep_stdout') ?? d.keepStdout,
  }
  const file = v.filePath('file_path')
  if (file) log.filePath = file
  return log
}

/** `session`: the 4.37 single domain and the 4.38+ `cookies[]` both become `cookies`. */
import { isIP } from 'node:net'
import { isLoopbackHost } from '../../common/host.js'
import { DEFAULTS, type RedisSessionConfig, type SameSite, type SessionConfig, type SessionCookieConfig } from '../schema.js'
import type { MapView } from '../reader.js'
import { isAbsoluteUrl, readDefaultRedirectionUrl } from './core.js'
import { readTlsClient } from './tls.js'

const SAME_SITE: readonly SameSite[] = ['none', 'lax', 'strict']
const HOSTNAME = /^(?=.{1,253}$)([a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?)*$/

interface CookieDefaults {
  name: string
  sameSite: SameSite
  expirationSeconds: number
  inactivitySeconds: number
  rememberMeSeconds: number
}

function readCookieFields(v: MapView, d: CookieDefaults, rememberKey: string): CookieDefaults {
  const out = { ...d }
  const name = v.str('name')
  if (name !== undefined) {
    if (/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) out.name = name
    else v.error('name', `option 'name' is not a valid cookie name: '${name}'`)
  }
  out.sameSite = v.oneOf('same_site', SAME_SITE, (x) => `option 'same_site' must be one of 'none', 'lax', 'strict' but it's configured as '${x}'`, { normalise: (x) => x.toLowerCase() }) ?? d.sameSite
  const exp = v.duration('expiration')
  if (exp !== undefined && exp > 0) out.expirationSeconds = exp
  const inactivity = v.duration('inactivity')
  if (inactivity !== undefined && inactivity > 0) out.inactivitySeconds = inactivity
  const remember = v.duration(rememberKey, { allowDisabled: true })
  if (remember !== undefined && remember !== 0) out.rememberMeSeconds = remember
  return out
}

function checkDomain(v: MapView, key: string, label: string): string | undefined {
  const raw = v.str(key)
  if (raw === undefined || raw === '') {
    v.missing(key, `${label}option 'domain' is required`, 'the parent domain of the portal, e.g. example.com for auth.example.com')
    return undefined
  }
  if (raw.startsWith('*.')) {
    v.error(key, `${label}option 'domain' must be the domain you wish to protect not a wildcard domain but it is configured as '${raw}'`, `use '${raw.slice(2)}'`)
    return undefined
  }
  let domain = raw
  if (domain.startsWith('.')) {
    v.warn(key, `${label}option 'domain' has a prefix of '.' which is not supported or intended behaviour: you can use this at your own risk but we recommend removing it`)
    domain = domain.slice(1)
  }
  // Latchkey also allows `localhost` or an IP address for local use.
  if (isIP(domain) === 0 && !HOSTNAME.test(domain)) {
    v.error(key, `${label}option 'domain' is not a valid cookie domain: '${raw}'`)
    return undefined
  }
  return domain.toLowerCase()
}

export function readSession(root: MapView, legacyDefaultRedirectionUrl: string | undefined): SessionConfig {
  const v = root.map('session')
  const d = DEFAULTS.session
  const rememberKey = v.has('remember_me_duration') ? 'remember_me_duration' : 'remember_me'
  const defaults = readCookieFields(v, { ...d, sameSite: d.sameSite as SameSite }, rememberKey)
  const cookies: SessionCookieConfig[] = []
  if (v.has('cookies')) {
    const items = v.list('cookies')
    if (items.length === 0) v.error('cookies', "option 'cookies' must have at least one cookie domain")
    items.forEach((c, i) => {
      const label = `domain config #${i + 1}: `
      const domain = checkDomain(c, 'domain', label)
      const fields = readCookieFields(c, defaults, 'remember_me')
      const cookie: SessionCookieConfig = { domain: domain ?? '', ...fields }
      const url = c.str('authelia_url')
      if (url === undefined) {
        // Latchkey: optional on `localhost` or a 127.x address (the portal follows the address
        // used, any port). Not for ::1: its bracketed form would not make a valid issuer fallback.
        if (!domain || !(domain === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(domain))) c.missing('authelia_url', `${label}option 'authelia_url' is required`, `the portal URL, e.g. https://auth.${domain ?? 'example.com'}/`)
      } else {
        const u = isAbsoluteUrl(url)
        if (!u || !(u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname))))
          c.error('authelia_url', `${label}option 'authelia_url' does not have a secure scheme with a value of '${url}'`, 'use https:// (http:// is accepted for localhost only)')
        else if (domain && !(u.hostname === domain || u.hostname.endsWith(`.${domain}`)))
          c.error('authelia_url', `${label}option 'authelia_url' does not share a cookie scope with domain '${domain}' with a value of '${url}'`)
        else cookie.autheliaUrl = url
      }
      const redirect = readDefaultRedirectionUrl(c)
      if (redirect) cookie.defaultRedirectionUrl = redirect
      cookies.push(cookie)
    })
  } else {
    const domain = checkDomain(v, 'domain', '')
    const cookie: SessionCookieConfig = { domain: domain ?? '', ...defaults }
    if (legacyDefaultRedirectionUrl) cookie.defaultRedirectionUrl = legacyDefaultRedirectionUrl
    cookies.push(cookie)
  }
  const seen = new Set<string>()
  for (const c of cookies) {
    if (c.domain && seen.has(c.domain)) v.error('cookies', `option 'domain' must be unique, '${c.domain}' is configured twice`)
    seen.add(c.domain)
  }

  const out: SessionConfig = { cookies }
  const secret = v.str('secret')
  if (secret) out.secret = secret
  if (v.has('redis')) {
    if (!secret) v.missing('secret', "option 'secret' is required when using the 'redis' provider", 'a random string of 64 characters or more; it encrypts the sessions kept in Redis')
    out.redis = readRedis(v.map('redis'))
  }
  return out
}

const REDIS_PORT = 6379
const SENTINEL_PORT = 26379

function readPort(v: MapView, key: string, fallback: number): number {
  const port = v.int(key)
  if (port === undefined || port === 0) return fallback
  if (port < 1 || port > 65535) {
    v.error(key, `option '${key}' must be between 1 and 65535 but it's configured as '${port}'`)
    return fallback
  }
  return port
}

/** `session.redis` (Authelia's checks and defaults: session/redis and session/redis-sentinel). */
function readRedis(r: MapView): RedisSessionConfig {
  const ha = r.has('high_availability') ? r.map('high_availability') : undefined
  const host = r.str('host') ?? ''
  const socket = host.startsWith('/')
  const redis: RedisSessionConfig = {
    host,
    // A unix socket has no port (Authelia: an absolute `host` with `port: 0`).
    port: socket && !ha ? 0 : readPort(r, 'port', ha ? SENTINEL_PORT : REDIS_PORT),
    databaseIndex: 0,
    timeoutSeconds: r.duration('timeout') || 5,
    maxRetries: 0,
    maximumActiveConnections: 8,
    minimumIdleConnections: 0,
    keyPrefix: 'latchkey:',
  }
  const index = r.int('database_index')
  if (index !== undefined) {
    if (index < 0) r.error('database_index', `option 'database_index' must be 0 or more but it's configured as '${index}'`)
    else redis.databaseIndex = index
  }
  const nonNegative = (key: string): number | undefined => {
    const n = r.int(key)
    if (n !== undefined && n < 0) r.error(key, `option '${key}' must be 0 or more but it's configured as '${n}'`)
    return n !== undefined && n >= 0 ? n : undefined
  }
  redis.maxRetries = nonNegative('max_retries') ?? redis.maxRetries
  const active = nonNegative('maximum_active_connections')
  if (active) redis.maximumActiveConnections = active
  redis.minimumIdleConnections = nonNegative('minimum_idle_connections') ?? 0
  const prefix = r.str('key_prefix')
  if (prefix !== undefined) {
    if (/^[\x21-\x7e]{1,64}$/.test(prefix)) redis.keyPrefix = prefix
    else r.error('key_prefix', `option 'key_prefix' must be 1 to 64 printable characters without spaces, got '${prefix}'`)
  }
  const username = r.str('username')
  if (username) redis.username = username
  const password = r.str('password')
  if (password) redis.password = password
  if (r.has('tls')) redis.tls = readTlsClient(r.map('tls'))

  if (!ha) {
    if (!host) r.missing('host', "option 'host' is required", 'a host name, or the path of a unix socket with port: 0')
    return redis
  }
  const name = ha.str('sentinel_name')
  if (!name) ha.missing('sentinel_name', "option 'sentinel_name' is required", 'the master name the sentinels monitor')
  const nodes: Array<{ host: string; port: number }> = []
  let hostMissing = false
  ha.list('nodes').forEach((n) => {
    const nodeHost = n.str('host')
    if (!nodeHost) hostMissing = true
    else nodes.push({ host: nodeHost, port: readPort(n, 'port', SENTINEL_PORT) })
  })
  if (hostMissing) ha.error('nodes', "option 'nodes': option 'host' is required for each node but one or more nodes are missing this")
  if (!host && nodes.length === 0 && !hostMissing) r.missing('host', "option 'host' or the 'high_availability' option 'nodes' is required")
  redis.highAvailability = { sentinelName: name ?? '', nodes, routeByLatency: ha.bool('route_by_latency') ?? false, routeRandomly: ha.bool('route_randomly') ?? false }
  const sentinelUsername = ha.str('sentinel_username')
  if (sentinelUsername) redis.highAvailability.sentinelUsername = sentinelUsername
  const sentinelPassword = ha.str('sentinel_password')
  if (sentinelPassword) redis.highAvailability.sentinelPassword = sentinelPassword
  return redis
}

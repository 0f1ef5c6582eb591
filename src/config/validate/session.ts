/** `session`: the 4.37 single domain and the 4.38+ `cookies[]` both become `cookies`. */
import { isIP } from 'node:net'
import { isLoopbackHost } from '../../common/host.js'
import { DEFAULTS, type SameSite, type SessionConfig, type SessionCookieConfig } from '../schema.js'
import type { MapView } from '../reader.js'
import { isAbsoluteUrl, readDefaultRedirectionUrl } from './core.js'

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
    const r = v.map('redis')
    const host = r.str('host')
    if (!host) r.missing('host', "redis: option 'host' is required")
    if (!secret) v.missing('secret', "option 'secret' is required when using the 'redis' provider")
    const redis: NonNullable<SessionConfig['redis']> = { host: host ?? '', port: r.int('port') ?? 6379, databaseIndex: r.int('database_index') ?? 0 }
    const username = r.str('username')
    if (username) redis.username = username
    const password = r.str('password')
    if (password) redis.password = password
    out.redis = redis
  }
  return out
}

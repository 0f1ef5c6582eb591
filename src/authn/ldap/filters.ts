/**
 * Authelia's filter placeholders. Attribute placeholders are filled once from the configuration;
 * per-request ones are filled with escaped values only (RFC 4515 §3), so a username can never
 * change the shape of a filter.
 */
import type { LdapBackendConfig } from '../../config/schema.js'
import { escapeFilterValue, rdnValue, splitDn } from './escape.js'

/** `{username_attribute}` and friends, replaced at start-up (configuration, not input). */
export function resolveAttributePlaceholders(filter: string, a: LdapBackendConfig['attributes']): string {
  return filter
    .replaceAll('{distinguished_name_attribute}', a.distinguishedName)
    .replaceAll('{username_attribute}', a.username)
    .replaceAll('{display_name_attribute}', a.displayName)
    .replaceAll('{mail_attribute}', a.mail)
    .replaceAll('{member_of_attribute}', a.memberOf)
}

/** LDAP GeneralizedTime in UTC as Authelia writes it (`20060102150405.0Z`). */
export function generalizedTime(date: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0')
  return `${p(date.getUTCFullYear(), 4)}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}.0Z`
}

/** Microsoft NT time: 100-nanosecond intervals since 1601-01-01 UTC (AD's accountExpires). */
export function microsoftNtTime(date: Date): string {
  return (BigInt(date.getTime()) * 10_000n + 116_444_736_000_000_000n).toString()
}

function dateTimes(filter: string, now: Date): string {
  if (!filter.includes('{date-time:')) return filter
  return filter
    .replaceAll('{date-time:generalized}', generalizedTime(now))
    .replaceAll('{date-time:unix}', String(Math.floor(now.getTime() / 1000)))
    .replaceAll('{date-time:microsoft-nt}', microsoftNtTime(now))
}

/** The users filter for one login: `{input}` escaped, the date-time placeholders at `now`. */
export function usersFilterFor(filter: string, input: string, now: Date): string {
  return dateTimes(filter.replaceAll('{input}', escapeFilterValue(input)), now)
}

export interface UserProfileForGroups {
  dn: string
  username: string
  memberOf: string[]
}

/**
 * The groups filter for a found user: `{input}` (what was typed), `{username}`, `{dn}` escaped;
 * `{memberof:dn}` becomes `(distinguishedName=<dn>)` items and `{memberof:rdn}` `(<attr>=<value>)`
 * items, one per memberOf value, each value escaped.
 */
export function groupsFilterFor(filter: string, input: string, profile: UserProfileForGroups, a: LdapBackendConfig['attributes'], now: Date): string {
  let out = filter.replaceAll('{input}', escapeFilterValue(input)).replaceAll('{username}', escapeFilterValue(profile.username)).replaceAll('{dn}', escapeFilterValue(profile.dn))
  if (out.includes('{memberof:dn}')) {
    out = out.replaceAll('{memberof:dn}', profile.memberOf.map((dn) => `(${a.distinguishedName}=${escapeFilterValue(dn)})`).join(''))
  }
  if (out.includes('{memberof:rdn}')) {
    const items = profile.memberOf.map((dn) => {
      const rdn = splitDn(dn)[0] ?? ''
      const attr = rdn.slice(0, Math.max(0, rdn.indexOf('='))).trim()
      return /^[A-Za-z][A-Za-z0-9-]*$|^\d+(\.\d+)+$/.test(attr) ? `(${attr}=${escapeFilterValue(rdnValue(rdn))})` : ''
    })
    out = out.replaceAll('{memberof:rdn}', items.join(''))
  }
  return dateTimes(out, now)
}

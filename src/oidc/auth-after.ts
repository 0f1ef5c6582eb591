import { createHmac } from 'node:crypto'
import { deriveKey, safeEqual } from '../common/hashing.js'
import type { OidcConfig } from '../config/schema.js'

/**
 * `auth_after`: when prompt=login or max_age sends the browser to sign in again, the resumed
 * authorization URL carries the time the fresh sign-in must follow. It travels through the
 * browser, so it is sealed with an HMAC bound to the client, and honoured for ten minutes only:
 * a value a relying party makes up (`auth_after=1`) must not switch the forced sign-in off.
 */
export const AUTH_AFTER_SECONDS = 600

/** Stable across restarts and instances: derived from the configured secrets, never stored. */
export function authAfterKey(oidc: OidcConfig): Buffer {
  return deriveKey('latchkey auth_after', oidc.hmacSecret ?? oidc.issuerPrivateKeys.map((k) => k.key).join('\n'))
}

function mac(key: Buffer, time: number, clientId: string): string {
  return createHmac('sha256', key).update(`${time}\0${clientId}`).digest('base64url').slice(0, 22)
}

export function sealAuthAfter(key: Buffer, time: number, clientId: string): string {
  return `${time}.${mac(key, time, clientId)}`
}

/** The sealed time, or undefined when the value is absent, forged, for another client or too old. */
export function openAuthAfter(key: Buffer, raw: string | undefined, clientId: string, now: number): number | undefined {
  const m = raw === undefined ? null : /^([0-9]{1,12})\.([A-Za-z0-9_-]{22})$/.exec(raw)
  if (!m) return undefined
  const time = Number(m[1])
  if (!safeEqual(mac(key, time, clientId), m[2]!)) return undefined
  if (time > now || now - time > AUTH_AFTER_SECONDS) return undefined
  return time
}

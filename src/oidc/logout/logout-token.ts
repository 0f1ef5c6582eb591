import { randomUUID } from 'node:crypto'
import type { Client } from '../clients.js'
import { keyFor, type KeySet } from '../keys.js'

export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout'
/** Logout tokens are short-lived: they are delivered at once (with retries within this window). */
export const LOGOUT_TOKEN_SECONDS = 120

/**
 * Back-Channel Logout 1.0 §2.4: a JWT with `iss`, `aud`, `iat`, `exp`, `jti`, `events`, `sub` and
 * `sid`, never a `nonce`; header `typ: logout+jwt` (§2.4, so it cannot pass for an ID token).
 * Signed like the client's ID tokens: its algorithm, and its pinned key id if any.
 */
export function signLogoutToken(keys: KeySet, client: Client, p: { issuer: string; subject: string; sid: string; now: number }): Promise<string> {
  const { idTokenSigningAlgorithm: alg, idTokenSigningKeyId: kid } = client.config
  const key = keyFor(keys, { alg, ...(kid !== undefined ? { kid } : {}) })
  return key.signJwt(
    {
      iss: p.issuer,
      aud: client.id,
      iat: p.now,
      exp: p.now + LOGOUT_TOKEN_SECONDS,
      jti: randomUUID(),
      sub: p.subject,
      sid: p.sid,
      events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
    },
    'logout+jwt',
  )
}

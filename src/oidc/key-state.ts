import type { OidcConfig, SigningChoice } from '../config/schema.js'
import { formatDuration } from '../config/duration.js'
import type { KeySet, SigningKey } from './keys.js'
import { longestSignedLifetimeSeconds } from './lifespans.js'

/** What one issuer key does now (`latchkey doctor`, docs/oidc.md "Rotating the signing key"). */
export interface KeyRole {
  kid: string
  alg: string
  /** The algorithm's default key: the first listed key of its algorithm. */
  isDefault: boolean
  /** `client 'x' (id_token)`: clients whose key id pins this key. */
  pinnedBy: string[]
  /** Published in the JWKS but signs nothing: a new key not switched to yet, or an old one being retired. */
  publishedOnly: boolean
}

/** Which clients' tokens, by what they sign, a key signs when it is its algorithm's default. */
function usesOf(oidc: OidcConfig, key: SigningKey, isDefault: boolean): { pinned: string[]; defaultUsers: string[] } {
  const pinned: string[] = []
  const defaultUsers: string[] = []
  const check = (client: string, what: string, choice: SigningChoice | undefined) => {
    if (!choice || choice.alg !== key.alg) return
    if (choice.kid !== undefined) {
      if (choice.kid === key.kid) pinned.push(`client '${client}' (${what})`)
    } else if (isDefault) defaultUsers.push(`${client} ${what}`)
  }
  for (const c of oidc.clients) {
    check(c.id, 'id_token', { alg: c.idTokenSigningAlgorithm, ...(c.idTokenSigningKeyId !== undefined ? { kid: c.idTokenSigningKeyId } : {}) })
    if (c.userinfoSigningAlgorithm !== 'none') check(c.id, 'userinfo', { alg: c.userinfoSigningAlgorithm, ...(c.userinfoSigningKeyId !== undefined ? { kid: c.userinfoSigningKeyId } : {}) })
    check(c.id, 'access_token', c.accessTokenSigning)
    check(c.id, 'introspection', c.introspectionSigning)
    check(c.id, 'authorization', c.authorizationSigning)
  }
  check('(provider)', 'discovery', oidc.discoverySigning)
  return { pinned, defaultUsers }
}

export function keyRoles(keys: KeySet, oidc: OidcConfig): KeyRole[] {
  return keys.keys.map((key) => {
    const isDefault = keys.byAlg.get(key.alg) === key
    const { pinned } = usesOf(oidc, key, isDefault)
    return { kid: key.kid, alg: key.alg, isDefault, pinnedBy: pinned, publishedOnly: !isDefault && pinned.length === 0 }
  })
}

/**
 * One line per key for `latchkey doctor`: which key signs which algorithm (and for which clients),
 * which are only published, and when a retired key may go: after the longest lifetime of a
 * token it signed (ID tokens and JWT access tokens; the other signed answers live minutes).
 */
export function describeKeyState(keys: KeySet, oidc: OidcConfig): string[] {
  const longest = formatDuration(longestSignedLifetimeSeconds(oidc))
  return keyRoles(keys, oidc).map((r) => {
    const head = `kid ${r.kid} (${r.alg})`
    if (r.publishedOnly)
      return `${head}: published only, signs nothing. A new key: put it first among the ${r.alg} keys in jwks to switch signing to it. An old key: remove it ${longest} after the switch (the longest ID token / JWT access token lifetime), when no token it signed is still valid`
    const parts: string[] = []
    if (r.isDefault) parts.push(`signs ${r.alg} by default (every ${r.alg} signature without a key id)`)
    if (r.pinnedBy.length > 0) parts.push(`pinned by ${r.pinnedBy.join(', ')}`)
    return `${head}: ${parts.join('; ')}`
  })
}

import { OAuthError } from './errors.js'
import type { Client } from './clients.js'

/**
 * The audience a request gets (4.38 `requested_audience_mode`): the `audience` parameter, each value
 * one of the client's; without it every configured audience (`implicit`) or none (`explicit`).
 */
export function requestedAudience(client: Client, param: string | undefined): string[] {
  if (param === undefined) return client.config.requestedAudienceMode === 'explicit' ? [] : [...client.config.audience]
  const audience = [...new Set(param.split(' ').filter(Boolean))]
  for (const a of audience) {
    if (!client.config.audience.includes(a)) throw new OAuthError('invalid_request', `The OAuth 2.0 Client is not allowed to request audience '${a.slice(0, 64)}'.`)
  }
  return audience
}

import type { EndedSession } from '../../session/types.js'
import type { OidcContext } from '../context.js'
import type { BackchannelSender } from './backchannel.js'
import { signLogoutToken } from './logout-token.js'

/**
 * Front-Channel Logout 1.0 §2: the RP's URI with `iss` and `sid` added (always: a relying party
 * that does not need them ignores them, and one that set `frontchannel_logout_session_required`
 * gets what it asked for).
 */
export function frontChannelUrl(uri: string, issuer: string, sid: string): string {
  const url = new URL(uri)
  url.searchParams.set('iss', issuer)
  url.searchParams.set('sid', sid)
  return url.href
}

/**
 * The session signed out: every client that holds a sign-in of it is told, once (the records are
 * taken in one atomic step, whichever instance signs the session out). Back-channel deliveries start
 * in the background; the front-channel URIs are returned for the sign-out page to load.
 */
export async function notifySessionClients(ctx: OidcContext, sender: BackchannelSender, ended: EndedSession): Promise<string[]> {
  const records = await ctx.storage.takeSessionClients(ended.sid, ctx.clock.now())
  const frames: string[] = []
  for (const r of records) {
    const client = ctx.clients.get(r.clientId)
    // A client removed from the configuration since the sign-in is not told.
    if (!client) continue
    const { backchannelLogoutUri, frontchannelLogoutUri } = client.config
    if (backchannelLogoutUri !== undefined) {
      sender.send({
        clientId: client.id,
        uri: backchannelLogoutUri,
        token: () => signLogoutToken(ctx.keys, client, { issuer: r.issuer, subject: r.subject, sid: r.sid, now: ctx.clock.now() }),
      })
    }
    if (frontchannelLogoutUri !== undefined) frames.push(frontChannelUrl(frontchannelLogoutUri, r.issuer, r.sid))
  }
  return frames
}

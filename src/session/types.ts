import type { FastifyRequest } from 'fastify'
import type { SessionCookieConfig } from '../config/schema.js'
import type { SessionData } from '../storage/storage.js'

/**
 * The session of the current request, loaded by the session plugin (src/session/plugin.ts) in an
 * onRequest hook and exposed as `request.session`. The cookie carries a random id; callers pass
 * that raw id to SessionStore, which stores only its SHA-256, so a database dump holds no usable
 * cookie. (Do not hash it before calling storage.)
 */
export interface LoadedSession {
  /** The raw cookie value (never logged). */
  id: string
  data: SessionData
  /** The session.cookies[] entry whose domain matched the request host. */
  cookie: SessionCookieConfig
}

/** A signed-in session that just signed out. */
export interface EndedSession {
  /** Its logout id (SessionData.sid). */
  sid: string
  username: string
}

/** Resolves URIs the sign-out page loads in iframes (front-channel logout); may be empty. */
export type SignOutListener = (req: FastifyRequest, ended: EndedSession) => Promise<string[]>

export interface SignOutResult {
  frontChannelUris: string[]
}

declare module 'fastify' {
  interface FastifyRequest {
    /** null when the request carries no valid (unexpired, active) session. */
    session: LoadedSession | null
  }
}

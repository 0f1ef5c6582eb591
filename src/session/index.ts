export {
  SessionManager,
  SessionError,
  formToken,
  establishSession,
  elevateSession,
  saveSession,
  destroySession,
  signOut,
  onSignOut,
  ensureSessionSid,
  cookieForRequest,
  type SignedInUser,
} from './session.js'
export { isHostInDomain, isHostOnlyDomain, CookieDomains } from './cookie.js'
export { isCrossSiteRequest, checkFormCsrf } from './csrf.js'
export type { EndedSession, LoadedSession, SignOutListener, SignOutResult } from './types.js'

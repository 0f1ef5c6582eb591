export {
  SessionManager,
  SessionError,
  formToken,
  establishSession,
  elevateSession,
  saveSession,
  destroySession,
  cookieForRequest,
  type SignedInUser,
} from './session.js'
export { isHostInDomain, isHostOnlyDomain, CookieDomains } from './cookie.js'
export { isCrossSiteRequest, checkFormCsrf } from './csrf.js'
export type { LoadedSession } from './types.js'

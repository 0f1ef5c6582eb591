import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyReply } from 'fastify'

/**
 * Security headers on every response (docs/security.md W4). Routes may override one before sending,
 * e.g. the form_post page widens `form-action` to the client's origin.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'"

/**
 * `isClosing()` true adds `Connection: close`, so a keep-alive client cannot hold a stopping
 * server open until the idle timeout.
 */
export function registerSecurityHeaders(app: FastifyInstance, isClosing: () => boolean): void {
  // Callback style: this runs on every response, and a promise per hook is measurable.
  app.addHook('onSend', (_req, reply, payload, done) => {
    setSecurityHeaders(reply)
    if (isClosing()) reply.header('connection', 'close')
    done(null, payload)
  })
}

/** The headers every answer carries; the first two are defaults a route may have set otherwise. */
const SECURITY_HEADERS: ReadonlyArray<readonly [name: string, value: string, overridable: boolean]> = [
  ['content-security-policy', CONTENT_SECURITY_POLICY, true],
  ['referrer-policy', 'no-referrer', true],
  ['x-content-type-options', 'nosniff', false],
  ['x-frame-options', 'DENY', false],
  ['cross-origin-opener-policy', 'same-origin', false],
]

/** Sets SECURITY_HEADERS; also called directly where Fastify skips the hooks. */
export function setSecurityHeaders(reply: FastifyReply): void {
  for (const [name, value, overridable] of SECURITY_HEADERS) if (!overridable || !reply.hasHeader(name)) reply.header(name, value)
}

/** The same headers as raw HTTP/1.1 lines, for answers written to the socket by hand. */
const SECURITY_HEADER_LINES = SECURITY_HEADERS.map(([name, value]) => `${name}: ${value}\r\n`).join('')

/** For API answers that must never be cached (tokens, user data, portal JSON). */
export function noStore(reply: { header(name: string, value: string): unknown }): void {
  reply.header('cache-control', 'no-store')
  reply.header('pragma', 'no-cache')
}

const CLIENT_ERRORS: Record<string, [number, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout'],
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large'],
}

/**
 * Node's `clientError` path (headers too large, a request line that is not HTTP, a request that
 * timed out) answers before any route or hook runs: written here by hand with the same security
 * headers as every other answer (docs/security.md W4), a fixed body, and the connection closed.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  // Never into a response already on the wire (Node's own handler checks the same).
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage
  if (socket.writable && !inFlight?.headersSent) {
    const [status, text] = CLIENT_ERRORS[err.code ?? ''] ?? [400, 'Bad Request']
    const body = `${status} ${text}`
    socket.write(
      `HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\n` +
        `cache-control: no-store\r\n${SECURITY_HEADER_LINES}connection: close\r\n\r\n${body}`,
    )
  }
  socket.destroy()
}

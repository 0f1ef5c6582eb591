/**
 * LDAP connections for the users backend: each one connected, upgraded with StartTLS when asked and
 * (for service connections) bound before it is handed out, and never reused once its socket closed.
 * ldapts reconnects by itself on the next operation after a close; that new socket would be neither
 * upgraded nor bound (an anonymous search, or a password sent in clear), so a closed connection is
 * dropped here instead of being used again.
 */
import { Client, InvalidCredentialsError } from 'ldapts'
import type { ConnectionOptions } from 'node:tls'
import type { Socket } from 'node:net'

export interface ConnectionSettings {
  url: string
  timeoutMs: number
  startTls: boolean
  /** For ldaps:// and StartTLS. */
  tls: ConnectionOptions
}

/** The directory cannot be used now (refused, timed out, TLS failed, busy): a 503, never a 500. */
export class DirectoryUnavailableError extends Error {
  /** Read by isConnectivityError (src/server/availability.ts). */
  readonly code = 'UNAVAILABLE'
  constructor(readonly reason: string) {
    super(`user directory unavailable: ${reason}`)
    this.name = 'DirectoryUnavailableError'
  }
}

/** LDAP result codes that mean "not now" (RFC 4511 §4.1.9): busy, unavailable, unwillingToPerform, other. */
const UNAVAILABLE_RESULT_CODES = new Set([51, 52, 53, 80])

/** Whether an error from ldapts means the directory is unreachable rather than a refused operation. */
export function isDirectoryDown(err: unknown): boolean {
  if (err instanceof DirectoryUnavailableError) return true
  if (!(err instanceof Error)) return false
  const code = (err as { code?: unknown }).code
  if (typeof code === 'number') return UNAVAILABLE_RESULT_CODES.has(code)
  // Socket errors (ECONNREFUSED, ECONNRESET...) and TLS failures (a certificate that does not verify).
  if (typeof code === 'string') return /^(E[A-Z]+|ERR_TLS_\w+|ERR_SSL_\w+|CERT_\w+|UNABLE_TO_\w+|DEPTH_ZERO_\w+|SELF_SIGNED_\w+|HOSTNAME_MISMATCH)$/.test(code)
  return /Connection timeout|timed out|Socket error|Connection closed|socket connection not established|socket hang up|EPIPE|ECONNRESET/i.test(err.message)
}

export function unavailable(err: unknown): DirectoryUnavailableError {
  if (err instanceof DirectoryUnavailableError) return err
  const e = err as { code?: unknown; message?: string }
  const code = typeof e?.code === 'string' && !String(e.message).includes(e.code) ? `${e.code}: ` : ''
  return new DirectoryUnavailableError(`${code}${String(e?.message ?? err).split('\n')[0]}`)
}

export class Connection {
  private closed = false

  private constructor(readonly client: Client) {}

  /** Connected (and upgraded) now; bound as `bindDn` when given. Rejects with DirectoryUnavailableError. */
  static async open(s: ConnectionSettings, bind?: { dn: string; password: string }): Promise<Connection> {
    const secure = s.url.startsWith('ldaps:')
    const client = new Client({ url: s.url, timeout: s.timeoutMs, connectTimeout: s.timeoutMs, strictDN: false, ...(secure ? { tlsOptions: s.tls } : {}) })
    const conn = new Connection(client)
    try {
      if (s.startTls) await client.startTLS({ ...s.tls })
      if (bind) await client.bind(bind.dn, bind.password)
      else if (!s.startTls) {
        // Connect now, so the close watch below covers the first operation too.
        await (client as unknown as { _connect(): Promise<void> })._connect()
      }
    } catch (err) {
      await conn.close()
      if (err instanceof InvalidCredentialsError) throw new DirectoryUnavailableError('the service account (authentication_backend.ldap.user) was refused: invalid credentials')
      throw unavailable(err)
    }
    const socket = (client as unknown as { socket?: Socket }).socket
    if (!socket) throw new DirectoryUnavailableError('the connection closed while opening')
    socket.once('close', () => (conn.closed = true))
    return conn
  }

  get usable(): boolean {
    return !this.closed && this.client.isConnected
  }

  async close(): Promise<void> {
    this.closed = true
    await this.client.unbind().catch(() => undefined)
  }
}

/**
 * A fixed number of connections opened on demand, shared by callers in turn. A caller waits for a
 * free one (in order); a connection whose socket closed is replaced by a new one on the next acquire.
 */
export class ConnectionPool {
  private readonly idle: Connection[] = []
  private readonly waiting: Array<(c: Connection | undefined) => void> = []
  private open = 0
  private ended = false

  constructor(
    private readonly size: number,
    private readonly create: () => Promise<Connection>,
  ) {}

  /** Runs `work` on a connection; a connection that failed at the network level is dropped and `work` runs once more on a new one. */
  async use<T>(work: (c: Connection) => Promise<T>): Promise<T> {
    const first = await this.acquire()
    const reused = first.reused
    try {
      const out = await work(first.conn)
      this.release(first.conn, true)
      return out
    } catch (err) {
      const down = isDirectoryDown(err)
      this.release(first.conn, !down)
      // A pooled connection may have died while idle (directory restarted): one fresh try.
      if (!down || !reused) throw err
    }
    const second = await this.acquire()
    try {
      const out = await work(second.conn)
      this.release(second.conn, true)
      return out
    } catch (err) {
      this.release(second.conn, !isDirectoryDown(err))
      throw err
    }
  }

  private async acquire(): Promise<{ conn: Connection; reused: boolean }> {
    for (;;) {
      if (this.ended) throw new DirectoryUnavailableError('the users backend is closed')
      const conn = this.idle.pop()
      if (conn) {
        if (conn.usable) return { conn, reused: true }
        this.discard(conn)
        continue
      }
      if (this.open < this.size) {
        this.open++
        try {
          return { conn: await this.create(), reused: false }
        } catch (err) {
          this.open--
          this.wakeOne()
          throw err
        }
      }
      const handed = await new Promise<Connection | undefined>((resolve) => this.waiting.push(resolve))
      if (handed) return { conn: handed, reused: true }
    }
  }

  private release(conn: Connection, keep: boolean): void {
    if (!keep || !conn.usable || this.ended) {
      this.discard(conn)
      return
    }
    const next = this.waiting.shift()
    if (next) next(conn)
    else this.idle.push(conn)
  }

  private discard(conn: Connection): void {
    this.open--
    void conn.close()
    this.wakeOne()
  }

  /** A waiter gets `undefined`: a slot is free, it opens a connection itself. */
  private wakeOne(): void {
    this.waiting.shift()?.(undefined)
  }

  async close(): Promise<void> {
    this.ended = true
    for (const w of this.waiting.splice(0)) w(undefined)
    await Promise.all(this.idle.splice(0).map((c) => c.close()))
  }
}

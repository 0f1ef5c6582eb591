import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { LookupFunction } from 'node:net'
import { isIpLiteral, isPrivateAddress, stripBrackets } from '../../common/host.js'

/** Test-only and tuning knobs of back-channel delivery (AppDeps.logout). */
export interface BackchannelTuning {
  /** One attempt's limit, connect to response (default 5 s). */
  timeoutMs?: number
  /** Waits before the second, third… attempt (default 1 s, 4 s: three attempts in all). */
  retryDelaysMs?: number[]
}

export interface BackchannelLog {
  info(fields: Record<string, unknown>, msg: string): void
  warn(fields: Record<string, unknown>, msg: string): void
}

export interface Delivery {
  clientId: string
  uri: string
  /** Signs the logout token; called per attempt so a retry carries a fresh `iat`/`jti`. */
  token: () => Promise<string>
}

class DeliveryError extends Error {
  constructor(
    message: string,
    /** False for an answer the relying party gave on purpose (4xx): a retry would get the same. */
    readonly retry: boolean,
  ) {
    super(message)
  }
}

const USER_AGENT = 'Latchkey back-channel logout'

/**
 * Back-Channel Logout 1.0 §2.5: POSTs `logout_token=…` to each relying party, in the background.
 * The sign-out never waits for it (docs/security.md E3): `send` returns at once. Each attempt has a
 * timeout; network errors, timeouts and 5xx answers are retried a bounded number of times; a
 * delivery that finally fails gives one warning line naming the client and the reason. Redirects
 * are not followed, bodies are not read. Loopback, private and link-local addresses are refused at
 * connect time, after DNS, unless allowed (docs/security.md E4). `close()` aborts what is in flight.
 */
export class BackchannelSender {
  private readonly inFlight = new Set<Promise<void>>()
  private readonly aborts = new AbortController()
  private readonly timeoutMs: number
  private readonly retryDelaysMs: number[]

  constructor(
    private readonly log: BackchannelLog,
    private readonly allowPrivate: boolean,
    tuning: BackchannelTuning = {},
  ) {
    this.timeoutMs = tuning.timeoutMs ?? 5000
    this.retryDelaysMs = tuning.retryDelaysMs ?? [1000, 4000]
  }

  send(delivery: Delivery): void {
    if (this.aborts.signal.aborted) return
    const p = this.deliver(delivery).finally(() => this.inFlight.delete(p))
    this.inFlight.add(p)
  }

  /** Resolves once every delivery started so far has finished (tests, graceful shutdown). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight])
  }

  close(): void {
    this.aborts.abort()
  }

  private async deliver(d: Delivery): Promise<void> {
    const attempts = this.retryDelaysMs.length + 1
    let last = ''
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (this.aborts.signal.aborted) return
      try {
        const status = await this.post(d.uri, await d.token())
        this.log.info({ clientId: d.clientId, status, attempt }, 'back-channel logout delivered')
        return
      } catch (err) {
        last = err instanceof DeliveryError ? err.message : `request failed: ${(err as Error).message}`
        if (err instanceof DeliveryError && !err.retry) break
      }
      const wait = this.retryDelaysMs[attempt - 1]
      if (wait !== undefined && !(await this.sleep(wait))) return
    }
    this.log.warn({ clientId: d.clientId, attempts }, `back-channel logout to client '${d.clientId}' failed: ${last}`)
  }

  /** False when aborted while waiting. */
  private sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const signal = this.aborts.signal
      const done = () => {
        clearTimeout(timer)
        resolve(!signal.aborted)
      }
      const timer = setTimeout(done, ms)
      signal.addEventListener('abort', done, { once: true })
    })
  }

  private post(uri: string, token: string): Promise<number> {
    const url = new URL(uri)
    if (!this.allowPrivate && isIpLiteral(url.hostname) && isPrivateAddress(stripBrackets(url.hostname))) {
      return Promise.reject(new DeliveryError(`the address ${url.hostname} is loopback, private or link-local (backchannel_logout_allow_private_networks is off)`, false))
    }
    const body = new URLSearchParams({ logout_token: token }).toString()
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest
    return new Promise((resolve, reject) => {
      const req = send(
        url,
        {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body), 'user-agent': USER_AGENT, 'cache-control': 'no-store' },
          timeout: this.timeoutMs,
          signal: AbortSignal.any([this.aborts.signal, AbortSignal.timeout(this.timeoutMs)]),
          lookup: this.allowPrivate ? undefined : publicOnlyLookup,
          agent: false,
        },
        (res) => {
          res.resume()
          const status = res.statusCode ?? 0
          // §2.8: 200 OK (204 is common too); 400 means the RP refused this token.
          if (status >= 200 && status < 300) resolve(status)
          else if (status >= 300 && status < 400) reject(new DeliveryError(`the relying party answered ${status} (redirects are not followed)`, false))
          else reject(new DeliveryError(`the relying party answered ${status}`, status >= 500 || status === 429))
        },
      )
      req.on('timeout', () => req.destroy(new DeliveryError(`no answer within ${this.timeoutMs} ms`, true)))
      req.on('error', (err) => reject(err instanceof DeliveryError ? err : err.name === 'AbortError' || err.name === 'TimeoutError' ? new DeliveryError(`no answer within ${this.timeoutMs} ms`, true) : err))
      req.end(body)
    })
  }
}

/** dns.lookup that fails for loopback, private and link-local answers (checked on what we connect to). */
const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, options as LookupOptions, (err, address, family) => {
    if (err) return callback(err, address as string, family)
    const all: LookupAddress[] = Array.isArray(address) ? address : [{ address: address as string, family: family ?? 4 }]
    const bad = all.find((a) => isPrivateAddress(a.address))
    if (bad) {
      const e = new DeliveryError(`${hostname} resolves to ${bad.address}, a loopback, private or link-local address (backchannel_logout_allow_private_networks is off)`, false)
      return callback(e as NodeJS.ErrnoException, '', 4)
    }
    ;(callback as (e: null, a: unknown, f?: number) => void)(null, address, family)
  })
}

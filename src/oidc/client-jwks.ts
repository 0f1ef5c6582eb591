import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import http from 'node:http'
import https from 'node:https'
import { isIP } from 'node:net'
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import type { JWK } from 'jose'
import { isPrivateAddress, stripBrackets } from '../common/host.js'

/** Limits of one `jwks_uri` fetch (docs/security.md J5). */
export interface JwksFetchLimits {
  /** The whole exchange, connection to last byte. */
  timeoutMs: number
  maxBytes: number
  /** A fetched set is reused this long. */
  cacheSeconds: number
  /** An unknown `kid` refetches at most this often per client, so random kids cannot make us a proxy. */
  minRefreshSeconds: number
}

export const JWKS_FETCH_LIMITS: JwksFetchLimits = { timeoutMs: 5000, maxBytes: 64 * 1024, cacheSeconds: 300, minRefreshSeconds: 10 }

export class JwksFetchError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'JwksFetchError'
  }
}

/** One verification key of a client, as the assertion check uses it. */
export interface ClientVerificationKey {
  kid?: string
  /** From the JWK's `alg` or the configured algorithm; undefined when the set does not say. */
  alg?: string
  key: KeyObject | Uint8Array
}

// The one address rule (src/common/host.ts), re-exported for this module's tests.
export { isPrivateAddress }

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void

/** dns.lookup that refuses forbidden addresses; the connection goes to the address checked (no rebinding). */
function guardedLookup(hostname: string, options: { all?: boolean; family?: number }, callback: LookupCallback): void {
  dnsLookup(hostname, { all: true, ...(options.family ? { family: options.family } : {}) }, (err, addresses) => {
    if (err) return callback(err, [])
    const bad = addresses.find((a) => isPrivateAddress(a.address))
    if (bad || addresses.length === 0) {
      const e = new Error(`${hostname} resolves to ${bad?.address ?? 'nothing'}, a loopback or private address`) as NodeJS.ErrnoException
      e.code = 'EPRIVATEADDRESS'
      return callback(e, [])
    }
    if (options.all) return callback(null, addresses)
    return callback(null, addresses[0]!.address, addresses[0]!.family)
  })
}

/** GET of a JWK Set with the limits; no redirects, no cookies, 200 only. */
export function fetchJwksDocument(url: string, opts: { allowPrivate: boolean; limits: JwksFetchLimits }): Promise<unknown> {
  const u = new URL(url)
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return Promise.reject(new JwksFetchError('jwks_uri is not http(s)'))
  if (!opts.allowPrivate && isIP(stripBrackets(u.hostname)) !== 0 && isPrivateAddress(u.hostname)) {
    return Promise.reject(new JwksFetchError(`jwks_uri host ${u.hostname} is a loopback or private address (see client_jwks_uri_allow_private_networks)`))
  }
  const { timeoutMs, maxBytes } = opts.limits
  return new Promise((resolve, reject) => {
    let done = false
    const finish = (err: Error | undefined, value?: unknown) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (err) reject(err)
      else resolve(value)
    }
    const mod = u.protocol === 'https:' ? https : http
    const req = mod.request(
      u,
      {
        method: 'GET',
        headers: { accept: 'application/jwk-set+json, application/json' },
        agent: false,
        ...(opts.allowPrivate ? {} : { lookup: guardedLookup as never }),
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume()
          req.destroy()
          return finish(new JwksFetchError(`jwks_uri answered HTTP ${res.statusCode}`))
        }
        const declared = Number(res.headers['content-length'] ?? '0')
        if (declared > maxBytes) {
          req.destroy()
          return finish(new JwksFetchError(`jwks_uri answer is larger than ${maxBytes} bytes`))
        }
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > maxBytes) {
            req.destroy()
            finish(new JwksFetchError(`jwks_uri answer is larger than ${maxBytes} bytes`))
            return
          }
          chunks.push(chunk)
        })
        res.on('end', () => {
          try {
            finish(undefined, JSON.parse(Buffer.concat(chunks).toString('utf8')))
          } catch {
            finish(new JwksFetchError('jwks_uri answer is not JSON'))
          }
        })
        res.on('error', (e) => finish(new JwksFetchError(`jwks_uri read failed: ${e.message}`)))
      },
    )
    const timer = setTimeout(() => {
      req.destroy()
      finish(new JwksFetchError(`jwks_uri did not answer within ${timeoutMs} ms`))
    }, timeoutMs)
    req.on('error', (e: NodeJS.ErrnoException) => finish(new JwksFetchError(e.code === 'EPRIVATEADDRESS' ? `${e.message} (see client_jwks_uri_allow_private_networks)` : `jwks_uri request failed: ${e.code ?? e.message}`)))
    req.end()
  })
}

/** The signing keys of a JWK Set document; entries that are not public signing keys are skipped. */
export function keysFromJwks(doc: unknown): ClientVerificationKey[] {
  const keys = (doc as { keys?: unknown })?.keys
  if (!Array.isArray(keys)) throw new JwksFetchError("jwks_uri answer has no 'keys' array")
  const out: ClientVerificationKey[] = []
  for (const jwk of keys.slice(0, 100) as JWK[]) {
    if (typeof jwk !== 'object' || jwk === null) continue
    if (jwk.use !== undefined && jwk.use !== 'sig') continue
    // A private or symmetric member in a published set is a mistake; such an entry is never used.
    if (jwk.kty === 'oct' || jwk.d !== undefined) continue
    if (jwk.kty !== 'RSA' && jwk.kty !== 'EC' && jwk.kty !== 'OKP') continue
    try {
      const key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
      // As for configured keys: RSA below 2048 bits is not a key anyone should be able to sign with.
      if (key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) continue
      out.push({ ...(typeof jwk.kid === 'string' ? { kid: jwk.kid } : {}), ...(typeof jwk.alg === 'string' ? { alg: jwk.alg } : {}), key })
    } catch {
      // An unusable entry is skipped; the assertion then fails to find a key and says so.
    }
  }
  return out
}


interface CacheEntry {
  keys: ClientVerificationKey[]
  fetchedAt: number
}

/**
 * Per-client cache of `jwks_uri` sets: reused for `cacheSeconds`, refetched once on an unknown `kid`
 * (key rotation) but not more often than `minRefreshSeconds`; parallel requests share one fetch.
 */
export class ClientJwksCache {
  private readonly entries = new Map<string, CacheEntry>()
  private readonly inflight = new Map<string, Promise<CacheEntry>>()

  constructor(
    private readonly opts: { allowPrivate: boolean; limits: JwksFetchLimits; now: () => number },
  ) {}

  async keys(clientId: string, url: string, kid: string | undefined): Promise<ClientVerificationKey[]> {
    const now = this.opts.now()
    const cached = this.entries.get(clientId)
    const fresh = cached && now - cached.fetchedAt < this.opts.limits.cacheSeconds
    const knowsKid = kid === undefined || cached?.keys.some((k) => k.kid === kid)
    if (cached && fresh && (knowsKid || now - cached.fetchedAt < this.opts.limits.minRefreshSeconds)) return cached.keys
    return (await this.refresh(clientId, url)).keys
  }

  private refresh(clientId: string, url: string): Promise<CacheEntry> {
    let p = this.inflight.get(clientId)
    if (!p) {
      p = (async () => {
        const doc = await fetchJwksDocument(url, this.opts)
        const entry = { keys: keysFromJwks(doc), fetchedAt: this.opts.now() }
        this.entries.set(clientId, entry)
        return entry
      })().finally(() => this.inflight.delete(clientId))
      this.inflight.set(clientId, p)
    }
    return p
  }
}

import { createHmac } from 'node:crypto'
import { randomString } from '../common/random.js'
import { deriveKey, safeEqual } from '../common/hashing.js'

/**
 * The sign-in form's CSRF protection before anybody has signed in, without a database row: anybody
 * can load the page, so a stored anonymous session per page load would let any client make the
 * server write at will. Instead the anonymous cookie carries its own proof of origin (a MAC over a
 * random part) and the form token is a MAC of that cookie. A planted or made-up cookie fails the
 * MAC and is replaced, never adopted (docs/security.md W2); nothing survives the first sign-in, which
 * issues a fresh, stored session id.
 */
const RANDOM_LENGTH = 12
/** Issue time, unix seconds in base 36, zero-padded: the cookie expires on the server too. */
const TIME_LENGTH = 8
const MAC_LENGTH = 12
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

export class AnonymousForms {
  private readonly key: Buffer

  /**
   * `secret`: a configured secret (storage.encryption_key): stable across restarts and instances.
   * `lifetimeSeconds`: how long a cookie (and so its form token) is honoured after it was issued.
   */
  constructor(
    secret: string,
    private readonly lifetimeSeconds: number,
  ) {
    this.key = deriveKey('latchkey anonymous form', secret)
  }

  /** A new cookie value, shaped like a session id (32 alphanumeric characters, docs/authelia-compat.md §2.8). */
  newId(now: number): string {
    const body = randomString(RANDOM_LENGTH) + Math.max(0, Math.floor(now)).toString(36).padStart(TIME_LENGTH, '0')
    return body + this.mac('id', body, MAC_LENGTH)
  }

  /** True for a value this server issued by newId() less than the lifetime ago. */
  isIssued(value: string | undefined, now: number): value is string {
    if (!this.isOurs(value)) return false
    const issuedAt = parseInt(value.slice(RANDOM_LENGTH, RANDOM_LENGTH + TIME_LENGTH), 36)
    return issuedAt <= now && now - issuedAt < this.lifetimeSeconds
  }

  /**
   * Made by newId() (its MAC holds), whatever its age: such a value never names a stored session
   * (a random session id passes the 12-character MAC with odds of 62^-12), so it is not looked up.
   */
  isOurs(value: string | undefined): value is string {
    if (value === undefined || value.length !== RANDOM_LENGTH + TIME_LENGTH + MAC_LENGTH) return false
    const body = value.slice(0, RANDOM_LENGTH + TIME_LENGTH)
    return safeEqual(value.slice(body.length), this.mac('id', body, MAC_LENGTH))
  }

  /** The form token that goes with an issued cookie value. */
  csrfToken(id: string): string {
    return this.mac('csrf', id, 32)
  }

  private mac(purpose: string, value: string, length: number): string {
    const bytes = createHmac('sha256', this.key).update(`${purpose}\0${value}`).digest()
    // Alphanumeric so the cookie keeps the session id's shape; 62 symbols from 256 values is a
    // slight bias, harmless for a MAC of this length (about 71 bits for the cookie's 12 characters).
    let out = ''
    for (let i = 0; out.length < length; i++) out += ALPHABET[bytes[i % bytes.length]! % 62]
    return out
  }
}

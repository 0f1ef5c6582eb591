import { createHash, createHmac } from 'node:crypto'
import { randomString } from '../common/random.js'
import { safeEqual } from '../common/hashing.js'

/**
 * The sign-in form's CSRF protection before anybody has signed in, without a database row: anybody
 * can load the page, so a stored anonymous session per page load would let any client make the
 * server write at will. Instead the anonymous cookie carries its own proof of origin (a MAC over a
 * random part) and the form token is a MAC of that cookie. A planted or made-up cookie fails the
 * MAC and is replaced, never adopted (security.md W2); nothing survives the first sign-in, which
 * issues a fresh, stored session id.
 */
const RANDOM_LENGTH = 20
const MAC_LENGTH = 12
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

export class AnonymousForms {
  private readonly key: Buffer

  /** `secret`: a configured secret (storage.encryption_key): stable across restarts and instances. */
  constructor(secret: string) {
    this.key = createHash('sha256').update('latchkey anonymous form\0').update(secret).digest()
  }

  /** A new cookie value: the same 32-character alphabet and length as a session id. */
  newId(): string {
    const random = randomString(RANDOM_LENGTH)
    return random + this.mac('id', random, MAC_LENGTH)
  }

  /** True for a value this server issued by newId(). */
  isIssued(value: string | undefined): value is string {
    if (value === undefined || value.length !== RANDOM_LENGTH + MAC_LENGTH) return false
    return safeEqual(value.slice(RANDOM_LENGTH), this.mac('id', value.slice(0, RANDOM_LENGTH), MAC_LENGTH))
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

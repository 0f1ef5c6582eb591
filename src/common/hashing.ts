import { createHash, timingSafeEqual } from 'node:crypto'

export function sha256Hex(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex')
}

export function sha256(value: string | Uint8Array): Buffer {
  return createHash('sha256').update(value).digest()
}

/** A key for one purpose from a configured secret: SHA-256 of the purpose label, NUL, the secret. */
export function deriveKey(purpose: string, secret: string): Buffer {
  return createHash('sha256').update(`${purpose}\0`).update(secret).digest()
}

/** Constant-time comparison that does not leak the length either (both sides hashed; strings as UTF-8). */
export function safeEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
  return timingSafeEqual(sha256(a), sha256(b))
}

import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'

const NONCE_BYTES = 12
const TAG_BYTES = 16

/** Thrown when a sealed value fails authentication: wrong key, wrong associated data, or tampering. */
export class SecretBoxError extends Error {
  readonly code = 'DECRYPT_FAILED'
  constructor(message: string) {
    super(message)
    this.name = 'SecretBoxError'
  }
}

/**
 * Authenticated encryption of small secrets at rest (TOTP secrets), docs/security.md F2.
 * AES-256-GCM, key = SHA-256(encryption key) like Authelia, a fresh random 96-bit nonce per seal,
 * layout nonce | ciphertext | tag. The associated data (the username) is authenticated but not
 * stored, so a row copied to another user fails to open instead of yielding that user a secret.
 */
export interface SecretBox {
  seal(plaintext: Buffer, associatedData: string): Buffer
  /** Throws SecretBoxError rather than ever returning unauthenticated bytes. */
  open(sealed: Buffer, associatedData: string): Buffer
}

export function createSecretBox(encryptionKey: string): SecretBox {
  if (encryptionKey.length === 0) throw new Error('secret box: the encryption key is empty')
  const key = createHash('sha256').update(encryptionKey, 'utf8').digest()
  return {
    seal(plaintext, associatedData) {
      const nonce = randomBytes(NONCE_BYTES)
      const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES })
      cipher.setAAD(Buffer.from(associatedData, 'utf8'))
      const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
      return Buffer.concat([nonce, body, cipher.getAuthTag()])
    },
    open(sealed, associatedData) {
      if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new SecretBoxError('sealed value is too short')
      const nonce = sealed.subarray(0, NONCE_BYTES)
      const tag = sealed.subarray(sealed.length - TAG_BYTES)
      const body = sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)
      const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES })
      decipher.setAAD(Buffer.from(associatedData, 'utf8'))
      decipher.setAuthTag(tag)
      try {
        return Buffer.concat([decipher.update(body), decipher.final()])
      } catch {
        throw new SecretBoxError('sealed value failed authentication (wrong key, wrong owner, or altered)')
      }
    },
  }
}

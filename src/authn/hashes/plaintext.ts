import { DigestParseError, timingSafeEqualSecrets, type PasswordDigest } from './digest.js'

/**
 * Parses `$plaintext$<secret>`, `$base64$<std base64 of secret>`, or a value without a leading '$'
 * (the secret itself). Authelia accepts these for OIDC client secrets only.
 */
export function parsePlaintext(encoded: string): PasswordDigest {
  const secret = plaintextSecret(encoded)
  return {
    algorithm: 'plaintext',
    encoded,
    // Hashing both sides first keeps the secret's length out of the timing too.
    verify: async (password) => timingSafeEqualSecrets(password, secret),
  }
}

/** The secret bytes of a plaintext form (the HMAC key of RFC 7523 `client_secret_jwt`). */
export function plaintextSecret(encoded: string): Buffer {
  let secret: string | Buffer
  if (encoded.startsWith('$plaintext$')) {
    secret = encoded.slice('$plaintext$'.length)
  } else if (encoded.startsWith('$base64$')) {
    const text = encoded.slice('$base64$'.length)
    // Strict: Buffer would skip stray characters and decode a typo into a different secret.
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
      throw new DigestParseError('$base64$ secret is not valid standard base64')
    }
    secret = Buffer.from(text, 'base64')
  } else if (!encoded.startsWith('$')) {
    secret = encoded
  } else {
    throw new DigestParseError('not a plaintext digest')
  }
  if (secret.length === 0) throw new DigestParseError('plaintext secret is empty')
  return typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret
}

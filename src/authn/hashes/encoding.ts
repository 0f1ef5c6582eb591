import { DigestParseError } from './digest.js'

const B64 = /^[A-Za-z0-9+/]*$/

/** Standard base64 without padding, as PHC strings (argon2) and passlib's scrypt write it. */
export function encodeB64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64').replace(/=+$/, '')
}

/**
 * Strict decoding of standard base64 without padding. Buffer.from(…, 'base64') silently skips
 * characters it does not know, which would let a corrupted digest parse into different bytes.
 */
export function decodeB64(text: string, what: string): Buffer {
  if (!B64.test(text) || text.length % 4 === 1) {
    throw new DigestParseError(`${what} is not valid unpadded standard base64`)
  }
  return Buffer.from(text, 'base64')
}

/** passlib's "adapted base64" (ab64): standard base64, no padding, '+' written '.'. */
export function encodeAb64(bytes: Uint8Array): string {
  return encodeB64(bytes).replaceAll('+', '.')
}

export function decodeAb64(text: string, what: string): Buffer {
  // Authelia and passlib both map '.' back to '+', and so accept a literal '+' too.
  return decodeB64(text.replaceAll('.', '+'), what)
}

/** The alphabet of crypt(3) salts and of bcrypt's own base64 ("./" first, then A-Z, a-z, 0-9). */
const BCRYPT64 = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const STD64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** bcrypt's base64 is standard base64 over a permuted alphabet, so translate and reuse Buffer's codec. */
export function encodeBcrypt64(bytes: Uint8Array): string {
  return translate(encodeB64(bytes), STD64, BCRYPT64)
}

export function decodeBcrypt64(text: string, what: string): Buffer {
  if (!/^[./A-Za-z0-9]*$/.test(text)) throw new DigestParseError(`${what} is not valid bcrypt base64`)
  return decodeB64(translate(text, BCRYPT64, STD64), what)
}

function translate(text: string, from: string, to: string): string {
  let out = ''
  for (const ch of text) out += to[from.indexOf(ch)]
  return out
}

/** A SHA-crypt salt from random bytes: crypt(3) uses the same 64 characters, so `byte & 63` is uniform. */
export function randomCryptSalt(random: Uint8Array): string {
  let out = ''
  for (const byte of random) out += BCRYPT64[byte & 63]
  return out
}

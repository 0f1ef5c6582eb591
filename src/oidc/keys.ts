import { constants, createHash, createPrivateKey, createPublicKey, sign, X509Certificate, type KeyObject, type SignKeyObjectInput } from 'node:crypto'
import type { IssuerKeyConfig, SigningAlgorithm } from '../config/schema.js'

/** One issuer signing key, parsed once at start. */
export interface SigningKey {
  kid: string
  alg: SigningAlgorithm
  /**
   * Signs a JWS (compact) with this key: `base64url(header).base64url(payload).signature`. The
   * protected header is constant per key, so it is serialised once; the signature runs on libuv's
   * thread pool (node:crypto's callback form), off the event loop. Cheaper than jose's SignJWT
   * (a claims builder, a WebCrypto job and re-encodings per token) on the token hot path.
   */
  signJwt(payload: Record<string, unknown>, typ?: JwtType): Promise<string>
  publicKey: KeyObject
  /** The public JWK as published (no private members). */
  jwk: Record<string, unknown>
}

/**
 * The JOSE `typ` of what is signed: `JWT` (ID tokens, userinfo, JARM, signed metadata),
 * `at+jwt` (RFC 9068 §2.1), `token-introspection+jwt` (RFC 9701 §5), `logout+jwt` (Back-Channel
 * Logout 1.0 §2.4).
 */
export type JwtType = 'JWT' | 'at+jwt' | 'token-introspection+jwt' | 'logout+jwt'

/** Which issuer key signs something: a pinned `kid`, else the first key of the algorithm. */
export interface KeyChoice {
  alg: SigningAlgorithm
  kid?: string
}

export interface KeySet {
  keys: SigningKey[]
  /** The first configured key of each algorithm signs (rotation: put the new key first, keep the old). */
  byAlg: Map<SigningAlgorithm, SigningKey>
  byKid: Map<string, SigningKey>
  /** `{"keys":[...]}` serialised once. */
  jwksJson: string
  algorithms: SigningAlgorithm[]
}

export class KeyConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'KeyConfigError'
  }
}

const RSA_ALGS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'])
const EC_CURVES: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' }
const JWK_CRV: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }

/** RFC 7638 JWK thumbprint over the required public members, with the given hash. */
export function jwkThumbprint(jwk: Record<string, unknown>, hash: 'sha1' | 'sha256'): string {
  let members: string[]
  switch (jwk.kty) {
    case 'RSA':
      members = ['e', 'kty', 'n']
      break
    case 'EC':
      members = ['crv', 'kty', 'x', 'y']
      break
    case 'OKP':
      members = ['crv', 'kty', 'x']
      break
    default:
      throw new KeyConfigError(`unsupported key type ${String(jwk.kty)}`)
  }
  const canonical = '{' + members.map((m) => `${JSON.stringify(m)}:${JSON.stringify(jwk[m])}`).join(',') + '}'
  return createHash(hash).update(canonical).digest('hex')
}

function checkKeyMatchesAlg(key: KeyObject, alg: SigningAlgorithm, index: number): void {
  const where = `identity_providers: oidc: issuer key #${index + 1} (${alg})`
  if (RSA_ALGS.has(alg)) {
    if (key.asymmetricKeyType !== 'rsa') throw new KeyConfigError(`${where}: algorithm ${alg} needs an RSA key, got ${key.asymmetricKeyType}`)
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0
    if (bits < 2048) throw new KeyConfigError(`${where}: the RSA key must have 2048 bits or more but it only has ${bits} bits`)
    return
  }
  if (alg in EC_CURVES) {
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== EC_CURVES[alg]) {
      throw new KeyConfigError(`${where}: algorithm ${alg} needs an EC ${JWK_CRV[alg]} key`)
    }
    return
  }
  if (alg === 'EdDSA') {
    if (key.asymmetricKeyType !== 'ed25519') throw new KeyConfigError(`${where}: algorithm EdDSA needs an Ed25519 key`)
    return
  }
  throw new KeyConfigError(`${where}: unsupported algorithm`)
}

function parseChain(pem: string, publicKey: KeyObject, where: string): { x5c: string[]; x5t: string; x5tS256: string } {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  if (blocks.length === 0) throw new KeyConfigError(`${where}: certificate_chain holds no PEM certificate`)
  const certs = blocks.map((b) => new X509Certificate(b))
  if (!certs[0]!.publicKey.equals(publicKey)) throw new KeyConfigError(`${where}: the first certificate of certificate_chain does not match the private key`)
  const der = certs.map((c) => c.raw)
  return {
    x5c: der.map((d) => d.toString('base64')),
    x5t: createHash('sha1').update(der[0]!).digest('base64url'),
    x5tS256: createHash('sha256').update(der[0]!).digest('base64url'),
  }
}

/**
 * The `kid` of each configured key, without parsing more than the public half: the configured
 * `key_id`, else the derived one (see loadKeySet). Config validation uses it to check `*_key_id`.
 */
export function keyIdsOf(configs: IssuerKeyConfig[]): Array<string | undefined> {
  const derived = configs.map((c) => {
    try {
      return jwkThumbprint(createPublicKey(createPrivateKey({ key: c.key, format: 'pem' })).export({ format: 'jwk' }) as Record<string, unknown>, 'sha1').slice(0, 6)
    } catch {
      return undefined
    }
  })
  const counts = new Map<string, number>()
  configs.forEach((c, i) => {
    const d = derived[i]
    if (!c.keyId && d) counts.set(d, (counts.get(d) ?? 0) + 1)
  })
  return configs.map((c, i) => {
    if (c.keyId) return c.keyId
    const d = derived[i]
    if (!d) return undefined
    return (counts.get(d) ?? 0) > 1 ? `${d}-${c.algorithm.toLowerCase()}` : d
  })
}

/** The key for a choice: the pinned kid, else the signing (first) key of the algorithm. */
export function keyFor(keys: KeySet, choice: KeyChoice): SigningKey {
  const key = choice.kid !== undefined ? keys.byKid.get(choice.kid) : keys.byAlg.get(choice.alg)
  if (!key) throw new Error(`no issuer key for ${choice.kid !== undefined ? `key id '${choice.kid}'` : `algorithm ${choice.alg}`}`)
  return key
}

/**
 * Parses the issuer keys once. `kid`: the configured `key_id`, else Authelia 4.37's rule, the first
 * 6 hex characters of the SHA-1 JWK thumbprint (RFC 7638), so tokens keep their kid after a move
 * from Authelia 4.37; when two keys would share a derived kid (the same key used for two
 * algorithms), each gets `-<alg>` appended, lower-cased, as in 4.38.
 */
export async function loadKeySet(configs: IssuerKeyConfig[]): Promise<KeySet> {
  if (configs.length === 0) throw new KeyConfigError("identity_providers: oidc: option 'issuer_private_key' is required")
  const parsed = configs.map((c, i) => {
    let privateKey: KeyObject
    try {
      privateKey = createPrivateKey({ key: c.key, format: 'pem' })
    } catch {
      throw new KeyConfigError(`identity_providers: oidc: issuer key #${i + 1}: the key is not a valid PEM private key (PKCS#1, PKCS#8 or SEC1)`)
    }
    checkKeyMatchesAlg(privateKey, c.algorithm, i)
    const publicKey = createPublicKey(privateKey)
    const exported = publicKey.export({ format: 'jwk' }) as Record<string, unknown>
    return { c, privateKey, publicKey, exported, derived: jwkThumbprint(exported, 'sha1').slice(0, 6) }
  })
  const derivedCounts = new Map<string, number>()
  for (const p of parsed) if (!p.c.keyId) derivedCounts.set(p.derived, (derivedCounts.get(p.derived) ?? 0) + 1)

  const keys: SigningKey[] = []
  const byKid = new Map<string, SigningKey>()
  const byAlg = new Map<SigningAlgorithm, SigningKey>()
  for (const [i, p] of parsed.entries()) {
    const kid = p.c.keyId ?? ((derivedCounts.get(p.derived) ?? 0) > 1 ? `${p.derived}-${p.c.algorithm.toLowerCase()}` : p.derived)
    if (byKid.has(kid)) throw new KeyConfigError(`identity_providers: oidc: issuer key #${i + 1}: key_id '${kid}' is used by more than one key`)
    // Public members only: the JWK exported from the public KeyObject never has d, p, q, dp, dq, qi.
    const jwk: Record<string, unknown> = { use: 'sig', kty: p.exported.kty, kid, alg: p.c.algorithm }
    for (const m of ['crv', 'n', 'e', 'x', 'y']) if (p.exported[m] !== undefined) jwk[m] = p.exported[m]
    if (p.c.certificateChain) {
      const chain = parseChain(p.c.certificateChain, p.publicKey, `identity_providers: oidc: issuer key #${i + 1}`)
      jwk.x5c = chain.x5c
      jwk.x5t = chain.x5t
      jwk['x5t#S256'] = chain.x5tS256
    }
    const key: SigningKey = { kid, alg: p.c.algorithm, signJwt: jwsSigner(p.privateKey, p.c.algorithm, kid), publicKey: p.publicKey, jwk }
    keys.push(key)
    byKid.set(kid, key)
    if (!byAlg.has(key.alg)) byAlg.set(key.alg, key)
  }
  return {
    keys,
    byAlg,
    byKid,
    jwksJson: JSON.stringify({ keys: keys.map((k) => k.jwk) }),
    algorithms: [...byAlg.keys()],
  }
}

/**
 * node:crypto's sign() arguments for a JWS algorithm (RFC 7518 §3): RSASSA-PKCS1-v1_5, RSASSA-PSS
 * with a salt as long as the hash, ECDSA in the raw r||s (IEEE P1363) form JWS requires, and
 * Ed25519 (no separate hash).
 */
function signArguments(privateKey: KeyObject, alg: SigningAlgorithm): { hash: string | null; key: KeyObject | SignKeyObjectInput } {
  if (alg === 'EdDSA') return { hash: null, key: privateKey }
  const hash = hashForAlg(alg)
  if (alg.startsWith('PS')) return { hash, key: { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } }
  if (alg.startsWith('ES')) return { hash, key: { key: privateKey, dsaEncoding: 'ieee-p1363' } }
  return { hash, key: privateKey }
}

function jwsSigner(privateKey: KeyObject, alg: SigningAlgorithm, kid: string): (payload: Record<string, unknown>, typ?: JwtType) => Promise<string> {
  const headers = new Map<JwtType, string>()
  const headerFor = (typ: JwtType) => {
    let h = headers.get(typ)
    if (h === undefined) {
      h = Buffer.from(JSON.stringify({ alg, kid, typ })).toString('base64url')
      headers.set(typ, h)
    }
    return h
  }
  const { hash, key } = signArguments(privateKey, alg)
  return (payload, typ = 'JWT') => {
    const header = headerFor(typ)
    const input = `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
    return new Promise((resolve, reject) => {
      sign(hash, Buffer.from(input), key, (err, signature) => (err ? reject(err) : resolve(`${input}.${signature.toString('base64url')}`)))
    })
  }
}

/** The hash behind at_hash / c_hash for a JWS algorithm (OIDC Core §3.1.3.6; Ed25519 → SHA-512). */
export function hashForAlg(alg: SigningAlgorithm): 'sha256' | 'sha384' | 'sha512' {
  if (alg.endsWith('384')) return 'sha384'
  if (alg.endsWith('512') || alg === 'EdDSA') return 'sha512'
  return 'sha256'
}

/** base64url of the left half of the hash of `value` (at_hash, c_hash). */
export function leftHalfHash(value: string, alg: SigningAlgorithm): string {
  const digest = createHash(hashForAlg(alg)).update(value, 'ascii').digest()
  return digest.subarray(0, digest.length / 2).toString('base64url')
}

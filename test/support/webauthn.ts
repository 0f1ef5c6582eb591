import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import { isoCBOR } from '@simplewebauthn/server/helpers'

/**
 * A software authenticator for the HTTP tests: real ES256 keys, real CBOR, `none` attestation,
 * real signatures over authenticator data and the client data hash (WebAuthn §6.1, §6.5.4), so
 * the server's checks run unchanged. The knobs make the negative cases: another origin or RP ID,
 * user verification off, a sign count chosen by the test (a clone replays an older one).
 */

const FLAG_UP = 0x01
const FLAG_UV = 0x04
const FLAG_BE = 0x08
const FLAG_AT = 0x40

export interface SoftCredential {
  id: Buffer
  key: KeyObject
  userHandle?: string
  count: number
  rpId: string
}

export interface CeremonyOptions {
  origin?: string
  /** The RP ID hashed into authenticator data (default: the one the options named). */
  rpId?: string
  uv?: boolean
  backupEligible?: boolean
  /** Sign count to report (default: the credential's count + 1). */
  count?: number
  /** Replaces the challenge the server sent. */
  challenge?: string
}

const sha256 = (data: Buffer | string): Buffer => createHash('sha256').update(data).digest()

export function coseKey(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' })
  const map = new Map<number, unknown>([
    [1, 2],
    [3, -7],
    [-1, 1],
    [-2, new Uint8Array(Buffer.from(jwk.x!, 'base64url'))],
    [-3, new Uint8Array(Buffer.from(jwk.y!, 'base64url'))],
  ])
  return isoCBOR.encode(map as never)
}

function clientData(type: string, challenge: string, origin: string): Buffer {
  return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }))
}

export class SoftAuthenticator {
  readonly credentials: SoftCredential[] = []

  constructor(readonly origin = 'https://auth.example.com') {}

  /** navigator.credentials.create() on `publicKey` creation options (the JSON the server sent). */
  create(publicKey: { challenge: string; rp: { id?: string }; user: { id: string }; authenticatorSelection?: { residentKey?: string } }, o: CeremonyOptions = {}): { json: Record<string, unknown>; credential: SoftCredential } {
    const rpId = o.rpId ?? publicKey.rp.id!
    const { privateKey, publicKey: pub } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const id = randomBytes(32)
    const credential: SoftCredential = { id, key: privateKey, userHandle: publicKey.user.id, count: o.count ?? 0, rpId: publicKey.rp.id! }
    const flags = FLAG_UP | FLAG_AT | (o.uv === false ? 0 : FLAG_UV) | (o.backupEligible ? FLAG_BE : 0)
    const counter = Buffer.alloc(4)
    counter.writeUInt32BE(credential.count)
    const idLength = Buffer.alloc(2)
    idLength.writeUInt16BE(id.length)
    const authData = Buffer.concat([sha256(rpId), Buffer.from([flags]), counter, Buffer.alloc(16), idLength, id, Buffer.from(coseKey(pub))])
    const attestationObject = isoCBOR.encode(new Map<string, unknown>([['fmt', 'none'], ['attStmt', new Map()], ['authData', new Uint8Array(authData)]]) as never)
    this.credentials.push(credential)
    const rk = publicKey.authenticatorSelection?.residentKey === 'required'
    return {
      credential,
      json: {
        id: id.toString('base64url'),
        rawId: id.toString('base64url'),
        type: 'public-key',
        response: {
          clientDataJSON: clientData('webauthn.create', o.challenge ?? publicKey.challenge, o.origin ?? this.origin).toString('base64url'),
          attestationObject: Buffer.from(attestationObject).toString('base64url'),
          transports: ['usb'],
        },
        clientExtensionResults: { credProps: { rk } },
        authenticatorAttachment: 'cross-platform',
      },
    }
  }

  /** navigator.credentials.get(): the first allowed credential, or (discoverable) the one given. */
  get(publicKey: { challenge: string; rpId?: string; allowCredentials?: Array<{ id: string }> }, o: CeremonyOptions & { credential?: SoftCredential } = {}): Record<string, unknown> {
    const allowed = publicKey.allowCredentials?.map((c) => c.id) ?? []
    const credential = o.credential ?? this.credentials.find((c) => allowed.includes(c.id.toString('base64url')))
    if (!credential) throw new Error('no credential for these options')
    const rpId = o.rpId ?? publicKey.rpId ?? credential.rpId
    credential.count = o.count ?? credential.count + 1
    const counter = Buffer.alloc(4)
    counter.writeUInt32BE(credential.count)
    const flags = FLAG_UP | (o.uv === false ? 0 : FLAG_UV) | (o.backupEligible ? FLAG_BE : 0)
    const authData = Buffer.concat([sha256(rpId), Buffer.from([flags]), counter])
    const data = clientData('webauthn.get', o.challenge ?? publicKey.challenge, o.origin ?? this.origin)
    const signature = sign('sha256', Buffer.concat([authData, sha256(data)]), credential.key)
    return {
      id: credential.id.toString('base64url'),
      rawId: credential.id.toString('base64url'),
      type: 'public-key',
      response: {
        clientDataJSON: data.toString('base64url'),
        authenticatorData: authData.toString('base64url'),
        signature: signature.toString('base64url'),
        ...(credential.userHandle ? { userHandle: credential.userHandle } : {}),
      },
      clientExtensionResults: {},
    }
  }
}

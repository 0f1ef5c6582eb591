import type { ImportBatch, PreConfiguredConsent, SecondFactorPreference, SubjectIdentifier, TotpConfiguration, WebauthnCredential } from '../storage/storage.js'
import type { AutheliaData } from './read.js'

/** What Authelia's "no expiry" becomes: Latchkey's consents always carry one (9999-12-31T23:59:59Z). */
export const NEVER_EXPIRES = 253_402_300_799

export interface ConvertOptions {
  now: number
  /** `totp.issuer` of Latchkey's configuration, for Authelia rows without an issuer (Authelia used its own then). */
  defaultIssuer: string
}

/** The batch for ImportStore.importRecords, a label per record, and every thing left behind, in words. */
export interface Conversion {
  batch: ImportBatch
  labels: { subjects: string[]; totpConfigurations: string[]; preConfiguredConsents: string[]; webauthnCredentials: string[]; secondFactorPreferences: string[] }
  /** Rewritten on the way, said once each (e.g. a sector identifier URI reduced to its host). */
  mapped: string[]
  notImported: string[]
}

const ALGORITHMS = new Set(['SHA1', 'SHA256', 'SHA512'])

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`
const list = (names: string[]): string => [...new Set(names)].sort().map((n) => `'${n}'`).join(', ')

/**
 * Latchkey's sector identifier is a host (4.37's `sector_identifier`, or the host of 4.38's
 * `sector_identifier_uri`); Authelia 4.38+ stores the whole URI. The `sub` value is copied as is.
 */
export function latchkeySector(sectorId: string): string {
  if (!sectorId.includes('://')) return sectorId.toLowerCase()
  try {
    return new URL(sectorId).host
  } catch {
    return sectorId
  }
}

export function convertAutheliaData(data: AutheliaData, opts: ConvertOptions): Conversion {
  const mapped: string[] = []
  const notImported: string[] = []

  const totpConfigurations: TotpConfiguration[] = []
  const totpLabels: string[] = []
  for (const t of data.totp) {
    if (!ALGORITHMS.has(t.algorithm) || (t.digits !== 6 && t.digits !== 8) || !(t.periodSeconds > 0)) {
      notImported.push(`TOTP device of '${t.username}': ${t.algorithm}, ${t.digits} digits, ${t.periodSeconds} s is not a configuration Latchkey verifies (SHA1/SHA256/SHA512, 6 or 8 digits)`)
      continue
    }
    const c: TotpConfiguration = {
      username: t.username,
      issuer: t.issuer ?? opts.defaultIssuer,
      algorithm: t.algorithm as TotpConfiguration['algorithm'],
      digits: t.digits as TotpConfiguration['digits'],
      periodSeconds: t.periodSeconds,
      secret: t.secret,
      createdAt: t.createdAt,
    }
    if (t.lastUsedAt !== undefined) c.lastUsedAt = t.lastUsedAt
    totpConfigurations.push(c)
    totpLabels.push(`${t.username} (${c.algorithm}, ${c.digits} digits, ${c.periodSeconds} s, issuer ${c.issuer})`)
  }
  const noIssuer = data.totp.filter((t) => t.issuer === null).map((t) => t.username)
  if (noIssuer.length) mapped.push(`TOTP devices without an issuer (${list(noIssuer)}) get totp.issuer '${opts.defaultIssuer}', as Authelia showed them`)

  const subjects: SubjectIdentifier[] = []
  const subjectLabels: string[] = []
  const otherServices = data.identifiers.filter((i) => i.service !== 'openid')
  if (otherServices.length) notImported.push(`${plural(otherServices.length, 'opaque identifier')} of other services than openid (${[...new Set(otherServices.map((i) => i.service))].join(', ')})`)
  for (const i of data.identifiers.filter((x) => x.service === 'openid')) {
    const sector = latchkeySector(i.sectorId)
    if (sector !== i.sectorId) mapped.push(`sector '${i.sectorId}' is Latchkey's sector '${sector}' (the host of the sector_identifier_uri) for '${i.username}'`)
    subjects.push({ sectorIdentifier: sector, username: i.username, subject: i.identifier })
    subjectLabels.push(`${i.username} ${sector === '' ? '(no sector)' : `(sector ${sector})`} sub ${i.identifier}`)
  }

  const preConfiguredConsents: PreConfiguredConsent[] = []
  const consentLabels: string[] = []
  const owner = new Map(data.identifiers.map((i) => [i.identifier, i.username]))
  let revoked = 0
  let expired = 0
  let withClaims = 0
  let withoutExpiry = 0
  for (const c of data.consents) {
    if (c.revoked) {
      revoked++
      continue
    }
    if (c.expiresAt !== undefined && c.expiresAt <= opts.now) {
      expired++
      continue
    }
    if (c.hasClaims) withClaims++
    if (c.expiresAt === undefined) withoutExpiry++
    // Authelia lists the client itself in the granted audience; Latchkey matches the requested audience, which leaves it out.
    const audience = c.audience.filter((a) => a !== c.clientId)
    preConfiguredConsents.push({ subject: c.subject, clientId: c.clientId, scopes: c.scopes, audience, createdAt: c.createdAt, expiresAt: c.expiresAt ?? NEVER_EXPIRES })
    const until = c.expiresAt === undefined ? 'no expiry' : `until ${new Date(c.expiresAt * 1000).toISOString().replace('.000Z', 'Z')}`
    consentLabels.push(`${owner.get(c.subject) ?? c.subject} for client ${c.clientId}: ${c.scopes.join(' ')} (${until})`)
  }
  if (withoutExpiry) mapped.push(`${plural(withoutExpiry, 'pre-configured consent')} without an expiry ${withoutExpiry === 1 ? 'expires' : 'expire'} on 9999-12-31`)
  if (revoked) notImported.push(`${plural(revoked, 'revoked pre-configured consent')}`)
  if (expired) notImported.push(`${plural(expired, 'expired pre-configured consent')}`)
  if (withClaims) mapped.push(`${plural(withClaims, 'pre-configured consent')} also remembered individual claims (Authelia 4.39): Latchkey releases claims by scope, the claims part is dropped`)

  const secondFactorPreferences: SecondFactorPreference[] = []
  const preferenceLabels: string[] = []
  const byMethod = new Map<string, string[]>()
  for (const p of data.preferences) {
    if (p.method === 'totp' || p.method === 'webauthn') {
      secondFactorPreferences.push({ username: p.username, method: p.method })
      preferenceLabels.push(`${p.username} prefers ${p.method}`)
    } else byMethod.set(p.method, [...(byMethod.get(p.method) ?? []), p.username])
  }
  for (const [method, users] of byMethod)
    notImported.push(
      `second-factor preference '${method}' of ${plural(users.length, 'user')} (${list(users)}): ${method === 'mobile_push' ? 'Latchkey has no Duo push; ' : ''}these users choose their second factor again`,
    )

  const { credentials: webauthnCredentials, labels: webauthnLabels } = convertWebauthn(data, mapped, notImported)
  if (data.duoDevices) notImported.push(`${plural(data.duoDevices, 'Duo device')}: Latchkey has no Duo push`)
  if (data.bans) notImported.push(`${plural(data.bans, 'ban')} of users or addresses (Authelia 4.39 regulation): Latchkey's regulation starts afresh`)
  notImported.push('sessions, OAuth 2.0 codes and tokens, consent sessions, authentication logs, TOTP replay history and identity verifications: users sign in again')

  return {
    batch: { subjects, totpConfigurations, preConfiguredConsents, webauthnCredentials, secondFactorPreferences },
    labels: { subjects: subjectLabels, totpConfigurations: totpLabels, preConfiguredConsents: consentLabels, webauthnCredentials: webauthnLabels, secondFactorPreferences: preferenceLabels },
    mapped,
    notImported,
  }
}

const NO_AAGUID = '00000000-0000-0000-0000-000000000000'

/**
 * Authelia's WebAuthn rows as Latchkey credentials: the raw kid becomes the base64url id, the COSE
 * public key, sign count and clone warning are kept, so the authenticator signs in unchanged (the
 * RP ID must be Latchkey's: the same portal address).
 */
function convertWebauthn(data: AutheliaData, mapped: string[], notImported: string[]): { credentials: WebauthnCredential[]; labels: string[] } {
  const credentials: WebauthnCredential[] = []
  const labels: string[] = []
  const legacy: string[] = []
  const noRpId: string[] = []
  // Authelia keeps a description unique per (RP ID, user), Latchkey per user.
  const taken = new Set<string>()
  for (const w of data.webauthnCredentials) {
    // A device migrated from U2F signs over the FIDO AppID, which Latchkey does not accept.
    if (w.legacy) {
      legacy.push(w.username)
      continue
    }
    if (w.rpId === null) {
      noRpId.push(w.username)
      continue
    }
    let description = w.description
    for (let n = 2; taken.has(JSON.stringify([w.username, description])); n++) description = `${w.description.slice(0, 58)} (${n})`
    if (description !== w.description) mapped.push(`WebAuthn credential '${w.description}' of '${w.username}' (RP ID ${w.rpId}) is '${description}': the user has another of that name`)
    taken.add(JSON.stringify([w.username, description]))
    const c: WebauthnCredential = {
      credentialId: w.kid.toString('base64url'),
      username: w.username,
      description,
      rpId: w.rpId,
      publicKey: w.publicKey,
      signCount: w.signCount,
      transports: w.transports,
      aaguid: w.aaguid ?? NO_AAGUID,
      attestationType: w.attestationType || 'none',
      discoverable: w.discoverable,
      userVerified: w.userVerified,
      backupEligible: w.backupEligible,
      cloneWarning: w.cloneWarning,
      createdAt: w.createdAt,
    }
    if (w.lastUsedAt !== undefined) c.lastUsedAt = w.lastUsedAt
    credentials.push(c)
    labels.push(`${w.username} '${description}' (RP ID ${w.rpId}, ${w.discoverable ? 'passkey' : 'security key'}, kid ${w.kid.toString('base64')}${w.cloneWarning ? ', CLONE WARNING kept' : ''})`)
  }
  if (data.schemaVersion < 12 && credentials.length)
    mapped.push(`${plural(credentials.length, 'WebAuthn device')} of Authelia 4.37 ${credentials.length === 1 ? 'is a' : 'are'} security key${credentials.length === 1 ? '' : 's'} (not discoverable): 4.37 recorded no passkeys`)
  if (legacy.length) notImported.push(`${plural(legacy.length, 'WebAuthn credential')} migrated from U2F (${list(legacy)}): ${legacy.length === 1 ? 'it signs' : 'they sign'} with the FIDO AppID, which Latchkey does not accept; register the key again`)
  if (noRpId.length) notImported.push(`${plural(noRpId.length, 'WebAuthn device')} without an RP ID (${list(noRpId)}): register the key again`)
  return { credentials, labels }
}

import type { ImportAction, ImportBatch, ImportPlan, PreConfiguredConsent, SecondFactorPreference, SubjectIdentifier, TotpConfiguration, WebauthnCredential } from '../storage.js'
import { asSet } from '../sqlite/consent.js'

/**
 * The part of ImportStore.importRecords every backend shares: given what the database holds (read
 * inside the import's transaction), decide each record's action and the writes that carry them
 * out. Pure: the backends read the snapshot and perform the writes in their own transaction.
 */

export interface ImportSnapshot {
  /** Every stored subject identifier. */
  subjects: SubjectIdentifier[]
  /** The current device of each user in the batch; 'unreadable' when its secret does not open. */
  totp: Map<string, TotpConfiguration | 'unreadable'>
  /** consentKey() of every stored pre-configured consent. */
  consentKeys: Set<string>
  /** The stored WebAuthn credentials of the batch's users and ids (more do no harm). */
  webauthn: WebauthnCredential[]
  /** The stored preferred second factor of the batch's users (more do no harm). */
  preferences: Map<string, string>
}

export interface ImportWrites {
  insertSubjects: SubjectIdentifier[]
  /** (sector, username) rows whose subject changes to the one given. */
  replaceSubjects: SubjectIdentifier[]
  /** Upserted; their accepted TOTP steps are forgotten (a new secret starts a new sequence). */
  saveTotp: TotpConfiguration[]
  insertConsents: PreConfiguredConsent[]
  /** Credential ids removed before the inserts (replaced under `force`). */
  deleteWebauthn: string[]
  insertWebauthn: WebauthnCredential[]
  /** Upserted (username, method). */
  savePreferences: SecondFactorPreference[]
}

/** Identity of a pre-configured consent: scopes and audience as the stored sorted, de-duplicated JSON. */
export const consentKey = (subject: string, clientId: string, scopesSet: string, audienceSet: string): string =>
  JSON.stringify([subject, clientId, scopesSet, audienceSet])

const sameTotp = (a: TotpConfiguration, b: TotpConfiguration): boolean =>
  a.issuer === b.issuer && a.algorithm === b.algorithm && a.digits === b.digits && a.periodSeconds === b.periodSeconds && a.secret.equals(b.secret)

export function planImport(snapshot: ImportSnapshot, batch: ImportBatch, force: boolean): { plan: Omit<ImportPlan, 'applied'>; writes: ImportWrites } {
  const writes: ImportWrites = { insertSubjects: [], replaceSubjects: [], saveTotp: [], insertConsents: [], deleteWebauthn: [], insertWebauthn: [], savePreferences: [] }
  const key = (s: { sectorIdentifier: string; username: string }) => JSON.stringify([s.sectorIdentifier, s.username])
  const subjectOf = new Map(snapshot.subjects.map((s) => [key(s), s.subject]))
  const ownerOf = new Map(snapshot.subjects.map((s) => [s.subject, key(s)]))

  const subjects = batch.subjects.map((s): ImportAction => {
    const k = key(s)
    const current = subjectOf.get(k)
    if (current === s.subject) return 'unchanged'
    const owner = ownerOf.get(s.subject)
    if (owner !== undefined && owner !== k) return 'conflict'
    if (current !== undefined && !force) return 'conflict'
    if (current !== undefined) {
      ownerOf.delete(current)
      writes.replaceSubjects.push(s)
    } else writes.insertSubjects.push(s)
    subjectOf.set(k, s.subject)
    ownerOf.set(s.subject, k)
    return current === undefined ? 'add' : 'replace'
  })

  const devices = new Map(snapshot.totp)
  const totpConfigurations = batch.totpConfigurations.map((t): ImportAction => {
    const current = devices.get(t.username)
    if (current !== undefined && current !== 'unreadable' && sameTotp(current, t)) return 'unchanged'
    if (current !== undefined && !force) return 'conflict'
    devices.set(t.username, t)
    writes.saveTotp = writes.saveTotp.filter((w) => w.username !== t.username)
    writes.saveTotp.push(t)
    return current === undefined ? 'add' : 'replace'
  })

  const consents = new Set(snapshot.consentKeys)
  const preConfiguredConsents = batch.preConfiguredConsents.map((c): ImportAction => {
    const k = consentKey(c.subject, c.clientId, asSet(c.scopes), asSet(c.audience))
    if (consents.has(k)) return 'unchanged'
    consents.add(k)
    writes.insertConsents.push(c)
    return 'add'
  })

  const byId = new Map(snapshot.webauthn.map((c) => [c.credentialId, c]))
  const descriptionKey = (c: { username: string; description: string }) => JSON.stringify([c.username, c.description])
  const byDescription = new Map(snapshot.webauthn.map((c) => [descriptionKey(c), c.credentialId]))
  const webauthnCredentials = batch.webauthnCredentials.map((c): ImportAction => {
    const current = byId.get(c.credentialId)
    // A credential id names one authenticator of one user: never moved to another user.
    if (current !== undefined && current.username !== c.username) return 'conflict'
    const holder = byDescription.get(descriptionKey(c))
    const clashes = holder !== undefined && holder !== c.credentialId
    if (current !== undefined && current.publicKey.equals(c.publicKey) && !clashes) return 'unchanged'
    if (!force) return current === undefined && !clashes ? add() : 'conflict'
    for (const id of [current?.credentialId, clashes ? holder : undefined]) {
      if (id === undefined) continue
      const gone = byId.get(id)
      if (gone) byDescription.delete(descriptionKey(gone))
      byId.delete(id)
      writes.insertWebauthn = writes.insertWebauthn.filter((w) => w.credentialId !== id)
      if (!writes.deleteWebauthn.includes(id)) writes.deleteWebauthn.push(id)
    }
    const replaced = current !== undefined || clashes
    add()
    return replaced ? 'replace' : 'add'

    function add(): 'add' {
      byId.set(c.credentialId, c)
      byDescription.set(descriptionKey(c), c.credentialId)
      writes.insertWebauthn.push(c)
      return 'add'
    }
  })

  const preferred = new Map(snapshot.preferences)
  const secondFactorPreferences = batch.secondFactorPreferences.map((p): ImportAction => {
    const current = preferred.get(p.username)
    if (current === p.method) return 'unchanged'
    if (current !== undefined && !force) return 'conflict'
    preferred.set(p.username, p.method)
    writes.savePreferences = writes.savePreferences.filter((w) => w.username !== p.username)
    writes.savePreferences.push(p)
    return current === undefined ? 'add' : 'replace'
  })

  return { plan: { subjects, totpConfigurations, preConfiguredConsents, webauthnCredentials, secondFactorPreferences }, writes }
}

export const hasConflict = (plan: Omit<ImportPlan, 'applied'>): boolean =>
  [...plan.subjects, ...plan.totpConfigurations, ...plan.preConfiguredConsents, ...plan.webauthnCredentials, ...plan.secondFactorPreferences].includes('conflict')

import type { ImportAction, ImportBatch, ImportPlan, PreConfiguredConsent, SubjectIdentifier, TotpConfiguration } from '../storage.js'
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
}

export interface ImportWrites {
  insertSubjects: SubjectIdentifier[]
  /** (sector, username) rows whose subject changes to the one given. */
  replaceSubjects: SubjectIdentifier[]
  /** Upserted; their accepted TOTP steps are forgotten (a new secret starts a new sequence). */
  saveTotp: TotpConfiguration[]
  insertConsents: PreConfiguredConsent[]
}

/** Identity of a pre-configured consent: scopes and audience as the stored sorted, de-duplicated JSON. */
export const consentKey = (subject: string, clientId: string, scopesSet: string, audienceSet: string): string =>
  JSON.stringify([subject, clientId, scopesSet, audienceSet])

const sameTotp = (a: TotpConfiguration, b: TotpConfiguration): boolean =>
  a.issuer === b.issuer && a.algorithm === b.algorithm && a.digits === b.digits && a.periodSeconds === b.periodSeconds && a.secret.equals(b.secret)

export function planImport(snapshot: ImportSnapshot, batch: ImportBatch, force: boolean): { plan: Omit<ImportPlan, 'applied'>; writes: ImportWrites } {
  const writes: ImportWrites = { insertSubjects: [], replaceSubjects: [], saveTotp: [], insertConsents: [] }
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

  return { plan: { subjects, totpConfigurations, preConfiguredConsents }, writes }
}

export const hasConflict = (plan: Omit<ImportPlan, 'applied'>): boolean =>
  [...plan.subjects, ...plan.totpConfigurations, ...plan.preConfiguredConsents].includes('conflict')

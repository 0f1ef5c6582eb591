import type { FormParams } from '../server/form.js'
import { OAuthError } from './errors.js'

/**
 * One-value view of a parsed form or query (docs/security.md X2): a repeated parameter, or a key in
 * PHP/Rails array style (`scope[]`, `a[b]`), is refused; an empty value counts as absent.
 */
export class Params {
  constructor(readonly raw: FormParams) {}

  /** The first offending key (repeated or bracketed), if any. */
  findDuplicate(): string | undefined {
    for (const [k, v] of Object.entries(this.raw)) {
      if (Array.isArray(v) || k.includes('[')) return k
    }
    return undefined
  }

  isRepeated(key: string): boolean {
    return Array.isArray(this.raw[key])
  }

  get(key: string): string | undefined {
    const v = this.raw[key]
    if (v === undefined || Array.isArray(v) || v === '') return undefined
    return v
  }

  has(key: string): boolean {
    return this.get(key) !== undefined
  }

  /** Throws invalid_request for the first repeated or bracketed parameter. */
  assertNoDuplicates(): void {
    const dup = this.findDuplicate()
    if (dup !== undefined) throw duplicateError(dup)
  }
}

export function duplicateError(key: string): OAuthError {
  return new OAuthError('invalid_request', `The request parameter '${truncate(key)}' must be sent once, as a plain value.`)
}

export function truncate(s: string, n = 64): string {
  return s.length > n ? s.slice(0, n) + '…' : s
}

/** Reads a body that must be a form: anything else (JSON, multipart) is invalid_request (docs/security.md X3). */
export function formBody(contentType: string | undefined, body: unknown): Params {
  const ct = (contentType ?? '').split(';')[0]!.trim().toLowerCase()
  if (ct !== 'application/x-www-form-urlencoded') {
    throw new OAuthError('invalid_request', 'The request body must be application/x-www-form-urlencoded.', `content type was '${truncate(ct)}'`)
  }
  return new Params((body ?? Object.create(null)) as FormParams)
}

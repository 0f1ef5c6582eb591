/** A parsed form or query: repeated keys become arrays so callers can refuse them. */
export type FormParams = Record<string, string | string[]>

export class MalformedFormError extends Error {
  readonly statusCode = 400
  readonly code = 'FORM_MALFORMED'
  constructor(message: string) {
    super(message)
    this.name = 'MalformedFormError'
  }
}

/**
 * Strict application/x-www-form-urlencoded parsing: an invalid percent-escape or invalid UTF-8 is
 * an error instead of being passed on verbatim (docs/security.md X3). The result has no prototype, so a
 * `__proto__` key is just a key.
 */
export function parseForm(body: string): FormParams {
  const out: FormParams = Object.create(null)
  if (!body) return out
  // The body reaches us decoded as UTF-8, where each invalid byte became U+FFFD. A form encodes
  // every non-ASCII character as %XX, so a raw U+FFFD only ever comes from bytes that were not UTF-8.
  if (body.includes('\uFFFD')) throw new MalformedFormError('the request contains an invalid percent-encoding or invalid UTF-8')
  for (const pair of body.split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const key = decodeComponent(eq === -1 ? pair : pair.slice(0, eq))
    const value = decodeComponent(eq === -1 ? '' : pair.slice(eq + 1))
    const prev = out[key]
    if (prev === undefined) out[key] = value
    else if (Array.isArray(prev)) prev.push(value)
    else out[key] = [prev, value]
  }
  return out
}

function decodeComponent(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '))
  } catch {
    throw new MalformedFormError('the request contains an invalid percent-encoding or invalid UTF-8')
  }
}

/** The raw query string of a request URL ('' when none). */
export function rawQuery(url: string): string {
  const i = url.indexOf('?')
  return i === -1 ? '' : url.slice(i + 1)
}

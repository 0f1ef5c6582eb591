/**
 * Escaping for the two places user input meets LDAP syntax: filter values (RFC 4515 §3) and DN
 * attribute values (RFC 4514 §2.4), and the DN parsing `{memberof:rdn}` needs.
 */

/**
 * An assertion value for a filter (RFC 4515 §3): `*`, `(`, `)`, `\` and NUL become `\2a`, `\28`,
 * `\29`, `\5c`, `\00`, so input can never end a filter item, open another or become a wildcard.
 * Other control characters are escaped too (they are legal but unreadable in logs); UTF-8 passes.
 */
export function escapeFilterValue(value: string): string {
  let out = ''
  for (const ch of value) {
    const code = ch.codePointAt(0)!
    if (ch === '*' || ch === '(' || ch === ')' || ch === '\\' || code < 0x20 || code === 0x7f) out += `\\${code.toString(16).padStart(2, '0')}`
    else out += ch
  }
  return out
}

/**
 * An attribute value inside a DN (RFC 4514 §2.4): `"`, `+`, `,`, `;`, `<`, `>`, `\` are escaped
 * with a backslash, as are a leading space or `#` and a trailing space; NUL becomes `\00`.
 */
export function escapeDnValue(value: string): string {
  let out = ''
  const chars = [...value]
  chars.forEach((ch, i) => {
    if (ch === '\0') out += '\\00'
    else if ('"+,;<>\\='.includes(ch)) out += `\\${ch}`
    else if ((i === 0 && (ch === ' ' || ch === '#')) || (i === chars.length - 1 && ch === ' ')) out += `\\${ch}`
    else out += ch
  })
  return out
}

/**
 * Splits a DN string into its RDNs (RFC 4514 §3), honouring `\,` and `\xx` escapes and quoted
 * values: `cn=Doe\, John,ou=users` has two RDNs. The RDNs keep their escapes.
 */
export function splitDn(dn: string): string[] {
  const out: string[] = []
  let current = ''
  let quoted = false
  for (let i = 0; i < dn.length; i++) {
    const ch = dn[i]!
    if (ch === '\\' && i + 1 < dn.length) {
      current += ch + dn[i + 1]
      i++
    } else if (ch === '"') {
      quoted = !quoted
      current += ch
    } else if ((ch === ',' || ch === ';') && !quoted) {
      out.push(current.trim())
      current = ''
    } else current += ch
  }
  if (current.trim() !== '' || out.length > 0) out.push(current.trim())
  return out
}

/** The value of an RDN (`cn=Doe\, John` → `Doe, John`), escapes undone. */
export function rdnValue(rdn: string): string {
  const eq = rdn.indexOf('=')
  const raw = eq < 0 ? rdn : rdn.slice(eq + 1)
  if (raw.startsWith('#')) return raw
  const bytes: number[] = []
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!
    if (ch === '\\' && /^[0-9a-fA-F]{2}$/.test(raw.slice(i + 1, i + 3))) {
      bytes.push(parseInt(raw.slice(i + 1, i + 3), 16))
      i += 2
    } else if (ch === '\\' && i + 1 < raw.length) {
      bytes.push(...Buffer.from(raw[i + 1]!, 'utf8'))
      i++
    } else if (ch !== '"') bytes.push(...Buffer.from(ch, 'utf8'))
  }
  return Buffer.from(bytes).toString('utf8')
}

/** HTML escaping for every reflected value, attributes included (docs/security.md W5). */
export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')
}

/** Tagged template that escapes every interpolation unless it is already `SafeHtml`. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value
  }
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0] ?? ''
  values.forEach((v, i) => {
    out += renderValue(v) + (strings[i + 1] ?? '')
  })
  return new SafeHtml(out)
}

function renderValue(v: unknown): string {
  if (v instanceof SafeHtml) return v.value
  if (Array.isArray(v)) return v.map(renderValue).join('')
  if (v === undefined || v === null || v === false) return ''
  return escapeHtml(v)
}

export function raw(value: string): SafeHtml {
  return new SafeHtml(value)
}

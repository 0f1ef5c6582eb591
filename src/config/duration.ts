/**
 * Authelia durations (docs/authelia-compat.md §1.1): an integer is seconds; a string is one or more
 * number+unit blocks with units y (365d), M (30d), w, d, h, m, s, e.g. `90m`, `1h30m`, `5400`.
 */

const UNIT_SECONDS: Record<string, number> = {
  y: 365 * 86400,
  M: 30 * 86400,
  w: 7 * 86400,
  d: 86400,
  h: 3600,
  m: 60,
  s: 1,
}

/** Whole seconds, or undefined when the value is not a duration. Negative only as a bare `-1`-style integer. */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isInteger(input) ? input : undefined
  const text = input.trim()
  if (/^-?\d+$/.test(text)) return Number(text)
  if (text === '') return undefined
  const block = /(\d+)\s*([yMwdhms])/y
  let total = 0
  let at = 0
  while (at < text.length) {
    block.lastIndex = at
    const m = block.exec(text)
    if (!m) return undefined
    total += Number(m[1]) * UNIT_SECONDS[m[2]!]!
    at = block.lastIndex
    while (text[at] === ' ') at++
  }
  return total
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
}

/** Bytes from `65536`, `64KiB`, `1MB`, `2M` (bare K/M/G are binary, as most servers read them). */
export function parseSize(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isInteger(input) && input >= 0 ? input : undefined
  const m = /^\s*(\d+)\s*([a-zA-Z]*)\s*$/.exec(input)
  if (!m) return undefined
  const unit = SIZE_UNITS[m[2]!.toLowerCase()]
  return unit === undefined ? undefined : Number(m[1]) * unit
}

/** A duration as an admin writes it: `90m`, `1h`, `2h30m`, `45s` (largest units first). */
export function formatDuration(seconds: number): string {
  if (seconds <= 0) return '0s'
  const units: Array<[string, number]> = [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]]
  let rest = seconds
  let out = ''
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size)
    if (n > 0) {
      out += `${n}${unit}`
      rest -= n * size
    }
  }
  return out
}

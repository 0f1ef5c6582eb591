/**
 * Typed reads from the raw tree. Each getter reports a bad value with its position and returns
 * undefined, so building continues and every problem is collected in one pass.
 */
import { isAbsolute, resolve } from 'node:path'
import { parseDuration, parseSize } from './duration.js'
import type { ConfigProblem } from './problems.js'
import { srcProblem, type RawEntry, type RawMap, type RawNode, type RawScalar, type Source } from './raw.js'

export class Problems {
  readonly list: ConfigProblem[] = []
  error(path: string, message: string, src?: Source, hint?: string): void {
    this.add('error', path, message, src, hint)
  }
  warn(path: string, message: string, src?: Source, hint?: string): void {
    this.add('warning', path, message, src, hint)
  }
  private add(severity: ConfigProblem['severity'], path: string, message: string, src: Source | undefined, hint: string | undefined) {
    const p: ConfigProblem = { ...srcProblem(src), path, message, severity }
    if (hint) p.hint = hint
    this.list.push(p)
  }
  get hasErrors(): boolean {
    return this.list.some((p) => p.severity === 'error')
  }
}

function describe(node: RawNode): string {
  return node.kind === 'map' ? 'a map' : node.kind === 'seq' ? 'a list' : `'${String(node.value)}'`
}

export function scalarText(node: RawScalar): string {
  return typeof node.value === 'string' ? node.value : (node.text ?? String(node.value))
}

export class MapView {
  constructor(
    readonly problems: Problems,
    readonly path: string,
    readonly node: RawMap | undefined,
    /** Where the section itself was written; used for "option X is required" problems. */
    readonly src: Source | undefined,
  ) {}

  get present(): boolean {
    return this.node !== undefined
  }
  keyPath(key: string): string {
    return this.path ? `${this.path}.${key}` : key
  }
  entry(key: string): RawEntry | undefined {
    return this.node?.entries.get(key)
  }
  has(key: string): boolean {
    return this.entry(key) !== undefined
  }
  /** The keys written in this map (a map of names, e.g. `lifespans.custom`). */
  keys(): string[] {
    return this.node ? [...this.node.entries.keys()] : []
  }
  /** Position of a key's value, else of this section. */
  srcOf(key: string): Source | undefined {
    return this.entry(key)?.node.src ?? this.src
  }
  keySrcOf(key: string): Source | undefined {
    return this.entry(key)?.keySrc ?? this.src
  }
  error(key: string, message: string, hint?: string): void {
    this.problems.error(this.keyPath(key), message, this.srcOf(key), hint)
  }
  warn(key: string, message: string, hint?: string): void {
    this.problems.warn(this.keyPath(key), message, this.srcOf(key), hint)
  }
  /** Error for a missing option, placed at the section. */
  missing(key: string, message: string, hint?: string): void {
    this.problems.error(this.keyPath(key), message, this.src, hint)
  }

  private scalar(key: string): RawScalar | undefined {
    const n = this.entry(key)?.node
    // A map or list where a value belongs was already reported by the structure check.
    return n?.kind === 'scalar' ? n : undefined
  }

  str(key: string): string | undefined {
    const n = this.scalar(key)
    return n ? scalarText(n) : undefined
  }

  /** A file path, resolved against the folder of the file that set it (cwd for the environment). */
  filePath(key: string): string | undefined {
    const n = this.scalar(key)
    if (!n) return undefined
    const v = scalarText(n)
    if (v === '') return undefined
    return isAbsolute(v) ? v : resolve(n.src.baseDir, v)
  }

  int(key: string, hint?: string): number | undefined {
    const n = this.scalar(key)
    if (!n) return undefined
    const v = typeof n.value === 'number' ? n.value : typeof n.value === 'string' && /^\s*-?\d+\s*$/.test(n.value) ? Number(n.value) : NaN
    if (!Number.isSafeInteger(v)) {
      this.error(key, `must be an integer, got ${describe(n)}`, hint)
      return undefined
    }
    return v
  }

  bool(key: string): boolean | undefined {
    const n = this.scalar(key)
    if (!n) return undefined
    if (typeof n.value === 'boolean') return n.value
    const s = String(n.value).trim().toLowerCase()
    if (['true', 'yes', 'on', '1', 't'].includes(s)) return true
    if (['false', 'no', 'off', '0', 'f'].includes(s)) return false
    this.error(key, `must be true or false, got ${describe(n)}`)
    return undefined
  }

  duration(key: string, opts: { allowDisabled?: boolean } = {}): number | undefined {
    const n = this.scalar(key)
    if (!n) return undefined
    const v = parseDuration(typeof n.value === 'boolean' ? String(n.value) : n.value)
    if (v === undefined || (v < 0 && !(opts.allowDisabled && v === -1))) {
      this.error(
        key,
        `must be a duration (a number of seconds, or number+unit blocks with units y M w d h m s)${opts.allowDisabled ? ' or -1 to disable' : ''}, got ${describe(n)}`,
        'e.g. 90m, 1h30m or 5400',
      )
      return undefined
    }
    return v
  }

  size(key: string): number | undefined {
    const n = this.scalar(key)
    if (!n) return undefined
    const v = parseSize(typeof n.value === 'boolean' ? String(n.value) : n.value)
    if (v === undefined) {
      this.error(key, `must be a size in bytes (e.g. 65536, 64KiB or 1MiB), got ${describe(n)}`)
      return undefined
    }
    return v
  }

  /** A list of strings; a single string counts as a one-item list (Authelia accepts both). */
  strings(key: string): string[] | undefined {
    const n = this.entry(key)?.node
    if (!n) return undefined
    if (n.kind === 'scalar') return [scalarText(n)]
    if (n.kind !== 'seq') return undefined
    const out: string[] = []
    // Non-scalar items were reported by the structure check.
    for (const item of n.items) if (item.kind === 'scalar') out.push(scalarText(item))
    return out
  }

  /** Like strings(), with each item's position and path for per-item problems. */
  stringItems(key: string): Array<{ value: string; src: Source; path: string }> {
    const n = this.entry(key)?.node
    if (!n) return []
    if (n.kind === 'scalar') return [{ value: scalarText(n), src: n.src, path: this.keyPath(key) }]
    if (n.kind !== 'seq') return []
    const out: Array<{ value: string; src: Source; path: string }> = []
    n.items.forEach((item, i) => {
      if (item.kind === 'scalar') out.push({ value: scalarText(item), src: item.src, path: `${this.keyPath(key)}[${i}]` })
    })
    return out
  }

  /** A value restricted to a set, compared after `normalise`; reports `message(value)` otherwise. */
  oneOf<T extends string>(key: string, allowed: readonly T[], message: (v: string) => string, opts: { normalise?: (v: string) => string; hint?: string } = {}): T | undefined {
    const raw = this.str(key)
    if (raw === undefined) return undefined
    const v = opts.normalise ? opts.normalise(raw) : raw
    if ((allowed as readonly string[]).includes(v)) return v as T
    this.error(key, message(raw), opts.hint)
    return undefined
  }

  map(key: string): MapView {
    const e = this.entry(key)
    return new MapView(this.problems, this.keyPath(key), e?.node.kind === 'map' ? e.node : undefined, e?.keySrc ?? this.src)
  }

  /** Items of a list of maps (non-map items were reported by the structure check). */
  list(key: string): MapView[] {
    const e = this.entry(key)
    if (e?.node.kind !== 'seq') return []
    const out: MapView[] = []
    e.node.items.forEach((item, i) => {
      if (item.kind === 'map') out.push(new MapView(this.problems, `${this.keyPath(key)}[${i}]`, item, item.src))
    })
    return out
  }
}

/** "one of 'a', 'b', 'c'" wording used in Authelia's messages. */
export function quoteList(values: readonly string[]): string {
  return values.map((v) => `'${v}'`).join(', ')
}

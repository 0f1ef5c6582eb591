/**
 * The untyped configuration tree. Every value keeps where it came from (file + line/column, or the
 * environment variable) and the folder relative paths resolve against, so positions survive the
 * merge of several files and the environment overlay.
 */
import { dirname, resolve } from 'node:path'
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml'
import type { ConfigProblem } from './problems.js'

export interface Source {
  file?: string
  line?: number
  column?: number
  env?: string
  /** Folder a relative path in this value resolves against (the file's folder, or cwd for env). */
  baseDir: string
}

export interface RawMap {
  kind: 'map'
  entries: Map<string, RawEntry>
  src: Source
}
export interface RawEntry {
  keySrc: Source
  node: RawNode
}
export interface RawSeq {
  kind: 'seq'
  items: RawNode[]
  src: Source
}
export interface RawScalar {
  kind: 'scalar'
  value: string | number | boolean
  /** Source text of a plain scalar, so `secret: 0123` stays "0123" where a string is wanted. */
  text?: string
  src: Source
}
export type RawNode = RawMap | RawSeq | RawScalar

export function emptyMap(src: Source): RawMap {
  return { kind: 'map', entries: new Map(), src }
}

export function srcProblem(src: Source | undefined): Pick<ConfigProblem, 'file' | 'line' | 'column' | 'env'> {
  if (!src) return {}
  if (src.env) return { env: src.env }
  const out: Pick<ConfigProblem, 'file' | 'line' | 'column'> = {}
  if (src.file !== undefined) out.file = src.file
  if (src.line !== undefined) out.line = src.line
  if (src.column !== undefined) out.column = src.column
  return out
}

/** Parses one file's text. YAML syntax errors are added to `problems`; the tree is still returned when possible. */
export function parseYaml(file: string, text: string, problems: ConfigProblem[], absPath = resolve(file)): RawMap {
  const lineCounter = new LineCounter()
  const baseDir = dirname(absPath)
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true, uniqueKeys: true })
  const at = (offset: number | undefined): Source => {
    if (offset === undefined) return { file, baseDir }
    const { line, col } = lineCounter.linePos(offset)
    return { file, line, column: col, baseDir }
  }
  for (const e of doc.errors) {
    const s = at(e.pos[0])
    problems.push({ ...srcProblem(s), path: '', message: `yaml: ${firstLine(e.message)}`, severity: 'error' })
  }
  if (doc.errors.length > 0) return emptyMap(at(0))
  const root = doc.contents
  if (root === null || (isScalar(root) && (root.value === null || root.value === undefined))) return emptyMap({ file, line: 1, column: 1, baseDir })
  const converted = convert(doc, root as Node, at, text)
  if (converted?.kind !== 'map') {
    problems.push({ ...srcProblem(at(root.range?.[0])), path: '', message: 'the configuration must be a map of keys', severity: 'error' })
    return emptyMap(at(0))
  }
  return converted
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')
}

function convert(doc: Document, node: Node, at: (o: number | undefined) => Source, text: string, depth = 0): RawNode | undefined {
  if (depth > 64) return undefined
  if (isAlias(node)) {
    const target = node.resolve(doc)
    return target ? convert(doc, target, at, text, depth + 1) : undefined
  }
  const src = at(node.range?.[0])
  if (isScalar(node)) {
    const v = node.value
    if (v === null || v === undefined) return undefined
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') {
      const scalar: RawScalar = { kind: 'scalar', value: v, src }
      if (typeof v !== 'string' && node.range) scalar.text = text.slice(node.range[0], node.range[1]).trim()
      return scalar
    }
    if (typeof v === 'bigint') return { kind: 'scalar', value: String(v), src }
    return { kind: 'scalar', value: String(v), src }
  }
  if (isSeq(node)) {
    const items: RawNode[] = []
    for (const item of node.items) {
      const c = convert(doc, item as Node, at, text, depth + 1)
      if (c) items.push(c)
    }
    return { kind: 'seq', items, src }
  }
  if (isMap(node)) {
    const out = emptyMap(src)
    const merged: RawMap[] = []
    for (const pair of node.items) {
      const keyNode = pair.key as Node | null
      const keyValue = isScalar(keyNode) ? keyNode.value : keyNode
      const keySrc = at((keyNode as Node | null)?.range?.[0])
      // YAML merge keys (`<<: *defaults`): explicit keys of this map win over merged ones.
      if (keyValue === '<<') {
        const v = pair.value ? convert(doc, pair.value as Node, at, text, depth + 1) : undefined
        if (v?.kind === 'map') merged.push(v)
        else if (v?.kind === 'seq') for (const m of v.items) if (m.kind === 'map') merged.push(m)
        continue
      }
      const key = String(keyValue)
      const value = pair.value ? convert(doc, pair.value as Node, at, text, depth + 1) : undefined
      // `key:` with nothing after it means "not set", as in Authelia.
      if (value === undefined) continue
      out.entries.set(key, { keySrc, node: value })
    }
    for (const m of merged) for (const [k, e] of m.entries) if (!out.entries.has(k)) out.entries.set(k, e)
    return out
  }
  return undefined
}

/** Later wins; maps merge deeply, lists and scalars replace (compat spec §1.1). */
export function mergeRaw(a: RawMap, b: RawMap): RawMap {
  const out: RawMap = { kind: 'map', entries: new Map(a.entries), src: a.src }
  for (const [k, eb] of b.entries) {
    const ea = out.entries.get(k)
    if (ea && ea.node.kind === 'map' && eb.node.kind === 'map') out.entries.set(k, { keySrc: eb.keySrc, node: mergeRaw(ea.node, eb.node) })
    else out.entries.set(k, eb)
  }
  return out
}

/** The node at a dotted path of map keys, or undefined. */
export function getAt(root: RawMap, segments: readonly string[]): RawEntry | undefined {
  let cur: RawNode = root
  let entry: RawEntry | undefined
  for (const seg of segments) {
    if (cur.kind !== 'map') return undefined
    entry = cur.entries.get(seg)
    if (!entry) return undefined
    cur = entry.node
  }
  return entry
}

/** Sets a value at a dotted path, creating maps on the way (a scalar in the way is replaced). Returns a new root. */
export function setAt(root: RawMap, segments: readonly string[], node: RawNode, keySrc: Source): RawMap {
  const [head, ...rest] = segments
  const out: RawMap = { kind: 'map', entries: new Map(root.entries), src: root.src }
  if (rest.length === 0) {
    out.entries.set(head!, { keySrc, node })
    return out
  }
  const existing = out.entries.get(head!)
  const child = existing?.node.kind === 'map' ? existing.node : emptyMap(keySrc)
  out.entries.set(head!, { keySrc: existing?.keySrc ?? keySrc, node: setAt(child, rest, node, keySrc) })
  return out
}

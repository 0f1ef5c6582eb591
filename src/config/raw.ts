/**
 * The untyped configuration tree. Every value keeps where it came from (file + line/column, or the
 * environment variable) and the folder relative paths resolve against, so positions survive the
 * merge of several files and the environment overlay.
 */
import { dirname, resolve } from 'node:path'
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml'
import type { ConfigProblem } from './problems.js'
import { binaryProblem, flowDepthProblem } from './read-text.js'

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

/** YAML nesting deeper than this is refused: no configuration key is more than a few levels down. */
export const MAX_DEPTH = 64
/** Values an alias may expand to in one file (YAML "billion laughs" protection). */
export const MAX_ALIAS_EXPANSION = 10_000
/** At most this many YAML syntax errors are listed per file; the rest follow from the first ones. */
const MAX_SYNTAX_ERRORS = 20

/** Parses one file's text. YAML syntax errors are added to `problems`; the tree is still returned when possible. */
export function parseYaml(file: string, text: string, problems: ConfigProblem[], absPath = resolve(file)): RawMap {
  const lineCounter = new LineCounter()
  const baseDir = dirname(absPath)
  const at = (offset: number | undefined): Source => {
    if (offset === undefined) return { file, baseDir }
    const { line, col } = lineCounter.linePos(offset)
    return { file, line, column: col, baseDir }
  }
  const binary = binaryProblem(text)
  if (binary) {
    problems.push({ file, line: binary.line, column: binary.column, path: '', message: binary.message, severity: 'error' })
    return emptyMap({ file, baseDir })
  }
  const deep = flowDepthProblem(text, MAX_DEPTH)
  if (deep) {
    problems.push({ file, line: deep.line, column: deep.column, path: '', message: `yaml: the document is nested too deeply (more than ${MAX_DEPTH} levels is never a configuration)`, severity: 'error' })
    return emptyMap({ file, baseDir })
  }
  // uniqueKeys is checked in convert(): the library's check is quadratic in the number of keys.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true, uniqueKeys: false })
  const seen = new Set<string>()
  for (const e of doc.errors) {
    const s = at(e.pos[0])
    const path = ''
    let message = `yaml: ${firstLine(e.message)}`
    if (/Maximum call stack size exceeded/.test(e.message)) message = `yaml: the document is nested too deeply (more than ${MAX_DEPTH} levels is never a configuration)`
    const dedupe = `${path}|${message}`
    if (seen.has(dedupe)) continue
    seen.add(dedupe)
    if (seen.size > MAX_SYNTAX_ERRORS) break
    problems.push({ ...srcProblem(s), path, message, severity: 'error' })
  }
  if (doc.errors.length > 0) return emptyMap(at(0))
  const root = doc.contents
  if (root === null || (isScalar(root) && (root.value === null || root.value === undefined))) return emptyMap({ file, line: 1, column: 1, baseDir })
  const ctx: ConvertCtx = { doc, at, text, aliasBudget: MAX_ALIAS_EXPANSION, expanding: new Set(), failed: false, problems }
  const converted = convert(ctx, root as Node, '', 0, undefined)
  if (ctx.failed) return emptyMap(at(0))
  if (converted?.kind !== 'map') {
    const got = converted?.kind === 'seq' ? 'a list' : 'a single value'
    problems.push({ ...srcProblem(at(root.range?.[0])), path: '', message: `the configuration must be a map of keys, got ${got}`, severity: 'error' })
    return emptyMap(at(0))
  }
  return converted
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')
}

interface ConvertCtx {
  doc: Document
  at: (o: number | undefined) => Source
  text: string
  /** Nodes aliases may still expand to. */
  aliasBudget: number
  /** Anchored nodes being expanded right now: an alias to one of them is a cycle. */
  expanding: Set<Node>
  failed: boolean
  problems: ConfigProblem[]
}

function fail(ctx: ConvertCtx, node: Node, path: string, message: string): undefined {
  if (!ctx.failed) ctx.problems.push({ ...srcProblem(ctx.at(node.range?.[0])), path, message, severity: 'error' })
  ctx.failed = true
  return undefined
}

/**
 * `inAlias` is the alias being expanded (outermost), so problems point at the `*name` that caused them.
 */
function convert(ctx: ConvertCtx, node: Node, path: string, depth: number, inAlias: { node: Node; path: string } | undefined): RawNode | undefined {
  if (ctx.failed) return undefined
  if (depth > MAX_DEPTH) return fail(ctx, node, path, `yaml: the document is nested too deeply (more than ${MAX_DEPTH} levels is never a configuration)`)
  if (inAlias && --ctx.aliasBudget < 0) {
    return fail(ctx, inAlias.node, inAlias.path, `yaml: document contains excessive aliasing (anchors expand to more than ${MAX_ALIAS_EXPANSION} values)`)
  }
  if (isAlias(node)) {
    const target = node.resolve(ctx.doc) as Node | undefined
    if (!target) return undefined
    if (ctx.expanding.has(target)) return fail(ctx, node, path, `yaml: alias *${node.source} refers to a node that contains it`)
    ctx.expanding.add(target)
    try {
      return convert(ctx, target, path, depth + 1, inAlias ?? { node, path })
    } finally {
      ctx.expanding.delete(target)
    }
  }
  const src = ctx.at(node.range?.[0])
  if (isScalar(node)) {
    const v = node.value
    if (v === null || v === undefined) return undefined
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') {
      const scalar: RawScalar = { kind: 'scalar', value: v, src }
      if (typeof v !== 'string' && node.range) scalar.text = ctx.text.slice(node.range[0], node.range[1]).trim()
      return scalar
    }
    return { kind: 'scalar', value: String(v), src }
  }
  if (isSeq(node)) {
    const items: RawNode[] = []
    const added = Boolean(node.anchor) && !ctx.expanding.has(node)
    if (added) ctx.expanding.add(node)
    node.items.forEach((item, i) => {
      const c = convert(ctx, item as Node, `${path}[${i}]`, depth + 1, inAlias)
      if (c) items.push(c)
    })
    if (added) ctx.expanding.delete(node)
    return { kind: 'seq', items, src }
  }
  if (isMap(node)) {
    const out = emptyMap(src)
    const merged: RawMap[] = []
    const added = Boolean(node.anchor) && !ctx.expanding.has(node)
    if (added) ctx.expanding.add(node)
    const unset = new Map<string, Source>()
    for (const pair of node.items) {
      const keyNode = pair.key as Node | null
      const keyValue = isScalar(keyNode) ? keyNode.value : keyNode
      const keySrc = ctx.at((keyNode as Node | null)?.range?.[0])
      // YAML merge keys (`<<: *defaults`): explicit keys of this map win over merged ones.
      // (with `merge: true` the library gives the key as a symbol).
      if (keyValue === '<<' || (typeof keyValue === 'symbol' && keyValue.description === '<<')) {
        const v = pair.value ? convert(ctx, pair.value as Node, path, depth + 1, inAlias) : undefined
        if (v?.kind === 'map') merged.push(v)
        else if (v?.kind === 'seq') for (const m of v.items) if (m.kind === 'map') merged.push(m)
        continue
      }
      // A map or list used as a key (`? [a, b]: x`) is never a configuration key.
      const key = keyValue !== null && typeof keyValue === 'object' ? `<${isMap(keyValue) ? 'map' : isSeq(keyValue) ? 'list' : 'complex'} key>` : String(keyValue)
      const childPath = path ? `${path}.${key}` : key
      const value = pair.value ? convert(ctx, pair.value as Node, childPath, depth + 1, inAlias) : undefined
      const firstEntry = out.entries.get(key)
      const first = firstEntry ? firstEntry.keySrc : unset.get(key)
      if (first) {
        // Reported once, where the file says it (not again at each alias to this map).
        if (!inAlias) ctx.problems.push({ ...srcProblem(keySrc), path: childPath, message: `yaml: mapping key '${key}' already defined at line ${first.line}`, severity: 'error' })
        continue
      }
      // `key:` with nothing after it means "not set", as in Authelia.
      if (value === undefined) {
        unset.set(key, keySrc)
        continue
      }
      out.entries.set(key, { keySrc, node: value })
    }
    if (added) ctx.expanding.delete(node)
    for (const m of merged) for (const [k, e] of m.entries) if (!out.entries.has(k)) out.entries.set(k, e)
    return out
  }
  return undefined
}

/** Later wins; maps merge deeply, lists and scalars replace (docs/authelia-compat.md §1.1). */
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

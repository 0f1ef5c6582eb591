/**
 * Checks the merged tree against the known-key tree: unknown keys, maps/lists/values in the wrong
 * place, and the 4.37 names 4.38 renamed (a warning, or an error when both names are set).
 */
import { KEY_TREE, REPLACED_KEYS, type KeySpec } from './keys.js'
import { getAt, type RawMap, type RawNode } from './raw.js'
import type { Problems } from './reader.js'

const KIND_WORDS: Record<KeySpec['kind'], string> = {
  map: 'a map of options',
  list: 'a list',
  string: 'a string',
  path: 'a file path',
  int: 'an integer',
  bool: 'true or false',
  duration: 'a duration',
  size: 'a size',
  strings: 'a list of strings',
  any: 'anything',
}

function got(node: RawNode): string {
  return node.kind === 'map' ? 'a map' : node.kind === 'seq' ? 'a list' : 'a single value'
}

export function checkStructure(root: RawMap, problems: Problems): void {
  walkMap(root, KEY_TREE, '', problems)
}

function walkMap(node: RawMap, spec: KeySpec, path: string, problems: Problems): void {
  for (const [key, entry] of node.entries) {
    const childPath = path ? `${path}.${key}` : key
    const child = spec.children && Object.hasOwn(spec.children, key) ? spec.children[key] : undefined
    if (!child) {
      const replaced = path === '' ? REPLACED_KEYS[key] : undefined
      if (replaced) problems.error(childPath, `invalid configuration key '${key}' was replaced by '${replaced}'`, entry.keySrc)
      else if (!spec.open) problems.error(childPath, `configuration key not expected: ${childPath}`, entry.keySrc)
      continue
    }
    if (child.renamedTo) {
      const newPath = path ? `${path}.${child.renamedTo}` : child.renamedTo
      if (getAt(node, child.renamedTo.split('.'))) {
        problems.error(childPath, `configuration keys '${childPath}' and '${newPath}' are both set: they configure the same option, keep only '${newPath}'`, entry.keySrc)
      } else {
        problems.warn(childPath, `configuration key '${childPath}' is deprecated: use '${newPath}' instead`, entry.keySrc)
      }
    }
    checkNode(entry.node, child, childPath, problems)
  }
}

function checkNode(node: RawNode, spec: KeySpec, path: string, problems: Problems): void {
  switch (spec.kind) {
    case 'any':
      return
    case 'map':
      if (node.kind === 'map') walkMap(node, spec, path, problems)
      else problems.error(path, `must be ${KIND_WORDS.map}, got ${got(node)}`, node.src)
      return
    case 'list':
      if (node.kind === 'seq') node.items.forEach((item, i) => checkNode(item, spec.item!, `${path}[${i}]`, problems))
      else problems.error(path, `must be a list, got ${got(node)}`, node.src)
      return
    case 'strings':
      if (node.kind === 'map') problems.error(path, `must be ${KIND_WORDS.strings}, got a map`, node.src)
      else if (node.kind === 'seq')
        node.items.forEach((item, i) => {
          if (item.kind !== 'scalar') problems.error(`${path}[${i}]`, `must be a string, got ${got(item)}`, item.src)
        })
      return
    default:
      if (node.kind !== 'scalar') problems.error(path, `must be ${KIND_WORDS[spec.kind]}, got ${got(node)}`, node.src)
  }
}

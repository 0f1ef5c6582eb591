import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

let cached: string | undefined

/**
 * The folder holding Latchkey's package.json, found by walking up from this module: the same
 * answer from src/ under vitest and from dist/src/ after the build, for files shipped beside the
 * code (migrations, package.json).
 */
export function projectRoot(): string {
  if (cached) return cached
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('cannot find the Latchkey installation folder (no package.json above the code)')
    dir = parent
  }
  return (cached = dir)
}

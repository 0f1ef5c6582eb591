import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './app.js'

/**
 * security.md X4 lint for a backend folder (src/storage/<engine>): every call of a query helper
 * whose arguments hold a template literal with ${…}. Values must go as parameters; SQL fragments are
 * joined with `+` from constants. Resolves the files read and the offenders.
 */
export function findInterpolatedSql(engine: string): { files: string[]; offenders: string[] } {
  const folder = join(ROOT, 'src', 'storage', engine)
  const files = readdirSync(folder).filter((f) => f.endsWith('.ts'))
  const offenders: string[] = []
  for (const file of files) {
    const text = readFileSync(join(folder, file), 'utf8')
    for (const m of text.matchAll(/\b(?:query|execute|queryRows|queryArrays)\s*(?:<[^>()]*>)?\s*\([^)]*`[^`]*\$\{/g)) offenders.push(`${file}: ${m[0].slice(0, 60)}`)
  }
  return { files, offenders }
}

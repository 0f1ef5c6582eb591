/**
 * `npm run docs:config`: rewrites the generated part of docs/configuration.md from the key
 * catalogue (src/config/keys.ts), so the reference cannot drift from what the loader accepts.
 * test/docs.test.ts fails when the file is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { renderConfigurationDoc } from '../src/config/doc.js'
import { projectRoot } from '../src/common/project-root.js'

export const BEGIN = '<!-- BEGIN GENERATED KEY REFERENCE -->'
export const END = '<!-- END GENERATED KEY REFERENCE -->'

export function withGeneratedReference(doc: string): string {
  const a = doc.indexOf(BEGIN)
  const b = doc.indexOf(END)
  if (a < 0 || b < a) throw new Error(`docs/configuration.md must contain ${BEGIN} and ${END}`)
  return doc.slice(0, a + BEGIN.length) + '\n' + renderConfigurationDoc().trimEnd() + '\n' + doc.slice(b)
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const file = join(projectRoot(), 'docs/configuration.md')
  writeFileSync(file, withGeneratedReference(readFileSync(file, 'utf8')))
  process.stdout.write(`wrote ${file}\n`)
}

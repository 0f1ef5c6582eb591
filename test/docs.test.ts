import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { withGeneratedReference } from '../scripts/render-config-doc.js'
import { ROOT } from './support/app.js'

test('docs/configuration.md lists exactly the keys the loader knows (run npm run docs:config)', () => {
  const doc = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8')
  expect(doc).toBe(withGeneratedReference(doc))
})

test('README gives the install-and-start and the test commands, and .ci/run runs the same test command', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  expect(readme).toContain('npm install && npm start')
  expect(readme).toContain('\n```sh\nnpm test\n```')
  expect(readFileSync(join(ROOT, '.ci/run'), 'utf8')).toMatch(/\nnpm test\n$/)
})

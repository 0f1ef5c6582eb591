import { readdirSync } from 'node:fs'
import { basename } from 'node:path'
import { test } from 'vitest'
import { loadConfig, formatProblem, ConfigError } from './load.js'
test('dump', () => {
  const out: Record<string, string[]> = {}
  for (const f of readdirSync('fixtures/config/broken').filter((f) => f.endsWith('.yml')).sort()) {
    try { loadConfig({ files: [`fixtures/config/broken/${f}`], env: {} }); out[f] = ['NO ERROR'] }
    catch (e) { if (!(e instanceof ConfigError)) throw e; out[f] = e.problems.filter(p => p.severity === 'error').map((p) => formatProblem({ ...p, file: p.file && basename(p.file) })) }
  }
  console.log(JSON.stringify(out, null, 2))
})

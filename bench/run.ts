/**
 * `npm run bench`: start-up and memory figures of the real binary, then the portal and OIDC
 * throughput benches and sign-in under a hash flood. `npm run bench -- <stage>` runs one stage
 * (startup, portal, oidc, starvation, fleet, ldap). Targets (2 cores): cold start to listening < 400 ms, idle RSS < 90 MB.
 * Prints one JSON document (and a short summary to stderr).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureDemoSetup } from '../src/cli/demo.js'
import { projectRoot } from '../src/common/project-root.js'
import { rssMb, startServer, stopServer } from './server.js'

async function benchStartup(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-'))
  try {
    const { configFile } = await ensureDemoSetup(dir)
    // The first start creates the database; measure the starts that follow, as in production.
    await stopServer((await startServer(configFile)).child)
    const starts: number[] = []
    const rss: number[] = []
    const stops: number[] = []
    for (let i = 0; i < 5; i++) {
      const { child, startMs } = await startServer(configFile)
      starts.push(startMs)
      await new Promise((r) => setTimeout(r, 1000))
      rss.push(rssMb(child.pid!))
      stops.push(await stopServer(child))
    }
    starts.sort((a, b) => a - b)
    return {
      cold_start_to_listening_ms_median: starts[2],
      cold_start_to_listening_ms_all: starts,
      idle_rss_mb_median: [...rss].sort((a, b) => a - b)[2],
      graceful_stop_ms_median: [...stops].sort((a, b) => a - b)[2],
      targets: { cold_start_ms: '< 400', idle_rss_mb: '< 90' },
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function optional(name: string, fn: string): Promise<Record<string, unknown> | undefined> {
  const file = join(projectRoot(), 'dist/bench', `${name}.js`)
  if (!existsSync(file)) return undefined
  const mod = (await import(file)) as Record<string, () => Promise<Record<string, unknown>>>
  return mod[fn]?.()
}

const results: Record<string, unknown> = { machine: { cpus: (await import('node:os')).cpus().length, node: process.version } }
const only = process.argv[2]
if (!only || only === 'startup') {
  results.startup = await benchStartup()
  process.stderr.write(`startup: ${JSON.stringify(results.startup)}\n`)
}
if (!only || only === 'portal') results.portal = await optional('portal', 'benchPortal')
if (!only || only === 'oidc') results.oidc = await optional('oidc', 'benchOidc')
if (!only || only === 'starvation') results.starvation = await optional('starvation', 'benchStarvation')
if (!only || only === 'fleet') results.fleet = await optional('fleet', 'benchFleet')
if (!only || only === 'ldap') results.ldap = await optional('ldap', 'benchLdap')
process.stdout.write(JSON.stringify(results, null, 2) + '\n')

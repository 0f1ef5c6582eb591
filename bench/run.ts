/**
 * `npm run bench`: start-up and memory figures of the real binary, then the portal and OIDC
 * throughput benches. Targets (2 cores): cold start to listening < 400 ms, idle RSS < 90 MB.
 * Prints one JSON document (and a short summary to stderr).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureDemoSetup } from '../src/cli/demo.js'
import { projectRoot } from '../src/common/project-root.js'
import { round } from './load.js'

const MAIN = join(projectRoot(), 'dist/src/main.js')

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return round(kb / 1024, 1)
}

/** Starts the built server on a free port with `configFile`; resolves once /api/health answers. */
export async function startChild(configFile: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string; startMs: number }> {
  const port = await freePort()
  const started = performance.now()
  const child = spawn(process.execPath, [MAIN, 'serve', '--config', configFile], {
    env: { ...process.env, LATCHKEY_SERVER_ADDRESS: `tcp://127.0.0.1:${port}/`, LATCHKEY_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const url = `http://127.0.0.1:${port}`
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`)
    try {
      const res = await fetch(`${url}/api/health`)
      if (res.ok) break
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 2))
  }
  return { child, url, startMs: round(performance.now() - started, 1) }
}

export async function stopChild(child: ChildProcess): Promise<number> {
  const started = performance.now()
  const done = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  await done
  return round(performance.now() - started, 1)
}

async function benchStartup(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-'))
  try {
    const { configFile } = await ensureDemoSetup(dir)
    // The first start creates the database; measure the starts that follow, as in production.
    await stopChild((await startChild(configFile)).child)
    const starts: number[] = []
    const rss: number[] = []
    const stops: number[] = []
    for (let i = 0; i < 5; i++) {
      const { child, startMs } = await startChild(configFile)
      starts.push(startMs)
      await new Promise((r) => setTimeout(r, 1000))
      rss.push(rssMb(child.pid!))
      stops.push(await stopChild(child))
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
results.startup = await benchStartup()
process.stderr.write(`startup: ${JSON.stringify(results.startup)}\n`)
const only = process.argv[2]
if (!only || only === 'portal') results.portal = await optional('portal', 'benchPortal')
if (!only || only === 'oidc') results.oidc = await optional('oidc', 'benchOidc')
process.stdout.write(JSON.stringify(results, null, 2) + '\n')

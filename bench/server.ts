import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { projectRoot } from '../src/common/project-root.js'
import { round } from './load.js'

const MAIN = join(projectRoot(), 'dist/latchkey.mjs')

/**
 * The node flags production runs with (package.json `start`, docs/deploy/latchkey.service; a test
 * keeps the three identical): the bench measures what is deployed. Both shape V8's heap, which is
 * sized before any JavaScript runs, so they cannot be set from inside the process.
 * - A 4 MiB young-generation semi-space (V8's default grows to 16 MiB): ~30 MB less RSS under load.
 * - A 512 MiB old-generation limit: V8 derives its growth steps from the limit, which on a big
 *   host defaults to several GiB; with 512 the old generation under load peaks near 40 MiB, not
 *   90, for no measurable throughput cost. The live heap is ~20 MiB (~50 with a 10,000-user file).
 */
export const PRODUCTION_NODE_FLAGS = ['--max-semi-space-size=4', '--max-old-space-size=512']

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

export function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)
  return round(kb / 1024, 1)
}

export interface BenchServer {
  child: ChildProcess
  port: number
  url: string
  /** Spawn to first healthy answer. */
  startMs: number
}

/**
 * The built binary in a child process (its own core), with the production node flags, on a free loopback port given through
 * LATCHKEY_SERVER_ADDRESS; resolves once /api/health answers.
 */
export async function startServer(configFile: string, opts: { nodeFlags?: string[]; env?: Record<string, string>; quiet?: boolean } = {}): Promise<BenchServer> {
  const port = await freePort()
  const started = performance.now()
  const child = spawn(process.execPath, [...PRODUCTION_NODE_FLAGS, ...(opts.nodeFlags ?? []), MAIN, 'serve', '--config', configFile], {
    env: { ...process.env, LATCHKEY_SERVER_ADDRESS: `tcp://127.0.0.1:${port}/`, LATCHKEY_LOG_LEVEL: 'warn', ...opts.env },
    // quiet: a test restarting the server many times keeps its configuration warnings out of the log.
    stdio: ['ignore', 'ignore', opts.quiet ? 'ignore' : 'inherit'],
  })
  const url = `http://127.0.0.1:${port}`
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`)
    try {
      if ((await fetch(`${url}/api/health`)).ok) break
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 2))
  }
  return { child, port, url, startMs: round(performance.now() - started, 1) }
}

/** SIGTERM and wait; resolves the milliseconds the graceful stop took. */
export async function stopServer(child: ChildProcess | undefined): Promise<number> {
  if (!child || child.exitCode !== null) return 0
  const started = performance.now()
  const done = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  await done
  return round(performance.now() - started, 1)
}

/**
 * The Kasm fixture in `dir` on a loopback cookie domain (its own users file, database and
 * notifications), with `edit` applied to the parsed YAML; the listen address comes from startServer.
 */
export function prepareKasmConfig(dir: string, edit: (yaml: any) => void = () => {}): string {
  const fixtures = join(projectRoot(), 'fixtures/config')
  const yaml = parse(readFileSync(join(fixtures, 'kasm-authelia.yml'), 'utf8'))
  copyFileSync(join(fixtures, 'users_database.yml'), join(dir, 'users_database.yml'))
  delete yaml.server
  yaml.session.domain = '127.0.0.1'
  yaml.log = { level: 'warn' }
  yaml.storage.local.path = 'db.sqlite3'
  yaml.notifier = { filesystem: { filename: 'notification.txt' } }
  edit(yaml)
  const file = join(dir, 'configuration.yml')
  writeFileSync(file, stringify(yaml))
  return file
}

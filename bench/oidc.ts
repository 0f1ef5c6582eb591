/**
 * OIDC throughput (issue #4): for a signed-in user, full flows/s (authorize → code → token →
 * userinfo) at concurrency 1 and 16 with p50/p99 per step, then userinfo, discovery and JWKS
 * requests/s, and the server's RSS under load. The server is the built binary in a child process
 * (one core); the load comes from this process (the other core) over keep-alive connections.
 * Targets (2 cores, RS256-2048): ≥ 2,000 flows/s at c16, ≥ 1,000 at c1, userinfo ≥ 25,000/s,
 * discovery and JWKS ≥ 40,000/s, RSS < 120 MB.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { projectRoot } from '../src/common/project-root.js'
import { randomString } from '../src/common/random.js'
import { loadConfig } from '../src/config/load.js'
import { openStorage } from '../src/storage/index.js'
import { percentile, round } from './load.js'

const MAIN = join(projectRoot(), 'dist/src/main.js')
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const REDIRECT = 'https://kasm.example.com/api/oidc_callback'
const SECRET = 'insecure-secret'
/** Extra node flags for the server, e.g. `--max-semi-space-size=2` (keeps RSS under load ~25 MB lower). */
const SERVER_FLAGS = (process.env.BENCH_SERVER_NODE_FLAGS ?? '').split(' ').filter(Boolean)

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)
  return round(kb / 1024, 1)
}

/** The Kasm fixture (default RS256-2048 key, plaintext secret) on a loopback cookie domain. */
function prepare(dir: string): string {
  const fixtures = join(projectRoot(), 'fixtures/config')
  const yaml = parse(readFileSync(join(fixtures, 'kasm-authelia.yml'), 'utf8'))
  copyFileSync(join(fixtures, 'users_database.yml'), join(dir, 'users_database.yml'))
  yaml.session.domain = '127.0.0.1'
  yaml.log = { level: 'warn' }
  yaml.storage.local.path = 'db.sqlite3'
  const file = join(dir, 'configuration.yml')
  writeFileSync(file, stringify(yaml))
  return file
}

async function startServer(configFile: string): Promise<{ child: ChildProcess; url: string; port: number }> {
  const port = await freePort()
  const child = spawn(process.execPath, [...SERVER_FLAGS, MAIN, 'serve', '--config', configFile], {
    env: { ...process.env, LATCHKEY_SERVER_PORT: String(port), LATCHKEY_SERVER_HOST: '127.0.0.1', LATCHKEY_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const url = `http://127.0.0.1:${port}`
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`)
    try {
      if ((await fetch(`${url}/api/health`)).ok) break
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 10))
  }
  return { child, url, port }
}

interface Reply {
  status: number
  location?: string
  body: string
}

function request(agent: http.Agent, port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, host: '127.0.0.1', port, method, path, headers }, (res) => {
      let data = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (data += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ...(res.headers.location ? { location: res.headers.location } : {}), body: data }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Full flows for `durationMs` with `concurrency` users in parallel. */
export async function benchFlows(port: number, cookie: string, concurrency: number, durationMs: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency * 2 })
  const steps = { authorize: [] as number[], token: [] as number[], userinfo: [] as number[] }
  let flows = 0
  let errors = 0
  const query = new URLSearchParams({
    client_id: 'kasm', redirect_uri: REDIRECT, response_type: 'code', scope: 'openid profile groups email', state: 'bench-state-0001', nonce: 'bench-nonce-0001',
  }).toString()
  const deadline = performance.now() + durationMs
  const started = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        try {
          let t0 = performance.now()
          const a = await request(agent, port, 'GET', `/api/oidc/authorization?${query}`, { cookie, host: `127.0.0.1:${port}` })
          const code = a.status === 303 ? new URL(a.location!).searchParams.get('code') : null
          if (!code) throw new Error(`authorize ${a.status}`)
          steps.authorize.push(performance.now() - t0)
          t0 = performance.now()
          const form = `grant_type=authorization_code&code=${encodeURIComponent(code)}&redirect_uri=${encodeURIComponent(REDIRECT)}&client_id=kasm&client_secret=${SECRET}`
          const tk = await request(agent, port, 'POST', '/api/oidc/token', { 'content-type': 'application/x-www-form-urlencoded', host: `127.0.0.1:${port}` }, form)
          if (tk.status !== 200) throw new Error(`token ${tk.status} ${tk.body}`)
          steps.token.push(performance.now() - t0)
          t0 = performance.now()
          const ui = await request(agent, port, 'GET', '/api/oidc/userinfo', { authorization: `Bearer ${(JSON.parse(tk.body) as { access_token: string }).access_token}`, host: `127.0.0.1:${port}` })
          if (ui.status !== 200) throw new Error(`userinfo ${ui.status}`)
          steps.userinfo.push(performance.now() - t0)
          flows++
        } catch (err) {
          errors++
          if (errors === 1) process.stderr.write(`oidc bench: flow failed: ${(err as Error).message}\n`)
        }
      }
    }),
  )
  const elapsed = (performance.now() - started) / 1000
  agent.destroy()
  const summary = (l: number[]) => {
    l.sort((x, y) => x - y)
    return { p50_ms: round(percentile(l, 50), 3), p99_ms: round(percentile(l, 99), 3) }
  }
  return {
    concurrency,
    flows_per_second: Math.round(flows / elapsed),
    flows,
    errors,
    steps: { authorize: summary(steps.authorize), token: summary(steps.token), userinfo: summary(steps.userinfo) },
  }
}

/**
 * A lean closed-loop GET load over raw keep-alive sockets (no http.Agent parsing overhead), so the
 * generator's single core can outrun a server answering 40,000 requests/s. Responses are framed by
 * Content-Length; every response must have `expectStatus`.
 */
export async function rawGetLoad(opts: { port: number; path: string; headers?: Record<string, string>; connections: number; durationMs: number; expectStatus?: number }) {
  const head = Buffer.from(
    `GET ${opts.path} HTTP/1.1\r\nHost: 127.0.0.1:${opts.port}\r\n` +
      Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('') +
      '\r\n',
  )
  const expect = String(opts.expectStatus ?? 200)
  let ok = 0
  let errors = 0
  const latencies: number[] = []
  const deadline = performance.now() + opts.durationMs
  const started = performance.now()
  await Promise.all(
    Array.from(
      { length: opts.connections },
      () =>
        new Promise<void>((resolve) => {
          const socket = net.connect(opts.port, '127.0.0.1')
          socket.setNoDelay(true)
          let buf: Buffer = Buffer.alloc(0)
          let sentAt = 0
          const send = () => {
            if (performance.now() >= deadline) {
              socket.end()
              return resolve()
            }
            sentAt = performance.now()
            socket.write(head)
          }
          socket.on('connect', send)
          socket.on('error', () => {
            errors++
            resolve()
          })
          socket.on('data', (chunk: Buffer) => {
            buf = buf.length ? Buffer.concat([buf, chunk]) : chunk
            for (;;) {
              const end = buf.indexOf('\r\n\r\n')
              if (end === -1) return
              const headers = buf.subarray(0, end).toString('latin1')
              const m = /\r\ncontent-length: *(\d+)/i.exec(headers)
              const total = end + 4 + Number(m?.[1] ?? 0)
              if (buf.length < total) return
              if (headers.slice(9, 12) === expect) {
                ok++
                if ((ok & 15) === 0) latencies.push(performance.now() - sentAt)
              } else errors++
              buf = buf.subarray(total)
              send()
            }
          })
        }),
    ),
  )
  const elapsed = (performance.now() - started) / 1000
  latencies.sort((a, b) => a - b)
  return { rps: Math.round(ok / elapsed), requests: ok, errors, p50_ms: round(percentile(latencies, 50), 3), p99_ms: round(percentile(latencies, 99), 3) }
}

export async function benchOidc(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-oidc-'))
  let child: ChildProcess | undefined
  try {
    const configFile = prepare(dir)
    const server = await startServer(configFile)
    child = server.child
    const { port } = server
    // A signed-in (two-factor) user, written straight into the server's database.
    const { config } = loadConfig({ files: [configFile], env: {} })
    const storage = await openStorage(config.storage)
    const id = randomString(32)
    const now = Math.floor(Date.now() / 1000)
    await storage.saveSession(
      id,
      { username: 'john', level: 2, firstFactorAt: now, secondFactorAt: now, amr: ['pwd', 'otp', 'mfa'], rememberMe: true, csrfToken: 'x', createdAt: now, lastActivityAt: now },
      now + 3600,
    )
    await storage.close()
    const cookie = `authelia_session=${id}`

    let peakRss = 0
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMb(child!.pid!))), 200)
    const ms = SECONDS * 1000
    // Warm-up (JIT, statement cache).
    await benchFlows(port, cookie, 4, 1000)
    const c1 = await benchFlows(port, cookie, 1, ms)
    const c16 = await benchFlows(port, cookie, 16, ms)

    const agent = new http.Agent({ keepAlive: true })
    const form = `grant_type=authorization_code&code=CODE&redirect_uri=${encodeURIComponent(REDIRECT)}&client_id=kasm&client_secret=${SECRET}`
    const query = new URLSearchParams({ client_id: 'kasm', redirect_uri: REDIRECT, response_type: 'code', scope: 'openid profile groups email', state: 'bench-state-0001' }).toString()
    const a = await request(agent, port, 'GET', `/api/oidc/authorization?${query}`, { cookie })
    const code = new URL(a.location!).searchParams.get('code')!
    const tk = await request(agent, port, 'POST', '/api/oidc/token', { 'content-type': 'application/x-www-form-urlencoded' }, form.replace('CODE', encodeURIComponent(code)))
    agent.destroy()
    const accessToken = (JSON.parse(tk.body) as { access_token: string }).access_token

    const userinfo = await rawGetLoad({ port, path: '/api/oidc/userinfo', headers: { authorization: `Bearer ${accessToken}` }, connections: 32, durationMs: ms })
    const discovery = await rawGetLoad({ port, path: '/.well-known/openid-configuration', connections: 32, durationMs: ms })
    const jwks = await rawGetLoad({ port, path: '/jwks.json', connections: 32, durationMs: ms })
    clearInterval(sampler)
    const rssAfter = rssMb(child.pid!)
    return {
      key: 'RS256-2048',
      server_node_flags: SERVER_FLAGS,
      seconds_per_measurement: SECONDS,
      flows_c1: c1,
      flows_c16: c16,
      userinfo,
      discovery,
      jwks,
      rss_mb_peak_under_load: Math.max(peakRss, rssAfter),
      targets: { flows_c16: '>= 2000/s', flows_c1: '>= 1000/s', userinfo_rps: '>= 25000', discovery_jwks_rps: '>= 40000', rss_mb: '< 120' },
    }
  } finally {
    if (child && child.exitCode === null) {
      const done = new Promise((r) => child!.once('exit', r))
      child.kill('SIGTERM')
      await done
    }
    rmSync(dir, { recursive: true, force: true })
  }
}

// `node dist/bench/oidc.js` runs it alone.
if (process.argv[1]?.endsWith('/bench/oidc.js')) {
  process.stdout.write(JSON.stringify(await benchOidc(), null, 2) + '\n')
}

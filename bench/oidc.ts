/**
 * OIDC throughput (issue #4): for a signed-in user, full flows/s (authorize → code → token →
 * userinfo) at concurrency 1 and 16 with p50/p99 per step, then userinfo, discovery and JWKS
 * requests/s, and the server's RSS under load. The server is the built binary in a child process
 * (one core); the load comes from this process (the other core) over keep-alive connections.
 * Targets (2 cores, RS256-2048): ≥ 2,000 flows/s at c16, ≥ 1,000 at c1, userinfo ≥ 25,000/s,
 * discovery and JWKS ≥ 40,000/s, RSS < 120 MB.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomString } from '../src/common/random.js'
import { loadConfig } from '../src/config/load.js'
import { openStorage } from '../src/storage/index.js'
import { RawClient, headerOf, rawLoad, summary, withServerCpu } from './load.js'
import { prepareKasmConfig, PRODUCTION_NODE_FLAGS, rssMb, startServer, stopServer } from './server.js'
import { benchCalibration } from './calibrate.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const REDIRECT = 'https://kasm.example.com/api/oidc_callback'
const SECRET = 'insecure-secret'
/** Extra node flags for the server, after the production ones (bench/server.ts PRODUCTION_NODE_FLAGS). */
const SERVER_FLAGS = (process.env.BENCH_SERVER_NODE_FLAGS ?? '').split(' ').filter(Boolean)

interface Reply {
  status: number
  location?: string
  body: string
}

/** node:http, for the few set-up requests outside the measured loops. */
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

const AUTHORIZE_QUERY = new URLSearchParams({
  client_id: 'kasm', redirect_uri: REDIRECT, response_type: 'code', scope: 'openid profile groups email', state: 'bench-state-0001', nonce: 'bench-nonce-0001',
}).toString()
const CODE_IN_LOCATION = /[?&]code=([^&#]+)/
const ACCESS_TOKEN_IN_JSON = /"access_token":"([^"]+)"/

/**
 * Full flows for `durationMs` with `concurrency` users in parallel, each on its own keep-alive
 * connection. Raw sockets and pre-built requests (bench/load.ts RawClient): node:http's client
 * costs about three times what the server spends per request, and on two cores it, not the
 * server, was the limit (server CPU well under one core). Only what the next step needs is
 * parsed: the Location header's code and the token answer's access_token.
 */
export async function benchFlows(port: number, cookie: string, concurrency: number, durationMs: number) {
  const host = `host: 127.0.0.1:${port}\r\n`
  const authorizeRequest = Buffer.from(`GET /api/oidc/authorization?${AUTHORIZE_QUERY} HTTP/1.1\r\n${host}cookie: ${cookie}\r\n\r\n`)
  const tokenHead = `POST /api/oidc/token HTTP/1.1\r\n${host}content-type: application/x-www-form-urlencoded\r\ncontent-length: `
  const formTail = `&redirect_uri=${encodeURIComponent(REDIRECT)}&client_id=kasm&client_secret=${SECRET}`
  const userinfoHead = `GET /api/oidc/userinfo HTTP/1.1\r\n${host}authorization: Bearer `
  const steps = { authorize: [] as number[], token: [] as number[], userinfo: [] as number[] }
  let flows = 0
  let errors = 0
  const deadline = performance.now() + durationMs
  const started = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      let client = new RawClient(port)
      while (performance.now() < deadline) {
        try {
          let t0 = performance.now()
          const a = await client.request(authorizeRequest)
          const location = a.status === 303 || a.status === 302 ? headerOf(a.head, 'location') : undefined
          const code = location !== undefined ? CODE_IN_LOCATION.exec(location)?.[1] : undefined
          if (!code) throw new Error(`authorize ${a.status}`)
          let t1 = performance.now()
          steps.authorize.push(t1 - t0)
          const form = `grant_type=authorization_code&code=${code}${formTail}`
          const tk = await client.request(`${tokenHead}${form.length}\r\n\r\n${form}`)
          const accessToken = tk.status === 200 ? ACCESS_TOKEN_IN_JSON.exec(tk.body.toString('latin1'))?.[1] : undefined
          if (!accessToken) throw new Error(`token ${tk.status} ${tk.body.toString('utf8')}`)
          t0 = performance.now()
          steps.token.push(t0 - t1)
          const ui = await client.request(`${userinfoHead}${accessToken}\r\n\r\n`)
          if (ui.status !== 200) throw new Error(`userinfo ${ui.status}`)
          t1 = performance.now()
          steps.userinfo.push(t1 - t0)
          flows++
        } catch (err) {
          errors++
          if (errors === 1) process.stderr.write(`oidc bench: flow failed: ${(err as Error).message}\n`)
          client.close()
          client = new RawClient(port)
        }
      }
      client.close()
    }),
  )
  const elapsed = (performance.now() - started) / 1000
  return {
    concurrency,
    flows_per_second: Math.round(flows / elapsed),
    flows,
    errors,
    steps: { authorize: summary(steps.authorize), token: summary(steps.token), userinfo: summary(steps.userinfo) },
  }
}

export async function benchOidc(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-oidc-'))
  let child: ChildProcess | undefined
  try {
    const configFile = prepareKasmConfig(dir)
    const server = await startServer(configFile, { nodeFlags: SERVER_FLAGS })
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
      now,
    )
    await storage.close()
    const cookie = `authelia_session=${id}`

    // Peak RSS per measured stage, sampled every 100 ms: which load shape costs the memory.
    const rssPeaks: Record<string, number> = {}
    let stage = 'warm_up'
    const sampler = setInterval(() => (rssPeaks[stage] = Math.max(rssPeaks[stage] ?? 0, rssMb(child!.pid!))), 100)
    const measure = <T>(name: string, run: () => Promise<T>): Promise<T> => {
      stage = name
      return run()
    }
    const ms = SECONDS * 1000
    // Warm-up (JIT, statement cache).
    await benchFlows(port, cookie, 4, 1000)
    const pid = child.pid!
    const perFlow = (r: { flows: number }) => r.flows
    const perRequest = (r: { requests: number }) => r.requests
    const c1 = await measure('flows_c1', () => withServerCpu(pid, perFlow, () => benchFlows(port, cookie, 1, ms)))
    const c16 = await measure('flows_c16', () => withServerCpu(pid, perFlow, () => benchFlows(port, cookie, 16, ms)))

    const agent = new http.Agent({ keepAlive: true })
    const form = `grant_type=authorization_code&code=CODE&redirect_uri=${encodeURIComponent(REDIRECT)}&client_id=kasm&client_secret=${SECRET}`
    const query = new URLSearchParams({ client_id: 'kasm', redirect_uri: REDIRECT, response_type: 'code', scope: 'openid profile groups email', state: 'bench-state-0001' }).toString()
    const a = await request(agent, port, 'GET', `/api/oidc/authorization?${query}`, { cookie })
    const code = new URL(a.location!).searchParams.get('code')!
    const tk = await request(agent, port, 'POST', '/api/oidc/token', { 'content-type': 'application/x-www-form-urlencoded' }, form.replace('CODE', encodeURIComponent(code)))
    const discoveryBytes = Buffer.byteLength((await request(agent, port, 'GET', '/.well-known/openid-configuration', {})).body)
    agent.destroy()
    const accessToken = (JSON.parse(tk.body) as { access_token: string }).access_token

    const requests = (name: string, path: string, headers?: Record<string, string>) =>
      measure(name, () => withServerCpu(pid, perRequest, () => rawLoad({ port, path, ...(headers ? { headers } : {}), connections: 32, durationMs: ms })))
    const userinfo = await requests('userinfo', '/api/oidc/userinfo', { authorization: `Bearer ${accessToken}` })
    const discovery = await requests('discovery', '/.well-known/openid-configuration')
    const jwks = await requests('jwks', '/jwks.json')
    clearInterval(sampler)
    rssPeaks[stage] = Math.max(rssPeaks[stage] ?? 0, rssMb(child.pid!))
    delete rssPeaks.warm_up
    await stopServer(child)
    // Same generator and connections against a bare Fastify, after the server is stopped.
    const calibration = await benchCalibration(discoveryBytes, ms, 32, PRODUCTION_NODE_FLAGS)
    return {
      key: 'RS256-2048',
      server_node_flags: [...PRODUCTION_NODE_FLAGS, ...SERVER_FLAGS],
      seconds_per_measurement: SECONDS,
      flows_c1: c1,
      flows_c16: c16,
      userinfo,
      discovery,
      jwks,
      rss_mb_peak_under_load: Math.max(...Object.values(rssPeaks)),
      rss_mb_peak_by_stage: rssPeaks,
      calibration,
      targets: { flows_c16: '>= 2000/s', flows_c1: '>= 1000/s', userinfo_rps: '>= 25000', discovery_jwks_rps: '>= 40000', rss_mb: '< 120' },
    }
  } finally {
    await stopServer(child)
    rmSync(dir, { recursive: true, force: true })
  }
}

// `node dist/bench/oidc.js` runs it alone.
if (process.argv[1]?.endsWith('/bench/oidc.js')) {
  process.stdout.write(JSON.stringify(await benchOidc(), null, 2) + '\n')
}

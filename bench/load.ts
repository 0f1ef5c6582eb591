import { readFileSync } from 'node:fs'
import net from 'node:net'

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

/** p50 and p99 of a list of latencies in milliseconds (sorts it). */
export function summary(latencies: number[]): { p50_ms: number; p99_ms: number } {
  latencies.sort((x, y) => x - y)
  return { p50_ms: round(percentile(latencies, 50), 3), p99_ms: round(percentile(latencies, 99), 3) }
}

export interface RawLoadOptions {
  port: number
  method?: 'GET' | 'POST'
  path: string
  headers?: Record<string, string>
  body?: string
  connections: number
  durationMs: number
  /** Default 200. */
  expectStatus?: number
}

export interface RawLoadResult {
  rps: number
  p50Ms: number
  p99Ms: number
  requests: number
  errors: number
}

/**
 * A closed-loop keep-alive load over raw sockets: each connection writes one pre-built request and
 * waits for its response (Content-Length framing; Fastify always sends it). About three times
 * lighter than node:http's client, which on a 2-core machine would otherwise be the bottleneck
 * (measured here: a bare node:http server reaches ~7.5k/s through http.request, ~19k/s this way).
 */
export async function rawLoad(o: RawLoadOptions): Promise<RawLoadResult> {
  const headers = { host: `127.0.0.1:${o.port}`, ...o.headers, ...(o.body !== undefined ? { 'content-length': String(Buffer.byteLength(o.body)) } : {}) }
  const request: Buffer = Buffer.from(
    `${o.method ?? 'GET'} ${o.path} HTTP/1.1\r\n` + Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n' + (o.body ?? ''),
  )
  const latencies: number[] = []
  let errors = 0
  const deadline = performance.now() + o.durationMs
  const started = performance.now()
  await Promise.all(
    Array.from(
      { length: o.connections },
      () =>
        new Promise<void>((resolve) => {
          const socket = net.connect(o.port, '127.0.0.1')
          socket.setNoDelay(true)
          let pending: Buffer = Buffer.alloc(0)
          let sentAt = 0
          const send = () => {
            if (performance.now() >= deadline) {
              socket.end()
              resolve()
              return
            }
            sentAt = performance.now()
            socket.write(request)
          }
          socket.on('connect', send)
          socket.on('data', (chunk: Buffer) => {
            pending = pending.length ? Buffer.concat([pending, chunk]) : chunk
            for (;;) {
              const end = pending.indexOf('\r\n\r\n')
              if (end === -1) return
              const head = pending.subarray(0, end).toString('latin1')
              const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0)
              if (pending.length < end + 4 + length) return
              if (Number(head.slice(9, 12)) === (o.expectStatus ?? 200)) latencies.push(performance.now() - sentAt)
              else errors++
              pending = pending.subarray(end + 4 + length)
              send()
            }
          })
          socket.on('error', () => {
            errors++
            resolve()
          })
        }),
    ),
  )
  const elapsed = (performance.now() - started) / 1000
  latencies.sort((a, b) => a - b)
  return {
    rps: Math.round(latencies.length / elapsed),
    p50Ms: round(percentile(latencies, 50), 3),
    p99Ms: round(percentile(latencies, 99), 3),
    requests: latencies.length,
    errors,
  }
}

export interface RawReply {
  status: number
  /** The raw header block (latin1), status line included. */
  head: string
  body: Buffer
}

/**
 * One keep-alive connection sending one request at a time, for multi-step flows (authorize →
 * token → userinfo) where each request depends on the previous answer. Same framing as rawLoad
 * (Content-Length; Fastify always sends it): no header object, no stream machinery, so the
 * generator costs a fraction of node:http's client and the bench measures the server.
 */
export class RawClient {
  private readonly socket: net.Socket
  private pending: Buffer = Buffer.alloc(0)
  private waiter: { resolve: (r: RawReply) => void; reject: (e: Error) => void } | undefined
  private readonly ready: Promise<void>

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1')
    this.socket.setNoDelay(true)
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve)
      this.socket.once('error', reject)
    })
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk))
    this.socket.on('error', (err) => this.fail(err))
    this.socket.on('close', () => this.fail(new Error('connection closed')))
  }

  async request(raw: Buffer | string): Promise<RawReply> {
    await this.ready
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject }
      this.socket.write(raw)
    })
  }

  close(): void {
    this.socket.end()
  }

  private fail(err: Error): void {
    const w = this.waiter
    this.waiter = undefined
    w?.reject(err)
  }

  private onData(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk
    const end = this.pending.indexOf('\r\n\r\n')
    if (end === -1) return
    const head = this.pending.subarray(0, end).toString('latin1')
    const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0)
    if (this.pending.length < end + 4 + length) return
    const body = this.pending.subarray(end + 4, end + 4 + length)
    this.pending = this.pending.subarray(end + 4 + length)
    const w = this.waiter
    this.waiter = undefined
    w?.resolve({ status: Number(head.slice(9, 12)), head, body })
  }
}

/** One header's value from a raw header block (first occurrence), or undefined. */
export function headerOf(head: string, name: string): string | undefined {
  const i = head.toLowerCase().indexOf(`\r\n${name}:`)
  if (i === -1) return undefined
  const start = i + name.length + 3
  const stop = head.indexOf('\r\n', start)
  return head.slice(start, stop === -1 ? undefined : stop).trim()
}

/**
 * user+system CPU seconds a process (or, with `mainThreadOnly`, its main thread: the event loop)
 * has used so far (Linux /proc; clock ticks are 100 Hz).
 */
export function cpuSeconds(pid: number, mainThreadOnly = false): number {
  const stat = readFileSync(mainThreadOnly ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

export interface ServerCpu {
  /** Whole server process, in % of one core (signatures run on libuv's pool, beside the event loop). */
  server_cpu_percent: number
  /** The event loop thread alone: near 100 means the server is the limit; well under, the generator or the machine is. */
  server_main_thread_cpu_percent: number
  /** µs of server CPU per operation: the figure least disturbed by other load on a shared machine. */
  server_cpu_us_per_op: number
  server_main_thread_cpu_us_per_op: number
}

/** Runs a measurement and adds the server's CPU use during it. */
export async function withServerCpu<T extends object>(pid: number, ops: (r: T) => number, run: () => Promise<T>): Promise<T & ServerCpu> {
  const cpu0 = cpuSeconds(pid)
  const main0 = cpuSeconds(pid, true)
  const t0 = performance.now()
  const r = await run()
  const cpu = cpuSeconds(pid) - cpu0
  const main = cpuSeconds(pid, true) - main0
  const wall = (performance.now() - t0) / 1000
  const n = ops(r)
  const perOp = (s: number) => (n > 0 ? round((s * 1e6) / n, 0) : 0)
  return {
    ...r,
    server_cpu_percent: round((100 * cpu) / wall, 0),
    server_main_thread_cpu_percent: round((100 * main) / wall, 0),
    server_cpu_us_per_op: perOp(cpu),
    server_main_thread_cpu_us_per_op: perOp(main),
  }
}

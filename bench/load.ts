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

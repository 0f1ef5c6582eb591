import http from 'node:http'

export interface LoadOptions {
  url: string
  method?: string
  headers?: Record<string, string>
  /** A fixed body, or one made per request. */
  body?: string | (() => string)
  connections: number
  durationMs: number
  /** Responses with another status count as errors. */
  expectStatus?: number
}

export interface LoadResult {
  requests: number
  errors: number
  rps: number
  p50Ms: number
  p99Ms: number
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

/** A keep-alive closed-loop load: `connections` requests in flight at all times for `durationMs`. */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.connections })
  const url = new URL(opts.url)
  const latencies: number[] = []
  let errors = 0
  const deadline = performance.now() + opts.durationMs
  const one = () =>
    new Promise<void>((resolve) => {
      const started = performance.now()
      const body = typeof opts.body === 'function' ? opts.body() : opts.body
      const req = http.request(
        { agent, host: url.hostname, port: url.port, path: url.pathname + url.search, method: opts.method ?? 'GET', headers: opts.headers },
        (res) => {
          res.resume()
          res.on('end', () => {
            if (opts.expectStatus !== undefined && res.statusCode !== opts.expectStatus) errors++
            else latencies.push(performance.now() - started)
            resolve()
          })
        },
      )
      req.on('error', () => {
        errors++
        resolve()
      })
      req.end(body)
    })
  const started = performance.now()
  await Promise.all(
    Array.from({ length: opts.connections }, async () => {
      while (performance.now() < deadline) await one()
    }),
  )
  const elapsed = (performance.now() - started) / 1000
  agent.destroy()
  latencies.sort((a, b) => a - b)
  return {
    requests: latencies.length,
    errors,
    rps: Math.round(latencies.length / elapsed),
    p50Ms: round(percentile(latencies, 50), 3),
    p99Ms: round(percentile(latencies, 99), 3),
  }
}

/**
 * The ceiling of this machine for the OIDC bench's simple endpoints: a bare Fastify server (no
 * hooks, no plugins) in a child process, measured with the same generator (rawLoad) and
 * connections, answering `hello world` and then a body as large as the discovery document.
 * The discovery and JWKS targets only make sense next to these figures: on a 2-core VM the
 * socket write of each response is a large share of the work, whatever the application does.
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { rawLoad, withServerCpu } from './load.js'

if (process.argv[2] === 'bare-server') {
  const { default: Fastify } = await import('fastify')
  const app = Fastify()
  const body = Buffer.from(JSON.stringify({ padding: 'x'.repeat(Math.max(0, Number(process.argv[3]) - 14)) }))
  app.get('/hello', async () => 'hello world')
  app.get('/sized', (_req, reply) => {
    reply.header('content-type', 'application/json; charset=utf-8').send(body)
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  process.send!(typeof address === 'object' && address ? address.port : 0)
}

/** rps (and server CPU) of a bare Fastify route: `hello world`, and a `bodyBytes` JSON body. */
export async function benchCalibration(bodyBytes: number, durationMs: number, connections: number, nodeFlags: string[] = []) {
  const child = fork(fileURLToPath(import.meta.url), ['bare-server', String(bodyBytes)], { execArgv: nodeFlags, stdio: 'ignore' })
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m) => resolve(Number(m)))
      child.once('exit', (code) => reject(new Error(`calibration server exited with ${code}`)))
    })
    await rawLoad({ port, path: '/hello', connections, durationMs: 500 })
    const perRequest = (r: { requests: number }) => r.requests
    const hello = await withServerCpu(child.pid!, perRequest, () => rawLoad({ port, path: '/hello', connections, durationMs }))
    const sized = await withServerCpu(child.pid!, perRequest, () => rawLoad({ port, path: '/sized', connections, durationMs }))
    return { bare_fastify_hello: hello, [`bare_fastify_${bodyBytes}_byte_json`]: sized }
  } finally {
    child.kill()
  }
}

import { Writable } from 'node:stream'
import { afterEach, describe, expect, test } from 'vitest'
import { buildTestApp, type TestApp } from '../support/app.js'
import { makeTrustProxy } from '../../src/server/proxy.js'
import { createLogger, formatTextLine } from '../../src/server/logger.js'
import type { DestinationStream } from 'pino'

let t: TestApp | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

describe('server shell', () => {
  test('GET /api/health answers OK with the security headers', async () => {
    t = await buildTestApp()
    const res = await t.app.inject({ method: 'GET', url: '/api/health' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ status: 'OK' })
    expect(res.headers).toMatchObject({
      'cache-control': 'no-store',
      pragma: 'no-cache',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
    })
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'")
  })

  test('server.path puts every route under the prefix', async () => {
    t = await buildTestApp({ patch: (y) => (y.server.path = 'authelia') })
    expect((await t.app.inject({ method: 'GET', url: '/authelia/api/health' })).statusCode).toBe(200)
    expect((await t.app.inject({ method: 'GET', url: '/api/health' })).statusCode).toBe(404)
  })

  test('a body over the limit gets 413 and the server keeps serving', async () => {
    t = await buildTestApp()
    const big = JSON.stringify({ username: 'john', password: 'x'.repeat(10 * 1024 * 1024) })
    const res = await t.app.inject({ method: 'POST', url: '/api/firstfactor', headers: { 'content-type': 'application/json' }, payload: big })
    expect(res.statusCode).toBe(413)
    expect(res.json()).toEqual({ status: 'KO', message: 'Request body is too large.' })
    expect((await t.app.inject({ method: 'GET', url: '/api/health' })).statusCode).toBe(200)
  })

  test('unparseable JSON and __proto__ keys are 400, never 500', async () => {
    t = await buildTestApp()
    for (const payload of ['{"username":', '{"__proto__":{"admin":true},"username":"john","password":"x"}']) {
      const res = await t.app.inject({ method: 'POST', url: '/api/firstfactor', headers: { 'content-type': 'application/json' }, payload })
      expect(res.statusCode).toBe(400)
      expect(res.json().status).toBe('KO')
      expect(res.body).not.toMatch(/at .*\.js/)
    }
  })

  test('issue 9.13: an unknown page is a 404 page in the portal style with the security headers; an unknown API path is KO JSON', async () => {
    t = await buildTestApp()
    const res = await t.app.inject({ method: 'GET', url: '/nope?x=<script>', headers: { host: 'auth.example.com', accept: 'text/html' } })
    expect(res.statusCode).toBe(404)
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(res.body).toMatch(/^<!doctype html>/)
    expect(res.body).toContain('<h1>Page not found</h1>')
    expect(res.body).toContain('<a class="button" href="/">Go to sign in</a>')
    expect(res.body).not.toContain('<script>')
    expect(res.headers['content-security-policy']).toContain("default-src 'self'")
    expect(res.headers['x-content-type-options']).toBe('nosniff')
    expect(res.headers['x-frame-options']).toBe('DENY')
    for (const url of ['/api/nothing-here', '/api/oidc/nothing', '/api']) {
      const api = await t.app.inject({ method: 'GET', url, headers: { host: 'auth.example.com' } })
      expect([url, api.statusCode, api.headers['content-type']]).toEqual([url, 404, 'application/json; charset=utf-8'])
      expect(api.json()).toEqual({ status: 'KO', message: 'Not Found' })
      expect(api.headers['x-content-type-options']).toBe('nosniff')
    }
    await t.close()
    // Under server.path the link and the API test follow the prefix.
    t = await buildTestApp({ patch: (y) => (y.server.path = 'auth') })
    const prefixed = await t.app.inject({ method: 'GET', url: '/auth/nope', headers: { host: 'auth.example.com' } })
    expect(prefixed.body).toContain('<a class="button" href="/auth/">Go to sign in</a>')
    expect((await t.app.inject({ method: 'GET', url: '/auth/api/nope', headers: { host: 'auth.example.com' } })).json()).toEqual({ status: 'KO', message: 'Not Found' })
  })
})

describe('slow clients (server.timeouts)', () => {
  test('a request body that stalls is answered 408 within read + write (+ the 2 s sweep), not after a minute', async () => {
    const { createConnection } = await import('node:net')
    const { startTestServer } = await import('../support/app.js')
    const server = await startTestServer({ patch: (y) => (y.server = { ...y.server, timeouts: { read: '1s', write: '1s', idle: '30s' } }) })
    try {
      const { port } = new URL(server.url)
      const started = performance.now()
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = createConnection(Number(port), '127.0.0.1', () =>
          socket.write('POST /api/firstfactor HTTP/1.1\r\nHost: auth.example.com\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"a":'),
        )
        let data = ''
        socket.on('data', (d) => (data += d.toString()))
        socket.on('close', () => resolve(data))
        socket.on('error', reject)
      })
      expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout')
      // Answered before any route runs, yet with the same security headers (docs/security.md W4).
      expect(answer).toContain('\r\nx-frame-options: DENY\r\n')
      expect(answer).toContain('\r\ncache-control: no-store\r\n')
      expect(performance.now() - started).toBeLessThan(10_000)
    } finally {
      await server.close()
    }
  }, 30_000)
})

describe('answers Node gives before any route (security.md W4)', () => {
  test.each([
    ['a 20 KB header', (host: string) => `GET /api/state HTTP/1.1\r\nHost: ${host}\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`, '431 Request Header Fields Too Large'],
    ['a request line that is not HTTP', () => 'BREW / HTTP/1.1\r\n\r\n', '400 Bad Request'],
  ])('%s gets a fixed answer with the security headers', async (_what, request, status) => {
    const { createConnection } = await import('node:net')
    const { startTestServer } = await import('../support/app.js')
    const server = await startTestServer()
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = createConnection(Number(new URL(server.url).port), '127.0.0.1', () => socket.write(request('auth.example.com')))
        let data = ''
        socket.on('data', (d) => (data += d.toString()))
        socket.on('close', () => resolve(data))
        socket.on('error', reject)
      })
      const [head, body] = answer.split('\r\n\r\n')
      expect(head!.split('\r\n')[0]).toBe(`HTTP/1.1 ${status}`)
      expect(body).toBe(status)
      for (const h of ['x-frame-options: DENY', 'x-content-type-options: nosniff', 'cache-control: no-store', "frame-ancestors 'none'"]) expect(head).toContain(h)
    } finally {
      await server.close()
    }
  })
})

describe('methods', () => {
  test('a known path with another method is 405 with Allow; an unknown path stays 404', async () => {
    t = await buildTestApp()
    const res = await t.app.inject({ method: 'GET', url: '/api/firstfactor', headers: { host: 'auth.example.com' } })
    expect(res.statusCode).toBe(405)
    expect(res.headers.allow).toBe('POST')
    expect(res.headers['cache-control']).toBe('no-store')
    expect(res.headers['x-frame-options']).toBe('DENY')
    const put = await t.app.inject({ method: 'PUT', url: '/api/state?x=1', headers: { host: 'auth.example.com' } })
    expect([put.statusCode, put.headers.allow]).toEqual([405, 'GET, HEAD'])
    expect((await t.app.inject({ method: 'GET', url: '/api/nothing-here', headers: { host: 'auth.example.com' } })).statusCode).toBe(404)
    // POST-only OAuth endpoints: their own 405 routes are not listed as allowed methods.
    const options = await t.app.inject({ method: 'OPTIONS', url: '/api/oidc/token', headers: { host: 'auth.example.com' } })
    expect([options.statusCode, options.headers.allow]).toEqual([405, 'POST'])
  })

  test('with server.path, the prefix itself and its trailing-slash form report the same methods', async () => {
    t = await buildTestApp({ patch: (y) => (y.server.path = 'authelia') })
    for (const url of ['/authelia', '/authelia/']) {
      const res = await t.app.inject({ method: 'PUT', url, headers: { host: 'auth.example.com' } })
      expect([url, res.statusCode, res.headers.allow]).toEqual([url, 405, 'GET, HEAD, POST'])
    }
  })
})

describe('trusted proxies', () => {
  test('X-Forwarded-* is believed only from configured addresses and networks', () => {
    const none = makeTrustProxy([])
    expect(none('127.0.0.1', 0)).toBe(false)
    const trust = makeTrustProxy(['127.0.0.1', '10.0.0.0/8', 'fd00::/8'])
    expect(trust('127.0.0.1', 0)).toBe(true)
    expect(trust('::ffff:127.0.0.1', 0)).toBe(true)
    expect(trust('10.20.30.40', 0)).toBe(true)
    expect(trust('fd12::1', 0)).toBe(true)
    expect(trust('192.168.1.1', 0)).toBe(false)
    expect(trust('not-an-ip', 0)).toBe(false)
  })
})

describe('logging', () => {
  function capture(format: 'json' | 'text'): { logger: ReturnType<typeof createLogger>; text: () => string } {
    let out = ''
    const stream = new Writable({ write: (c: Buffer, _e, cb) => ((out += c.toString()), cb()) }) as unknown as DestinationStream
    return { logger: createLogger({ level: 'debug', format, keepStdout: false }, stream), text: () => out }
  }

  test('secrets in logged objects are redacted', () => {
    const { logger, text } = capture('json')
    logger.info({ password: 'hunter2', client_secret: 'shh', body: { token: 'abc', code_verifier: 'v', access_token: 'at' } }, 'x')
    logger.info({ req: { headers: { authorization: 'Basic Zm9vOmJhcg==', cookie: 'authelia_session=s3cr3t' } } }, 'y')
    for (const secret of ['hunter2', 'shh', 'abc', 'at"', 'Zm9vOmJhcg', 's3cr3t']) expect(text()).not.toContain(secret)
    expect(text()).toContain('[redacted]')
  })

  test('log.file_path writes there (text or json), and keep_stdout also writes to stdout', async () => {
    const { mkdtempSync, readFileSync, rmSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const dir = mkdtempSync(`${tmpdir()}/latchkey-log-`)
    try {
      let stdout = ''
      const out = new Writable({ write: (c: Buffer, _e, cb) => ((stdout += c.toString()), cb()) }) as unknown as DestinationStream
      const onlyFile = createLogger({ level: 'info', format: 'text', filePath: `${dir}/sub/latchkey.log`, keepStdout: false }, out)
      onlyFile.info({ users: 2 }, 'users file loaded')
      onlyFile.flush()
      const both = createLogger({ level: 'info', format: 'json', filePath: `${dir}/both.log`, keepStdout: true }, out)
      both.warn({ password: 'hunter2' }, 'to both')
      both.flush()
      // sonic-boom writes asynchronously: wait until both files have their line.
      const read = (f: string) => { try { return readFileSync(f, 'utf8') } catch { return '' } }
      await expect.poll(() => read(`${dir}/sub/latchkey.log`).endsWith('\n') && read(`${dir}/both.log`).endsWith('\n'), { timeout: 5000 }).toBe(true)
      expect(readFileSync(`${dir}/sub/latchkey.log`, 'utf8')).toMatch(/^time="[^"]+" level=info msg="users file loaded" users=2\n$/)
      expect(JSON.parse(readFileSync(`${dir}/both.log`, 'utf8'))).toMatchObject({ level: 40, msg: 'to both', password: '[redacted]' })
      expect(stdout).not.toContain('users file loaded')
      expect(JSON.parse(stdout)).toMatchObject({ level: 40, msg: 'to both' })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('text format is one key=value line per record', () => {
    const line = formatTextLine(JSON.stringify({ level: 30, time: 0, msg: 'users file loaded', path: '/etc/latchkey/users.yml', users: 2 }))
    expect(line).toBe('time="1970-01-01T00:00:00.000Z" level=info msg="users file loaded" path=/etc/latchkey/users.yml users=2\n')
  })
})

describe('reverse proxy diagnostics', () => {
  test('X-Forwarded-Proto from a peer that is not a trusted proxy is ignored, with one warning naming the setting', async () => {
    t = await buildTestApp()
    for (let i = 0; i < 2; i++) {
      const res = await t.app.inject({ method: 'GET', url: '/.well-known/openid-configuration', headers: { host: 'auth.example.com', 'x-forwarded-proto': 'https' } })
      expect(res.json().issuer).toBe('http://auth.example.com')
    }
    const warnings = t.logs().split('\n').filter((l) => l.includes('not in server.trusted_proxies'))
    expect(warnings).toHaveLength(1)
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 40, peer: '127.0.0.1' })
  })

  test('X-Forwarded-For alone from an untrusted peer warns too: every client would share the proxy\'s address (issue #9 point 4)', async () => {
    t = await buildTestApp()
    for (let i = 0; i < 3; i++) {
      await t.app.inject({ method: 'GET', url: '/api/health', headers: { host: 'auth.example.com', 'x-forwarded-for': `203.0.113.${i}` } })
    }
    const warnings = t.logs().split('\n').filter((l) => l.includes('not in server.trusted_proxies'))
    expect(warnings).toHaveLength(1)
    expect(JSON.parse(warnings[0]!)).toMatchObject({
      level: 40,
      peer: '127.0.0.1',
      msg: "X-Forwarded-* headers from 127.0.0.1 are ignored because it is not in server.trusted_proxies: if a reverse proxy runs there, add its address so the issuer and cookies follow the public https URL and each client is known by its own address, not the proxy's",
    })
  })

  test('from a trusted proxy it is believed and nothing is logged', async () => {
    t = await buildTestApp({ patch: (y) => (y.server.trusted_proxies = ['127.0.0.1']) })
    const res = await t.app.inject({ method: 'GET', url: '/.well-known/openid-configuration', headers: { host: 'auth.example.com', 'x-forwarded-proto': 'https' } })
    expect(res.json().issuer).toBe('https://auth.example.com')
    expect(t.logs()).not.toContain('not in server.trusted_proxies')
  })
})

import { createHash, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:https'
import { createServer as createHttpServer } from 'node:http'
import { connect, createServer as createNetServer, type AddressInfo, type LookupFunction, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import forge from 'node-forge'

/**
 * Production-shaped TLS for e2e tests: a throw-away certificate authority made at run time and one
 * leaf certificate for `*.example.com` (auth.example.com, kasm.example.com) signed by it. Nothing is
 * installed in the system trust store and /etc/hosts is never touched: each client is told about the
 * CA (Node `ca`, Python `verify=`, Apache `OIDCCABundlePath`, Chromium a pin of the leaf key) and
 * resolves the names to loopback on its own (`exampleLookup`, Chromium `--host-resolver-rules`).
 */
export interface TestPki {
  dir: string
  caPem: string
  caFile: string
  /** The leaf's private key and certificate (PEM), for Latchkey's and Apache's listeners. */
  key: Buffer
  cert: Buffer
  keyFile: string
  certFile: string
  /** base64(SHA-256(SubjectPublicKeyInfo)) of the leaf: Chromium's --ignore-certificate-errors-spki-list. */
  leafSpkiSha256: string
  /** Removes the folder holding the files. */
  dispose(): void
}

export const LEAF_NAMES = ['example.com', '*.example.com', 'localhost']

function rsaPair(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  }
}

function serial(): string {
  // Positive, 16 bytes: browsers refuse serials with the high bit set as negative.
  const bytes = randomBytes(16)
  bytes[0] = bytes[0]! & 0x7f
  return bytes.toString('hex')
}

/** Makes the CA and the leaf (RSA 2048, valid from an hour ago for a day) in a new temporary folder. */
export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-pki-'))
  // Apache's children (www-data when the tests run as root) read the CA bundle at request time.
  chmodSync(dir, 0o755)
  const notBefore = new Date(Date.now() - 3600_000)
  const notAfter = new Date(Date.now() + 24 * 3600_000)

  const caKeys = rsaPair()
  const caPrivate = forge.pki.privateKeyFromPem(caKeys.privatePem)
  const ca = forge.pki.createCertificate()
  ca.publicKey = forge.pki.publicKeyFromPem(caKeys.publicPem)
  ca.serialNumber = serial()
  ca.validity.notBefore = notBefore
  ca.validity.notAfter = notAfter
  const caName = [{ name: 'commonName', value: 'Latchkey test CA (made at run time)' }]
  ca.setSubject(caName)
  ca.setIssuer(caName)
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ])
  ca.sign(caPrivate, forge.md.sha256.create())

  const leafKeys = rsaPair()
  const leaf = forge.pki.createCertificate()
  leaf.publicKey = forge.pki.publicKeyFromPem(leafKeys.publicPem)
  leaf.serialNumber = serial()
  leaf.validity.notBefore = notBefore
  leaf.validity.notAfter = notAfter
  leaf.setSubject([{ name: 'commonName', value: 'auth.example.com' }])
  leaf.setIssuer(caName)
  leaf.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
    {
      name: 'subjectAltName',
      altNames: [...LEAF_NAMES.map((value) => ({ type: 2, value })), { type: 7, ip: '127.0.0.1' }],
    },
  ])
  leaf.sign(caPrivate, forge.md.sha256.create())

  const caPem = forge.pki.certificateToPem(ca)
  const certPem = forge.pki.certificateToPem(leaf)
  const caFile = join(dir, 'ca.pem')
  const keyFile = join(dir, 'leaf.key.pem')
  const certFile = join(dir, 'leaf.cert.pem')
  writeFileSync(caFile, caPem)
  writeFileSync(keyFile, leafKeys.privatePem, { mode: 0o600 })
  writeFileSync(certFile, certPem)
  const spki = createPublicKey(leafKeys.publicPem).export({ type: 'spki', format: 'der' })
  return {
    dir,
    caPem,
    caFile,
    key: Buffer.from(leafKeys.privatePem),
    cert: Buffer.from(certPem),
    keyFile,
    certFile,
    leafSpkiSha256: createHash('sha256').update(spki).digest('base64'),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** True for example.com and any name under it: the names the e2e tests map to loopback. */
export function isExampleName(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '')
  return h === 'example.com' || h.endsWith('.example.com')
}

/** A `dns.lookup` replacement: *.example.com → 127.0.0.1, everything else refused (tests stay offline). */
export const exampleLookup: LookupFunction = (hostname, options, callback) => {
  const cb = callback as (err: NodeJS.ErrnoException | null, address: string | Array<{ address: string; family: number }>, family?: number) => void
  if (!isExampleName(hostname) && hostname !== 'localhost') {
    const err: NodeJS.ErrnoException = new Error(`test resolver: ${hostname} is not a test name`)
    err.code = 'ENOTFOUND'
    return cb(err, '', 4)
  }
  if ((options as { all?: boolean }).all) return cb(null, [{ address: '127.0.0.1', family: 4 }])
  return cb(null, '127.0.0.1', 4)
}

/** An HTTPS agent that trusts only the test CA and resolves the test names to loopback. */
export function testAgent(pki: Pick<TestPki, 'caPem'>): Agent {
  return new Agent({ ca: pki.caPem, lookup: exampleLookup, keepAlive: false })
}

/**
 * A `fetch` over node:https with the test agent: real names on the wire (SNI, Host, certificate
 * name check), loopback underneath. Redirects are never followed (callers look at each hop).
 * Enough of fetch for openid-client's `customFetch` and the tests' own calls.
 */
export function testFetch(pki: Pick<TestPki, 'caPem'>): (url: string | URL, init?: RequestInit) => Promise<Response> {
  const agent = testAgent(pki)
  return (input, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(String(input))
      if (url.protocol !== 'https:') return reject(new Error(`testFetch: only https, got ${url.href}`))
      const headers = new Headers(init.headers)
      let body: Buffer | undefined
      if (typeof init.body === 'string') body = Buffer.from(init.body)
      else if (init.body instanceof URLSearchParams) {
        body = Buffer.from(init.body.toString())
        if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8')
      } else if (init.body instanceof Uint8Array) body = Buffer.from(init.body)
      else if (init.body != null) return reject(new Error('testFetch: unsupported body type'))
      if (body) headers.set('content-length', String(body.length))
      const req = request(
        url,
        { method: init.method ?? 'GET', headers: Object.fromEntries(headers.entries()), agent, signal: init.signal ?? undefined },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('error', reject)
          res.on('end', () => {
            const out = new Headers()
            for (const [k, v] of Object.entries(res.headers)) {
              if (v === undefined) continue
              for (const one of Array.isArray(v) ? v : [v]) out.append(k, one)
            }
            const status = res.statusCode ?? 0
            const nullBody = [101, 204, 205, 304].includes(status)
            resolve(new Response(nullBody ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage ?? '', headers: out }))
          })
        },
      )
      req.on('error', reject)
      req.end(body)
    })
}

/**
 * An HTTP CONNECT proxy on loopback that maps the test names to 127.0.0.1: how clients that cannot
 * take a custom resolver (Apache's mod_auth_openidc through libcurl, Python requests through
 * HTTPS_PROXY) reach https://auth.example.com:PORT with the real name in SNI, Host and the
 * certificate check. Only CONNECT to *.example.com is served; anything else gets 403.
 */
export interface LoopbackProxy {
  port: number
  url: string
  /** host:port of every CONNECT served, in order (tests assert the names really went through). */
  tunnels: string[]
  close(): Promise<void>
}

export async function startLoopbackProxy(): Promise<LoopbackProxy> {
  const tunnels: string[] = []
  const sockets = new Set<Socket>()
  const server = createHttpServer((_req, res) => {
    res.writeHead(405, { 'content-type': 'text/plain' }).end('CONNECT only\n')
  })
  server.on('connect', (req, client: Socket, head: Buffer) => {
    sockets.add(client)
    client.on('close', () => sockets.delete(client))
    const target = req.url ?? ''
    const colon = target.lastIndexOf(':')
    const host = colon === -1 ? target : target.slice(0, colon)
    const port = Number(colon === -1 ? 443 : target.slice(colon + 1))
    if (!isExampleName(host) || !Number.isInteger(port)) {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n')
      return
    }
    tunnels.push(`${host}:${port}`)
    const upstream = connect({ host: '127.0.0.1', port })
    sockets.add(upstream)
    upstream.on('close', () => sockets.delete(upstream))
    upstream.on('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      if (head.length) upstream.write(head)
      upstream.pipe(client)
      client.pipe(upstream)
    })
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'))
    client.on('error', () => upstream.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    tunnels,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/** A free loopback TCP port (for servers whose URL must be known before they start). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

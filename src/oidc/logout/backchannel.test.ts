import { createServer, type Server } from 'node:http'
import { lookup } from 'node:dns/promises'
import { hostname } from 'node:os'
import { afterEach, expect, test } from 'vitest'
import { isPrivateAddress } from '../../common/host.js'
import { BackchannelSender } from './backchannel.js'

let server: Server | undefined
let sender: BackchannelSender | undefined
afterEach(async () => {
  sender?.close()
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
  server = undefined
})

async function listen(status: number): Promise<{ port: number; hits: () => number }> {
  let hits = 0
  server = createServer((_req, res) => {
    hits++
    res.statusCode = status
    res.end()
  })
  await new Promise<void>((resolve) => server!.listen(0, '0.0.0.0', resolve))
  return { port: (server.address() as { port: number }).port, hits: () => hits }
}

function logSink() {
  const lines: string[] = []
  return { lines, log: { info: (_f: Record<string, unknown>, m: string) => lines.push(`info ${m}`), warn: (_f: Record<string, unknown>, m: string) => lines.push(`warn ${m}`) } }
}

const token = async () => 'header.payload.signature'

test('security.md E4: without the allowance, a private literal and a name resolving to a private address are refused before connecting; no retry', async () => {
  const rp = await listen(200)
  const { lines, log } = logSink()
  sender = new BackchannelSender(log, false, { timeoutMs: 1000, retryDelaysMs: [10, 10] })
  sender.send({ clientId: 'literal', uri: `http://127.0.0.1:${rp.port}/bc`, token })
  // The machine's own name resolves to a loopback or private address here (containers, /etc/hosts).
  const own = hostname()
  const resolvesPrivate = isPrivateAddress((await lookup(own)).address)
  if (resolvesPrivate) sender.send({ clientId: 'dns', uri: `http://${own}:${rp.port}/bc`, token })
  await sender.idle()
  expect(rp.hits()).toBe(0)
  expect(lines).toContain("warn back-channel logout to client 'literal' failed: the address 127.0.0.1 is loopback, private or link-local (backchannel_logout_allow_private_networks is off)")
  if (resolvesPrivate) expect(lines.find((l) => l.startsWith("warn back-channel logout to client 'dns' failed:"))).toMatch(/resolves to .*, a loopback, private or link-local address/)
  expect(lines.filter((l) => l.startsWith('warn'))).toHaveLength(resolvesPrivate ? 2 : 1)
})

test('a 400 from the relying party is final (one attempt); a 204 counts as delivered; a redirect is not followed', async () => {
  const { lines, log } = logSink()
  for (const [status, attempts, line] of [
    [400, 1, "warn back-channel logout to client 'kasm' failed: the relying party answered 400"],
    [204, 1, 'info back-channel logout delivered'],
    [302, 1, "warn back-channel logout to client 'kasm' failed: the relying party answered 302 (redirects are not followed)"],
  ] as const) {
    const rp = await listen(status)
    sender = new BackchannelSender(log, true, { timeoutMs: 1000, retryDelaysMs: [10, 10] })
    sender.send({ clientId: 'kasm', uri: `http://127.0.0.1:${rp.port}/bc`, token })
    await sender.idle()
    expect(rp.hits()).toBe(attempts)
    expect(lines.at(-1)).toBe(line)
    sender.close()
    await new Promise<void>((resolve) => server!.close(() => resolve()))
    server = undefined
  }
})

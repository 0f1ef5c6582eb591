import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, test } from 'vitest'
import { SMTPServer } from 'smtp-server'
import type { SmtpConfig } from '../config/schema.js'
import { FilesystemNotifier, SEPARATOR, SmtpNotifier, createNotifier } from './index.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!()
})

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-notifier-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

describe('filesystem notifier', () => {
  test('creates the file (and its folder) and appends each message after a separator', async () => {
    const file = join(tempDir(), 'sub', 'notification.txt')
    const n = new FilesystemNotifier(file, () => new Date('2024-01-02T03:04:05Z'))
    await n.check()
    await n.send({ to: 'john.doe@example.com', toName: 'John Doe', title: 'Register your mobile', text: 'first link\r\n' })
    await n.send({ to: 'harry@example.com', title: 'Second', text: 'second link' })
    expect(readFileSync(file, 'utf8')).toBe(
      `${SEPARATOR}\nDate: 2024-01-02T03:04:05.000Z\nTo: John Doe <john.doe@example.com>\nSubject: Register your mobile\n\nfirst link\n` +
        `${SEPARATOR}\nDate: 2024-01-02T03:04:05.000Z\nTo: harry@example.com\nSubject: Second\n\nsecond link\n`,
    )
  })

  test('check fails clearly when the file cannot be written', async () => {
    const dir = tempDir()
    // A path under a regular file cannot be created.
    const blocked = new FilesystemNotifier(join(dir, 'file.txt'))
    await blocked.send({ to: 'a@b.c', title: 't', text: 'x' })
    await expect(new FilesystemNotifier(join(dir, 'file.txt', 'inner.txt')).check()).rejects.toThrow(/notifier: filesystem: cannot write/)
  })
})

interface Received {
  from: string
  to: string[]
  data: string
  secure: boolean
  user?: string
}

async function startSink(opts: { auth?: boolean } = {}): Promise<{ port: number; received: Received[] }> {
  const received: Received[] = []
  const server = new SMTPServer({
    secure: false,
    disabledCommands: opts.auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    authOptional: !opts.auth,
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === 'latchkey' && auth.password === 'smtp-pass') cb(null, { user: auth.username })
      else cb(new Error('Invalid username or password'))
    },
    onData(stream, session, cb) {
      let data = ''
      stream.on('data', (c: Buffer) => (data += c.toString('utf8')))
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data,
          secure: session.secure,
          ...(typeof session.user === 'string' ? { user: session.user } : {}),
        })
        cb()
      })
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const address = server.server.address()
  return { port: typeof address === 'object' && address ? address.port : 0, received }
}

function smtpConfig(port: number, extra: Partial<SmtpConfig> = {}): SmtpConfig {
  return {
    host: '127.0.0.1',
    port,
    scheme: 'smtp',
    sender: 'Latchkey <auth@example.com>',
    identifier: 'localhost',
    subject: '[Authelia] {title}',
    timeoutSeconds: 5,
    startupCheckAddress: 'test@authelia.com',
    disableRequireTls: true,
    disableStarttls: true,
    disableHtmlEmails: false,
    tls: { skipVerify: false, minimumVersion: 'TLS1.2' },
    ...extra,
  }
}

describe('smtp notifier', () => {
  test('delivers a message to an SMTP sink with the configured sender and subject', async () => {
    const sink = await startSink()
    const n = new SmtpNotifier(smtpConfig(sink.port))
    cleanups.push(() => n.close())
    await n.check()
    await n.send({ to: 'john.doe@example.com', toName: 'John Doe', title: 'Register your mobile', text: 'Open https://auth.example.com/x' })
    expect(sink.received).toHaveLength(1)
    const mail = sink.received[0]!
    expect(mail.from).toBe('auth@example.com')
    expect(mail.to).toEqual(['john.doe@example.com'])
    expect(mail.data).toMatch(/^Subject: \[Authelia\] Register your mobile$/m)
    expect(mail.data).toMatch(/^To: John Doe <john.doe@example.com>$/m)
    expect(mail.data).toContain('Open https://auth.example.com/x')
  })

  test('authenticates with username and password', async () => {
    const sink = await startSink({ auth: true })
    const n = createNotifier({ disableStartupCheck: false, smtp: smtpConfig(sink.port, { username: 'latchkey', password: 'smtp-pass' }) })
    await n.send({ to: 'a@example.com', title: 'T', text: 'x' })
    expect(sink.received[0]?.user).toBe('latchkey')
  })

  test('refuses to send in clear when STARTTLS is required but not offered', async () => {
    const sink = await startSink()
    const n = new SmtpNotifier(smtpConfig(sink.port, { disableRequireTls: false, disableStarttls: false }))
    cleanups.push(() => n.close())
    await expect(n.send({ to: 'a@example.com', title: 'T', text: 'x' })).rejects.toThrow(/STARTTLS/i)
    expect(sink.received).toHaveLength(0)
  })

  test('check names the server when it cannot be reached', async () => {
    const sink = await startSink()
    const port = sink.port
    await cleanups.pop()!()
    const n = new SmtpNotifier(smtpConfig(port, { timeoutSeconds: 1 }))
    await expect(n.check()).rejects.toThrow(`notifier: smtp: cannot reach 127.0.0.1:${port}`)
  })
})

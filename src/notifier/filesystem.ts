import { appendFile, mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Notifier } from './notifier.js'

/**
 * `notifier.filesystem`: appends every message to one file (created when missing), each after a
 * separator line, so a test or an operator can read the latest link at the end. Authelia
 * rewrites the file with the newest message; appending keeps the history, and the newest message
 * is still the last block.
 */
export class FilesystemNotifier implements Notifier {
  constructor(
    private readonly filename: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async send(message: { to: string; toName?: string; title: string; text: string; html?: string }): Promise<void> {
    const to = message.toName ? `${message.toName} <${message.to}>` : message.to
    const block =
      `${SEPARATOR}\n` +
      `Date: ${this.now().toISOString()}\n` +
      `To: ${to}\n` +
      `Subject: ${message.title}\n\n` +
      `${message.text.replace(/\r\n/g, '\n').trimEnd()}\n`
    await mkdir(dirname(this.filename), { recursive: true })
    await appendFile(this.filename, block, { encoding: 'utf8', mode: 0o600 })
  }

  async check(): Promise<void> {
    try {
      await mkdir(dirname(this.filename), { recursive: true })
      await appendFile(this.filename, '', { mode: 0o600 })
    } catch (err) {
      throw new Error(`notifier: filesystem: cannot write '${this.filename}': ${(err as Error).message}`)
    }
  }
}

export const SEPARATOR = '==================== latchkey notification ===================='

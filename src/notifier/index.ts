import type { NotifierConfig } from '../config/schema.js'
import { FilesystemNotifier } from './filesystem.js'
import type { Notifier } from './notifier.js'
import { SmtpNotifier } from './smtp.js'

export type { Notifier } from './notifier.js'
export { FilesystemNotifier, SEPARATOR } from './filesystem.js'
export { SmtpNotifier } from './smtp.js'

/** The bits of a pino logger the notifier uses. */
export interface NotifierLogger {
  info(obj: object, msg: string): void
}

/**
 * The configured notifier (the config loader guarantees exactly one of the two). With a logger,
 * each message sent is logged by title and channel (never its text: it carries a link token).
 */
export function createNotifier(config: NotifierConfig, logger?: NotifierLogger): Notifier {
  const inner = config.smtp
    ? new SmtpNotifier(config.smtp)
    : config.filesystem
      ? new FilesystemNotifier(config.filesystem.filename)
      : undefined
  if (!inner) throw new Error("notifier: you must ensure either the 'smtp' or 'filesystem' notifier is configured")
  if (!logger) return inner
  const channel = config.smtp ? 'smtp' : 'filesystem'
  return {
    async send(message) {
      await inner.send(message)
      logger.info({ channel, title: message.title }, 'notification sent')
    },
    check: () => inner.check(),
  }
}

import type { NotifierConfig } from '../config/schema.js'
import { FilesystemNotifier } from './filesystem.js'
import type { Notifier } from './notifier.js'
import { SmtpNotifier } from './smtp.js'

export type { Notifier } from './notifier.js'
export { FilesystemNotifier, SEPARATOR } from './filesystem.js'
export { SmtpNotifier } from './smtp.js'

/** The configured notifier (the config loader guarantees exactly one of the two). */
export function createNotifier(config: NotifierConfig): Notifier {
  if (config.smtp) return new SmtpNotifier(config.smtp)
  if (config.filesystem) return new FilesystemNotifier(config.filesystem.filename)
  throw new Error("notifier: you must ensure either the 'smtp' or 'filesystem' notifier is configured")
}

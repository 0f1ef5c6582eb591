/** Sends a message to a person (identity verification links). */
export interface Notifier {
  send(message: { to: string; toName?: string; title: string; text: string; html?: string }): Promise<void>
  /** Checks the channel works (startup check); throws with a clear message when it does not. */
  check(): Promise<void>
}

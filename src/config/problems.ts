/**
 * Configuration problems: every one is collected (never thrown one by one) so an operator sees the
 * whole list in a single start-up attempt (CONVENTIONS §5).
 */

export interface ConfigProblem {
  /** The file as it was given on the command line; absent when the problem has no single source. */
  file?: string
  /** 1-based. */
  line?: number
  /** 1-based. */
  column?: number
  /** Latchkey addition: the environment variable the value came from (then file/line are absent). */
  env?: string
  /** Dotted key path, list items as `[i]`: `identity_providers.oidc.clients[0].secret`. */
  path: string
  /** Never contains a secret's value: it names the key instead. */
  message: string
  hint?: string
  severity: 'error' | 'warning'
}

export class ConfigError extends Error {
  readonly code = 'config_invalid'
  constructor(readonly problems: ConfigProblem[]) {
    const errors = problems.filter((p) => p.severity === 'error')
    super(
      `Can't continue due to the errors loading the configuration (${errors.length} error${errors.length === 1 ? '' : 's'})` +
        (errors[0] ? `: ${formatProblem(errors[0])}` : ''),
    )
    this.name = 'ConfigError'
  }
}

/** One line: `configuration.yml:42:13: totp.period: must be 15 or more, got 10 (hint: 30 is the usual value)`. */
export function formatProblem(p: ConfigProblem): string {
  let where = ''
  if (p.env) where = `environment ${p.env}`
  else if (p.file) where = [p.file, p.line, p.line !== undefined ? p.column : undefined].filter((x) => x !== undefined).join(':')
  const head = where ? `${where}: ` : ''
  const path = p.path ? `${p.path}: ` : ''
  // Messages are single-line by construction, but YAML parser text or OS errors might not be.
  const message = p.message.replace(/\s*\n\s*/g, ' ')
  return `${head}${path}${message}${p.hint ? ` (hint: ${p.hint})` : ''}`
}

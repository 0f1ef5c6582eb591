import { ConfigError, formatProblem, loadConfig, type ConfigProblem } from '../config/load.js'
import { parseArgs, UsageError } from './args.js'
import { resolveConfigFiles } from './config-files.js'
import type { CliIo } from './io.js'

export const VALIDATE_HELP = `Usage: latchkey validate-config [--config FILE]...

Loads and checks the configuration without starting anything, and prints as Authelia does:
"Configuration parsed and loaded with errors:" and/or "...with warnings:", each followed by one
"\t - FILE:LINE:COLUMN: KEY: MESSAGE" line per problem, or "Configuration parsed and loaded
successfully without errors.". Exit 0 when it loads (warnings included), 2 on any error.
`

export function validateConfig(argv: string[], io: CliIo): number {
  const { flags } = parseArgs(argv, { config: 'strings', c: 'strings', help: 'boolean', h: 'boolean' })
  if (flags.help || flags.h) {
    io.stdout(VALIDATE_HELP)
    return 0
  }
  const files = resolveConfigFiles([...((flags.config as string[]) ?? []), ...((flags.c as string[]) ?? [])], io)
  if (files.length === 0) throw new UsageError('no configuration file: pass --config FILE (or set LATCHKEY_CONFIG)')
  // Authelia's exact layout (cmd/authelia validate-config), all on stdout; Latchkey exits 2 on errors.
  let errors: ConfigProblem[] = []
  let warnings: ConfigProblem[]
  try {
    warnings = loadConfig({ files, env: io.env }).warnings
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    errors = err.problems.filter((p) => p.severity === 'error')
    warnings = err.problems.filter((p) => p.severity === 'warning')
  }
  if (errors.length) {
    io.stdout('Configuration parsed and loaded with errors:\n\n')
    for (const p of errors) io.stdout(`\t - ${formatProblem(p)}\n`)
    io.stdout('\n')
  }
  if (warnings.length) {
    io.stdout('Configuration parsed and loaded with warnings:\n\n')
    for (const p of warnings) io.stdout(`\t - ${formatProblem(p)}\n`)
    io.stdout('\n')
  }
  if (!errors.length && !warnings.length) io.stdout('Configuration parsed and loaded successfully without errors.\n\n')
  return errors.length ? 2 : 0
}

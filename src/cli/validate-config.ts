import { ConfigError, formatProblem, loadConfig } from '../config/load.js'
import { parseArgs, UsageError } from './args.js'
import { resolveConfigFiles } from './config-files.js'
import type { CliIo } from './io.js'

export const VALIDATE_HELP = `Usage: latchkey validate-config [--config FILE]...

Loads and checks the configuration without starting anything. Exit 0 when it loads, 2 otherwise.
`

export function validateConfig(argv: string[], io: CliIo): number {
  const { flags } = parseArgs(argv, { config: 'strings', c: 'strings', help: 'boolean', h: 'boolean' })
  if (flags.help || flags.h) {
    io.stdout(VALIDATE_HELP)
    return 0
  }
  const files = resolveConfigFiles([...((flags.config as string[]) ?? []), ...((flags.c as string[]) ?? [])], io)
  if (files.length === 0) throw new UsageError('no configuration file: pass --config FILE (or set LATCHKEY_CONFIG)')
  try {
    const { warnings } = loadConfig({ files, env: io.env })
    if (warnings.length) {
      io.stdout('Configuration parsed and loaded with warnings:\n')
      for (const w of warnings) io.stdout(`  - ${formatProblem(w)}\n`)
    }
    io.stdout('Configuration parsed and loaded successfully without errors.\n')
    return 0
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    io.stderr('Configuration parsed and loaded with errors:\n\n')
    for (const p of err.problems) if (p.severity === 'error') io.stderr(`\t - ${formatProblem(p)}\n`)
    const warnings = err.problems.filter((p) => p.severity === 'warning')
    if (warnings.length) {
      io.stderr('\nand warnings:\n\n')
      for (const p of warnings) io.stderr(`\t - ${formatProblem(p)}\n`)
    }
    return 2
  }
}

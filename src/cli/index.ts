import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { projectRoot } from '../common/project-root.js'
import { UsageError } from './args.js'
import type { CliIo } from './io.js'

// Commands load their modules on demand: `crypto` or `--help` need neither Fastify nor SQLite.
const serve = async (argv: string[], io: CliIo) => (await import('./serve.js')).serve(argv, io)

export const MAIN_HELP = `Latchkey: a self-hosted OpenID Connect 1.0 provider with its own login portal,
configured like Authelia.

Usage: latchkey [command] [flags]

Commands:
  serve               start the server (the default command)
  validate-config     check a configuration and print every problem
  crypto              hash passwords and secrets, generate key pairs and random values
  storage             migrations, users' TOTP configurations, subject identifiers
  doctor              check a configuration and print what each relying party receives
  demo                the embedded demo in ./data: a new Kasm client secret

Run 'latchkey <command> --help' for a command's flags. Docs: docs/cli.md
`

function version(): string {
  return (JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version
}

/**
 * Runs one command; resolves the exit code. `serve` resolves once listening and keeps the process
 * alive through its server; failures print one clear line and exit non-zero.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case undefined:
        return (await serve([], io)).code
      case 'serve':
        return (await serve(rest, io)).code
      case 'validate-config':
        return (await import('./validate-config.js')).validateConfig(rest, io)
      case 'crypto':
        return await (await import('./crypto.js')).cryptoCommand(rest, io)
      case 'doctor':
        return await (await import('./doctor.js')).doctorCommand(rest, io)
      case 'demo':
        return await (await import('./demo.js')).demoCommand(rest, io)
      case 'storage':
        return await (await import('./storage.js')).storageCommand(rest, io)
      case '--help':
      case '-h':
      case 'help':
        io.stdout(MAIN_HELP)
        return 0
      case '--version':
      case 'version':
        io.stdout(`latchkey ${version()}\n`)
        return 0
      default:
        // Flags without a command belong to serve (`latchkey --config F`), as in Authelia.
        if (command.startsWith('-')) return (await serve(argv, io)).code
        throw new UsageError(`unknown command: ${command} (see latchkey --help)`)
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`latchkey: ${err.message}\n`)
      return 1
    }
    const e = err as Error
    io.stderr(`latchkey: ${e.message}\n`)
    return 1
  }
}

import { join } from 'node:path'
import { createLogger } from '../server/logger.js'
import { startServer, type RunningServer } from '../server/runtime.js'
import { parseArgs } from './args.js'
import { loadConfigOrReport, resolveConfigFiles } from './config-files.js'
import { demoDataDir, ensureDemoSetup, kasmSecretCommandLine } from './demo.js'
import { keepRunningWhenStdoutCloses, processIo, type CliIo } from './io.js'

/** Start-up refusals that no restart can fix. */
const NEEDS_THE_ADMIN = new Set(['ENCRYPTION_KEY_MISMATCH', 'SCHEMA_TOO_NEW', 'NOT_LATCHKEY', 'NOT_WRITABLE'])

export const SERVE_HELP = `Usage: latchkey [serve] [--config FILE]...

Starts Latchkey. Configuration files are merged in order (later wins). Without --config it reads
LATCHKEY_CONFIG (comma-separated), else ./configuration.yml, else the embedded demo in ./data
(created on first start, with a demo user whose password is printed once).

Flags:
  -c, --config FILE   configuration file (repeatable)
  -h, --help          this help
`

/** Resolves once the server is listening; `stopped` resolves after a signal has shut it down. */
export async function serve(argv: string[], io: CliIo, opts: { installSignalHandlers?: boolean } = {}): Promise<{ code: number; server?: RunningServer; stopped?: Promise<void> }> {
  const { flags } = parseArgs(argv, { config: 'strings', c: 'strings', help: 'boolean', h: 'boolean' })
  if (flags.help || flags.h) {
    io.stdout(SERVE_HELP)
    return { code: 0 }
  }
  if (io === processIo) keepRunningWhenStdoutCloses()
  let files = resolveConfigFiles([...((flags.config as string[]) ?? []), ...((flags.c as string[]) ?? [])], io)
  let demo: Awaited<ReturnType<typeof ensureDemoSetup>> | undefined
  if (files.length === 0) {
    demo = await ensureDemoSetup(demoDataDir(io))
    files = [demo.configFile]
  }
  const config = loadConfigOrReport(files, io)
  if (!config) return { code: 2 }
  const logger = createLogger(config.log)
  let server: RunningServer
  try {
    server = await startServer(config, logger)
  } catch (err) {
    const e = err as Error & { code?: string }
    logger.fatal({ errorCode: e.code }, `cannot start: ${e.message}`)
    logger.flush?.()
    io.stderr(`latchkey: cannot start: ${e.message}\n`)
    // Like a configuration error (exit 2), these need the admin: a supervisor restarting the
    // process would only fail again (systemd: RestartPreventExitStatus=2). Others may be passing.
    return { code: e.code !== undefined && NEEDS_THE_ADMIN.has(e.code) ? 2 : 1 }
  }
  logger.info({ url: server.url, config: files }, 'Latchkey is listening')
  if (demo) {
    io.stdout(`\nLatchkey is running the embedded demo from ${files[0]}\n`)
    io.stdout(`  Open ${server.url}/ in a browser.\n`)
    if (demo.created) {
      io.stdout(`  Demo user: ${demo.created.username}  password: ${demo.created.password}   (shown once; only its digest is stored)\n`)
      io.stdout(`  Kasm client: id kasm  secret: ${demo.created.kasmSecret}   (shown once)\n`)
      io.stdout(`  A new Kasm secret at any time: ${kasmSecretCommandLine(io, join(files[0]!, '..'))}\n`)
    } else {
      io.stdout(`  Demo user: demo (its password was shown on the first start; to set another, put a digest from\n`)
      io.stdout(`  'latchkey crypto hash generate argon2 --password P' into ${join(files[0]!, '..', 'users_database.yml')})\n`)
      io.stdout(`  Kasm client: id kasm (its secret was shown on the first start; for a new one, run\n`)
      io.stdout(`  '${kasmSecretCommandLine(io, join(files[0]!, '..'))}', then restart)\n`)
    }
    io.stdout(`  TOTP registration: the one-time code to type in is written to ${join(files[0]!, '..', 'notification.txt')}\n`)
    if (config.session.cookies.some((c) => c.domain === 'localhost') && server.url.includes('://127.0.0.1:')) {
      io.stdout(`  Security keys and passkeys: open ${server.url.replace('://127.0.0.1:', '://localhost:')}/ instead (WebAuthn needs a domain name, not an IP address)\n`)
    }
    io.stdout(`  OpenID discovery: ${server.url}/.well-known/openid-configuration\n\n`)
  }
  let stopped: Promise<void> | undefined
  if (opts.installSignalHandlers !== false) {
    stopped = new Promise<void>((resolveStopped) => {
      const onSignal = (signal: NodeJS.Signals) => {
        logger.info({ signal }, 'shutting down: finishing in-flight requests')
        server
          .stop()
          .then(() => logger.info('stopped cleanly'))
          .catch((err: unknown) => logger.error({ err }, 'error while stopping'))
          .finally(() => {
            logger.flush?.()
            resolveStopped()
          })
      }
      process.once('SIGTERM', onSignal)
      process.once('SIGINT', onSignal)
    })
  }
  return { code: 0, server, stopped }
}

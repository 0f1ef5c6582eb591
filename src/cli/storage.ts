import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Config } from '../config/schema.js'
import { openStorage } from '../storage/index.js'
import type { Storage } from '../storage/storage.js'
import { openUserProvider } from '../authn/open.js'
import type { User } from '../authn/users.js'
import { readCertificatesDirectory } from '../config/certificates.js'
import { systemClock } from '../common/clock.js'
import { newTotpConfiguration, otpauthUri } from '../totp/index.js'
import { intFlag, parseArgs, UsageError } from './args.js'
import { loadConfigOrReport, resolveConfigFiles } from './config-files.js'
import { webauthnCommand } from './webauthn.js'
import type { CliIo } from './io.js'

export const STORAGE_HELP = `Usage:
  latchkey storage migrate list  [--config FILE]...
  latchkey storage migrate up    [--config FILE]... [--target N]
  latchkey storage migrate down  [--config FILE]... --target N
  latchkey storage user totp generate USER [--secret BASE32] [--force] [--config FILE]...
  latchkey storage user totp delete USER [--config FILE]...
  latchkey storage user identifiers export [--file FILE] [--config FILE]...
  latchkey storage user webauthn list [USER] [--config FILE]...
  latchkey storage user webauthn delete USER (--all | --description DESC | --kid KID) [--config FILE]...
  latchkey storage user webauthn export [--file webauthn.yml] [--config FILE]...
  latchkey storage user webauthn import --file webauthn.yml [--config FILE]...
  latchkey storage import authelia [--authelia-config FILE | --sqlite PATH | --postgres ADDRESS | --mysql ADDRESS]...
      [--encryption-key-file FILE] [--dry-run] [--force] [--config FILE]...   (see --help)

Works on the database named by storage.* in the configuration (stop the server before
migrating down). totp generate prints the otpauth:// URI to load into an authenticator app.
`

const COMMON = { config: 'strings', c: 'strings', help: 'boolean', h: 'boolean' } as const

export async function storageCommand(argv: string[], io: CliIo): Promise<number> {
  const [group, ...rest] = argv
  if (group === 'import' && (rest.includes('--help') || rest.includes('-h'))) {
    io.stdout((await import('./import-authelia.js')).IMPORT_AUTHELIA_HELP)
    return 0
  }
  if (!group || group === '--help' || group === '-h' || group === 'help' || rest.includes('--help') || rest.includes('-h')) {
    io.stdout(STORAGE_HELP)
    return group ? 0 : 1
  }
  if (group === 'migrate') return migrate(rest, io)
  if (group === 'user') return user(rest, io)
  if (group === 'import') {
    if (rest[0] !== 'authelia') throw new UsageError('storage import needs a source: storage import authelia')
    return (await import('./import-authelia.js')).importAuthelia(rest.slice(1), io)
  }
  throw new UsageError(`unknown command: storage ${group} (see latchkey storage --help)`)
}

function loadFor(flags: Record<string, unknown>, io: CliIo): Config | undefined {
  const files = resolveConfigFiles([...((flags.config as string[]) ?? []), ...((flags.c as string[]) ?? [])], io)
  if (files.length === 0) throw new UsageError('no configuration file: pass --config FILE (or set LATCHKEY_CONFIG)')
  return loadConfigOrReport(files, io, { quiet: true })
}

async function withStorage<T>(config: Config, migrateNow: boolean, fn: (s: Storage) => Promise<T>): Promise<T> {
  const storage = await openStorage(config.storage, undefined, { migrate: migrateNow })
  try {
    return await fn(storage)
  } finally {
    await storage.close()
  }
}

async function migrate(argv: string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = argv
  const { flags, positionals } = parseArgs(rest, { ...COMMON, target: 'string' })
  if (positionals.length) throw new UsageError(`unexpected argument: ${positionals[0]}`)
  if (!verb || !['list', 'up', 'down'].includes(verb)) throw new UsageError('storage migrate needs list, up or down')
  const config = loadFor(flags, io)
  if (!config) return 2
  const target = intFlag(flags.target, 'target', 0, 100000)
  if (verb === 'down' && target === undefined) throw new UsageError('storage migrate down needs --target N (0 removes everything)')
  return withStorage(config, false, async (storage) => {
    if (verb === 'list') {
      io.stdout('Version  Applied               Name\n')
      for (const m of await storage.listMigrations()) {
        const applied = m.appliedAt ? new Date(m.appliedAt * 1000).toISOString().replace('.000Z', 'Z') : 'pending'.padEnd(20)
        io.stdout(`${String(m.version).padStart(7)}  ${applied.padEnd(20)}  ${m.name}\n`)
      }
      return 0
    }
    const applied = verb === 'up' ? await storage.migrateUp(target) : await storage.migrateDown(target!)
    io.stdout(
      applied.length === 0
        ? 'Nothing to do: the schema is already at the requested version.\n'
        : `${verb === 'up' ? 'Applied' : 'Reverted'} migration${applied.length > 1 ? 's' : ''} ${applied.join(', ')}.\n`,
    )
    return 0
  })
}

async function user(argv: string[], io: CliIo): Promise<number> {
  const [kind, verb, ...rest] = argv
  if (kind === 'totp' && (verb === 'generate' || verb === 'delete')) {
    const { flags, positionals } = parseArgs(rest, { ...COMMON, secret: 'string', force: 'boolean', path: 'string' })
    const username = positionals[0]
    if (!username || positionals.length > 1) throw new UsageError(`storage user totp ${verb} needs exactly one USER`)
    const config = loadFor(flags, io)
    if (!config) return 2
    return withStorage(config, true, async (storage) => {
      if (verb === 'delete') {
        const deleted = await storage.deleteTotpConfiguration(username)
        if (!deleted) {
          io.stderr(`latchkey: user '${username}' has no TOTP configuration\n`)
          return 1
        }
        io.stdout(`Successfully deleted TOTP configuration for user '${username}'\n`)
        return 0
      }
      const users = await openUserProvider(config.authenticationBackend, { watch: false, extraCa: readCertificatesDirectory(config.certificatesDirectory) })
      let known: User | undefined
      try {
        known = await users.findUser(username)
      } finally {
        await users.close()
      }
      if (!known) throw new UsageError(`user '${username}' is not in the ${config.authenticationBackend.ldap ? 'LDAP directory' : 'users file'} (or is disabled)`)
      if (!flags.force && (await storage.findTotpConfiguration(known.username)))
        throw new UsageError(`${known.username} already has a TOTP configuration, use --force to overwrite`)
      const totp = newTotpConfiguration(config.totp, known.username, systemClock.now(), flags.secret as string | undefined)
      await storage.saveTotpConfiguration(totp)
      const uri = otpauthUri(totp)
      // Authelia's exact line (4.38+ wording), which scripts parse for the URI.
      let extra = ''
      if (typeof flags.path === 'string') {
        const { default: QRCode } = await import('qrcode')
        const target = resolve(io.cwd, flags.path)
        // PNG as Authelia writes; SVG when the name asks for it.
        const svg = /\.svg$/i.test(target)
        // The image carries the TOTP secret: owner-only, also when it replaces an older file.
        writeFileSync(target, svg ? await QRCode.toString(uri, { type: 'svg' }) : await QRCode.toBuffer(uri, { type: 'png', width: 256 }), { mode: 0o600 })
        chmodSync(target, 0o600)
        extra = ` and saved it as a ${svg ? 'SVG' : 'PNG'} image at the path '${flags.path}'`
      }
      io.stdout(`Successfully generated TOTP configuration for user '${known.username}' with URI '${uri}'${extra}\n`)
      return 0
    })
  }
  if (kind === 'webauthn') {
    const { flags, positionals } = parseArgs(rest, { ...COMMON, file: 'string', all: 'boolean', description: 'string', kid: 'string' })
    const config = loadFor(flags, io)
    if (!config) return 2
    return withStorage(config, true, (storage) => webauthnCommand(verb, positionals, flags, storage, io, { readFile: (f) => (existsSync(f) ? readFileSync(f, 'utf8') : undefined) }))
  }
  if (kind === 'identifiers' && verb === 'export') {
    const { flags, positionals } = parseArgs(rest, { ...COMMON, file: 'string' })
    if (positionals.length) throw new UsageError(`unexpected argument: ${positionals[0]}`)
    const config = loadFor(flags, io)
    if (!config) return 2
    return withStorage(config, true, async (storage) => {
      const identifiers = (await storage.listSubjectIdentifiers()).map((i) => ({
        service: 'openid',
        sector_id: i.sectorIdentifier,
        username: i.username,
        identifier: i.subject,
      }))
      const text = JSON.stringify({ identifiers }, null, 2) + '\n'
      if (typeof flags.file === 'string') {
        writeFileSync(resolve(io.cwd, flags.file), text, { mode: 0o600 })
        io.stdout(`Exported ${identifiers.length} identifiers to ${resolve(io.cwd, flags.file)}\n`)
      } else io.stdout(text)
      return 0
    })
  }
  throw new UsageError('storage user needs: totp generate USER, totp delete USER, identifiers export, or webauthn list|delete|export|import')
}

import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { stringify } from 'yaml'
import { convertAutheliaData, type Conversion } from '../authelia/convert.js'
import { AutheliaImportError, readAutheliaDatabase, type AutheliaData } from '../authelia/read.js'
import { AutheliaSourceError, openAutheliaSource, type AutheliaSourceSpec } from '../authelia/source.js'
import { formatProblem } from '../config/load.js'
import { emptyMap, mergeRaw, parseYaml, type RawMap } from '../config/raw.js'
import { readTextFile } from '../config/read-text.js'
import { MapView, Problems } from '../config/reader.js'
import type { Config, StorageConfig } from '../config/schema.js'
import { readStorage } from '../config/validate/storage.js'
import { systemClock } from '../common/clock.js'
import { mysqlOptions, openStorage, postgresOptions, tlsOptions } from '../storage/index.js'
import { planImport } from '../storage/common/import-plan.js'
import type { ImportAction, ImportPlan } from '../storage/storage.js'
import { parseArgs, UsageError } from './args.js'
import { loadConfigOrReport, resolveConfigFiles } from './config-files.js'
import type { CliIo } from './io.js'

export const IMPORT_AUTHELIA_HELP = `Usage:
  latchkey storage import authelia [--config FILE]... [--authelia-config FILE]...
      [--sqlite PATH | --postgres ADDRESS | --mysql ADDRESS] [--database NAME] [--schema NAME]
      [--username NAME] [--password-file FILE] [--encryption-key-file FILE] [--dry-run] [--force]

Copies from an Authelia database (schema 7 to 24: Authelia 4.37.5 to 4.39.x) into the storage of
Latchkey's configuration: TOTP devices (re-encrypted with Latchkey's key), the opaque subject
identifiers (sub) and pre-configured consents. The Authelia database is named by the storage
section of Authelia's configuration (--authelia-config) or by the flags, which win; its
encryption key is that section's storage.encryption_key or --encryption-key-file.

All of it in one transaction; a second run changes nothing. A user who already has another TOTP
device, or another sub, in Latchkey stops the import (nothing is written) unless --force
replaces them. --dry-run prints the same plan and writes nothing. Stop Authelia first.
`

const FLAGS = {
  config: 'strings',
  c: 'strings',
  'authelia-config': 'strings',
  sqlite: 'string',
  postgres: 'string',
  mysql: 'string',
  database: 'string',
  schema: 'string',
  username: 'string',
  'password-file': 'string',
  'encryption-key-file': 'string',
  'dry-run': 'boolean',
  force: 'boolean',
} as const

export async function importAuthelia(argv: string[], io: CliIo): Promise<number> {
  const { flags, positionals } = parseArgs(argv, FLAGS)
  if (positionals.length) throw new UsageError(`unexpected argument: ${positionals[0]}`)
  const dryRun = flags['dry-run'] === true
  const force = flags.force === true

  const files = resolveConfigFiles([...((flags.config as string[]) ?? []), ...((flags.c as string[]) ?? [])], io)
  if (files.length === 0) throw new UsageError('no configuration file: pass --config FILE (or set LATCHKEY_CONFIG)')
  const config = loadConfigOrReport(files, io, { quiet: true })
  if (!config) return 2
  const source = autheliaStorage(flags, io)
  if (!source) return 2

  // Everything is read and decrypted before Latchkey's storage is opened: a wrong key, a refused
  // schema or a broken row stops here, with nothing touched.
  let data: AutheliaData
  let description: string
  try {
    const db = await openAutheliaSource(sourceSpec(source))
    description = db.description
    try {
      data = await readAutheliaDatabase(db, source.encryptionKey)
    } finally {
      await db.close()
    }
  } catch (err) {
    if (err instanceof AutheliaImportError || err instanceof AutheliaSourceError) {
      io.stderr(`latchkey: ${err.message}\n`)
      return 1
    }
    throw err
  }
  const conversion = convertAutheliaData(data, { now: systemClock.now(), defaultIssuer: config.totp.issuer })
  io.stdout(`Authelia database: ${description}, schema version ${data.schemaVersion} (${autheliaRelease(data.schemaVersion)})\n`)
  io.stdout(`Encryption key: verified (Authelia's check value decrypts)\n`)
  io.stdout(`Latchkey storage: ${describeTarget(config)}\n`)

  const plan = dryRun ? await dryRunPlan(config, conversion, force) : await applyImport(config, conversion, force)
  if (typeof plan === 'string') {
    io.stderr(`latchkey: ${plan}\n`)
    return 1
  }
  printPlan(io, conversion, plan)
  const conflicts = [...plan.subjects, ...plan.totpConfigurations, ...plan.preConfiguredConsents, ...plan.webauthnCredentials, ...plan.secondFactorPreferences].filter((a) => a === 'conflict').length
  const changes = [...plan.subjects, ...plan.totpConfigurations, ...plan.preConfiguredConsents, ...plan.webauthnCredentials, ...plan.secondFactorPreferences].filter((a) => a === 'add' || a === 'replace').length
  if (conflicts) {
    io.stdout(
      `\n${dryRun ? 'Dry run: the import would be refused' : 'Refused'}: ${conflicts} record${conflicts === 1 ? '' : 's'} conflict${conflicts === 1 ? 's' : ''} with what Latchkey already holds (marked conflict). ` +
        `Nothing was written. --force replaces those TOTP devices, WebAuthn credentials, second-factor preferences and subject identifiers with Authelia's (a sub or a WebAuthn credential id that belongs to another user is never taken over).\n`,
    )
    return 1
  }
  if (dryRun) io.stdout(`\nDry run: nothing was written; without --dry-run ${changes === 0 ? 'nothing would change' : `${changes} record${changes === 1 ? '' : 's'} would be written`}.\n`)
  else if (changes === 0) io.stdout('\nNothing to do: everything was imported already.\n')
  else io.stdout(`\nImported: ${summary(plan)}.\n`)
  return 0
}

function autheliaRelease(version: number): string {
  return version <= 7 ? 'Authelia 4.37' : version <= 15 ? 'Authelia 4.38' : 'Authelia 4.39'
}

function describeTarget(config: Config): string {
  const s = config.storage
  if (s.local) return `SQLite ${s.local.path}`
  if (s.postgres) {
    const p = postgresOptions(s)
    return `PostgreSQL at ${p.host.startsWith('/') ? p.host : `${p.host}:${p.port}`} (database ${p.database}, schema ${p.schema})`
  }
  const m = mysqlOptions(s)
  return `MySQL at ${m.socketPath ?? `${m.host}:${m.port}`} (database ${m.database})`
}

async function applyImport(config: Config, conversion: Conversion, force: boolean): Promise<ImportPlan> {
  const storage = await openStorage(config.storage)
  try {
    return await storage.importRecords(conversion.batch, { force, apply: true })
  } finally {
    await storage.close()
  }
}

/**
 * The plan without a write: a database that does not exist yet (or has no Latchkey schema yet) is
 * planned as empty rather than created; a half-migrated one must be migrated first.
 */
async function dryRunPlan(config: Config, conversion: Conversion, force: boolean): Promise<ImportPlan | string> {
  const empty = (): ImportPlan => ({ ...planImport({ subjects: [], totp: new Map(), consentKeys: new Set(), webauthn: [], preferences: new Map() }, conversion.batch, force).plan, applied: false })
  if (config.storage.local && !existsSync(config.storage.local.path)) return empty()
  const storage = await openStorage(config.storage, undefined, { migrate: false })
  try {
    const migrations = await storage.listMigrations()
    const pending = migrations.filter((m) => m.appliedAt === undefined).length
    if (pending === migrations.length) return empty()
    if (pending) return `Latchkey's database has ${pending} pending migration(s): run 'latchkey storage migrate up' first, or import without --dry-run (which applies them)`
    return await storage.importRecords(conversion.batch, { force, apply: false })
  } finally {
    await storage.close()
  }
}

function printPlan(io: CliIo, conversion: Conversion, plan: ImportPlan): void {
  const section = (title: string, actions: ImportAction[], labels: string[]) => {
    const count = (a: ImportAction) => actions.filter((x) => x === a).length
    io.stdout(`\n${title}: ${count('add')} to add, ${count('unchanged')} unchanged, ${count('replace')} to replace, ${count('conflict')} in conflict\n`)
    actions.forEach((a, i) => io.stdout(`  ${a.padEnd(10)} ${labels[i]}\n`))
  }
  section('Subject identifiers (sub)', plan.subjects, conversion.labels.subjects)
  section('TOTP devices', plan.totpConfigurations, conversion.labels.totpConfigurations)
  section('Pre-configured consents', plan.preConfiguredConsents, conversion.labels.preConfiguredConsents)
  section('WebAuthn credentials', plan.webauthnCredentials, conversion.labels.webauthnCredentials)
  section('Second-factor preferences', plan.secondFactorPreferences, conversion.labels.secondFactorPreferences)
  if (conversion.mapped.length) {
    io.stdout('\nMapped:\n')
    for (const m of conversion.mapped) io.stdout(`  - ${m}\n`)
  }
  io.stdout('\nNot imported:\n')
  for (const m of conversion.notImported) io.stdout(`  - ${m}\n`)
}

function summary(plan: ImportPlan): string {
  const n = (actions: ImportAction[]) => actions.filter((a) => a === 'add' || a === 'replace').length
  return [
    `${n(plan.subjects)} subject identifier(s)`,
    `${n(plan.totpConfigurations)} TOTP device(s)`,
    `${n(plan.preConfiguredConsents)} pre-configured consent(s)`,
    `${n(plan.webauthnCredentials)} WebAuthn credential(s)`,
    `${n(plan.secondFactorPreferences)} second-factor preference(s)`,
  ].join(', ')
}

/**
 * Authelia's `storage` section: from its configuration files (read as files, without Authelia's
 * environment), with the flags written over it as if they were one more file. A backend flag
 * replaces the files' backend. Problems are printed like configuration problems.
 */
function autheliaStorage(flags: Record<string, unknown>, io: CliIo): StorageConfig | undefined {
  const problems = new Problems()
  let root: RawMap = emptyMap({ baseDir: io.cwd })
  for (const f of (flags['authelia-config'] as string[] | undefined) ?? []) {
    const abs = resolve(io.cwd, f)
    if (!existsSync(abs)) throw new UsageError(`Authelia configuration file not found: ${abs}`)
    const parsed = parseYaml(f, readTextFile(abs, 1024 * 1024, f), problems.list, abs)
    // Only the storage section matters; everything else in Authelia's file is none of our business.
    const storage = parsed.entries.get('storage')
    if (storage) root = mergeRaw(root, { ...parsed, entries: new Map([['storage', storage]]) })
  }
  const backends = (['sqlite', 'postgres', 'mysql'] as const).filter((k) => flags[k] !== undefined)
  if (backends.length > 1) throw new UsageError('give one of --sqlite, --postgres and --mysql')
  const over: Record<string, unknown> = {}
  const backend = backends[0]
  if (backend) {
    const storage = root.entries.get('storage')
    if (storage?.node.kind === 'map') for (const k of ['local', 'postgres', 'mysql']) storage.node.entries.delete(k)
    if (backend === 'sqlite') over.local = { path: flags.sqlite }
    else {
      const b: Record<string, unknown> = { address: flags[backend] }
      for (const k of ['database', 'username', ...(backend === 'postgres' ? ['schema'] : [])]) if (flags[k] !== undefined) b[k] = flags[k]
      over[backend] = b
    }
  } else if (['database', 'schema', 'username'].some((k) => flags[k] !== undefined)) {
    const storage = root.entries.get('storage')
    const kind = storage?.node.kind === 'map' ? ['postgres', 'mysql'].find((k) => storage.node.kind === 'map' && storage.node.entries.has(k)) : undefined
    if (!kind) throw new UsageError('--database, --schema and --username go with --postgres or --mysql (or an Authelia configuration naming one)')
    over[kind] = Object.fromEntries(['database', 'username', ...(kind === 'postgres' ? ['schema'] : [])].filter((k) => flags[k] !== undefined).map((k) => [k, flags[k]]))
  }
  const secret = (flag: string): string => {
    const path = resolve(io.cwd, flags[flag] as string)
    try {
      return readFileSync(path, 'utf8').replace(/\r?\n$/, '')
    } catch (err) {
      throw new UsageError(`--${flag}: cannot read ${path}: ${(err as Error).message}`)
    }
  }
  if (flags['encryption-key-file'] !== undefined) over.encryption_key = secret('encryption-key-file')
  if (flags['password-file'] !== undefined) {
    const storage = root.entries.get('storage')
    const kind = backend && backend !== 'sqlite' ? backend : storage?.node.kind === 'map' ? ['postgres', 'mysql'].find((k) => storage.node.kind === 'map' && storage.node.entries.has(k)) : undefined
    if (!kind) throw new UsageError('--password-file goes with --postgres or --mysql (or an Authelia configuration naming one)')
    over[kind] = { ...((over[kind] as object | undefined) ?? {}), password: secret('password-file') }
  }
  if (Object.keys(over).length) root = mergeRaw(root, parseYaml('(command line)', stringify({ storage: over }), problems.list, resolve(io.cwd, '(command line)')))
  if (!root.entries.has('storage')) throw new UsageError('name the Authelia database: --authelia-config FILE, or --sqlite PATH / --postgres ADDRESS / --mysql ADDRESS')
  const storage = readStorage(new MapView(problems, '', root, root.src))
  if (problems.hasErrors) {
    for (const p of problems.list.filter((x) => x.severity === 'error')) io.stderr(`Authelia storage: ${formatProblem(p)}\n`)
    if (!storage.encryptionKey) io.stderr('  (give Authelia\'s key with --encryption-key-file FILE when its configuration does not hold it)\n')
    return undefined
  }
  return storage
}

function sourceSpec(s: StorageConfig): AutheliaSourceSpec {
  if (s.local) return { kind: 'sqlite', path: s.local.path }
  if (s.postgres) {
    const p = s.postgres
    return {
      kind: 'postgres',
      host: p.host,
      port: p.port,
      database: p.database,
      schema: p.schema,
      username: p.username,
      ...(p.password !== undefined ? { password: p.password } : {}),
      timeoutSeconds: p.timeoutSeconds,
      ...(p.tls ? { ssl: tlsOptions(p.tls, p.host) } : {}),
    }
  }
  const m = mysqlOptions(s)
  return {
    kind: 'mysql',
    host: m.host,
    port: m.port,
    ...(m.socketPath !== undefined ? { socketPath: m.socketPath } : {}),
    database: m.database,
    username: m.username,
    ...(m.password !== undefined ? { password: m.password } : {}),
    timeoutSeconds: m.connectTimeoutSeconds,
    ...(m.ssl ? { ssl: m.ssl } : {}),
  }
}

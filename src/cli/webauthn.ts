import { writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parse, stringify } from 'yaml'
import type { Storage, WebauthnCredential } from '../storage/storage.js'
import { UsageError } from './args.js'
import type { CliIo } from './io.js'

/**
 * `latchkey storage user webauthn list|delete|export|import` (Authelia's command names and export
 * file: 4.39's `webauthn_credentials:` list, 4.38's `webauthn_devices:` read too, with `kid` and
 * `public_key` in standard base64; fields Latchkey does not keep are ignored). Nothing here
 * is secret (public keys only), but the export names users and devices: written owner-only.
 */

interface ExportedDevice {
  created_at: string
  last_used_at: string | null
  rpid: string
  username: string
  description: string
  kid: string
  aaguid: string
  attestation_type: string
  attachment: string
  transports: string[]
  sign_count: number
  clone_warning: boolean
  legacy: boolean
  discoverable: boolean
  present: boolean
  verified: boolean
  backup_eligible: boolean
  backup_state: boolean
  public_key: string
}

const iso = (t: number): string => new Date(t * 1000).toISOString().replace('.000Z', 'Z')

function toExported(c: WebauthnCredential): ExportedDevice {
  return {
    created_at: iso(c.createdAt),
    last_used_at: c.lastUsedAt === undefined ? null : iso(c.lastUsedAt),
    rpid: c.rpId,
    username: c.username,
    description: c.description,
    kid: Buffer.from(c.credentialId, 'base64url').toString('base64'),
    aaguid: c.aaguid,
    attestation_type: c.attestationType,
    // Not recorded by Latchkey.
    attachment: '',
    transports: c.transports,
    sign_count: c.signCount,
    clone_warning: c.cloneWarning,
    legacy: false,
    discoverable: c.discoverable,
    present: true,
    verified: c.userVerified,
    backup_eligible: c.backupEligible,
    backup_state: false,
    public_key: c.publicKey.toString('base64'),
  }
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

/** One device of an import file, or why not (`devices[i]: …`). */
function fromExported(d: unknown, i: number, listName: string): WebauthnCredential {
  const where = `${listName}[${i}]`
  if (d === null || typeof d !== 'object') throw new UsageError(`${where}: not a map`)
  const r = d as Record<string, unknown>
  const text = (k: string, optional = false): string => {
    const v = r[k]
    if (typeof v === 'string' && v !== '') return v
    if (optional && (v === undefined || v === null || v === '')) return ''
    throw new UsageError(`${where}.${k}: must be a non-empty string`)
  }
  const time = (k: string): number | undefined => {
    const v = r[k]
    if (v === undefined || v === null) return undefined
    const ms = v instanceof Date ? v.getTime() : typeof v === 'string' ? Date.parse(v) : NaN
    if (Number.isNaN(ms)) throw new UsageError(`${where}.${k}: not a date`)
    return Math.floor(ms / 1000)
  }
  const kid = text('kid')
  const publicKey = text('public_key')
  if (!BASE64.test(kid) || !BASE64.test(publicKey)) throw new UsageError(`${where}: kid and public_key must be standard base64`)
  const count = r.sign_count ?? 0
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) throw new UsageError(`${where}.sign_count: must be a whole number`)
  const description = text('description')
  if (description.length > 64) throw new UsageError(`${where}.description: 64 characters at most`)
  const transports = Array.isArray(r.transports) ? r.transports.filter((t): t is string => typeof t === 'string' && /^[a-z-]{1,16}$/.test(t)) : []
  const c: WebauthnCredential = {
    credentialId: Buffer.from(kid, 'base64').toString('base64url'),
    username: text('username'),
    description,
    rpId: text('rpid'),
    publicKey: Buffer.from(publicKey, 'base64'),
    signCount: count,
    transports,
    aaguid: text('aaguid', true) || '00000000-0000-0000-0000-000000000000',
    attestationType: text('attestation_type', true) || 'none',
    discoverable: r.discoverable === true,
    userVerified: r.verified === true,
    backupEligible: r.backup_eligible === true,
    cloneWarning: r.clone_warning === true,
    createdAt: time('created_at') ?? Math.floor(Date.now() / 1000),
  }
  const lastUsed = time('last_used_at')
  if (lastUsed !== undefined) c.lastUsedAt = lastUsed
  return c
}

export async function webauthnCommand(
  verb: string | undefined,
  positionals: string[],
  flags: Record<string, unknown>,
  storage: Storage,
  io: CliIo,
  files: { readFile: (path: string) => string | undefined },
): Promise<number> {
  switch (verb) {
    case 'list': {
      if (positionals.length > 1) throw new UsageError(`unexpected argument: ${positionals[1]}`)
      const list = await storage.listWebauthnCredentials(positionals[0])
      if (list.length === 0) {
        io.stdout(positionals[0] ? `No WebAuthn credentials for user '${positionals[0]}'.\n` : 'No WebAuthn credentials.\n')
        return 0
      }
      const rows = list.map((c) => [c.username, c.description, Buffer.from(c.credentialId, 'base64url').toString('base64'), c.rpId, c.discoverable ? 'passkey' : 'key', iso(c.createdAt), c.lastUsedAt === undefined ? 'never' : iso(c.lastUsedAt), String(c.signCount), c.cloneWarning ? 'CLONE WARNING' : ''])
      const head = ['Username', 'Description', 'KID', 'RP ID', 'Kind', 'Created', 'Last used', 'Count', '']
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
      for (const r of [head, ...rows]) io.stdout(r.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd() + '\n')
      return 0
    }
    case 'delete': {
      const username = positionals[0]
      if (!username || positionals.length > 1) throw new UsageError('storage user webauthn delete needs exactly one USER')
      const chosen = [flags.all === true, typeof flags.description === 'string', typeof flags.kid === 'string'].filter(Boolean).length
      if (chosen !== 1) throw new UsageError('storage user webauthn delete needs one of --all, --description DESC or --kid KID')
      const kid = typeof flags.kid === 'string' ? Buffer.from(flags.kid, 'base64').toString('base64url') : undefined
      const doomed = (await storage.listWebauthnCredentials(username)).filter((c) => flags.all === true || c.description === flags.description || c.credentialId === kid)
      if (doomed.length === 0) {
        io.stderr(`latchkey: user '${username}' has no matching WebAuthn credential\n`)
        return 1
      }
      for (const c of doomed) await storage.deleteWebauthnCredential(username, c.credentialId)
      io.stdout(
        flags.all === true
          ? `Successfully deleted all ${doomed.length} WebAuthn credentials for user '${username}'\n`
          : `Successfully deleted WebAuthn credential '${doomed[0]!.description}' for user '${username}'\n`,
      )
      return 0
    }
    case 'export': {
      if (positionals.length) throw new UsageError(`unexpected argument: ${positionals[0]}`)
      const file = resolve(io.cwd, typeof flags.file === 'string' ? flags.file : 'webauthn.yml')
      if (files.readFile(file) !== undefined) throw new UsageError(`${file} already exists: choose another --file`)
      const devices = (await storage.listWebauthnCredentials()).map(toExported)
      writeFileSync(file, stringify({ webauthn_credentials: devices }), { mode: 0o600 })
      io.stdout(`Successfully exported ${devices.length} WebAuthn credentials as YAML to the '${file}' file\n`)
      return 0
    }
    case 'import': {
      if (positionals.length) throw new UsageError(`unexpected argument: ${positionals[0]}`)
      if (typeof flags.file !== 'string') throw new UsageError('storage user webauthn import needs --file FILE')
      const file = resolve(io.cwd, flags.file)
      const text = files.readFile(file)
      if (text === undefined) throw new UsageError(`${file} does not exist`)
      let doc: unknown
      try {
        doc = parse(text)
      } catch (err) {
        throw new UsageError(`${file}: not YAML: ${(err as Error).message.split('\n')[0]}`)
      }
      const root = (doc ?? {}) as { webauthn_credentials?: unknown; webauthn_devices?: unknown }
      const listName = root.webauthn_credentials !== undefined ? 'webauthn_credentials' : 'webauthn_devices'
      const list = root[listName]
      if (!Array.isArray(list)) throw new UsageError(`${file}: no webauthn_credentials list`)
      // Every entry is checked before any is saved: a bad file changes nothing.
      const devices = list.map((d, i) => fromExported(d, i, listName))
      let imported = 0
      for (const d of devices) {
        const result = await storage.saveWebauthnCredential(d)
        if (result === 'saved') imported += 1
        else io.stderr(`latchkey: skipped '${d.description}' of user '${d.username}': ${result === 'duplicate_id' ? 'the credential is already stored' : 'the user has another credential with this description'}\n`)
      }
      io.stdout(`Successfully imported ${imported} WebAuthn credentials from the '${file}' file\n`)
      return imported === devices.length ? 0 : 1
    }
    default:
      throw new UsageError('storage user webauthn needs list, delete, export or import')
  }
}

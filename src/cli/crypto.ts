import { generateKeyPairSync } from 'node:crypto'
import { mkdirSync, writeFileSync, existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { DigestParseError, generateDigest, parseDigest, type HashAlgorithm } from '../authn/hashes/index.js'
import { randomString } from '../common/random.js'
import { intFlag, parseArgs, UsageError } from './args.js'
import type { CliIo } from './io.js'

export const CRYPTO_HELP = `Usage:
  latchkey crypto hash generate <argon2|sha2crypt|pbkdf2|bcrypt|scrypt> (--password P | --random) [options]
  latchkey crypto hash validate --password P -- DIGEST
  latchkey crypto pair <rsa|ecdsa|ed25519> generate [--directory D] [--bits 2048|3072|4096] [--curve P256|P384|P521]
  latchkey crypto rand [--length N] [--charset alphanumeric|alphanumeric-lower|numeric|hex|base64url]

Hash options (defaults are Authelia's): --variant, --iterations, --memory (KiB, argon2),
--parallelism, --key-length, --salt-length, --cost (bcrypt), --block-size (scrypt r),
--random.length N (with --random, default 72).
Output is Authelia's: "Digest: $…" (and "Random Password: …" with --random).
`

const ALGORITHMS: HashAlgorithm[] = ['argon2', 'sha2crypt', 'pbkdf2', 'bcrypt', 'scrypt']

const CHARSETS: Record<string, string> = {
  alphanumeric: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789',
  'alphanumeric-lower': 'abcdefghijklmnopqrstuvwxyz0123456789',
  numeric: '0123456789',
  hex: '0123456789abcdef',
  base64url: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
}

export async function cryptoCommand(argv: string[], io: CliIo): Promise<number> {
  const [group, ...rest] = argv
  if (!group || group === '--help' || group === '-h' || group === 'help') {
    io.stdout(CRYPTO_HELP)
    return group ? 0 : 1
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout(CRYPTO_HELP)
    return 0
  }
  switch (group) {
    case 'hash':
      return hash(rest, io)
    case 'pair':
      return pair(rest, io)
    case 'rand':
      return rand(rest, io)
    default:
      throw new UsageError(`unknown command: crypto ${group} (see latchkey crypto --help)`)
  }
}

async function hash(argv: string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = argv
  if (verb === 'validate') {
    const { flags, positionals } = parseArgs(rest, { password: 'string' })
    if (typeof flags.password !== 'string') throw new UsageError('crypto hash validate needs --password P')
    if (positionals.length !== 1) throw new UsageError('crypto hash validate needs exactly one digest after --')
    let ok: boolean
    try {
      ok = await parseDigest(positionals[0]!).verify(flags.password)
    } catch (err) {
      if (err instanceof DigestParseError) throw new UsageError(`the digest is invalid: ${err.message}`)
      throw err
    }
    if (ok) {
      io.stdout('The password matches the digest.\n')
      return 0
    }
    io.stderr('The password does not match the digest.\n')
    return 1
  }
  if (verb !== 'generate') throw new UsageError(`unknown command: crypto hash ${verb ?? ''} (expected generate or validate)`)
  const { flags, positionals } = parseArgs(rest, {
    password: 'string',
    random: 'boolean',
    'random.length': 'string',
    variant: 'string',
    iterations: 'string',
    memory: 'string',
    parallelism: 'string',
    'key-length': 'string',
    'salt-length': 'string',
    cost: 'string',
    'block-size': 'string',
  })
  const algorithm = positionals[0] as HashAlgorithm | undefined
  if (!algorithm || !ALGORITHMS.includes(algorithm)) throw new UsageError(`crypto hash generate needs an algorithm: ${ALGORITHMS.join(', ')}`)
  if (positionals.length > 1) throw new UsageError(`unexpected argument: ${positionals[1]}`)
  if (flags.random && typeof flags.password === 'string') throw new UsageError('use either --password or --random, not both')
  let password = flags.password as string | undefined
  if (flags.random) password = randomString(intFlag(flags['random.length'], 'random.length', 1, 1024) ?? 72)
  if (password === undefined || password === '') throw new UsageError('crypto hash generate needs --password P or --random')
  const opts: Record<string, unknown> = {}
  if (flags.variant !== undefined) opts.variant = flags.variant
  const numeric: Array<[string, string]> = [
    ['iterations', 'iterations'],
    ['memory', 'memory'],
    ['parallelism', 'parallelism'],
    ['key-length', 'keyLength'],
    ['salt-length', 'saltLength'],
    ['cost', 'cost'],
    ['block-size', 'blockSize'],
  ]
  for (const [flag, key] of numeric) {
    const n = intFlag(flags[flag], flag, 1, 2 ** 31)
    if (n !== undefined) opts[key] = n
  }
  let digest: string
  try {
    digest = await generateDigest(password, algorithm, opts)
  } catch (err) {
    if (err instanceof RangeError) throw new UsageError(err.message)
    throw err
  }
  if (flags.random) io.stdout(`Random Password: ${password}\n`)
  io.stdout(`Digest: ${digest}\n`)
  return 0
}

function pair(argv: string[], io: CliIo): number {
  const [kind, verb, ...rest] = argv
  if (!kind || !['rsa', 'ecdsa', 'ed25519'].includes(kind)) throw new UsageError('crypto pair needs a key type: rsa, ecdsa or ed25519')
  if (verb !== 'generate') throw new UsageError(`unknown command: crypto pair ${kind} ${verb ?? ''} (expected generate)`)
  const { flags, positionals } = parseArgs(rest, { directory: 'string', bits: 'string', curve: 'string', 'file.private-key': 'string', 'file.public-key': 'string' })
  if (positionals.length) throw new UsageError(`unexpected argument: ${positionals[0]}`)
  const dir = resolve(io.cwd, (flags.directory as string | undefined) ?? '.')
  const privateName = (flags['file.private-key'] as string | undefined) ?? 'private.pem'
  const publicName = (flags['file.public-key'] as string | undefined) ?? 'public.pem'
  let pairKeys
  if (kind === 'rsa') {
    const bits = intFlag(flags.bits, 'bits', 2048, 8192) ?? 2048
    pairKeys = generateKeyPairSync('rsa', { modulusLength: bits })
  } else if (kind === 'ecdsa') {
    const curves: Record<string, string> = { P256: 'prime256v1', P384: 'secp384r1', P521: 'secp521r1' }
    const curve = ((flags.curve as string | undefined) ?? 'P256').toUpperCase().replace('-', '')
    if (!curves[curve]) throw new UsageError(`--curve must be P256, P384 or P521, got '${String(flags.curve)}'`)
    pairKeys = generateKeyPairSync('ec', { namedCurve: curves[curve]! })
  } else {
    pairKeys = generateKeyPairSync('ed25519')
  }
  mkdirSync(dir, { recursive: true })
  const privatePath = join(dir, privateName)
  const publicPath = join(dir, publicName)
  for (const p of [privatePath, publicPath]) if (existsSync(p)) throw new UsageError(`refusing to overwrite ${p}`)
  writeFileSync(privatePath, pairKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  writeFileSync(publicPath, pairKeys.publicKey.export({ type: 'spki', format: 'pem' }))
  io.stdout(`Generating key pair\n\nWrote the private key to ${privatePath}\nWrote the public key to ${publicPath}\n`)
  return 0
}

function rand(argv: string[], io: CliIo): number {
  const { flags, positionals } = parseArgs(argv, { length: 'string', charset: 'string' })
  if (positionals.length) throw new UsageError(`unexpected argument: ${positionals[0]}`)
  const length = intFlag(flags.length, 'length', 1, 4096) ?? 72
  const charsetName = (flags.charset as string | undefined) ?? 'alphanumeric'
  const charset = CHARSETS[charsetName]
  if (!charset) throw new UsageError(`--charset must be one of ${Object.keys(CHARSETS).join(', ')}`)
  io.stdout(`Random Value: ${randomString(length, charset)}\n`)
  return 0
}

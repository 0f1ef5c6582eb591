/** A tiny, strict argument parser: unknown flags are errors, `--` ends flags. */
export type FlagKind = 'string' | 'strings' | 'boolean'

export interface ParsedArgs {
  positionals: string[]
  flags: Record<string, string | string[] | boolean | undefined>
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

export function parseArgs(argv: string[], spec: Record<string, FlagKind>): ParsedArgs {
  const positionals: string[] = []
  const flags: ParsedArgs['flags'] = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg)
      continue
    }
    const eq = arg.indexOf('=')
    const name = (eq === -1 ? arg : arg.slice(0, eq)).replace(/^--?/, '')
    const kind = spec[name]
    if (!kind) throw new UsageError(`unknown flag: --${name}`)
    if (kind === 'boolean') {
      if (eq !== -1) {
        const v = arg.slice(eq + 1)
        if (v !== 'true' && v !== 'false') throw new UsageError(`flag --${name} takes true or false, got '${v}'`)
        flags[name] = v === 'true'
      } else flags[name] = true
      continue
    }
    let value: string | undefined
    if (eq !== -1) value = arg.slice(eq + 1)
    else {
      value = argv[++i]
      if (value === undefined) throw new UsageError(`flag --${name} needs a value`)
    }
    if (kind === 'strings') flags[name] = [...((flags[name] as string[] | undefined) ?? []), value]
    else flags[name] = value
  }
  return { positionals, flags }
}

export function intFlag(value: unknown, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`flag --${name} must be a whole number from ${min} to ${max}, got '${String(value)}'`)
  return n
}

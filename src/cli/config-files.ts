import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { ConfigError, formatProblem, loadConfig } from '../config/load.js'
import type { Config } from '../config/schema.js'
import type { CliIo } from './io.js'
import { UsageError } from './args.js'

export const DEFAULT_CONFIG_FILE = 'configuration.yml'

/** Variables naming the configuration files, in order of precedence (after `--config`). */
export const CONFIG_ENV_VARS = ['LATCHKEY_CONFIG', 'X_AUTHELIA_CONFIG'] as const

/**
 * The files to load, in merge order: every `--config`, else `LATCHKEY_CONFIG`, else Authelia's
 * `X_AUTHELIA_CONFIG` (both comma-separated), else `./configuration.yml`. Returns [] when none of
 * those exist, so `serve` can fall back to the embedded demo.
 */
export function resolveConfigFiles(flag: string[] | undefined, io: CliIo): string[] {
  const fromEnv = CONFIG_ENV_VARS.map((name) => io.env[name]).find((v) => v !== undefined && v.trim() !== '')
  const given = flag?.length ? flag : fromEnv ? fromEnv.split(',').map((s) => s.trim()).filter(Boolean) : []
  if (given.length) {
    const files = given.map((f) => resolve(io.cwd, f))
    for (const f of files) if (!existsSync(f)) throw new UsageError(`configuration file not found: ${f}`)
    return files
  }
  const fallback = resolve(io.cwd, DEFAULT_CONFIG_FILE)
  return existsSync(fallback) ? [fallback] : []
}

/**
 * Loads and validates; prints every problem as Authelia does (`Configuration: …`), then returns
 * undefined on errors so the caller exits 2 before listening.
 */
export function loadConfigOrReport(files: string[], io: CliIo, opts: { quiet?: boolean } = {}): Config | undefined {
  try {
    const { config, warnings } = loadConfig({ files, env: io.env })
    if (!opts.quiet) for (const w of warnings) io.stderr(`Configuration: warning: ${formatProblem(w)}\n`)
    return config
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const p of err.problems) io.stderr(`Configuration: ${p.severity === 'warning' ? 'warning: ' : ''}${formatProblem(p)}\n`)
    io.stderr("Can't continue due to the errors loading the configuration\n")
    return undefined
  }
}

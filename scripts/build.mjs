// `npm run build`: compile (tsc), bundle (scripts/bundle.mjs), then stamp dist/ with a hash of the
// sources it was built from. `npm start` runs this with --if-changed: it builds only when that hash
// differs from the stamp (after an edit, a `git pull` or an `npm install` that changed the lock
// file) or dist/ has no program (a fresh clone), so a second start answers in about a second.
// A content hash, not mtimes: `git pull` and checkouts set mtimes to "now", in any order.
// Plain JavaScript: it has to run before anything is compiled.
import { createHash } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Folders whose files are compiled or bundled (tsconfig.json `include`); tests are excluded there too. */
const SOURCE_DIRS = ['src', 'scripts', 'bench']
const STAMP = join('dist', '.build-stamp')
const PROGRAM = join('dist', 'latchkey.mjs')

function isBuildInput(name) {
  return !name.endsWith('.test.ts')
}

function listFiles(root, dir, out) {
  let entries
  try {
    entries = readdirSync(join(root, dir), { withFileTypes: true })
  } catch {
    return
  }
  for (const e of entries) {
    const path = join(dir, e.name)
    if (e.isDirectory()) listFiles(root, path, out)
    else if (e.isFile() && isBuildInput(e.name)) out.push(path)
  }
}

/** SHA-256 over every build input's path and content, in a fixed order. */
export function sourceHash(root) {
  const files = []
  for (const d of SOURCE_DIRS) listFiles(root, d, files)
  for (const name of readdirSync(root)) {
    if (name === 'package.json' || name === 'package-lock.json' || /^tsconfig.*\.json$/.test(name)) files.push(name)
  }
  const hash = createHash('sha256')
  for (const f of files.map((p) => relative(root, join(root, p)).split(sep).join('/')).sort()) {
    hash.update(f).update('\0').update(readFileSync(join(root, f))).update('\0')
  }
  return hash.digest('hex')
}

/** True when dist/ lacks the program or was stamped from other sources (or never stamped). */
export function isBuildNeeded(root, hash = sourceHash(root)) {
  if (!existsSync(join(root, PROGRAM))) return true
  let stamp
  try {
    stamp = readFileSync(join(root, STAMP), 'utf8').trim()
  } catch {
    return true
  }
  return stamp !== hash
}

/**
 * Runs `build(root)` and stamps dist/ with the hash taken before it started, so an edit made while
 * it runs is seen by the next start. With `ifChanged`, skips an up-to-date build. Returns whether
 * it built.
 */
export function ensureBuilt(root, build, { ifChanged = false } = {}) {
  const hash = sourceHash(root)
  if (ifChanged && !isBuildNeeded(root, hash)) return false
  build(root)
  writeFileSync(join(root, STAMP), hash + '\n')
  return true
}

function compileAndBundle(root) {
  for (const args of [[join('node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], [join('scripts', 'bundle.mjs')]]) {
    const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' })
    if (r.status !== 0) process.exit(r.status ?? 1)
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = dirname(dirname(fileURLToPath(import.meta.url)))
  const ifChanged = process.argv.includes('--if-changed')
  const built = ensureBuilt(
    root,
    (r) => {
      if (ifChanged) process.stdout.write('latchkey: the sources changed since the last build (or there is none): building…\n')
      compileAndBundle(r)
    },
    { ifChanged },
  )
  if (!built) process.stdout.write('latchkey: dist/ is up to date with the sources; no build needed (npm run build forces one)\n')
}

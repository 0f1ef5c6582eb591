/**
 * `npm start` builds only when the sources changed (issue 9, point 14). The real script chain
 * (package.json's prestart and start, scripts/build.mjs) runs on a temporary copy of the project's
 * shape whose compiler and bundler are stand-ins that record each build: the worktree's own dist/ is
 * never rebuilt or raced, and no test waits for a real 16-second build.
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { ensureBuilt, isBuildNeeded } from '../../scripts/build.mjs'
import { ROOT } from '../support/app.js'

let tree: string
beforeEach(() => {
  tree = mkdtempSync(join(tmpdir(), 'latchkey-start-'))
})
afterEach(() => rmSync(tree, { recursive: true, force: true }))

function put(path: string, text: string): void {
  mkdirSync(dirname(join(tree, path)), { recursive: true })
  writeFileSync(join(tree, path), text)
}

/** A project tree as a fresh clone has it: sources, no dist/. */
function cloneShape(): void {
  copyFileSync(join(ROOT, 'package.json'), join(tree, 'package.json'))
  put('package-lock.json', '{"lockfileVersion": 3}\n')
  put('tsconfig.json', '{}\n')
  put('tsconfig.test.json', '{}\n')
  put('src/main.ts', "console.log('hello')\n")
  put('src/oidc/token.ts', 'export const a = 1\n')
  put('src/oidc/token.test.ts', 'test\n')
  put('bench/run.ts', '\n')
}

describe('isBuildNeeded / ensureBuilt on a temporary tree', () => {
  let builds = 0
  const build = (root: string) => {
    builds++
    put('dist/latchkey.mjs', `// build ${builds} of ${root}\n`)
  }
  beforeEach(() => {
    builds = 0
    cloneShape()
  })

  test('a fresh clone builds; an unchanged tree does not, even with every mtime moved', () => {
    expect(isBuildNeeded(tree)).toBe(true)
    expect(ensureBuilt(tree, build, { ifChanged: true })).toBe(true)
    expect(isBuildNeeded(tree)).toBe(false)
    expect(ensureBuilt(tree, build, { ifChanged: true })).toBe(false)
    // A checkout or `touch` sets new times on the same content: no rebuild.
    const later = new Date(Date.now() + 3600_000)
    for (const f of ['src/main.ts', 'package.json', 'tsconfig.json']) utimesSync(join(tree, f), later, later)
    expect(ensureBuilt(tree, build, { ifChanged: true })).toBe(false)
    expect(builds).toBe(1)
  })

  test.each([
    ['a source edited (its mtime set back, as after git pull)', () => {
      put('src/oidc/token.ts', 'export const a = 2\n')
      utimesSync(join(tree, 'src/oidc/token.ts'), new Date(0), new Date(0))
    }],
    ['a source added', () => put('src/oidc/new.ts', '\n')],
    ['a source deleted', () => unlinkSync(join(tree, 'src/oidc/token.ts'))],
    ['a source renamed', () => {
      put('src/oidc/token2.ts', readFileSync(join(tree, 'src/oidc/token.ts'), 'utf8'))
      unlinkSync(join(tree, 'src/oidc/token.ts'))
    }],
    ['a bench source edited', () => put('bench/run.ts', 'x\n')],
    ['package-lock.json changed (npm install after a pull)', () => put('package-lock.json', '{"lockfileVersion": 3, "x": 1}\n')],
    ['package.json changed', () => put('package.json', readFileSync(join(tree, 'package.json'), 'utf8') + '\n')],
    ['tsconfig.test.json changed', () => put('tsconfig.test.json', '{ }\n')],
    ['dist/latchkey.mjs removed', () => unlinkSync(join(tree, 'dist/latchkey.mjs'))],
    ['the stamp removed', () => unlinkSync(join(tree, 'dist/.build-stamp'))],
  ])('rebuilds after %s', (_what, change) => {
    ensureBuilt(tree, build)
    change()
    expect(isBuildNeeded(tree)).toBe(true)
    expect(ensureBuilt(tree, build, { ifChanged: true })).toBe(true)
    expect(ensureBuilt(tree, build, { ifChanged: true })).toBe(false)
    expect(builds).toBe(2)
  })

  test('a test file, which the build does not compile, does not cause a rebuild', () => {
    ensureBuilt(tree, build)
    put('src/oidc/token.test.ts', 'changed\n')
    expect(isBuildNeeded(tree)).toBe(false)
  })

  test('an edit made while a build runs is seen by the next start (the stamp is the hash from before)', () => {
    ensureBuilt(tree, (root) => {
      build(root)
      put('src/main.ts', "console.log('edited during the build')\n")
    })
    expect(isBuildNeeded(tree)).toBe(true)
  })
})

describe('npm start, the real script chain', () => {
  /** The worktree's build script and package.json, a compiler and bundler that only log. */
  function withStandIns(): void {
    cloneShape()
    put('scripts/build.mjs', readFileSync(join(ROOT, 'scripts/build.mjs'), 'utf8'))
    put('node_modules/typescript/package.json', '{"type": "commonjs"}\n')
    put('node_modules/typescript/bin/tsc', "require('node:fs').appendFileSync('builds.log', 'tsc\\n')\n")
    put('scripts/bundle.mjs', [
      "import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs'",
      "appendFileSync('builds.log', 'bundle\\n')",
      "mkdirSync('dist', { recursive: true })",
      "writeFileSync('dist/latchkey.mjs', \"console.log('latchkey answered')\\n\")",
    ].join('\n'))
  }

  function npmStart() {
    const r = spawnSync('npm', ['start', '--silent'], { cwd: tree, env: { PATH: process.env.PATH, HOME: tree, npm_config_update_notifier: 'false' }, encoding: 'utf8' })
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    let log = ''
    try {
      log = readFileSync(join(tree, 'builds.log'), 'utf8')
    } catch {
      // no build yet
    }
    return { out: r.stdout, builds: log.split('tsc\n').length - 1 }
  }

  test('the first start builds, the second does not, a changed source builds again', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    expect(pkg.scripts.prestart).toBe('node scripts/build.mjs --if-changed')
    expect(pkg.scripts.build).toBe('node scripts/build.mjs')
    withStandIns()

    const first = npmStart()
    expect(first.builds).toBe(1)
    expect(first.out).toContain('building')
    expect(first.out).toContain('latchkey answered')

    const second = npmStart()
    expect(second.builds).toBe(1)
    expect(second.out).toContain('no build needed')
    expect(second.out).toContain('latchkey answered')

    put('src/oidc/token.ts', 'export const a = 3\n')
    const third = npmStart()
    expect(third.builds).toBe(2)
    expect(readFileSync(join(tree, 'builds.log'), 'utf8')).toBe('tsc\nbundle\ntsc\nbundle\n')
  })
})

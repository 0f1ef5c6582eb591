import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { ROOT } from './app.js'

/** Debian's chromium (`apt-get install -y chromium`; .ci/run installs it when missing). */
export const CHROMIUM_PATH = process.env.LATCHKEY_CHROMIUM ?? '/usr/bin/chromium'
export const ARTIFACTS_DIR = join(ROOT, 'artifacts')

/**
 * Why a browser test may be skipped, or undefined when it must run. It runs whenever chromium is
 * installed, and always in CI (a missing browser there is a failure, not a skip).
 */
export function browserSkipReason(): string | undefined {
  if (existsSync(CHROMIUM_PATH)) return undefined
  if (process.env.CI) return undefined
  return `browser tests skipped: ${CHROMIUM_PATH} is missing (install it with: apt-get install -y chromium)`
}

export interface LaunchedBrowser {
  context: BrowserContext
  page: Page
  /** Saves a full-page PNG to artifacts/<prefix>-<nn>-<name>.png (artifacts/ is not committed). */
  screenshot(name: string, page?: Page): Promise<string>
  close(): Promise<void>
}

/**
 * Headless chromium on a fresh profile (its own --user-data-dir, removed on close), with the flags
 * that keep it quiet and offline apart from the pages the test opens.
 */
export async function launchBrowser(opts: { artifactsPrefix?: string; ignoreHttpsErrors?: boolean } = {}): Promise<LaunchedBrowser> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'latchkey-chromium-'))
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    ignoreHTTPSErrors: opts.ignoreHttpsErrors ?? false,
    viewport: { width: 800, height: 900 },
  })
  const page = context.pages()[0] ?? (await context.newPage())
  const prefix = opts.artifactsPrefix ?? 'browser'
  let counter = 0
  return {
    context,
    page,
    async screenshot(name, target = page) {
      mkdirSync(ARTIFACTS_DIR, { recursive: true })
      counter += 1
      const file = join(ARTIFACTS_DIR, `${prefix}-${String(counter).padStart(2, '0')}-${name}.png`)
      await target.screenshot({ path: file, fullPage: true })
      return file
    },
    async close() {
      await context.close()
      rmSync(userDataDir, { recursive: true, force: true })
    },
  }
}

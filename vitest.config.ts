import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // argon2id at Authelia's defaults costs ~30 ms per hash; e2e tests start real servers and a browser.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
})

// Types for scripts/build.mjs (plain JavaScript so that it runs before anything is compiled).
export function sourceHash(root: string): string
export function isBuildNeeded(root: string, hash?: string): boolean
export function ensureBuilt(root: string, build: (root: string) => void, opts?: { ifChanged?: boolean }): boolean

// Bundles the compiled CLI into one ESM file (dist/latchkey.mjs). Start-up is dominated by
// resolving and compiling hundreds of small modules: one file starts in ~300 ms instead of ~500.
// Native addons and the lazily loaded mail/QR libraries stay external (resolved from node_modules);
// pg-native is pg's optional native driver, required only when asked for (pg.native): never here.
import { build } from 'esbuild'

await build({
  entryPoints: ['dist/src/main.js'],
  outfile: 'dist/latchkey.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['better-sqlite3', '@node-rs/*', 'unixcrypt', 'nodemailer', 'qrcode', 'pg-native'],
  // Bundled CommonJS dependencies call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __latchkeyRequire } from 'node:module'; const require = __latchkeyRequire(import.meta.url);" },
  logLevel: 'warning',
})

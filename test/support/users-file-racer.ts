// Child process for the users-file race test (docs/security.md G4), bundled by the test with esbuild.
// Usage:
//   node racer.mjs reset <users file> <username> <rounds> <digest>...  writes the digests in turn, as password reset does
//   node racer.mjs admin <users file> <rounds>                          adds one user per round, under the same lock, as a
//                                                                      script following docs/migrating-from-authelia.md would
// Prints "done" when finished; any error exits 1 with its message.
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { lockUsersFile, writeUserPassword } from '../../src/authn/users-file-writer.js'

const [mode, path, ...rest] = process.argv.slice(2)
const opts = { searchEmail: false, searchCaseInsensitive: false }

async function main(): Promise<void> {
  if (mode === 'reset') {
    const [username, rounds, ...digests] = rest
    for (let i = 0; i < Number(rounds); i++) await writeUserPassword({ path: path!, ...opts }, username!, digests[i % digests.length]!, { lockTimeoutMs: 30_000 })
  } else if (mode === 'admin') {
    for (let i = 0; i < Number(rest[0]); i++) {
      const release = await lockUsersFile(path!, { lockTimeoutMs: 30_000 })
      try {
        const text = readFileSync(path!, 'utf8')
        // The file's own indentation (the first user's), so the map stays valid YAML.
        const indent = /^users:\n( +)/m.exec(text)![1]!
        const digest = /password: "([^"]+)"/.exec(text)![1]!
        const added = `${indent}admin_added_${process.pid}_${i}:\n${indent}${indent}displayname: "Added ${i}"\n${indent}${indent}password: "${digest}"\n`
        writeFileSync(`${path}.admin-tmp`, text.replace(/^users:\n/m, `users:\n${added}`))
        renameSync(`${path}.admin-tmp`, path!)
      } finally {
        release()
      }
      await new Promise((r) => setTimeout(r, 1))
    }
  } else throw new Error(`unknown mode ${mode}`)
  process.stdout.write('done\n')
}

main().catch((err: Error) => {
  process.stderr.write(`${err.message}\n`)
  process.exit(1)
})

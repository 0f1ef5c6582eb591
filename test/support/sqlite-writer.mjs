// Child process for the kill -9 durability test (docs/security.md D1). Opens the database the way
// Latchkey does (WAL, synchronous=NORMAL) and writes authentication_logs rows in transactions of
// BATCH rows, printing the committed total after every commit, until it is killed.
// Usage: node sqlite-writer.mjs <db path> <username tag> <batch size>
import Database from 'better-sqlite3'

const [path, tag, batchArg] = process.argv.slice(2)
const batch = Number(batchArg ?? 50)
const db = new Database(path)
db.pragma('journal_mode = WAL')
db.pragma('synchronous = NORMAL')
db.pragma('busy_timeout = 5000')
db.pragma('foreign_keys = ON')

const insert = db.prepare(
  'INSERT INTO authentication_logs (time, successful, banned, username, auth_type, remote_ip, request_uri, request_method) VALUES (?, 0, 0, ?, ?, ?, ?, ?)',
)
const writeBatch = db.transaction((start) => {
  for (let i = 0; i < batch; i++) insert.run(start + i, tag, '1fa', '192.0.2.1', 'https://auth.example.com/api/firstfactor?' + 'x'.repeat(200), 'POST')
})

let committed = 0
process.stdout.write('ready\n')
for (;;) {
  writeBatch(committed)
  committed += batch
  // Written only after the commit returned: every number printed is durable.
  process.stdout.write(`committed ${committed}\n`)
}

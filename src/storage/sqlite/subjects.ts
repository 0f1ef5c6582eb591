import type { SubjectStore } from '../storage.js'
import type { SqliteDatabase } from './database.js'
import { lazyPrepare } from './database.js'

interface SubjectRow {
  sector_id: string
  username: string
  subject: string
}

export function createSubjectStore(db: SqliteDatabase): SubjectStore {
  // ON CONFLICT names the (sector, username) key only: a candidate that collides with another
  // user's subject must fail loudly, never be silently ignored.
  const insert = lazyPrepare(db, 'INSERT INTO user_opaque_identifier (sector_id, username, subject) VALUES (?, ?, ?) ON CONFLICT (sector_id, username) DO NOTHING')
  const find = lazyPrepare(db, 'SELECT subject FROM user_opaque_identifier WHERE sector_id = ? AND username = ?')
  const findBySubject = lazyPrepare(db, 'SELECT sector_id, username FROM user_opaque_identifier WHERE subject = ?')
  const list = lazyPrepare(db, 'SELECT sector_id, username, subject FROM user_opaque_identifier ORDER BY id')

  const ensure = db.transaction((sector: string, username: string, candidate: string): string => {
    insert().run(sector, username, candidate)
    return (find().get(sector, username) as { subject: string }).subject
  })

  return {
    async ensureSubjectIdentifier(sectorIdentifier, username, candidate) {
      // Read first: after the first sign-in this is a pure lookup, no write lock.
      const existing = find().get(sectorIdentifier, username) as { subject: string } | undefined
      return existing?.subject ?? ensure.immediate(sectorIdentifier, username, candidate)
    },
    async findUsernameBySubject(subject) {
      const row = findBySubject().get(subject) as Omit<SubjectRow, 'subject'> | undefined
      return row === undefined ? undefined : { username: row.username, sectorIdentifier: row.sector_id }
    },
    async listSubjectIdentifiers() {
      return (list().all() as SubjectRow[]).map((r) => ({ sectorIdentifier: r.sector_id, username: r.username, subject: r.subject }))
    },
  }
}

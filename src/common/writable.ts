/**
 * Why this process cannot create or write a state file (the SQLite database, the notifier file), in
 * words an admin can act on: which folder, who owns it, its mode. Used by `serve` to turn an EACCES
 * into a refusal a restart cannot fix (exit 2), and by `doctor` to find it before the first start.
 */
import { accessSync, constants, readFileSync, statSync, type Stats } from 'node:fs'
import { userInfo } from 'node:os'
import { basename, dirname } from 'node:path'

/** `name` for a numeric id from /etc/passwd or /etc/group; `undefined` when unknown or unreadable. */
function nameFor(id: number, table: '/etc/passwd' | '/etc/group'): string | undefined {
  try {
    for (const line of readFileSync(table, 'utf8').split('\n')) {
      const [name, , num] = line.split(':')
      if (name && Number(num) === id) return name
    }
  } catch {
    // No passwd file (a minimal container): the numbers alone still say it.
  }
  return undefined
}

/** `owned by root:root (uid 0, gid 0), mode 0755`. */
export function describeOwnership(st: Stats): string {
  const user = nameFor(st.uid, '/etc/passwd') ?? String(st.uid)
  const group = nameFor(st.gid, '/etc/group') ?? String(st.gid)
  return `owned by ${user}:${group} (uid ${st.uid}, gid ${st.gid}), mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}`
}

/** The user this process runs as, as `user latchkey (uid 999)`. */
export function describeCurrentUser(): string {
  const uid = process.getuid?.() ?? -1
  let name: string | undefined
  try {
    name = userInfo().username
  } catch {
    name = nameFor(uid, '/etc/passwd')
  }
  return name ? `user ${name} (uid ${uid})` : `uid ${uid}`
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path)
  } catch {
    return undefined
  }
}

function canWrite(path: string, mode: number): boolean {
  try {
    accessSync(path, mode)
    return true
  } catch {
    return false
  }
}

export interface WriteProblem {
  /** One sentence: what cannot be done, by whom, and the owner and mode in the way. */
  message: string
  /** The folder the file lives in (to create or fix). */
  folder: string
  /** The command (as root) that fixes the usual case. */
  hint: string
}

function currentUserName(): string {
  try {
    return userInfo().username
  } catch {
    return String(process.getuid?.() ?? 'USER')
  }
}

/**
 * `undefined` when this process can write `file` and create files beside it (SQLite's `-wal` and
 * `-shm`), creating its folder first if needed; otherwise what stands in the way. Checks with
 * access(2), so it answers for the real user id: run it as the service user.
 */
export function findWriteProblem(file: string): WriteProblem | undefined {
  const folder = dirname(file)
  const who = describeCurrentUser()
  const user = currentUserName()
  const createHint = `as root: install -d -m 0700 -o ${user} -g ${user} ${folder}`
  const folderStat = statOrUndefined(folder)
  if (!folderStat) {
    let ancestor = dirname(folder)
    let st = statOrUndefined(ancestor)
    while (!st && dirname(ancestor) !== ancestor) {
      ancestor = dirname(ancestor)
      st = statOrUndefined(ancestor)
    }
    if (st && st.isDirectory() && canWrite(ancestor, constants.W_OK | constants.X_OK)) return undefined
    return {
      folder,
      hint: createHint,
      message: `the folder ${folder} does not exist and ${who} cannot create it: ${ancestor} is ${st ? describeOwnership(st) : 'not reachable'}`,
    }
  }
  if (!folderStat.isDirectory()) return { folder, hint: `point the path at a folder ${user} owns`, message: `${folder} is not a folder` }
  if (!canWrite(folder, constants.W_OK | constants.X_OK)) {
    return {
      folder,
      hint: `as root: chown ${user}: ${folder} && chmod 0700 ${folder}`,
      message: `the folder ${folder} is not writable by ${who} (the database and its -wal and -shm files are created there): it is ${describeOwnership(folderStat)}`,
    }
  }
  const fileStat = statOrUndefined(file)
  if (fileStat && !canWrite(file, constants.R_OK | constants.W_OK)) {
    return {
      folder,
      hint: `as root: chown ${user}: ${file}* && chmod 0600 ${file}*`,
      message: `${basename(file)} in ${folder} is not writable by ${who}: it is ${describeOwnership(fileStat)}`,
    }
  }
  return undefined
}

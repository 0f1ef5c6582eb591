/**
 * Reads a configuration, users or secret file defensively: only regular files (a FIFO or a device
 * such as /dev/zero would block or never end), at most `maxBytes`, and OS errors in the words Go's
 * os package uses ("open /x: no such file or directory"), which is what Authelia users see.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs'

export class ReadTextError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message)
    this.name = 'ReadTextError'
  }
}

const REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  EMFILE: 'too many open files',
}

/** `open /x: permission denied`, for an error thrown by node:fs. */
export function fsErrorText(err: unknown, path: string): string {
  const e = err as NodeJS.ErrnoException
  if (err instanceof ReadTextError) return err.message
  const code = e?.code ?? 'EIO'
  const op = code === 'EISDIR' ? 'read' : 'open'
  return `${op} ${path}: ${REASONS[code] ?? (e?.message ?? code)}`
}

export function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${Math.round((n / 1024 / 1024) * 10) / 10} MiB` : n >= 1024 ? `${Math.round(n / 1024)} KiB` : `${n} bytes`
}

/**
 * The file's text (UTF-8). Throws ReadTextError with a one-line message naming `shown`
 * (the path as the operator wrote it).
 */
export function readTextFile(path: string, maxBytes: number, shown = path): string {
  let fd: number
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0))
  } catch (err) {
    throw new ReadTextError(fsErrorText(err, shown), (err as NodeJS.ErrnoException).code ?? 'EIO')
  }
  try {
    const st = fstatSync(fd)
    if (st.isDirectory()) throw new ReadTextError(`read ${shown}: is a directory`, 'EISDIR')
    if (!st.isFile()) throw new ReadTextError(`read ${shown}: not a regular file`, 'ENOTREG')
    if (st.size > maxBytes) throw new ReadTextError(`read ${shown}: the file is ${formatBytes(st.size)}, larger than the ${formatBytes(maxBytes)} limit`, 'EFBIG')
    // Read at most one byte more than the limit: the file may grow between fstat and read.
    const buf = Buffer.allocUnsafe(Math.min(st.size, maxBytes) + 1)
    let len = 0
    for (;;) {
      const n = readSync(fd, buf, len, buf.length - len, null)
      if (n === 0) break
      len += n
      if (len === buf.length) break
    }
    if (len > maxBytes) throw new ReadTextError(`read ${shown}: the file is larger than the ${formatBytes(maxBytes)} limit`, 'EFBIG')
    return buf.subarray(0, len).toString('utf8')
  } catch (err) {
    if (err instanceof ReadTextError) throw err
    throw new ReadTextError(fsErrorText(err, shown), (err as NodeJS.ErrnoException).code ?? 'EIO')
  } finally {
    closeSync(fd)
  }
}

/**
 * Why a text cannot be YAML at all (binary data), with its 1-based line, or undefined.
 * A NUL byte or invalid UTF-8 (decoded as U+FFFD) means the file is not text.
 */
export function binaryProblem(text: string): { line: number; column: number; message: string } | undefined {
  const i = text.search(/[\u0000\uFFFD]/)
  if (i < 0) return undefined
  const { line, column } = lineColumn(text, i)
  const what = text[i] === '\u0000' ? 'a NUL byte' : 'bytes that are not valid UTF-8'
  return { line, column, message: `the file is not YAML text: it contains ${what}` }
}

/** 1-based line and column of an offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1
  let start = 0
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++
    start = i + 1
  }
  return { line, column: offset - start + 1 }
}

/**
 * Offset of the first flow collection (`[`, `{`) nested deeper than `maxDepth`, found by a cheap scan
 * that skips quoted strings and comments. The parser would take minutes on a few MB of `[[[[`.
 */
export function flowDepthProblem(text: string, maxDepth: number): { line: number; column: number } | undefined {
  let depth = 0
  let prev = '\n'
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (c === '"' || c === "'") {
      // Only a quote that starts a scalar opens a string.
      if (!/[\s:,[{\-]/.test(prev)) {
        prev = c
        continue
      }
      let j = i + 1
      for (; j < text.length; j++) {
        if (c === '"' && text[j] === '\\') j++
        else if (text[j] === c) {
          if (c === "'" && text[j + 1] === "'") j++
          else break
        }
      }
      i = j
      prev = c
      continue
    }
    if (c === '#' && /\s/.test(prev)) {
      const nl = text.indexOf('\n', i)
      if (nl < 0) break
      i = nl
      prev = '\n'
      continue
    }
    if ((c === '[' || c === '{') && /[\s:,[{\-]/.test(prev)) {
      if (++depth > maxDepth) return lineColumn(text, i)
    } else if ((c === ']' || c === '}') && depth > 0) depth--
    prev = c
  }
  return undefined
}


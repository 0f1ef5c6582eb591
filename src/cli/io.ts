/** What a command may touch: handed in so tests run commands in-process. */
export interface CliIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
  env: Record<string, string | undefined>
  cwd: string
}

/** Exit status of a process killed by SIGPIPE (128 + 13), what `yes | head` leaves behind. */
export const EXIT_STDOUT_CLOSED = 141

let stdoutClosed = false
let stdoutGuarded = false
let exitOnClosedStdout = true

/**
 * For `serve`: a reader that goes away (`latchkey | head -3`) must not stop a running server; its
 * output is simply dropped from then on.
 */
export function keepRunningWhenStdoutCloses(): void {
  exitOnClosedStdout = false
}

/**
 * `latchkey doctor | head`: once the reader has gone, a write fails with EPIPE, which Node reports
 * as an unhandled 'error' event (a stack trace). Stop quietly instead, as a SIGPIPE would.
 */
function onStdoutError(err: NodeJS.ErrnoException): void {
  if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') {
    stdoutClosed = true
    if (exitOnClosedStdout) process.exit(EXIT_STDOUT_CLOSED)
    return
  }
  throw err
}

function writeStdout(text: string): void {
  if (stdoutClosed) return
  if (!stdoutGuarded) {
    stdoutGuarded = true
    process.stdout.on('error', onStdoutError)
  }
  process.stdout.write(text)
}

export const processIo: CliIo = {
  stdout: writeStdout,
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  cwd: process.cwd(),
}

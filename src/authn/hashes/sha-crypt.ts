import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { DigestParseError, checkOption, parseBoundedInt, timingSafeEqualBytes, type PasswordDigest } from './digest.js'
import { randomCryptSalt } from './encoding.js'
import { shaCryptWorkerSource } from './sha-crypt-worker.js'

export type Sha2CryptVariant = 'sha512' | 'sha256'

/** authentication_backend.file.password.sha2crypt.* */
export interface Sha2CryptOptions {
  readonly variant: Sha2CryptVariant
  readonly iterations: number
  readonly saltLength: number
}

export const sha2cryptDefaults: Sha2CryptOptions = Object.freeze({ variant: 'sha512', iterations: 50000, saltLength: 16 })

// The SHA-crypt specification's own range, which glibc clamps to and Authelia accepts. Its top is
// still minutes per attempt, but only in a worker; rounds=10^12 (days) is refused outright.
const MIN_ROUNDS = 1000
const MAX_ROUNDS = 999_999_999
const DEFAULT_ROUNDS = 5000
// The specification reads at most 16 salt characters.
const MAX_SALT = 16

const ID = { '6': 'sha512', '5': 'sha256' } as const
const HASH_LENGTH = { sha512: 86, sha256: 43 } as const

const SHA_CRYPT = /^\$([56])\$(?:rounds=([^$]*)\$)?([^$]*)\$([^$]*)$/

/** Parses `$6$rounds=50000$<salt>$<hash>` and `$5$…`; without `rounds=` the cost is 5000. */
export function parseShaCrypt(encoded: string): PasswordDigest {
  const match = SHA_CRYPT.exec(encoded)
  if (!match) throw new DigestParseError('sha-crypt digest must look like $6$rounds=<rounds>$<salt>$<hash>')
  const [, id, roundsText, salt, hashText] = match as unknown as [string, '5' | '6', string | undefined, string, string]
  const variant = ID[id]
  const rounds = roundsText === undefined ? DEFAULT_ROUNDS : parseBoundedInt(roundsText, 'sha-crypt rounds', MIN_ROUNDS, MAX_ROUNDS)
  if (salt.length < 1 || salt.length > MAX_SALT || /[:\s]/.test(salt)) {
    throw new DigestParseError(`sha-crypt salt must be 1 to ${MAX_SALT} characters without ':' or spaces`)
  }
  if (hashText.length !== HASH_LENGTH[variant] || !/^[./0-9A-Za-z]+$/.test(hashText)) {
    throw new DigestParseError(`${variant}crypt hash must be ${HASH_LENGTH[variant]} characters of ./0-9A-Za-z`)
  }
  const setting = roundsText === undefined ? `$${id}$${salt}` : `$${id}$rounds=${rounds}$${salt}`
  const expected = Buffer.from(hashText)
  return {
    algorithm: `${variant}crypt`,
    encoded,
    async verify(password) {
      const computed = await pool.run(password, setting)
      return timingSafeEqualBytes(Buffer.from(computed.slice(computed.lastIndexOf('$') + 1)), expected)
    },
  }
}

export async function generateShaCrypt(password: string, opts: Partial<Sha2CryptOptions> = {}): Promise<string> {
  const o = { ...sha2cryptDefaults, ...opts }
  if (o.variant !== 'sha512' && o.variant !== 'sha256') throw new RangeError(`sha2crypt variant must be sha512 or sha256, got ${o.variant}`)
  checkOption(o.iterations, 'sha2crypt iterations', MIN_ROUNDS, MAX_ROUNDS)
  checkOption(o.saltLength, 'sha2crypt salt length', 1, MAX_SALT)
  const id = o.variant === 'sha512' ? '6' : '5'
  return pool.run(password, `$${id}$rounds=${o.iterations}$${randomCryptSalt(randomBytes(o.saltLength))}`)
}

interface Job {
  readonly password: string
  readonly setting: string
  readonly resolve: (hash: string) => void
  readonly reject: (err: Error) => void
}

/**
 * A few workers, each running one hash at a time. Idle workers are unref'd so the pool never keeps
 * the process alive; busy ones are ref'd so a CLI waiting on a hash does not exit under it.
 */
class ShaCryptPool {
  private readonly idle: Worker[] = []
  private readonly busy = new Map<Worker, Job>()
  private readonly queue: Job[] = []
  private readonly maxWorkers = Math.max(1, Math.min(4, availableParallelism() - 1))
  private unixcryptUrl: string | undefined

  run(password: string, setting: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.queue.push({ password, setting, resolve, reject })
      this.pump()
    })
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let worker = this.idle.pop()
      if (!worker && this.busy.size < this.maxWorkers) {
        try {
          worker = this.spawn()
        } catch (err) {
          // Without a worker nothing queued can run; fail it now rather than leave it hanging.
          for (const job of this.queue.splice(0)) job.reject(err as Error)
          return
        }
      }
      if (!worker) return
      const job = this.queue.shift()!
      this.busy.set(worker, job)
      worker.ref()
      worker.postMessage({ password: job.password, setting: job.setting })
    }
  }

  private spawn(): Worker {
    this.unixcryptUrl ??= import.meta.resolve('unixcrypt')
    const worker = new Worker(shaCryptWorkerSource, { eval: true, workerData: { unixcryptUrl: this.unixcryptUrl } })
    worker.on('message', (msg: { hash?: string; error?: string }) => {
      const job = this.busy.get(worker)
      this.busy.delete(worker)
      worker.unref()
      this.idle.push(worker)
      if (msg.hash !== undefined) job?.resolve(msg.hash)
      else job?.reject(new Error(`sha-crypt failed: ${msg.error}`))
      this.pump()
    })
    worker.on('error', (err) => this.retire(worker, err))
    worker.on('exit', (code) => this.retire(worker, new Error(`sha-crypt worker exited with code ${code}`)))
    return worker
  }

  private retire(worker: Worker, err: Error): void {
    this.busy.get(worker)?.reject(err)
    this.busy.delete(worker)
    const at = this.idle.indexOf(worker)
    if (at >= 0) this.idle.splice(at, 1)
    this.pump()
  }
}

const pool = new ShaCryptPool()

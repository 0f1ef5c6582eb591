/**
 * The storage contract suite (CONVENTIONS.md §3): every backend runs it, so SQLite now and
 * PostgreSQL later behave the same. Uses only the Storage interface: no SQL, no driver.
 * A Storage is also a SessionStore: the session-store suite runs on it too.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { runSessionStoreContract } from './session-store-contract.js'
import type {
  AuthenticationAttempt,
  AuthorizationCodeRecord,
  ConsentSession,
  GrantContext,
  IdentityVerification,
  ImportBatch,
  PendingTotpConfiguration,
  PushedAuthorizationRequest,
  SessionClientRecord,
  Storage,
  TokenRecord,
  TotpConfiguration,
  WebauthnChallenge,
  WebauthnCredential,
} from '../src/storage/storage.js'

const NOW = 1_700_000_000
const hash = () => randomBytes(32).toString('hex')
const attemptTimes = (list: AuthenticationAttempt[]) => list.map((a) => a.time)

function grant(overrides: Partial<GrantContext> = {}): GrantContext {
  return {
    grantId: randomUUID(),
    clientId: 'kasm',
    username: 'alice',
    subject: randomUUID(),
    scopes: ['openid', 'profile', 'offline_access'],
    audience: ['kasm'],
    authTime: NOW - 10,
    amr: ['pwd', 'otp', 'mfa'],
    nonce: 'n-0S6_WzA2Mj',
    requestedAt: NOW - 5,
    sessionId: randomUUID(),
    ...overrides,
  }
}

function code(overrides: Partial<AuthorizationCodeRecord> = {}): AuthorizationCodeRecord {
  return {
    ...grant(),
    codeHash: hash(),
    redirectUri: 'https://kasm.example.com/callback',
    redirectUriSent: true,
    codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    codeChallengeMethod: 'S256',
    issuedAt: NOW,
    expiresAt: NOW + 60,
    ...overrides,
  }
}

function token(overrides: Partial<TokenRecord> = {}): TokenRecord {
  return { ...grant(), tokenHash: hash(), kind: 'access', issuedAt: NOW, expiresAt: NOW + 3600, ...overrides }
}

function sessionClient(overrides: Partial<SessionClientRecord> = {}): SessionClientRecord {
  return { sid: randomBytes(16).toString('base64url'), clientId: 'kasm', username: 'alice', subject: randomUUID(), issuer: 'https://auth.example.com', createdAt: NOW, expiresAt: NOW + 3600, ...overrides }
}

function consent(overrides: Partial<ConsentSession> = {}): ConsentSession {
  return {
    id: randomUUID(),
    clientId: 'kasm',
    subject: randomUUID(),
    username: 'alice',
    sessionId: randomUUID(),
    requestedScopes: ['openid', 'profile'],
    requestedAudience: ['kasm'],
    form: { response_type: 'code', client_id: 'kasm', state: 'xyz', redirect_uri: 'https://kasm.example.com/callback' },
    createdAt: NOW,
    expiresAt: NOW + 600,
    used: false,
    ...overrides,
  }
}

function totp(overrides: Partial<TotpConfiguration> = {}): TotpConfiguration {
  return {
    username: 'alice',
    issuer: 'Latchkey',
    algorithm: 'SHA1',
    digits: 6,
    periodSeconds: 30,
    secret: randomBytes(32),
    createdAt: NOW,
    ...overrides,
  }
}

const parallel = <T>(n: number, run: () => Promise<T>): Promise<T[]> => Promise.all(Array.from({ length: n }, run))

/** The grant a code or token carries, without its own fields (hash, kind, times). */
function grantOf(r: GrantContext): GrantContext {
  const keys = ['grantId', 'clientId', 'username', 'subject', 'scopes', 'audience', 'authTime', 'amr', 'nonce', 'requestedAt', 'sessionId', 'credentialFingerprint'] as const
  return Object.fromEntries(keys.filter((k) => r[k] !== undefined).map((k) => [k, r[k]])) as unknown as GrantContext
}

/**
 * What the token endpoint does with a refresh token (grants/refresh-token.ts), in storage calls:
 * consume it; a replay revokes the grant; the winner saves its new access and refresh token in
 * one step that rotates the old ones out. Resolves the tokens the winner handed out, if any.
 */
async function refreshLikeTheTokenEndpoint(s: Storage, rt: TokenRecord): Promise<TokenRecord[] | undefined> {
  const found = await s.consumeRefreshToken(rt.tokenHash, rt.clientId, NOW)
  if (found.kind === 'replayed') await s.revokeGrant(found.grantId)
  if (found.kind !== 'ok') return undefined
  const tokens = [token({ ...rt, kind: 'access', tokenHash: hash() }), token({ ...rt, tokenHash: hash(), parentHash: rt.tokenHash })]
  return (await s.saveIssuedTokens({ kind: 'refresh', hash: rt.tokenHash }, tokens)) ? tokens : undefined
}

/** A username with SQL meta-characters (docs/security.md X4): must be stored and matched literally. */
const HOSTILE = "bob' OR '1'='1;--"

export interface ContractOptions {
  /**
   * A second Storage on the database of the latest `open()` (another connection or pool, as a second
   * instance would have): the races then run across both. Closed by the suite before the first.
   */
  openPeer?: () => Promise<Storage>
}

export function runStorageContract(name: string, open: () => Promise<Storage>, options: ContractOptions = {}): void {
  runSessionStoreContract(name, async () => {
    const storage = await open()
    const openPeer = options.openPeer
    return {
      store: storage,
      close: () => storage.close(),
      ...(openPeer
        ? {
            another: async () => {
              const peer = await openPeer()
              return { store: peer, close: () => peer.close() }
            },
          }
        : {}),
    }
  })

  describe(`storage contract: ${name}`, () => {
    let storage: Storage
    let peer: Storage | undefined

    beforeEach(async () => {
      storage = await open()
    })
    afterEach(async () => {
      await peer?.close()
      peer = undefined
      await storage.close()
    })

    describe('health and migrations', () => {
      test('ping answers true while open', async () => {
        expect(await storage.ping()).toBe(true)
      })

      test('every known migration is applied after open', async () => {
        const migrations = await storage.listMigrations()
        expect(migrations.length).toBeGreaterThan(0)
        expect(migrations[0]!.version).toBe(1)
        for (const m of migrations) expect(m.appliedAt).toEqual(expect.any(Number))
        expect(await storage.migrateUp()).toEqual([])
      })
    })

    describe('subject identifiers', () => {
      test('the first candidate is kept: later calls return the same subject', async () => {
        const first = randomUUID()
        expect(await storage.ensureSubjectIdentifier('', 'alice', first)).toBe(first)
        expect(await storage.ensureSubjectIdentifier('', 'alice', randomUUID())).toBe(first)
      })

      test('each sector gets its own subject, and the reverse lookup finds the pair', async () => {
        const a = await storage.ensureSubjectIdentifier('', 'alice', randomUUID())
        const b = await storage.ensureSubjectIdentifier('app.example.com', 'alice', randomUUID())
        expect(a).not.toBe(b)
        expect(await storage.findUsernameBySubject(b)).toEqual({ username: 'alice', sectorIdentifier: 'app.example.com' })
        expect(await storage.findUsernameBySubject(randomUUID())).toBeUndefined()
      })

      test('parallel first uses agree on one subject', async () => {
        const subjects = await parallel(20, () => storage.ensureSubjectIdentifier('', 'carol', randomUUID()))
        expect(new Set(subjects).size).toBe(1)
      })

      test('a candidate already taken by another user is refused, not shared', async () => {
        const taken = await storage.ensureSubjectIdentifier('', 'alice', randomUUID())
        await expect(storage.ensureSubjectIdentifier('', 'mallory', taken)).rejects.toThrow()
        expect(await storage.findUsernameBySubject(taken)).toEqual({ username: 'alice', sectorIdentifier: '' })
      })

      test('listSubjectIdentifiers returns every pair', async () => {
        const a = await storage.ensureSubjectIdentifier('', 'alice', randomUUID())
        const b = await storage.ensureSubjectIdentifier('', HOSTILE, randomUUID())
        const list = await storage.listSubjectIdentifiers()
        expect(list).toEqual(
          expect.arrayContaining([
            { sectorIdentifier: '', username: 'alice', subject: a },
            { sectorIdentifier: '', username: HOSTILE, subject: b },
          ]),
        )
        expect(list).toHaveLength(2)
      })
    })

    describe('TOTP', () => {
      test('absent configuration resolves undefined; delete of nothing resolves false', async () => {
        expect(await storage.findTotpConfiguration('alice')).toBeUndefined()
        expect(await storage.deleteTotpConfiguration('alice')).toBe(false)
      })

      test('a saved configuration round-trips with its secret bytes', async () => {
        const config = totp({ algorithm: 'SHA256', digits: 8, periodSeconds: 60 })
        await storage.saveTotpConfiguration(config)
        expect(await storage.findTotpConfiguration('alice')).toEqual(config)
      })

      test('saving again replaces the configuration', async () => {
        await storage.saveTotpConfiguration(totp())
        const second = totp({ issuer: 'Other', createdAt: NOW + 5 })
        await storage.saveTotpConfiguration(second)
        expect(await storage.findTotpConfiguration('alice')).toEqual(second)
      })

      test('delete removes it', async () => {
        await storage.saveTotpConfiguration(totp())
        expect(await storage.deleteTotpConfiguration('alice')).toBe(true)
        expect(await storage.findTotpConfiguration('alice')).toBeUndefined()
      })

      test('the same step is accepted once (RFC 6238 §5.2)', async () => {
        await storage.saveTotpConfiguration(totp())
        expect(await storage.recordTotpUse('alice', 1000, NOW)).toBe(true)
        expect(await storage.recordTotpUse('alice', 1000, NOW + 1)).toBe(false)
      })

      test('an earlier step after a later one is refused; a later one is accepted', async () => {
        await storage.saveTotpConfiguration(totp())
        expect(await storage.recordTotpUse('alice', 1000, NOW)).toBe(true)
        expect(await storage.recordTotpUse('alice', 999, NOW)).toBe(false)
        expect(await storage.recordTotpUse('alice', 1001, NOW + 30)).toBe(true)
        expect(await storage.recordTotpUse('alice', 1000, NOW + 30)).toBe(false)
      })

      test('20 parallel submissions of one step: exactly one is accepted', async () => {
        await storage.saveTotpConfiguration(totp())
        const results = await parallel(20, () => storage.recordTotpUse('alice', 2000, NOW))
        expect(results.filter(Boolean)).toHaveLength(1)
      })

      test('steps are tracked per user', async () => {
        expect(await storage.recordTotpUse('alice', 1000, NOW)).toBe(true)
        expect(await storage.recordTotpUse('bob', 1000, NOW)).toBe(true)
        expect(await storage.recordTotpUse(HOSTILE, 1000, NOW)).toBe(true)
      })

      test('an accepted step updates lastUsedAt', async () => {
        await storage.saveTotpConfiguration(totp())
        await storage.recordTotpUse('alice', 1000, NOW + 7)
        expect((await storage.findTotpConfiguration('alice'))?.lastUsedAt).toBe(NOW + 7)
      })

      test('a new configuration forgets the used steps', async () => {
        await storage.saveTotpConfiguration(totp())
        expect(await storage.recordTotpUse('alice', 1000, NOW)).toBe(true)
        await storage.saveTotpConfiguration(totp())
        expect(await storage.recordTotpUse('alice', 1000, NOW)).toBe(true)
      })

      const pending = (overrides: Partial<PendingTotpConfiguration> = {}): PendingTotpConfiguration => ({
        ...totp({ createdAt: NOW + 10 }),
        id: randomUUID(),
        sessionHash: hash(),
        expiresAt: NOW + 600,
        ...overrides,
      })

      test('a pending device is not the configuration until confirmed, then replaces it with its first step', async () => {
        const old = totp()
        await storage.saveTotpConfiguration(old)
        expect(await storage.recordTotpUse('alice', 1000, NOW)).toBe(true)
        const p = pending()
        await storage.savePendingTotpConfiguration(p)
        expect(await storage.findPendingTotpConfiguration('alice', NOW + 20)).toEqual(p)
        expect(await storage.findTotpConfiguration('alice')).toEqual({ ...old, lastUsedAt: NOW })
        expect(await storage.confirmPendingTotpConfiguration('alice', p.id, 500, NOW + 30)).toBe(true)
        const { id: _i, sessionHash: _s, expiresAt: _e, ...config } = p
        expect(await storage.findTotpConfiguration('alice')).toEqual({ ...config, createdAt: NOW + 30, lastUsedAt: NOW + 30 })
        expect(await storage.findPendingTotpConfiguration('alice', NOW + 30)).toBeUndefined()
        // The new device starts its own step sequence, its confirming step already spent.
        expect(await storage.recordTotpUse('alice', 500, NOW + 31)).toBe(false)
        expect(await storage.recordTotpUse('alice', 501, NOW + 31)).toBe(true)
        expect(await storage.confirmPendingTotpConfiguration('alice', p.id, 502, NOW + 32)).toBe(false)
      })

      test('a replaced, expired, deleted or unknown pending device is not confirmed', async () => {
        const first = pending()
        await storage.savePendingTotpConfiguration(first)
        const second = pending()
        await storage.savePendingTotpConfiguration(second)
        expect(await storage.confirmPendingTotpConfiguration('alice', first.id, 1, NOW)).toBe(false)
        expect(await storage.confirmPendingTotpConfiguration('bob', second.id, 1, NOW)).toBe(false)
        expect(await storage.findPendingTotpConfiguration('alice', NOW + 600)).toBeUndefined()
        expect(await storage.confirmPendingTotpConfiguration('alice', second.id, 1, NOW + 600)).toBe(false)
        await storage.deletePendingTotpConfiguration('alice')
        expect(await storage.confirmPendingTotpConfiguration('alice', second.id, 1, NOW)).toBe(false)
        expect(await storage.findTotpConfiguration('alice')).toBeUndefined()
      })

      test('20 parallel confirmations of one pending device: exactly one wins', async () => {
        const p = pending()
        await storage.savePendingTotpConfiguration(p)
        const results = await parallel(20, () => storage.confirmPendingTotpConfiguration('alice', p.id, 7, NOW))
        expect(results.filter(Boolean)).toHaveLength(1)
      })

      test('housekeeping removes expired pending devices', async () => {
        await storage.savePendingTotpConfiguration(pending({ expiresAt: NOW + 5 }))
        await storage.savePendingTotpConfiguration(pending({ username: 'bob', expiresAt: NOW + 600 }))
        expect(await storage.deleteExpiredOidcArtifacts(NOW + 5)).toBe(1)
        expect(await storage.findPendingTotpConfiguration('bob', NOW + 5)).toBeDefined()
      })
    })

    describe('WebAuthn credentials, challenges, second-factor preference', () => {
      const credential = (overrides: Partial<WebauthnCredential> = {}): WebauthnCredential => ({
        credentialId: randomBytes(32).toString('base64url'),
        username: 'alice',
        description: 'YubiKey',
        rpId: 'auth.example.com',
        publicKey: randomBytes(77),
        signCount: 0,
        transports: ['usb', 'nfc'],
        aaguid: '00000000-0000-0000-0000-000000000000',
        attestationType: 'none',
        discoverable: false,
        userVerified: false,
        backupEligible: false,
        cloneWarning: false,
        createdAt: NOW,
        ...overrides,
      })

      test('a saved credential reads back whole; several per user, listed oldest first', async () => {
        const first = credential({ signCount: 5, lastUsedAt: NOW + 1 })
        const second = credential({ description: 'Phone', discoverable: true, userVerified: true, backupEligible: true, transports: [], createdAt: NOW + 10 })
        expect(await storage.saveWebauthnCredential(second)).toBe('saved')
        expect(await storage.saveWebauthnCredential(first)).toBe('saved')
        expect(await storage.saveWebauthnCredential(credential({ username: HOSTILE }))).toBe('saved')
        expect(await storage.findWebauthnCredential(first.credentialId)).toEqual(first)
        expect(await storage.listWebauthnCredentials('alice')).toEqual([first, second])
        expect((await storage.listWebauthnCredentials(HOSTILE)).map((c) => c.username)).toEqual([HOSTILE])
        expect((await storage.listWebauthnCredentials()).map((c) => c.username).sort()).toEqual(['alice', 'alice', HOSTILE].sort())
        expect(await storage.findWebauthnCredential('missing')).toBeUndefined()
      })

      test('a taken credential id or description changes nothing', async () => {
        const c = credential()
        await storage.saveWebauthnCredential(c)
        expect(await storage.saveWebauthnCredential(credential({ credentialId: c.credentialId, username: 'bob', description: 'other' }))).toBe('duplicate_id')
        expect(await storage.saveWebauthnCredential(credential({ description: c.description }))).toBe('duplicate_description')
        expect(await storage.saveWebauthnCredential(credential({ username: 'bob', description: c.description }))).toBe('saved')
        expect(await storage.listWebauthnCredentials('alice')).toEqual([c])
      })

      test('20 parallel saves of one description: exactly one is saved', async () => {
        const results = await parallel(20, () => storage.saveWebauthnCredential(credential({ description: 'same' })))
        expect(results.filter((r) => r === 'saved')).toHaveLength(1)
        expect(await storage.listWebauthnCredentials('alice')).toHaveLength(1)
      })

      test('a use moves the count only from the expected value; 20 parallel uses of one count: one wins', async () => {
        const c = credential({ signCount: 3 })
        await storage.saveWebauthnCredential(c)
        expect(await storage.recordWebauthnUse(c.credentialId, 2, 4, NOW + 5)).toBe(false)
        const results = await parallel(20, () => storage.recordWebauthnUse(c.credentialId, 3, 4, NOW + 5))
        expect(results.filter(Boolean)).toHaveLength(1)
        expect(await storage.findWebauthnCredential(c.credentialId)).toEqual({ ...c, signCount: 4, lastUsedAt: NOW + 5 })
      })

      test('a flagged clone is kept, marked, and refuses every use', async () => {
        const c = credential({ signCount: 9 })
        await storage.saveWebauthnCredential(c)
        await storage.flagWebauthnClone(c.credentialId)
        expect(await storage.recordWebauthnUse(c.credentialId, 9, 10, NOW)).toBe(false)
        expect(await storage.findWebauthnCredential(c.credentialId)).toEqual({ ...c, cloneWarning: true })
      })

      test("rename and delete touch only the owner's credential; a rename to a taken description fails", async () => {
        const a = credential()
        const b = credential({ description: 'Backup key' })
        await storage.saveWebauthnCredential(a)
        await storage.saveWebauthnCredential(b)
        expect(await storage.renameWebauthnCredential('bob', a.credentialId, 'mine now')).toBe(false)
        expect(await storage.renameWebauthnCredential('alice', a.credentialId, 'Backup key')).toBe(false)
        expect(await storage.renameWebauthnCredential('alice', a.credentialId, 'Desk key')).toBe(true)
        expect(await storage.renameWebauthnCredential('alice', a.credentialId, 'Desk key')).toBe(true)
        expect((await storage.findWebauthnCredential(a.credentialId))!.description).toBe('Desk key')
        expect(await storage.deleteWebauthnCredential('bob', a.credentialId)).toBe(false)
        expect(await storage.deleteWebauthnCredential('alice', a.credentialId)).toBe(true)
        expect(await storage.deleteWebauthnCredential('alice', a.credentialId)).toBe(false)
        expect(await storage.listWebauthnCredentials('alice')).toEqual([b])
      })

      test('a challenge is spent once, for its purpose, before it expires; 20 parallel spends: one wins', async () => {
        const challenge: WebauthnChallenge = { challengeHash: hash(), purpose: 'assert', sessionHash: hash(), username: HOSTILE, expiresAt: NOW + 60 }
        await storage.saveWebauthnChallenge(challenge)
        const results = await parallel(20, () => storage.consumeWebauthnChallenge(challenge.challengeHash, 'assert', NOW))
        expect(results.filter((r) => r !== undefined)).toEqual([challenge])
        // Offered for another purpose: refused, and spent all the same.
        const other: WebauthnChallenge = { challengeHash: hash(), purpose: 'register', sessionHash: hash(), expiresAt: NOW + 60 }
        await storage.saveWebauthnChallenge(other)
        expect(await storage.consumeWebauthnChallenge(other.challengeHash, 'assert', NOW)).toBeUndefined()
        expect(await storage.consumeWebauthnChallenge(other.challengeHash, 'register', NOW)).toBeUndefined()
        const passkey: WebauthnChallenge = { challengeHash: hash(), purpose: 'passkey', expiresAt: NOW + 60 }
        await storage.saveWebauthnChallenge(passkey)
        expect(await storage.consumeWebauthnChallenge(passkey.challengeHash, 'passkey', NOW + 60)).toBeUndefined()
      })

      test('housekeeping removes expired challenges only', async () => {
        const old: WebauthnChallenge = { challengeHash: hash(), purpose: 'passkey', expiresAt: NOW + 5 }
        const live: WebauthnChallenge = { challengeHash: hash(), purpose: 'passkey', expiresAt: NOW + 60 }
        await storage.saveWebauthnChallenge(old)
        await storage.saveWebauthnChallenge(live)
        expect(await storage.deleteExpiredWebauthnChallenges(NOW + 5)).toBe(1)
        expect(await storage.consumeWebauthnChallenge(live.challengeHash, 'passkey', NOW + 5)).toEqual(live)
      })

      test('the preferred second factor is kept per user and replaced', async () => {
        expect(await storage.findPreferred2faMethod('alice')).toBeUndefined()
        await storage.savePreferred2faMethod('alice', 'webauthn')
        await storage.savePreferred2faMethod(HOSTILE, 'totp')
        await storage.savePreferred2faMethod('alice', 'totp')
        expect(await storage.findPreferred2faMethod('alice')).toBe('totp')
        expect(await storage.findPreferred2faMethod(HOSTILE)).toBe('totp')
      })
    })

    describe('regulation', () => {
      const attempt = (overrides: Partial<AuthenticationAttempt>): AuthenticationAttempt => ({
        time: NOW,
        successful: false,
        banned: false,
        username: 'alice',
        type: '1fa',
        remoteIp: '192.0.2.10',
        ...overrides,
      })

      test('no attempts: an empty list', async () => {
        expect(await storage.listAuthenticationAttempts('alice', 0, 10)).toEqual([])
      })

      test('newest first, only since `since`, at most `limit`, only this user', async () => {
        for (let i = 0; i < 5; i++) await storage.recordAuthenticationAttempt(attempt({ time: NOW + i, successful: i === 4 }))
        await storage.recordAuthenticationAttempt(attempt({ username: 'bob', time: NOW + 10 }))
        const list = await storage.listAuthenticationAttempts('alice', NOW + 1, 3)
        expect(list.map((a) => a.time)).toEqual([NOW + 4, NOW + 3, NOW + 2])
        expect(list[0]!.successful).toBe(true)
        expect(await storage.listAuthenticationAttempts('alice', NOW + 1, 10)).toHaveLength(4)
      })

      test('attempts within one second keep insertion order (newest first)', async () => {
        await storage.recordAuthenticationAttempt(attempt({ remoteIp: '192.0.2.1' }))
        await storage.recordAuthenticationAttempt(attempt({ remoteIp: '192.0.2.2' }))
        const list = await storage.listAuthenticationAttempts('alice', NOW, 10)
        expect(list.map((a) => a.remoteIp)).toEqual(['192.0.2.2', '192.0.2.1'])
      })

      test('every field round-trips', async () => {
        const full = attempt({ banned: true, type: 'totp', requestUri: 'https://auth.example.com/api/secondfactor/totp', requestMethod: 'POST', username: HOSTILE })
        await storage.recordAuthenticationAttempt(full)
        expect(await storage.listAuthenticationAttempts(HOSTILE, 0, 1)).toEqual([full])
        const bare = attempt({ time: NOW + 1 })
        await storage.recordAuthenticationAttempt(bare)
        expect(await storage.listAuthenticationAttempts('alice', 0, 1)).toEqual([bare])
      })

      describe('counted failures (security.md B1)', () => {
        const user = { kind: 'user' as const, username: 'alice' }
        const times = (list: AuthenticationAttempt[]) => list.map((a) => a.time)

        test('only failures, newest first, since `since`, at most `limit`; successes and refused attempts are never listed', async () => {
          for (let i = 0; i < 5; i++) await storage.recordAuthenticationAttempt(attempt({ time: NOW + i }))
          await storage.recordAuthenticationAttempt(attempt({ time: NOW + 5, banned: true }))
          await storage.recordAuthenticationAttempt(attempt({ time: NOW + 6, username: 'bob' }))
          expect(times(await storage.listCountedFailures(user, NOW + 1, 3))).toEqual([NOW + 4, NOW + 3, NOW + 2])
          expect(times(await storage.listCountedFailures(user, NOW + 1, 10))).toEqual([NOW + 4, NOW + 3, NOW + 2, NOW + 1])
        })

        test('a success forgives the earlier failures of its own factor only', async () => {
          await storage.recordAuthenticationAttempt(attempt({ time: NOW, type: 'totp' }))
          await storage.recordAuthenticationAttempt(attempt({ time: NOW + 1 }))
          await storage.recordAuthenticationAttempt(attempt({ time: NOW + 2, type: 'totp' }))
          await storage.recordAuthenticationAttempt(attempt({ time: NOW + 3, successful: true }))
          await storage.recordAuthenticationAttempt(attempt({ time: NOW + 4 }))
          // The password success at +3 forgives the password failure at +1, not the wrong codes.
          expect(times(await storage.listCountedFailures(user, NOW, 10))).toEqual([NOW + 4, NOW + 2, NOW])
          await storage.recordAuthenticationAttempt(attempt({ time: NOW + 5, type: 'totp', successful: true }))
          expect(times(await storage.listCountedFailures(user, NOW, 10))).toEqual([NOW + 4])
        })

        test('within one second the recording order decides what a success forgives', async () => {
          await storage.recordAuthenticationAttempt(attempt({ remoteIp: '192.0.2.1' }))
          await storage.recordAuthenticationAttempt(attempt({ successful: true }))
          await storage.recordAuthenticationAttempt(attempt({ remoteIp: '192.0.2.3' }))
          expect((await storage.listCountedFailures(user, NOW, 10)).map((a) => a.remoteIp)).toEqual(['192.0.2.3'])
        })

        test('by client address: every user from that address, no other address', async () => {
          await storage.recordAuthenticationAttempt(attempt({ time: NOW, username: 'alice' }))
          await storage.recordAuthenticationAttempt(attempt({ time: NOW + 1, username: 'bob' }))
          await storage.recordAuthenticationAttempt(attempt({ time: NOW + 2, remoteIp: '198.51.100.1' }))
          await storage.recordAuthenticationAttempt(attempt({ time: NOW + 3, username: 'carol', banned: true }))
          const list = await storage.listCountedFailures({ kind: 'ip', remoteIp: '192.0.2.10' }, NOW, 10)
          expect(list.map((a) => a.username)).toEqual(['bob', 'alice'])
          await storage.recordAuthenticationAttempt(attempt({ time: NOW + 4, username: 'dave', successful: true }))
          expect(await storage.listCountedFailures({ kind: 'ip', remoteIp: '192.0.2.10' }, NOW, 10)).toEqual([])
        })
      })

      test('refused attempts are counted per address since `since`', async () => {
        await storage.recordAuthenticationAttempt(attempt({ time: NOW, banned: true }))
        await storage.recordAuthenticationAttempt(attempt({ time: NOW + 1, banned: true, username: 'bob' }))
        await storage.recordAuthenticationAttempt(attempt({ time: NOW + 2 }))
        await storage.recordAuthenticationAttempt(attempt({ time: NOW + 2, banned: true, remoteIp: '198.51.100.1' }))
        expect(await storage.countRefusedAttempts('192.0.2.10', NOW)).toBe(2)
        expect(await storage.countRefusedAttempts('192.0.2.10', NOW + 1)).toBe(1)
        expect(await storage.countRefusedAttempts('203.0.113.9', NOW)).toBe(0)
      })

      test('pruning deletes only attempts older than `before`, oldest first, at most `limit`', async () => {
        for (let i = 0; i < 5; i++) await storage.recordAuthenticationAttempt(attempt({ time: NOW + i }))
        expect(await storage.pruneAuthenticationAttempts(NOW + 3, 2)).toBe(2)
        expect(attemptTimes(await storage.listAuthenticationAttempts('alice', 0, 10))).toEqual([NOW + 4, NOW + 3, NOW + 2])
        expect(await storage.pruneAuthenticationAttempts(NOW + 3, 10)).toBe(1)
        expect(await storage.pruneAuthenticationAttempts(NOW + 3, 10)).toBe(0)
        expect(attemptTimes(await storage.listAuthenticationAttempts('alice', 0, 10))).toEqual([NOW + 4, NOW + 3])
      })
    })

    describe('identity verification', () => {
      const record = (id = randomUUID()) => ({ id, username: 'alice', action: 'ResetPassword', issuedAt: NOW, expiresAt: NOW + 300, remoteIp: '192.0.2.10' })

      test('unknown: missing', async () => {
        expect(await storage.consumeIdentityVerification('nope', NOW)).toEqual({ kind: 'missing' })
      })

      test('consumed once: ok with the record, then consumed', async () => {
        const r = record()
        await storage.saveIdentityVerification(r)
        expect(await storage.consumeIdentityVerification(r.id, NOW + 1)).toEqual({ kind: 'ok', record: { ...r, consumedAt: NOW + 1 } })
        expect(await storage.consumeIdentityVerification(r.id, NOW + 2)).toEqual({ kind: 'consumed' })
      })

      test('past expiresAt: expired, and it stays unusable', async () => {
        const r = record()
        await storage.saveIdentityVerification(r)
        expect(await storage.consumeIdentityVerification(r.id, NOW + 300)).toEqual({ kind: 'expired' })
        expect(await storage.consumeIdentityVerification(r.id, NOW + 301)).toEqual({ kind: 'expired' })
      })

      test('20 parallel consumes: exactly one ok', async () => {
        const r = record()
        await storage.saveIdentityVerification(r)
        const results = await parallel(20, () => storage.consumeIdentityVerification(r.id, NOW))
        expect(results.filter((x) => x.kind === 'ok')).toHaveLength(1)
        expect(results.filter((x) => x.kind === 'consumed')).toHaveLength(19)
      })

      test('find returns the record in any state', async () => {
        const r = { ...record(), sessionHash: hash(), codeHash: hash() }
        await storage.saveIdentityVerification(r)
        expect(await storage.findIdentityVerification(r.id)).toEqual(r)
        await storage.consumeIdentityVerification(r.id, NOW + 1)
        expect(await storage.findIdentityVerification(r.id)).toEqual({ ...r, consumedAt: NOW + 1 })
        expect(await storage.findIdentityVerification('nope')).toBeUndefined()
      })

      const limits = { windowSeconds: 600, maxPerUser: 5, maxPerSession: 3 }

      test('starts are limited per session and per user inside the window, and free again after it', async () => {
        const s1 = hash()
        const start = (sessionHash: string, at: number, username = 'alice') =>
          storage.startIdentityVerification({ ...record(), username, sessionHash, issuedAt: at, expiresAt: at + 300 }, limits)
        for (let i = 0; i < 3; i++) expect(await start(s1, NOW + i)).toEqual({ kind: 'ok' })
        expect(await start(s1, NOW + 10)).toEqual({ kind: 'limited', scope: 'session', retryAt: NOW + 600 })
        const s2 = hash()
        expect(await start(s2, NOW + 11)).toEqual({ kind: 'ok' })
        expect(await start(s2, NOW + 12)).toEqual({ kind: 'ok' })
        expect(await start(hash(), NOW + 13)).toEqual({ kind: 'limited', scope: 'user', retryAt: NOW + 600 })
        // Other users are not affected, and the window moves on.
        expect(await start(hash(), NOW + 14, 'bob')).toEqual({ kind: 'ok' })
        expect(await start(hash(), NOW + 600)).toEqual({ kind: 'ok' })
      })

      test('20 parallel starts from one session: exactly the limit passes', async () => {
        const s1 = hash()
        const results = await parallel(20, () => storage.startIdentityVerification({ ...record(), sessionHash: s1 }, limits))
        expect(results.filter((r) => r.kind === 'ok')).toHaveLength(3)
      })

      test('limited starts survive housekeeping inside the window', async () => {
        const s1 = hash()
        for (let i = 0; i < 3; i++) await storage.startIdentityVerification({ ...record(), sessionHash: s1 }, limits)
        await storage.deleteExpiredOidcArtifacts(NOW + 301)
        expect((await storage.startIdentityVerification({ ...record(), sessionHash: s1, issuedAt: NOW + 301, expiresAt: NOW + 601 }, limits)).kind).toBe('limited')
      })

      describe('one-time codes', () => {
        const input = (sessionHash: string, codeHash: string, now = NOW + 1) => ({ sessionHash, username: 'alice', action: 'RegisterTOTPDevice', codeHash, now, maxAttempts: 3 })
        const saveCode = async (sessionHash: string, codeHash: string, overrides: Partial<IdentityVerification> = {}) => {
          const r: IdentityVerification = { ...record(), action: 'RegisterTOTPDevice', sessionHash, codeHash, ...overrides }
          await storage.saveIdentityVerification(r)
          return r
        }

        test('the right code of this session is consumed once', async () => {
          const s1 = hash()
          const c = hash()
          const r = await saveCode(s1, c)
          expect(await storage.consumeIdentityVerificationCode(input(s1, c))).toEqual({ kind: 'ok', record: { ...r, consumedAt: NOW + 1 } })
          expect(await storage.consumeIdentityVerificationCode(input(s1, c))).toEqual({ kind: 'missing' })
        })

        test('a code of another session, user or action is never accepted', async () => {
          const s1 = hash()
          const c = hash()
          await saveCode(s1, c)
          expect(await storage.consumeIdentityVerificationCode(input(hash(), c))).toEqual({ kind: 'missing' })
          expect(await storage.consumeIdentityVerificationCode({ ...input(s1, c), username: 'bob' })).toEqual({ kind: 'missing' })
          expect(await storage.consumeIdentityVerificationCode({ ...input(s1, c), action: 'ResetPassword' })).toEqual({ kind: 'missing' })
          expect((await storage.consumeIdentityVerificationCode(input(s1, c))).kind).toBe('ok')
        })

        test('an earlier live code of the session still works; an expired one does not', async () => {
          const s1 = hash()
          const old = hash()
          await saveCode(s1, old, { expiresAt: NOW + 2 })
          const newer = hash()
          await saveCode(s1, newer)
          expect(await storage.consumeIdentityVerificationCode(input(s1, old, NOW + 2))).toEqual({ kind: 'wrong' })
          expect((await storage.consumeIdentityVerificationCode(input(s1, newer, NOW + 2))).kind).toBe('ok')
        })

        test('wrong codes are bounded: the code is spent after maxAttempts', async () => {
          const s1 = hash()
          const c = hash()
          await saveCode(s1, c)
          for (let i = 0; i < 3; i++) expect(await storage.consumeIdentityVerificationCode(input(s1, hash()))).toEqual({ kind: 'wrong' })
          expect(await storage.consumeIdentityVerificationCode(input(s1, c))).toEqual({ kind: 'missing' })
        })

        test('20 parallel uses of one code: exactly one ok', async () => {
          const s1 = hash()
          const c = hash()
          await saveCode(s1, c)
          const results = await parallel(20, () => storage.consumeIdentityVerificationCode(input(s1, c)))
          expect(results.filter((r) => r.kind === 'ok')).toHaveLength(1)
        })
      })
    })

    describe('consent', () => {
      test('absent: undefined', async () => {
        expect(await storage.findConsentSession(randomUUID())).toBeUndefined()
      })

      test('a consent session round-trips', async () => {
        const s = consent()
        await storage.saveConsentSession(s)
        expect(await storage.findConsentSession(s.id)).toEqual(s)
      })

      test('an answered session round-trips its answer', async () => {
        const s = consent({ respondedAt: NOW + 1, granted: true, grantedScopes: ['openid'], grantedAudience: ['kasm'] })
        await storage.saveConsentSession(s)
        expect(await storage.findConsentSession(s.id)).toEqual(s)
      })

      test('answer is recorded once; a second answer is refused', async () => {
        const s = consent()
        await storage.saveConsentSession(s)
        expect(await storage.answerConsentSession(s.id, true, ['openid'], ['kasm'], NOW + 5)).toBe(true)
        expect(await storage.answerConsentSession(s.id, false, [], [], NOW + 6)).toBe(false)
        expect(await storage.findConsentSession(s.id)).toEqual({ ...s, respondedAt: NOW + 5, granted: true, grantedScopes: ['openid'], grantedAudience: ['kasm'] })
      })

      test('a refusal is recorded as granted: false', async () => {
        const s = consent()
        await storage.saveConsentSession(s)
        expect(await storage.answerConsentSession(s.id, false, [], [], NOW + 5)).toBe(true)
        expect((await storage.findConsentSession(s.id))?.granted).toBe(false)
      })

      test('answering an unknown or expired session is refused', async () => {
        expect(await storage.answerConsentSession(randomUUID(), true, [], [], NOW)).toBe(false)
        const s = consent({ expiresAt: NOW + 10 })
        await storage.saveConsentSession(s)
        expect(await storage.answerConsentSession(s.id, true, ['openid'], [], NOW + 10)).toBe(false)
      })

      test('parallel answers: exactly one is recorded', async () => {
        const s = consent()
        await storage.saveConsentSession(s)
        const results = await parallel(20, () => storage.answerConsentSession(s.id, true, ['openid'], ['kasm'], NOW))
        expect(results.filter(Boolean)).toHaveLength(1)
      })

      test('a consent session is used once; 20 parallel marks give exactly one true', async () => {
        const s = consent()
        await storage.saveConsentSession(s)
        const results = await parallel(20, () => storage.markConsentSessionUsed(s.id))
        expect(results.filter(Boolean)).toHaveLength(1)
        expect((await storage.findConsentSession(s.id))?.used).toBe(true)
        expect(await storage.markConsentSessionUsed(randomUUID())).toBe(false)
      })

      test('a remembered consent matches the same scope and audience sets in any order', async () => {
        const pre = { subject: 'sub-1', clientId: 'kasm', scopes: ['openid', 'profile', 'email'], audience: ['kasm', 'api'], createdAt: NOW, expiresAt: NOW + 3600 }
        await storage.savePreConfiguredConsent(pre)
        const found = await storage.findPreConfiguredConsent('sub-1', 'kasm', ['email', 'openid', 'profile'], ['api', 'kasm'], NOW)
        expect(found).toBeDefined()
        expect(found!.subject).toBe('sub-1')
        expect([...found!.scopes].sort()).toEqual(['email', 'openid', 'profile'])
        expect([...found!.audience].sort()).toEqual(['api', 'kasm'])
        expect(found!.expiresAt).toBe(NOW + 3600)
      })

      test('a remembered consent does not match a different set, client, subject, or after expiry', async () => {
        await storage.savePreConfiguredConsent({ subject: 'sub-1', clientId: 'kasm', scopes: ['openid', 'profile'], audience: [], createdAt: NOW, expiresAt: NOW + 100 })
        expect(await storage.findPreConfiguredConsent('sub-1', 'kasm', ['openid'], [], NOW)).toBeUndefined()
        expect(await storage.findPreConfiguredConsent('sub-1', 'kasm', ['openid', 'profile', 'email'], [], NOW)).toBeUndefined()
        expect(await storage.findPreConfiguredConsent('sub-1', 'kasm', ['openid', 'profile'], ['x'], NOW)).toBeUndefined()
        expect(await storage.findPreConfiguredConsent('sub-1', 'other', ['openid', 'profile'], [], NOW)).toBeUndefined()
        expect(await storage.findPreConfiguredConsent('sub-2', 'kasm', ['openid', 'profile'], [], NOW)).toBeUndefined()
        expect(await storage.findPreConfiguredConsent('sub-1', 'kasm', ['profile', 'openid'], [], NOW + 99)).toBeDefined()
        expect(await storage.findPreConfiguredConsent('sub-1', 'kasm', ['openid', 'profile'], [], NOW + 100)).toBeUndefined()
      })

      test('remembering the same consent again extends it', async () => {
        const pre = { subject: 'sub-1', clientId: 'kasm', scopes: ['openid'], audience: [], createdAt: NOW, expiresAt: NOW + 100 }
        await storage.savePreConfiguredConsent(pre)
        await storage.savePreConfiguredConsent({ ...pre, createdAt: NOW + 50, expiresAt: NOW + 1000 })
        expect((await storage.findPreConfiguredConsent('sub-1', 'kasm', ['openid'], [], NOW + 500))?.expiresAt).toBe(NOW + 1000)
      })
    })

    describe('import (importRecords)', () => {
      const KEY_ID = Buffer.alloc(32, 3).toString('base64url')
      const imported = (over: Partial<WebauthnCredential> = {}): WebauthnCredential => ({
        credentialId: KEY_ID,
        username: 'alice',
        description: 'YubiKey',
        rpId: 'auth.example.com',
        publicKey: Buffer.alloc(77, 5),
        signCount: 12,
        transports: ['usb', 'nfc'],
        aaguid: 'cb69481e-8ff7-4039-93ec-0a2729a154a8',
        attestationType: 'packed',
        discoverable: true,
        userVerified: true,
        backupEligible: false,
        cloneWarning: false,
        createdAt: NOW - 100,
        lastUsedAt: NOW - 10,
        ...over,
      })
      const batch = (over: Partial<ImportBatch> = {}): ImportBatch => ({
        subjects: [
          { sectorIdentifier: '', username: 'alice', subject: 'a0f3c4d8-5c62-4a53-9a77-2d3c6c0e1a01' },
          { sectorIdentifier: 'app.example.com', username: 'alice', subject: 'b1e2d3c4-1111-4222-8333-944455566677' },
        ],
        totpConfigurations: [totp({ secret: Buffer.alloc(20, 7) }), totp({ username: HOSTILE, secret: Buffer.alloc(20, 9), algorithm: 'SHA512', digits: 8, periodSeconds: 60 })],
        preConfiguredConsents: [{ subject: 'a0f3c4d8-5c62-4a53-9a77-2d3c6c0e1a01', clientId: 'kasm', scopes: ['profile', 'openid'], audience: [], createdAt: NOW, expiresAt: NOW + 3600 }],
        webauthnCredentials: [imported()],
        secondFactorPreferences: [
          { username: 'alice', method: 'webauthn' },
          { username: HOSTILE, method: 'totp' },
        ],
        ...over,
      })
      const options = { force: false, apply: true }

      test('adds everything in one call; the records read back through the ordinary methods', async () => {
        const plan = await storage.importRecords(batch(), options)
        expect(plan).toEqual({ subjects: ['add', 'add'], totpConfigurations: ['add', 'add'], preConfiguredConsents: ['add'], webauthnCredentials: ['add'], secondFactorPreferences: ['add', 'add'], applied: true })
        expect(await storage.ensureSubjectIdentifier('', 'alice', randomUUID())).toBe('a0f3c4d8-5c62-4a53-9a77-2d3c6c0e1a01')
        expect(await storage.findUsernameBySubject('b1e2d3c4-1111-4222-8333-944455566677')).toEqual({ username: 'alice', sectorIdentifier: 'app.example.com' })
        expect(await storage.findTotpConfiguration(HOSTILE)).toMatchObject({ algorithm: 'SHA512', digits: 8, periodSeconds: 60, secret: Buffer.alloc(20, 9) })
        expect(await storage.findPreConfiguredConsent('a0f3c4d8-5c62-4a53-9a77-2d3c6c0e1a01', 'kasm', ['openid', 'profile'], [], NOW + 10)).toMatchObject({ expiresAt: NOW + 3600 })
        expect(await storage.findWebauthnCredential(KEY_ID)).toEqual(imported())
        expect(await storage.findPreferred2faMethod('alice')).toBe('webauthn')
        expect(await storage.findPreferred2faMethod(HOSTILE)).toBe('totp')
      })

      test('a second import of the same records changes nothing', async () => {
        await storage.importRecords(batch(), options)
        expect(await storage.recordTotpUse('alice', 100, NOW)).toBe(true)
        expect(await storage.recordWebauthnUse(KEY_ID, 12, 13, NOW)).toBe(true)
        const again = await storage.importRecords(batch(), options)
        expect(again).toEqual({ subjects: ['unchanged', 'unchanged'], totpConfigurations: ['unchanged', 'unchanged'], preConfiguredConsents: ['unchanged'], webauthnCredentials: ['unchanged'], secondFactorPreferences: ['unchanged', 'unchanged'], applied: true })
        // The device was not rewritten: its accepted step still counts.
        expect(await storage.recordTotpUse('alice', 100, NOW)).toBe(false)
        expect(await storage.listSubjectIdentifiers()).toHaveLength(2)
        // Nor the credential: the count Latchkey saw last stands (an older one would flag a clone).
        expect(await storage.findWebauthnCredential(KEY_ID)).toMatchObject({ signCount: 13, lastUsedAt: NOW })
      })

      test('a dry run (apply false) plans the same and writes nothing', async () => {
        const plan = await storage.importRecords(batch(), { force: false, apply: false })
        expect(plan).toEqual({ subjects: ['add', 'add'], totpConfigurations: ['add', 'add'], preConfiguredConsents: ['add'], webauthnCredentials: ['add'], secondFactorPreferences: ['add', 'add'], applied: false })
        expect(await storage.listSubjectIdentifiers()).toEqual([])
        expect(await storage.findTotpConfiguration('alice')).toBeUndefined()
        expect(await storage.findPreferred2faMethod('alice')).toBeUndefined()
        expect(await storage.findPreConfiguredConsent('a0f3c4d8-5c62-4a53-9a77-2d3c6c0e1a01', 'kasm', ['openid', 'profile'], [], NOW + 10)).toBeUndefined()
        expect(await storage.listWebauthnCredentials()).toEqual([])
      })

      test('another device or subject already there is a conflict, and then nothing at all is written', async () => {
        const own = totp({ secret: Buffer.alloc(20, 1) })
        await storage.saveTotpConfiguration(own)
        const plan = await storage.importRecords(batch(), options)
        expect(plan).toEqual({ subjects: ['add', 'add'], totpConfigurations: ['conflict', 'add'], preConfiguredConsents: ['add'], webauthnCredentials: ['add'], secondFactorPreferences: ['add', 'add'], applied: false })
        expect(await storage.listSubjectIdentifiers()).toEqual([])
        expect(await storage.findTotpConfiguration(HOSTILE)).toBeUndefined()
        expect((await storage.findTotpConfiguration('alice'))?.secret).toEqual(own.secret)

        await storage.deleteTotpConfiguration('alice')
        const mine = await storage.ensureSubjectIdentifier('', 'alice', randomUUID())
        expect((await storage.importRecords(batch(), options)).subjects).toEqual(['conflict', 'add'])
        expect(await storage.ensureSubjectIdentifier('', 'alice', randomUUID())).toBe(mine)
      })

      test('force replaces a device (forgetting its steps) and a subject, never a subject owned by another user', async () => {
        await storage.saveTotpConfiguration(totp({ secret: Buffer.alloc(20, 1) }))
        expect(await storage.recordTotpUse('alice', 100, NOW)).toBe(true)
        await storage.ensureSubjectIdentifier('', 'alice', randomUUID())
        const plan = await storage.importRecords(batch(), { force: true, apply: true })
        expect(plan).toMatchObject({ subjects: ['replace', 'add'], totpConfigurations: ['replace', 'add'], applied: true })
        expect((await storage.findTotpConfiguration('alice'))?.secret).toEqual(Buffer.alloc(20, 7))
        expect(await storage.recordTotpUse('alice', 100, NOW)).toBe(true)
        expect(await storage.ensureSubjectIdentifier('', 'alice', randomUUID())).toBe('a0f3c4d8-5c62-4a53-9a77-2d3c6c0e1a01')

        const taken = await storage.ensureSubjectIdentifier('', 'bob', randomUUID())
        const stolen = await storage.importRecords(batch({ subjects: [{ sectorIdentifier: '', username: 'mallory', subject: taken }] }), { force: true, apply: true })
        expect(stolen).toMatchObject({ subjects: ['conflict'], applied: false })
        expect(await storage.findUsernameBySubject(taken)).toEqual({ username: 'bob', sectorIdentifier: '' })
      })

      test('a WebAuthn credential: same id with another key, or another of the user\'s with that description, is a conflict; force replaces it', async () => {
        const own = imported({ publicKey: Buffer.alloc(77, 6), signCount: 40 })
        expect(await storage.saveWebauthnCredential(own)).toBe('saved')
        expect(await storage.importRecords(batch(), options)).toMatchObject({ webauthnCredentials: ['conflict'], applied: false })
        expect(await storage.findWebauthnCredential(KEY_ID)).toEqual(own)
        expect(await storage.listSubjectIdentifiers()).toEqual([])

        await storage.deleteWebauthnCredential('alice', KEY_ID)
        const other = imported({ credentialId: randomBytes(32).toString('base64url') })
        expect(await storage.saveWebauthnCredential(other)).toBe('saved')
        expect(await storage.importRecords(batch(), options)).toMatchObject({ webauthnCredentials: ['conflict'], applied: false })
        expect(await storage.findWebauthnCredential(KEY_ID)).toBeUndefined()

        expect(await storage.importRecords(batch(), { force: true, apply: true })).toMatchObject({ webauthnCredentials: ['replace'], applied: true })
        expect(await storage.findWebauthnCredential(other.credentialId)).toBeUndefined()
        expect(await storage.listWebauthnCredentials('alice')).toEqual([imported()])
      })

      test('another preferred second factor is a conflict (nothing written); force replaces it; the same one is unchanged', async () => {
        await storage.savePreferred2faMethod('alice', 'totp')
        expect(await storage.importRecords(batch(), options)).toMatchObject({ secondFactorPreferences: ['conflict', 'add'], applied: false })
        expect(await storage.findPreferred2faMethod('alice')).toBe('totp')
        expect(await storage.findPreferred2faMethod(HOSTILE)).toBeUndefined()
        expect(await storage.findWebauthnCredential(KEY_ID)).toBeUndefined()

        expect(await storage.importRecords(batch(), { force: true, apply: true })).toMatchObject({ secondFactorPreferences: ['replace', 'add'], applied: true })
        expect(await storage.findPreferred2faMethod('alice')).toBe('webauthn')
        expect(await storage.importRecords(batch(), options)).toMatchObject({ secondFactorPreferences: ['unchanged', 'unchanged'], applied: true })
      })

      test('a WebAuthn credential id held by another user stays theirs, even with force', async () => {
        const bobs = imported({ username: 'bob', description: 'Key' })
        expect(await storage.saveWebauthnCredential(bobs)).toBe('saved')
        expect(await storage.importRecords(batch(), { force: true, apply: true })).toMatchObject({ webauthnCredentials: ['conflict'], applied: false })
        expect(await storage.findWebauthnCredential(KEY_ID)).toEqual(bobs)
        expect(await storage.findTotpConfiguration('alice')).toBeUndefined()
      })
    })

    describe('authorization codes', () => {
      test('an unknown code is missing', async () => {
        expect(await storage.consumeAuthorizationCode(hash(), 'kasm', NOW)).toEqual({ kind: 'missing' })
      })

      test('the first redemption returns the whole record; the second reports replayed with the grant', async () => {
        const c = code()
        await storage.saveAuthorizationCode(c)
        expect(await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW + 1)).toEqual({ kind: 'ok', record: c })
        expect(await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW + 2)).toEqual({ kind: 'replayed', grantId: c.grantId })
      })

      test('optional fields absent stay absent', async () => {
        const c = code({ redirectUriSent: false })
        delete c.codeChallenge
        delete c.codeChallengeMethod
        delete c.nonce
        delete c.sessionId
        await storage.saveAuthorizationCode(c)
        expect(await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW)).toEqual({ kind: 'ok', record: c })
      })

      test('20 parallel redemptions: exactly one ok, the rest replayed', async () => {
        const c = code()
        await storage.saveAuthorizationCode(c)
        const results = await parallel(20, () => storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW))
        expect(results.filter((r) => r.kind === 'ok')).toHaveLength(1)
        expect(results.filter((r) => r.kind === 'replayed')).toHaveLength(19)
      })

      test('another client cannot redeem it, and the owner still can', async () => {
        const c = code()
        await storage.saveAuthorizationCode(c)
        expect(await storage.consumeAuthorizationCode(c.codeHash, 'evil', NOW)).toEqual({ kind: 'missing' })
        expect((await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW)).kind).toBe('ok')
        // Nor does another client learn that it was used.
        expect(await storage.consumeAuthorizationCode(c.codeHash, 'evil', NOW)).toEqual({ kind: 'missing' })
      })

      test('at expiresAt it is missing and stays unconsumed', async () => {
        const c = code({ expiresAt: NOW + 60 })
        await storage.saveAuthorizationCode(c)
        expect(await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW + 60)).toEqual({ kind: 'missing' })
        expect((await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW + 59)).kind).toBe('ok')
      })

      test('accept sees the live code first: false is refused and leaves it usable; used, foreign or revoked codes are not shown to it', async () => {
        const c = code()
        await storage.saveAuthorizationCode(c)
        const seen: string[] = []
        const no = (r: { codeHash: string }) => (seen.push(r.codeHash), false)
        expect(await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW, no)).toEqual({ kind: 'refused', record: c })
        expect(await storage.consumeAuthorizationCode(c.codeHash, 'evil', NOW, no)).toEqual({ kind: 'missing' })
        expect(await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW, () => true)).toEqual({ kind: 'ok', record: c })
        expect(await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW, no)).toEqual({ kind: 'replayed', grantId: c.grantId })
        const revoked = code()
        await storage.saveAuthorizationCode(revoked)
        await storage.revokeGrant(revoked.grantId)
        expect(await storage.consumeAuthorizationCode(revoked.codeHash, 'kasm', NOW, no)).toEqual({ kind: 'missing' })
        expect(seen).toEqual([c.codeHash])
      })

      test('20 parallel redemptions, half of them refused by accept: exactly one ok', async () => {
        const c = code()
        await storage.saveAuthorizationCode(c)
        let i = 0
        const results = await parallel(20, () => storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW, () => i++ % 2 === 1))
        expect(results.filter((r) => r.kind === 'ok')).toHaveLength(1)
        expect(results.filter((r) => r.kind === 'ok' || r.kind === 'replayed' || r.kind === 'refused')).toHaveLength(20)
      })

      test('a revoked code is missing', async () => {
        const c = code()
        await storage.saveAuthorizationCode(c)
        await storage.revokeGrant(c.grantId)
        expect(await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW)).toEqual({ kind: 'missing' })
      })

      test('a replay still reports replayed after the code expired', async () => {
        const c = code()
        await storage.saveAuthorizationCode(c)
        await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW)
        expect(await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW + 3600)).toEqual({ kind: 'replayed', grantId: c.grantId })
      })
    })

    describe('redeeming a code with its tokens in one step (redeemAuthorizationCode)', () => {
      const tokensOf = (c: GrantContext, overrides: Partial<TokenRecord> = {}): TokenRecord[] => [
        token({ ...grantOf(c), kind: 'access', ...overrides }),
        token({ ...grantOf(c), kind: 'refresh', ...overrides }),
      ]
      const live = async (tokens: TokenRecord[], now = NOW) => (await Promise.all(tokens.map((t) => storage.findToken(t.tokenHash, now)))).filter(Boolean)

      test('the first call consumes the code and saves the tokens; the second reports replayed and saves nothing', async () => {
        const c = code()
        await storage.saveAuthorizationCode(c)
        const first = tokensOf(c)
        expect(await storage.redeemAuthorizationCode(c.codeHash, first, NOW + 1)).toEqual({ kind: 'ok' })
        expect(await live(first)).toEqual(first)
        const second = tokensOf(c)
        expect(await storage.redeemAuthorizationCode(c.codeHash, second, NOW + 2)).toEqual({ kind: 'replayed', grantId: c.grantId })
        expect(await live(second)).toEqual([])
        // The code is consumed for the other path too.
        expect(await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW + 3)).toEqual({ kind: 'replayed', grantId: c.grantId })
      })

      test('unknown, expired, revoked, of another grant or of another client: missing, nothing saved, the code stays usable by its owner', async () => {
        expect(await storage.redeemAuthorizationCode(hash(), tokensOf(grant()), NOW)).toEqual({ kind: 'missing' })
        const c = code({ expiresAt: NOW + 60 })
        await storage.saveAuthorizationCode(c)
        const tried = [tokensOf(c), tokensOf(grant()), tokensOf(c, { clientId: 'evil' })]
        expect(await storage.redeemAuthorizationCode(c.codeHash, tried[0]!, NOW + 60)).toEqual({ kind: 'missing' })
        expect(await storage.redeemAuthorizationCode(c.codeHash, tried[1]!, NOW)).toEqual({ kind: 'missing' })
        expect(await storage.redeemAuthorizationCode(c.codeHash, tried[2]!, NOW)).toEqual({ kind: 'missing' })
        expect(await live(tried.flat())).toEqual([])
        const ok = tokensOf(c)
        expect(await storage.redeemAuthorizationCode(c.codeHash, ok, NOW + 59)).toEqual({ kind: 'ok' })
        // Nor does another grant or client learn that it was used.
        expect(await storage.redeemAuthorizationCode(c.codeHash, tokensOf(c, { clientId: 'evil' }), NOW)).toEqual({ kind: 'missing' })
        expect(await storage.redeemAuthorizationCode(c.codeHash, tokensOf(grant()), NOW)).toEqual({ kind: 'missing' })
        const revoked = code()
        await storage.saveAuthorizationCode(revoked)
        await storage.revokeGrant(revoked.grantId)
        const late = tokensOf(revoked)
        expect(await storage.redeemAuthorizationCode(revoked.codeHash, late, NOW)).toEqual({ kind: 'missing' })
        expect(await live(late)).toEqual([])
      })

      test('tokens of no grant, of two grants or of two clients are refused before anything changes', async () => {
        const c = code()
        await storage.saveAuthorizationCode(c)
        await expect(storage.redeemAuthorizationCode(c.codeHash, [], NOW)).rejects.toThrow()
        await expect(storage.redeemAuthorizationCode(c.codeHash, [...tokensOf(c).slice(0, 1), ...tokensOf(grant()).slice(0, 1)], NOW)).rejects.toThrow()
        await expect(storage.redeemAuthorizationCode(c.codeHash, [tokensOf(c)[0]!, tokensOf(c, { clientId: 'other' })[0]!], NOW)).rejects.toThrow()
        expect(await storage.redeemAuthorizationCode(c.codeHash, tokensOf(c), NOW)).toEqual({ kind: 'ok' })
      })

      test('a replay after the redemption revokes what it saved (security.md C1)', async () => {
        const c = code()
        await storage.saveAuthorizationCode(c)
        const tokens = tokensOf(c)
        expect(await storage.redeemAuthorizationCode(c.codeHash, tokens, NOW)).toEqual({ kind: 'ok' })
        const replay = await storage.redeemAuthorizationCode(c.codeHash, tokensOf(c), NOW)
        expect(replay).toEqual({ kind: 'replayed', grantId: c.grantId })
        await storage.revokeGrant(c.grantId)
        expect(await live(tokens)).toEqual([])
      })

      test('20 parallel redemptions: exactly one ok with its tokens live, the rest replayed with nothing saved', async () => {
        const c = code()
        await storage.saveAuthorizationCode(c)
        const sets = Array.from({ length: 20 }, () => tokensOf(c))
        const results = await Promise.all(sets.map((t) => storage.redeemAuthorizationCode(c.codeHash, t, NOW)))
        expect(results.filter((r) => r.kind === 'ok')).toHaveLength(1)
        expect(results.filter((r) => r.kind === 'replayed')).toHaveLength(19)
        expect(await live(sets.flat())).toEqual(sets[results.findIndex((r) => r.kind === 'ok')])
      })
    })

    describe('tokens', () => {
      test('absent: undefined', async () => {
        expect(await storage.findToken(hash(), NOW)).toBeUndefined()
      })

      test('a saved token is found whole until its expiry', async () => {
        const t = token({ expiresAt: NOW + 100 })
        await storage.saveToken(t)
        expect(await storage.findToken(t.tokenHash, NOW + 99)).toEqual(t)
        expect(await storage.findToken(t.tokenHash, NOW + 100)).toBeUndefined()
      })

      test('a client_credentials token (no user, no optional fields) round-trips', async () => {
        const t = token({ username: '', amr: [], scopes: [], parentHash: hash() })
        delete t.nonce
        delete t.sessionId
        await storage.saveToken(t)
        expect(await storage.findToken(t.tokenHash, NOW)).toEqual(t)
      })

      test('revokeToken revokes that token only and resolves its record', async () => {
        const g = grant()
        const a = token({ ...g })
        const b = token({ ...g, kind: 'refresh' })
        await storage.saveToken(a)
        await storage.saveToken(b)
        expect(await storage.revokeToken(a.tokenHash)).toEqual(a)
        expect(await storage.findToken(a.tokenHash, NOW)).toBeUndefined()
        expect(await storage.findToken(b.tokenHash, NOW)).toEqual(b)
        expect(await storage.revokeToken(hash())).toBeUndefined()
        // Any state: revoking again still resolves the record.
        expect(await storage.revokeToken(a.tokenHash)).toEqual(a)
      })

      test('revokeGrant revokes the code and every token of the grant, and nothing else', async () => {
        const g = grant()
        const c = code({ ...g })
        const access = token({ ...g })
        const refresh = token({ ...g, kind: 'refresh' })
        const other = token()
        await storage.saveAuthorizationCode(c)
        await storage.saveToken(access)
        await storage.saveToken(refresh)
        await storage.saveToken(other)
        await storage.revokeGrant(g.grantId)
        expect(await storage.findToken(access.tokenHash, NOW)).toBeUndefined()
        expect(await storage.findToken(refresh.tokenHash, NOW)).toBeUndefined()
        expect(await storage.consumeRefreshToken(refresh.tokenHash, g.clientId, NOW)).toEqual({ kind: 'missing' })
        expect(await storage.consumeAuthorizationCode(c.codeHash, g.clientId, NOW)).toEqual({ kind: 'missing' })
        expect(await storage.findToken(other.tokenHash, NOW)).toEqual(other)
        await storage.revokeGrant(randomUUID())
      })

      test('code replay flow: the replay revokes the tokens issued from the first redemption (security.md C1)', async () => {
        const c = code()
        await storage.saveAuthorizationCode(c)
        const first = await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW)
        expect(first.kind).toBe('ok')
        const access = token({ ...c, kind: 'access' })
        await storage.saveToken(access)
        const second = await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW + 30)
        expect(second).toEqual({ kind: 'replayed', grantId: c.grantId })
        if (second.kind === 'replayed') await storage.revokeGrant(second.grantId)
        expect(await storage.findToken(access.tokenHash, NOW + 30)).toBeUndefined()
      })
    })

    describe('live grants of a user (security.md G5)', () => {
      test('findLiveGrantIds lists each grant with an unrevoked, unexpired code or token once, and none after revokeGrant', async () => {
        const byCode = code({ username: 'reset-user' })
        const byToken = grant({ username: 'reset-user' })
        await storage.saveAuthorizationCode(byCode)
        await storage.saveToken(token({ ...byToken, kind: 'access' }))
        await storage.saveToken(token({ ...byToken, kind: 'refresh', expiresAt: NOW + 7200 }))
        await storage.saveToken(token({ username: 'reset-user', expiresAt: NOW - 1 }))
        await storage.saveToken(token({ username: 'someone-else' }))
        expect((await storage.findLiveGrantIds('reset-user', NOW)).sort()).toEqual([byCode.grantId, byToken.grantId].sort())
        await storage.revokeGrant(byToken.grantId)
        expect(await storage.findLiveGrantIds('reset-user', NOW)).toEqual([byCode.grantId])
        expect(await storage.findLiveGrantIds('nobody', NOW)).toEqual([])
      })
    })

    describe('refresh tokens', () => {
      test('an unknown refresh token is missing', async () => {
        expect(await storage.consumeRefreshToken(hash(), 'kasm', NOW)).toEqual({ kind: 'missing' })
      })

      test('consumed once: ok with the record, then replayed with the grant, and no longer found', async () => {
        const rt = token({ kind: 'refresh' })
        await storage.saveToken(rt)
        expect(await storage.consumeRefreshToken(rt.tokenHash, 'kasm', NOW)).toEqual({ kind: 'ok', record: rt })
        expect(await storage.consumeRefreshToken(rt.tokenHash, 'kasm', NOW)).toEqual({ kind: 'replayed', grantId: rt.grantId })
        expect(await storage.findToken(rt.tokenHash, NOW)).toBeUndefined()
      })

      test('20 parallel refreshes: exactly one ok (security.md T1)', async () => {
        const rt = token({ kind: 'refresh' })
        await storage.saveToken(rt)
        const results = await parallel(20, () => storage.consumeRefreshToken(rt.tokenHash, 'kasm', NOW))
        expect(results.filter((r) => r.kind === 'ok')).toHaveLength(1)
        expect(results.filter((r) => r.kind === 'replayed')).toHaveLength(19)
      })

      test('an access token, another client, or an expired refresh token is missing', async () => {
        const at = token({ kind: 'access' })
        const rt = token({ kind: 'refresh', expiresAt: NOW + 10 })
        await storage.saveToken(at)
        await storage.saveToken(rt)
        expect(await storage.consumeRefreshToken(at.tokenHash, 'kasm', NOW)).toEqual({ kind: 'missing' })
        expect(await storage.consumeRefreshToken(rt.tokenHash, 'evil', NOW)).toEqual({ kind: 'missing' })
        expect(await storage.consumeRefreshToken(rt.tokenHash, 'kasm', NOW + 10)).toEqual({ kind: 'missing' })
        expect((await storage.consumeRefreshToken(rt.tokenHash, 'kasm', NOW + 9)).kind).toBe('ok')
      })

      test('rotation: the new token carries parentHash; reuse of the old one lets the caller revoke all', async () => {
        const g = grant()
        const rt1 = token({ ...g, kind: 'refresh' })
        await storage.saveToken(rt1)
        expect((await storage.consumeRefreshToken(rt1.tokenHash, g.clientId, NOW)).kind).toBe('ok')
        const rt2 = token({ ...g, kind: 'refresh', parentHash: rt1.tokenHash })
        const at2 = token({ ...g })
        await storage.saveToken(rt2)
        await storage.saveToken(at2)
        expect(await storage.findToken(rt2.tokenHash, NOW)).toEqual(rt2)
        const reuse = await storage.consumeRefreshToken(rt1.tokenHash, g.clientId, NOW + 1)
        expect(reuse).toEqual({ kind: 'replayed', grantId: g.grantId })
        await storage.revokeGrant(g.grantId)
        expect(await storage.consumeRefreshToken(rt2.tokenHash, g.clientId, NOW + 2)).toEqual({ kind: 'missing' })
        expect(await storage.findToken(at2.tokenHash, NOW + 2)).toBeUndefined()
      })
    })

    describe('tokens issued from a consumed code or refresh token (saveIssuedTokens)', () => {
      /** The access and refresh token a redemption of `parent` issues. */
      const issued = (g: GrantContext, parentHash?: string): TokenRecord[] => [
        token({ ...grantOf(g), kind: 'access' }),
        token({ ...grantOf(g), kind: 'refresh', ...(parentHash ? { parentHash } : {}) }),
      ]
      const live = async (s: Storage, tokens: TokenRecord[], now = NOW) => (await Promise.all(tokens.map((t) => s.findToken(t.tokenHash, now)))).filter(Boolean)

      test('code: a replay that revokes the grant before the winner saves makes the save refused, and nothing of it is live (security.md C1)', async () => {
        const c = code()
        await storage.saveAuthorizationCode(c)
        expect((await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW)).kind).toBe('ok')
        const loser = await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW)
        expect(loser).toEqual({ kind: 'replayed', grantId: c.grantId })
        await storage.revokeGrant(c.grantId)
        const tokens = issued(c)
        expect(await storage.saveIssuedTokens({ kind: 'code', hash: c.codeHash }, tokens)).toBe(false)
        expect(await live(storage, tokens)).toEqual([])
        expect(await storage.consumeRefreshToken(tokens[1]!.tokenHash, 'kasm', NOW)).toEqual({ kind: 'missing' })
      })

      test('code: saved first, then the replay revokes them', async () => {
        const c = code()
        await storage.saveAuthorizationCode(c)
        expect((await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW)).kind).toBe('ok')
        const tokens = issued(c)
        expect(await storage.saveIssuedTokens({ kind: 'code', hash: c.codeHash }, tokens)).toBe(true)
        expect(await live(storage, tokens)).toEqual(tokens)
        expect(await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW + 1)).toEqual({ kind: 'replayed', grantId: c.grantId })
        await storage.revokeGrant(c.grantId)
        expect(await live(storage, tokens, NOW + 1)).toEqual([])
      })

      test('refresh: a replay that revokes the grant before the winner saves makes the save refused, and no token of the family is live (security.md T1)', async () => {
        const g = grant()
        const [at1, rt1] = issued(g)
        await storage.saveToken(at1!)
        await storage.saveToken(rt1!)
        expect((await storage.consumeRefreshToken(rt1!.tokenHash, 'kasm', NOW)).kind).toBe('ok')
        expect(await storage.consumeRefreshToken(rt1!.tokenHash, 'kasm', NOW)).toEqual({ kind: 'replayed', grantId: g.grantId })
        await storage.revokeGrant(g.grantId)
        const next = issued(g, rt1!.tokenHash)
        expect(await storage.saveIssuedTokens({ kind: 'refresh', hash: rt1!.tokenHash }, next)).toBe(false)
        expect(await live(storage, [at1!, rt1!, ...next])).toEqual([])
        expect(await storage.consumeRefreshToken(next[1]!.tokenHash, 'kasm', NOW)).toEqual({ kind: 'missing' })
      })

      test('refresh: the save rotates (the previous tokens of the grant stop, the new ones live), then a replay revokes the new ones', async () => {
        const g = grant()
        const [at1, rt1] = issued(g)
        const other = token()
        await storage.saveToken(at1!)
        await storage.saveToken(rt1!)
        await storage.saveToken(other)
        expect((await storage.consumeRefreshToken(rt1!.tokenHash, 'kasm', NOW)).kind).toBe('ok')
        const next = issued(g, rt1!.tokenHash)
        expect(await storage.saveIssuedTokens({ kind: 'refresh', hash: rt1!.tokenHash }, next)).toBe(true)
        expect(await storage.findToken(at1!.tokenHash, NOW)).toBeUndefined()
        expect(await live(storage, next)).toEqual(next)
        expect(await storage.findToken(other.tokenHash, NOW)).toEqual(other)
        expect(await storage.consumeRefreshToken(rt1!.tokenHash, 'kasm', NOW + 1)).toEqual({ kind: 'replayed', grantId: g.grantId })
        await storage.revokeGrant(g.grantId)
        expect(await live(storage, next, NOW + 1)).toEqual([])
        expect(await storage.findToken(other.tokenHash, NOW + 1)).toEqual(other)
      })

      test('a parent that is unknown, unconsumed, of another grant, or singly revoked is refused and saves nothing', async () => {
        const c = code()
        await storage.saveAuthorizationCode(c)
        const unconsumed = issued(c)
        expect(await storage.saveIssuedTokens({ kind: 'code', hash: c.codeHash }, unconsumed)).toBe(false)
        expect(await storage.saveIssuedTokens({ kind: 'code', hash: hash() }, unconsumed)).toBe(false)
        await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW)
        expect(await storage.saveIssuedTokens({ kind: 'code', hash: c.codeHash }, issued(grant()))).toBe(false)
        // A code's hash is not a refresh token's.
        expect(await storage.saveIssuedTokens({ kind: 'refresh', hash: c.codeHash }, unconsumed)).toBe(false)
        expect(await live(storage, unconsumed)).toEqual([])

        const rt = token({ kind: 'refresh' })
        await storage.saveToken(rt)
        await storage.consumeRefreshToken(rt.tokenHash, 'kasm', NOW)
        await storage.revokeToken(rt.tokenHash)
        const next = issued(rt, rt.tokenHash)
        expect(await storage.saveIssuedTokens({ kind: 'refresh', hash: rt.tokenHash }, next)).toBe(false)
        expect(await live(storage, next)).toEqual([])
      })

      test('tokens of no grant or of two grants are a caller mistake: rejected, nothing saved', async () => {
        const c = code()
        await storage.saveAuthorizationCode(c)
        await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW)
        await expect(storage.saveIssuedTokens({ kind: 'code', hash: c.codeHash }, [])).rejects.toThrow()
        const mixed = [token({ ...grantOf(c) }), token()]
        await expect(storage.saveIssuedTokens({ kind: 'code', hash: c.codeHash }, mixed)).rejects.toThrow()
        expect(await live(storage, mixed)).toEqual([])
        // The code is still a valid parent afterwards.
        expect(await storage.saveIssuedTokens({ kind: 'code', hash: c.codeHash }, issued(c))).toBe(true)
      })

      test('20 parallel token requests with one refresh token: at most one gets tokens, and afterwards none of the family is live', async () => {
        const g = grant()
        const [at1, rt1] = issued(g)
        await storage.saveToken(at1!)
        await storage.saveToken(rt1!)
        const all = await parallel(20, () => refreshLikeTheTokenEndpoint(storage, rt1!))
        expect(all.filter((r) => r !== undefined).length).toBeLessThanOrEqual(1)
        expect(await live(storage, [at1!, rt1!, ...all.flatMap((r) => r ?? [])])).toEqual([])
      })
    })

    describe('sign-ins per session (logout notifications)', () => {
      test('a session\'s clients are taken once, sorted by client; other sessions keep theirs', async () => {
        const a = sessionClient({ clientId: 'nextcloud' })
        const b = sessionClient({ sid: a.sid, clientId: 'kasm' })
        const other = sessionClient({ clientId: 'kasm' })
        for (const r of [a, b, other]) await storage.recordSessionClient(r)
        expect(await storage.takeSessionClients(a.sid, NOW)).toEqual([b, a])
        expect(await storage.takeSessionClients(a.sid, NOW)).toEqual([])
        expect(await storage.takeSessionClients(other.sid, NOW)).toEqual([other])
        expect(await storage.takeSessionClients('unknown-sid', NOW)).toEqual([])
      })

      test('recording the same (session, client) again replaces it: one notification, the newest subject and expiry', async () => {
        const first = sessionClient()
        const again = { ...first, subject: randomUUID(), issuer: 'https://login.example.com', createdAt: NOW + 5, expiresAt: NOW + 7200 }
        await storage.recordSessionClient(first)
        await storage.recordSessionClient(again)
        expect(await storage.takeSessionClients(first.sid, NOW)).toEqual([again])
      })

      test('expired records are neither returned nor kept; housekeeping sweeps them', async () => {
        const expired = sessionClient({ expiresAt: NOW })
        await storage.recordSessionClient(expired)
        expect(await storage.takeSessionClients(expired.sid, NOW)).toEqual([])
        const swept = sessionClient({ expiresAt: NOW })
        const live = sessionClient({ expiresAt: NOW + 60 })
        await storage.recordSessionClient(swept)
        await storage.recordSessionClient(live)
        expect(await storage.deleteExpiredOidcArtifacts(NOW)).toBe(1)
        expect(await storage.takeSessionClients(live.sid, NOW)).toEqual([live])
      })

      test('20 parallel takes of one session: each client goes to exactly one caller', async () => {
        const sid = randomBytes(16).toString('base64url')
        const clients = ['a', 'b', 'c'].map((clientId) => sessionClient({ sid, clientId }))
        for (const r of clients) await storage.recordSessionClient(r)
        const results = await parallel(20, () => storage.takeSessionClients(sid, NOW))
        expect(results.flat().map((r) => r.clientId).sort()).toEqual(['a', 'b', 'c'])
      })
    })

    describe('housekeeping of OIDC artifacts', () => {
      test('expired codes, tokens, consents and remembered consents are removed; live ones stay', async () => {
        const expiredCode = code({ expiresAt: NOW })
        const liveCode = code({ expiresAt: NOW + 60 })
        const expiredToken = token({ expiresAt: NOW })
        const liveToken = token({ expiresAt: NOW + 60 })
        const expiredConsent = consent({ expiresAt: NOW })
        const liveConsent = consent({ expiresAt: NOW + 60 })
        await storage.saveAuthorizationCode(expiredCode)
        await storage.saveAuthorizationCode(liveCode)
        await storage.saveToken(expiredToken)
        await storage.saveToken(liveToken)
        await storage.saveConsentSession(expiredConsent)
        await storage.saveConsentSession(liveConsent)
        await storage.savePreConfiguredConsent({ subject: 's', clientId: 'kasm', scopes: ['openid'], audience: [], createdAt: NOW - 10, expiresAt: NOW })
        expect(await storage.deleteExpiredOidcArtifacts(NOW)).toBe(4)
        expect(await storage.findConsentSession(expiredConsent.id)).toBeUndefined()
        expect(await storage.findConsentSession(liveConsent.id)).toEqual(liveConsent)
        expect(await storage.findToken(liveToken.tokenHash, NOW)).toEqual(liveToken)
        expect((await storage.consumeAuthorizationCode(liveCode.codeHash, 'kasm', NOW)).kind).toBe('ok')
        expect(await storage.deleteExpiredOidcArtifacts(NOW)).toBe(0)
      })

      test('a consumed expired code outlives housekeeping while its grant has a live token', async () => {
        const c = code({ expiresAt: NOW + 60 })
        await storage.saveAuthorizationCode(c)
        await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW)
        await storage.saveToken(token({ ...c, kind: 'access', expiresAt: NOW + 3600 }))
        await storage.deleteExpiredOidcArtifacts(NOW + 120)
        expect(await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW + 120)).toEqual({ kind: 'replayed', grantId: c.grantId })
        // Once the grant has nothing live, it goes.
        await storage.deleteExpiredOidcArtifacts(NOW + 3600)
        expect(await storage.consumeAuthorizationCode(c.codeHash, 'kasm', NOW + 3600)).toEqual({ kind: 'missing' })
      })
    })

    describe('client assertion jtis and pushed authorization requests (security.md J3, Y1)', () => {
      const pushed = (overrides: Partial<PushedAuthorizationRequest> = {}): PushedAuthorizationRequest => ({
        requestHash: hash(),
        clientId: 'kasm',
        form: { client_id: 'kasm', response_type: 'code', scope: 'openid', redirect_uri: 'https://kasm.example.com/cb', state: "s'; DROP TABLE x;--" },
        createdAt: NOW,
        expiresAt: NOW + 300,
        ...overrides,
      })

      test('a jti is accepted once per client while live; another client may use the same jti', async () => {
        expect(await storage.recordClientAssertionJti('kasm', 'jti-1', NOW + 60, NOW)).toBe(true)
        expect(await storage.recordClientAssertionJti('kasm', 'jti-1', NOW + 60, NOW + 1)).toBe(false)
        expect(await storage.recordClientAssertionJti('other', 'jti-1', NOW + 60, NOW + 1)).toBe(true)
        expect(await storage.recordClientAssertionJti('kasm', HOSTILE, NOW + 60, NOW)).toBe(true)
        expect(await storage.recordClientAssertionJti('kasm', HOSTILE, NOW + 60, NOW)).toBe(false)
      })

      test('a jti past its expiry no longer blocks, and housekeeping removes it', async () => {
        expect(await storage.recordClientAssertionJti('kasm', 'jti-2', NOW + 60, NOW)).toBe(true)
        expect(await storage.recordClientAssertionJti('kasm', 'jti-2', NOW + 200, NOW + 60)).toBe(true)
        expect(await storage.recordClientAssertionJti('kasm', 'jti-2', NOW + 200, NOW + 61)).toBe(false)
        expect(await storage.recordClientAssertionJti('kasm', 'jti-3', NOW + 10, NOW)).toBe(true)
        expect(await storage.deleteExpiredOidcArtifacts(NOW + 10)).toBe(1)
        expect(await storage.recordClientAssertionJti('kasm', 'jti-2', NOW + 300, NOW + 100)).toBe(false)
      })

      test('a pushed request round-trips for its client only, until consumed or expired', async () => {
        const r = pushed()
        await storage.savePushedAuthorizationRequest(r)
        expect(await storage.findPushedAuthorizationRequest(r.requestHash, 'kasm', NOW)).toEqual(r)
        expect(await storage.findPushedAuthorizationRequest(r.requestHash, 'other', NOW)).toBeUndefined()
        expect(await storage.consumePushedAuthorizationRequest(r.requestHash, 'other', NOW)).toBe(false)
        expect(await storage.findPushedAuthorizationRequest(r.requestHash, 'kasm', NOW + 300)).toBeUndefined()
        expect(await storage.consumePushedAuthorizationRequest(r.requestHash, 'kasm', NOW + 300)).toBe(false)
        expect(await storage.consumePushedAuthorizationRequest(r.requestHash, 'kasm', NOW + 1)).toBe(true)
        expect(await storage.consumePushedAuthorizationRequest(r.requestHash, 'kasm', NOW + 1)).toBe(false)
        expect(await storage.findPushedAuthorizationRequest(r.requestHash, 'kasm', NOW + 1)).toBeUndefined()
      })

      test('housekeeping removes expired pushed requests only', async () => {
        const old = pushed({ expiresAt: NOW + 5 })
        const live = pushed()
        await storage.savePushedAuthorizationRequest(old)
        await storage.savePushedAuthorizationRequest(live)
        expect(await storage.deleteExpiredOidcArtifacts(NOW + 5)).toBe(1)
        expect(await storage.findPushedAuthorizationRequest(live.requestHash, 'kasm', NOW + 5)).toEqual(live)
      })

      test('20 parallel uses of one jti and of one pushed request: exactly one wins each', async () => {
        const jtis = await Promise.all(Array.from({ length: 20 }, () => storage.recordClientAssertionJti('kasm', 'jti-race', NOW + 60, NOW)))
        expect(jtis.filter(Boolean)).toHaveLength(1)
        const r = pushed()
        await storage.savePushedAuthorizationRequest(r)
        const uses = await Promise.all(Array.from({ length: 20 }, () => storage.consumePushedAuthorizationRequest(r.requestHash, 'kasm', NOW)))
        expect(uses.filter(Boolean)).toHaveLength(1)
      })
    })

    describe.runIf(options.openPeer !== undefined)('races between two instances (two connections to one database)', () => {
      /** Alternates the calls between the two instances. */
      const across = <T>(n: number, run: (s: Storage) => Promise<T>): Promise<T[]> =>
        Promise.all(Array.from({ length: n }, (_, i) => run(i % 2 === 0 ? storage : peer!)))

      beforeEach(async () => {
        peer = await options.openPeer!()
      })

      test('what one instance saves the other finds at once', async () => {
        const t = token()
        await storage.saveToken(t)
        expect(await peer!.findToken(t.tokenHash, NOW)).toEqual(t)
        await peer!.revokeToken(t.tokenHash)
        expect(await storage.findToken(t.tokenHash, NOW)).toBeUndefined()
      })

      test('20 parallel redemptions of one code: exactly one ok, the rest replayed', async () => {
        const c = code()
        await storage.saveAuthorizationCode(c)
        const results = await across(20, (s) => s.consumeAuthorizationCode(c.codeHash, 'kasm', NOW, () => true))
        expect(results.filter((r) => r.kind === 'ok')).toHaveLength(1)
        expect(results.filter((r) => r.kind === 'replayed')).toHaveLength(19)
      })

      test('20 parallel token requests with one refresh token on both instances: at most one gets tokens, and afterwards none of the family is live (security.md T1)', async () => {
        for (let round = 0; round < 5; round++) {
          const rt = token({ kind: 'refresh' })
          await storage.saveToken(rt)
          const all = await across(20, (s) => refreshLikeTheTokenEndpoint(s, rt))
          const winners = all.filter((r) => r !== undefined)
          expect(winners.length).toBeLessThanOrEqual(1)
          const family = [rt, ...all.flatMap((r) => r ?? [])]
          expect((await Promise.all(family.map((t) => peer!.findToken(t.tokenHash, NOW)))).filter(Boolean)).toEqual([])
        }
      })

      test('20 parallel token requests with one code on both instances: at most one gets tokens, and afterwards none is live (security.md C1)', async () => {
        for (let round = 0; round < 5; round++) {
          const c = code()
          await storage.saveAuthorizationCode(c)
          const all = await across(20, async (s) => {
            const found = await s.consumeAuthorizationCode(c.codeHash, 'kasm', NOW, () => true)
            if (found.kind === 'replayed') await s.revokeGrant(found.grantId)
            if (found.kind !== 'ok') return undefined
            const tokens = [token({ ...grantOf(c) }), token({ ...grantOf(c), kind: 'refresh' })]
            return (await s.saveIssuedTokens({ kind: 'code', hash: c.codeHash }, tokens)) ? tokens : undefined
          })
          expect(all.filter((r) => r !== undefined).length).toBeLessThanOrEqual(1)
          const issued = all.flatMap((r) => r ?? [])
          expect((await Promise.all(issued.map((t) => peer!.findToken(t.tokenHash, NOW)))).filter(Boolean)).toEqual([])
        }
      })

      test('20 parallel one-step redemptions of one code on both instances, replays revoking: at most one gets tokens, none stays live, the code is used once (security.md C1, C2)', async () => {
        for (let round = 0; round < 5; round++) {
          const c = code()
          await storage.saveAuthorizationCode(c)
          const all = await across(20, async (s) => {
            const tokens = [token({ ...grantOf(c) }), token({ ...grantOf(c), kind: 'refresh' })]
            const r = await s.redeemAuthorizationCode(c.codeHash, tokens, NOW)
            if (r.kind === 'replayed') await s.revokeGrant(r.grantId)
            return r.kind === 'ok' ? tokens : undefined
          })
          expect(all.filter((r) => r !== undefined)).toHaveLength(1)
          const issued = all.flatMap((r) => r ?? [])
          expect((await Promise.all(issued.map((t) => peer!.findToken(t.tokenHash, NOW)))).filter(Boolean)).toEqual([])
        }
      })

      test('20 parallel uses of one refresh token: exactly one ok, and the replays revoke the family', async () => {
        const rt = token({ kind: 'refresh' })
        await storage.saveToken(rt)
        const results = await across(20, (s) => s.consumeRefreshToken(rt.tokenHash, 'kasm', NOW))
        const winner = results.filter((r) => r.kind === 'ok')
        expect(winner).toHaveLength(1)
        expect(results.filter((r) => r.kind === 'replayed')).toHaveLength(19)
        // The winner's rotation, then what the token endpoint does on a replay (RFC 6819 §5.2.2.3).
        const child = token({ ...rt, tokenHash: hash(), parentHash: rt.tokenHash })
        await storage.saveToken(child)
        expect(await peer!.findToken(child.tokenHash, NOW)).toBeDefined()
        await Promise.all(results.flatMap((r) => (r.kind === 'replayed' ? [peer!.revokeGrant(r.grantId)] : [])))
        expect(await storage.findToken(child.tokenHash, NOW)).toBeUndefined()
        expect(await storage.consumeRefreshToken(child.tokenHash, 'kasm', NOW)).toEqual({ kind: 'missing' })
      })

      test('20 parallel submissions of one TOTP step: exactly one accepted', async () => {
        await storage.saveTotpConfiguration(totp())
        const results = await across(20, (s) => s.recordTotpUse('alice', 3000, NOW))
        expect(results.filter(Boolean)).toHaveLength(1)
      })

      test('two different TOTP steps in parallel: never an older step after a newer one', async () => {
        await storage.saveTotpConfiguration(totp())
        for (let round = 0; round < 10; round++) {
          const newer = 4000 + round * 10
          // The older step goes to the other instance; each call leaves its own `now` in lastUsedAt.
          const [acceptedNewer, acceptedOlder] = await Promise.all([storage.recordTotpUse('alice', newer, NOW + 2), peer!.recordTotpUse('alice', newer - 1, NOW + 1)])
          // The newer step wins in any order; the older one only if it came first, so both accepted
          // means the newer one was recorded last.
          expect(acceptedNewer).toBe(true)
          if (acceptedOlder) expect((await storage.findTotpConfiguration('alice'))?.lastUsedAt).toBe(NOW + 2)
          expect(await peer!.recordTotpUse('alice', newer - 1, NOW + 3)).toBe(false)
          expect(await storage.recordTotpUse('alice', newer, NOW + 3)).toBe(false)
        }
      })

      test('20 parallel uses of one identity-verification token and of one code: exactly one ok each', async () => {
        const link: IdentityVerification = { id: randomUUID(), username: 'alice', action: 'ResetPassword', issuedAt: NOW, expiresAt: NOW + 300, remoteIp: '192.0.2.1' }
        await storage.saveIdentityVerification(link)
        const links = await across(20, (s) => s.consumeIdentityVerification(link.id, NOW + 1))
        expect(links.filter((r) => r.kind === 'ok')).toHaveLength(1)
        const codeHash = hash()
        await storage.saveIdentityVerification({ ...link, id: randomUUID(), sessionHash: 's1', codeHash })
        const codes = await across(20, (s) => s.consumeIdentityVerificationCode({ sessionHash: 's1', username: 'alice', action: 'ResetPassword', codeHash, now: NOW + 1, maxAttempts: 5 }))
        expect(codes.filter((r) => r.kind === 'ok')).toHaveLength(1)
      })

      test('20 parallel starts of identity verification from one session: exactly the limit passes', async () => {
        const limits = { windowSeconds: 600, maxPerUser: 10, maxPerSession: 3 }
        const results = await across(20, (s) =>
          s.startIdentityVerification({ id: randomUUID(), username: 'alice', action: 'RegisterTotp', issuedAt: NOW, expiresAt: NOW + 300, remoteIp: '192.0.2.1', sessionHash: 's2' }, limits),
        )
        expect(results.filter((r) => r.kind === 'ok')).toHaveLength(3)
      })

      test('20 parallel uses of one consent session and confirmations of one pending device: exactly one each', async () => {
        const cs = consent()
        await storage.saveConsentSession(cs)
        expect((await across(20, (s) => s.markConsentSessionUsed(cs.id))).filter(Boolean)).toHaveLength(1)
        const device: PendingTotpConfiguration = { ...totp(), id: randomUUID(), sessionHash: hash(), expiresAt: NOW + 600 }
        await storage.savePendingTotpConfiguration(device)
        expect((await across(20, (s) => s.confirmPendingTotpConfiguration('alice', device.id, 5000, NOW))).filter(Boolean)).toHaveLength(1)
      })

      test('20 parallel uses of one client assertion jti and of one pushed request on both instances: exactly one wins each (security.md J3, Y1)', async () => {
        for (let round = 0; round < 5; round++) {
          const jti = `race-${round}`
          expect((await across(20, (s) => s.recordClientAssertionJti('kasm', jti, NOW + 60, NOW))).filter(Boolean)).toHaveLength(1)
          // Expired on both: a new use replaces the old row on exactly one instance.
          expect((await across(20, (s) => s.recordClientAssertionJti('kasm', jti, NOW + 200, NOW + 60))).filter(Boolean)).toHaveLength(1)
          const requestHash = hash()
          await storage.savePushedAuthorizationRequest({ requestHash, clientId: 'kasm', form: { client_id: 'kasm' }, createdAt: NOW, expiresAt: NOW + 300 })
          expect((await across(20, (s) => s.consumePushedAuthorizationRequest(requestHash, 'kasm', NOW))).filter(Boolean)).toHaveLength(1)
        }
      })

      test('20 parallel takes of one session\'s sign-ins on both instances: each client is notified once', async () => {
        const sid = randomBytes(16).toString('base64url')
        for (const clientId of ['a', 'b', 'c', 'd']) await storage.recordSessionClient(sessionClient({ sid, clientId }))
        const results = await across(20, (s) => s.takeSessionClients(sid, NOW))
        expect(results.flat().map((r) => r.clientId).sort()).toEqual(['a', 'b', 'c', 'd'])
      })

      test('parallel first uses of a subject on both instances agree on one subject', async () => {
        const subjects = await across(10, (s) => s.ensureSubjectIdentifier('sector.example.com', 'carol', randomUUID()))
        expect(new Set(subjects).size).toBe(1)
      })
    })
  })
}

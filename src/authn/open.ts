import type { AuthenticationBackendConfig } from '../config/schema.js'
import { FileUserProvider } from './users-file.js'
import type { HashGate } from './hash-budget.js'
import { LdapUserProvider } from './users-ldap.js'
import type { UserProvider } from './users.js'

interface Log {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

/** The users backend the configuration names: the users file or the LDAP directory. */
export async function openUserProvider(
  backend: AuthenticationBackendConfig,
  opts: { log?: Log; extraCa?: string[]; hashGate?: HashGate; watch?: boolean } = {},
): Promise<UserProvider> {
  if (backend.ldap) {
    return LdapUserProvider.open(backend.ldap, {
      refreshIntervalSeconds: backend.refreshIntervalSeconds,
      ...(opts.extraCa ? { extraCa: opts.extraCa } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    })
  }
  const file = backend.file!
  return FileUserProvider.open({ ...file, watch: opts.watch ?? file.watch }, opts.log, opts.hashGate ? { hashGate: opts.hashGate } : {})
}

/** Authelia's client `tls` block, the same shape wherever it appears (storage.postgres, session.redis). */
import type { TlsClientConfig, TlsVersion } from '../schema.js'
import type { MapView } from '../reader.js'

const TLS_VERSIONS = ['TLS1.0', 'TLS1.1', 'TLS1.2', 'TLS1.3'] as const

export function readTlsClient(t: MapView): TlsClientConfig {
  const version = (key: string) =>
    t.oneOf(key, TLS_VERSIONS, (x) => `option '${key}' must be one of 'TLS1.0', 'TLS1.1', 'TLS1.2', 'TLS1.3' but it's configured as '${x}'`, { normalise: (x) => x.toUpperCase() })
  const tls: TlsClientConfig = { skipVerify: t.bool('skip_verify') ?? false, minimumVersion: version('minimum_version') ?? 'TLS1.2' }
  const maximum: TlsVersion | undefined = version('maximum_version')
  if (maximum) {
    tls.maximumVersion = maximum
    if (TLS_VERSIONS.indexOf(maximum) < TLS_VERSIONS.indexOf(tls.minimumVersion))
      t.error('maximum_version', `option 'maximum_version' (${maximum}) must not be lower than 'minimum_version' (${tls.minimumVersion})`)
  }
  const serverName = t.str('server_name')
  if (serverName) tls.serverName = serverName
  const chain = t.str('certificate_chain')
  const key = t.str('private_key')
  if (chain && !chain.includes('-----BEGIN CERTIFICATE-----')) t.error('certificate_chain', "option 'certificate_chain' must be PEM certificates (-----BEGIN CERTIFICATE-----)")
  if (key && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) t.error('private_key', "option 'private_key' must be a PEM private key")
  if (chain && !key) t.missing('private_key', "option 'private_key' is required when option 'certificate_chain' is set")
  if (key && !chain) t.missing('certificate_chain', "option 'certificate_chain' is required when option 'private_key' is set")
  if (chain) tls.certificateChain = chain
  if (key) tls.privateKey = key
  return tls
}

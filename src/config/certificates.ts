import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * The PEM certificates in `certificates_directory` (`*.pem`, `*.crt`, `*.cer`), as Authelia adds
 * them to the system pool; files without a certificate in them are skipped.
 */
export function readCertificatesDirectory(dir: string | undefined): string[] {
  if (!dir) return []
  const out: string[] = []
  for (const name of readdirSync(dir).sort()) {
    if (!/\.(pem|crt|cer)$/i.test(name)) continue
    const text = readFileSync(join(dir, name), 'utf8')
    const certs = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)
    if (certs) out.push(...certs.map((c) => `${c}\n`))
  }
  return out
}

/** `webauthn`: Authelia 4.37 keys, 4.39's `selection_criteria`, `filtering` and passkey switches. */
import { DEFAULTS, type UserVerification, type WebauthnConfig } from '../schema.js'
import { type MapView, quoteList } from '../reader.js'

const CONVEYANCE = ['none', 'indirect', 'direct'] as const
const REQUIREMENT = ['discouraged', 'preferred', 'required'] as const
const ATTACHMENT = ['platform', 'cross-platform', ''] as const
const AAGUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

export function readWebauthn(root: MapView): WebauthnConfig {
  const v = root.map('webauthn')
  const criteria = v.map('selection_criteria')
  const filtering = v.map('filtering')
  const d = DEFAULTS.webauthn
  const mustBe = (key: string, allowed: readonly string[]) => (x: string) => `option '${key}' must be one of ${quoteList(allowed.filter(Boolean))} but it's configured as '${x}'`
  // 4.39 moved user_verification under selection_criteria; the structure check warns about the old name.
  const uvView = criteria.has('user_verification') ? criteria : v
  const out: WebauthnConfig = {
    disable: v.bool('disable') ?? d.disable,
    displayName: v.str('display_name') || d.displayName,
    attestationConveyancePreference: v.oneOf('attestation_conveyance_preference', CONVEYANCE, mustBe('attestation_conveyance_preference', CONVEYANCE)) ?? d.attestationConveyancePreference,
    userVerification: (uvView.oneOf('user_verification', REQUIREMENT, mustBe('user_verification', REQUIREMENT)) ?? d.userVerification) as UserVerification,
    timeoutSeconds: d.timeoutSeconds,
    discoverability: criteria.oneOf('discoverability', REQUIREMENT, mustBe('discoverability', REQUIREMENT)) ?? d.discoverability,
    enablePasskeyLogin: v.bool('enable_passkey_login') ?? d.enablePasskeyLogin,
    passkeyUvTwoFactors: v.bool('experimental_enable_passkey_uv_two_factors') ?? d.passkeyUvTwoFactors,
    prohibitBackupEligibility: filtering.bool('prohibit_backup_eligibility') ?? d.prohibitBackupEligibility,
    permittedAaguids: aaguids(filtering, 'permitted_aaguids'),
    prohibitedAaguids: aaguids(filtering, 'prohibited_aaguids'),
  }
  const attachment = criteria.has('attachment') ? criteria.oneOf('attachment', ATTACHMENT, mustBe('attachment', ATTACHMENT)) : d.attachment
  if (attachment) out.attachment = attachment
  const timeout = v.duration('timeout')
  if (timeout !== undefined && timeout !== 0) {
    if (timeout >= 10 && timeout <= 600) out.timeoutSeconds = timeout
    else v.error('timeout', `option 'timeout' must be between 10 seconds and 10 minutes but it's configured as '${timeout}s'`, '60s is the default')
  }
  if (out.permittedAaguids.length > 0 && out.prohibitedAaguids.length > 0)
    filtering.error('permitted_aaguids', "option 'permitted_aaguids' and 'prohibited_aaguids' are mutually exclusive", 'keep one list')
  // Security-relevant and not implemented: refused rather than silently ignored.
  if (v.map('metadata').bool('enabled') === true)
    v.map('metadata').error('enabled', "option 'enabled' is not supported by Latchkey: it does not check authenticators against the FIDO Metadata Service", 'remove it, or use filtering.permitted_aaguids to allow only known models')
  if (out.passkeyUvTwoFactors && !out.enablePasskeyLogin)
    v.warn('experimental_enable_passkey_uv_two_factors', 'has no effect without enable_passkey_login: true')
  return out
}

function aaguids(view: MapView, key: string): string[] {
  const out: string[] = []
  for (const item of view.stringItems(key)) {
    const id = item.value.toLowerCase()
    if (AAGUID.test(id)) out.push(id)
    else view.problems.error(item.path, `option '${key}' must only contain AAGUIDs (UUIDs) but contains the value '${item.value}'`, item.src)
  }
  return out
}

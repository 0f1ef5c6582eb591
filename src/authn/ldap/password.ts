/**
 * Writing a new password into the directory for password reset (docs/ldap.md#password-reset), the
 * way Authelia does it, as the service account:
 * - `activedirectory`: a replace of `unicodePwd` with the password in double quotes, UTF-16LE
 *   (Active Directory takes that attribute only over TLS);
 * - otherwise, when the root DSE lists the Password Modify extended operation (RFC 3062) in
 *   `supportedExtension`: that operation, so the server hashes the password and applies its policy;
 * - otherwise a replace of `userPassword` with the new password.
 * A modify carries Active Directory's password policy hints control when the root DSE lists it in
 * `supportedControl`, so AD applies the password history to a reset too.
 */
import { Attribute, Change, Control, ResultCodeError, type Client } from 'ldapts'

export const PASSWORD_MODIFY_OID = '1.3.6.1.4.1.4203.1.11.1'

/** LDAP_SERVER_POLICY_HINTS_OID, and its deprecated predecessor (Windows Server 2008 R2). */
export const POLICY_HINTS_OIDS = ['1.2.840.113556.1.4.2239', '1.2.840.113556.1.4.2066'] as const

/** Critical, value SEQUENCE { Flags INTEGER 1 } (MS-ADTS 3.1.1.3.4.1.34). */
export class PolicyHintsControl extends Control {
  constructor(oid: string) {
    super(oid, { critical: true })
  }
  override writeControl(writer: { writeBuffer(buffer: Buffer, tag: number): void }): void {
    writer.writeBuffer(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]), 0x04)
  }
}

/** The policy hints control the directory supports (the current OID first), if any. */
export function policyHintsControl(supportedControls: readonly string[]): PolicyHintsControl | undefined {
  const oid = POLICY_HINTS_OIDS.find((o) => supportedControls.includes(o))
  return oid ? new PolicyHintsControl(oid) : undefined
}

export type PasswordWriteMethod = 'unicodePwd' | 'passwordModify' | 'userPassword'

export function passwordWriteMethod(implementation: string, supportedExtensions: readonly string[]): PasswordWriteMethod {
  if (implementation === 'activedirectory') return 'unicodePwd'
  return supportedExtensions.includes(PASSWORD_MODIFY_OID) ? 'passwordModify' : 'userPassword'
}

/** Active Directory's `unicodePwd` value: `"password"` (quotes included) in UTF-16LE. */
export function unicodePwdValue(password: string): Buffer {
  return Buffer.from(`"${password}"`, 'utf16le')
}

/** BER definite length (X.690 §8.1.3). */
function berLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n])
  const bytes: number[] = []
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), berLength(content.length), content])
}

/**
 * RFC 3062's PasswdModifyRequestValue: SEQUENCE { userIdentity [0], newPasswd [2] } (no oldPasswd:
 * the service account sets it, as an administrator would).
 */
export function passwordModifyRequestValue(dn: string, password: string): Buffer {
  return tlv(0x30, Buffer.concat([tlv(0x80, Buffer.from(dn, 'utf8')), tlv(0x82, Buffer.from(password, 'utf8'))]))
}

/** The modify for the `unicodePwd` and `userPassword` methods: one replace of the password attribute. */
export function passwordChange(method: Exclude<PasswordWriteMethod, 'passwordModify'>, password: string): Change {
  const attribute = method === 'unicodePwd' ? new Attribute({ type: 'unicodePwd', values: [unicodePwdValue(password)] }) : new Attribute({ type: 'userPassword', values: [password] })
  return new Change({ operation: 'replace', modification: attribute })
}

export async function writePassword(client: Client, method: PasswordWriteMethod, dn: string, password: string, controls: Control[] = []): Promise<void> {
  if (method === 'passwordModify') await client.exop(PASSWORD_MODIFY_OID, passwordModifyRequestValue(dn, password))
  else await client.modify(dn, passwordChange(method, password), controls)
}

/**
 * LDAP result codes (RFC 4511 §4.1.9) that mean "the directory refused this password change", as
 * opposed to "the directory is down": the new password breaks a policy (constraintViolation 19,
 * invalidAttributeSyntax 21, objectClassViolation 65, unwillingToPerform 53, which Active Directory
 * and some servers use for policy too), or the service account may not write it (insufficientAccess
 * 50, strongerAuthRequired 8, confidentialityRequired 13 — the last for AD without TLS), or the
 * entry vanished (noSuchObject 32).
 */
const POLICY_CODES = new Set([19, 21, 53, 65])
const ACCESS_CODES = new Set([8, 13, 50])

export class PasswordChangeRefusedError extends Error {
  constructor(
    /** `policy`: the password itself was refused (another one may pass); `access`: the service account cannot write it. */
    readonly kind: 'policy' | 'access' | 'other',
    readonly resultCode: number,
    /** The directory's diagnostic message, for the log (never shown to the user). */
    readonly diagnostic: string,
  ) {
    super(`the directory refused the password change (result ${resultCode}): ${diagnostic}`)
    this.name = 'PasswordChangeRefusedError'
  }
}

/** The refusal an ldapts error stands for, or undefined when it is not a refusal (an outage, a bug). */
export function asRefusal(err: unknown): PasswordChangeRefusedError | undefined {
  if (!(err instanceof ResultCodeError)) return undefined
  const kind = POLICY_CODES.has(err.code) ? 'policy' : ACCESS_CODES.has(err.code) ? 'access' : err.code === 32 ? 'other' : undefined
  if (!kind) return undefined
  // ldapts puts the server's diagnostic message after its own text; one line is enough.
  return new PasswordChangeRefusedError(kind, err.code, String(err.message).split('\n')[0]!.slice(0, 300))
}

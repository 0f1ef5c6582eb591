import type { Theme } from '../../config/schema.js'
import { html, raw, type SafeHtml } from './html.js'
import { renderPage } from './layout.js'

/**
 * The portal's server-rendered views. No JavaScript: every action is a form posting to its own
 * page route with the session's CSRF token. Every reflected value goes through `html```.
 */

export const ERROR_MESSAGES = {
  credentials: 'Authentication failed. Check your credentials.',
  // Shown when the page has no usable end time; otherwise `pausedText` says how long (issue 9.12).
  paused: 'Sign-in is paused after too many failed attempts. Try again in a few minutes.',
  code: 'The code was not accepted. Wait for the next code from your app and try again.',
  expired: 'Your session expired or this form was already used. Please try again.',
  register: 'This registration link is invalid. Ask for a new code below.',
  'link-used': 'This registration link was already used. Ask for a new code below if you still need to register a device.',
  'link-expired': 'This registration link has expired. Ask for a new code below.',
  'link-other-session': 'This link belongs to another sign-in: open it in the browser where you asked for it, or ask for a new code below.',
  otc: 'The code was not accepted. Check it (it is valid 5 minutes, in this browser only), or ask for a new one.',
  'too-many': 'Too many codes were requested. Wait a few minutes, then use the last code you received or ask again.',
  elevation: 'Confirm your identity first: ask for a code below.',
  'webauthn-fresh': 'Confirm with your second factor first: changes to security keys need one from the last five minutes.',
  'webauthn-change': 'That change was not possible: the name may be empty, too long or already used.',
  operation: 'Something went wrong. Please try again.',
  'cross-site': 'This form was sent from another site, so it was refused.',
  'not-found': 'This page does not exist.',
  'reset-code': 'The code was not accepted. Check it (it is valid 5 minutes, in this browser only), or ask for a new one.',
  'reset-weak': 'This password does not meet the password policy. Choose another one.',
  'reset-mismatch': 'The two passwords are not the same.',
  'reset-directory': 'The directory refused to change your password. Contact your administrator.',
  'reset-unable': 'Unable to reset your password. Start again from "Forgot password?".',
  'reset-off': 'Password reset is not available here. Ask your administrator.',
  host: 'This sign-in portal is not served at this address: its session cookie would not be kept here. Open it at the address it was set up for.',
} as const
export type ErrorCode = keyof typeof ERROR_MESSAGES

export const NOTICES = {
  'signed-out': 'You have been signed out.',
  'code-sent': 'A new code was sent.',
  'reset-sent': 'If this account exists and has an email address, a one-time code is on its way to it.',
  'password-reset': 'Your password was changed and every sign-in with the old one has ended. Sign in with the new one.',
  'key-added': 'Your security key was registered.',
  'key-renamed': 'The security key was renamed.',
  'key-removed': 'The security key was removed.',
} as const
export type NoticeCode = keyof typeof NOTICES

interface Common {
  theme: Theme
  prefix: string
  csrf: string
  error?: ErrorCode | undefined
  notice?: NoticeCode | undefined
  /** With error `paused`: the sentence with the remaining time, computed on the server. */
  pausedText?: string | undefined
}

function messages(c: { error?: ErrorCode | undefined; notice?: NoticeCode | undefined; pausedText?: string | undefined }): SafeHtml {
  const error = c.error === 'paused' && c.pausedText ? c.pausedText : c.error ? ERROR_MESSAGES[c.error] : undefined
  return html`${error ? html`<p class="error" role="alert">${error}</p>` : ''}${
    c.notice ? html`<p class="ok" role="status">${NOTICES[c.notice]}</p>` : ''
  }`
}

function csrfField(csrf: string): SafeHtml {
  return html`<input type="hidden" name="csrf" value="${csrf}">`
}

function rdField(rd: string | undefined): SafeHtml {
  return rd ? html`<input type="hidden" name="rd" value="${rd}">` : html``
}

function signOutForm(prefix: string, csrf: string, label = 'Sign out', secondary = true): SafeHtml {
  return html`<form method="post" action="${prefix}/logout">${csrfField(csrf)}<button type="submit"${raw(secondary ? ' class="secondary"' : '')}>${label}</button></form>`
}

/**
 * The sign-in form. `again`: a signed-in user whose application asked for a fresh sign-in
 * (prompt=login, max_age): the session stays until this form succeeds (docs/security.md W7).
 * `username`: what was typed before a failed attempt, kept so only the password is typed again.
 */
export function signInView(c: Common & { rd?: string | undefined; rememberMe: boolean; again?: { username: string } | undefined; username?: string | undefined; forgotLink?: string | undefined; passkey?: boolean }): string {
  // What was typed before a failure wins over the signed-in name of a fresh sign-in.
  const name = (c.username === '' ? undefined : c.username) ?? c.again?.username
  return renderPage({
    title: c.again ? 'Sign in again' : 'Sign in',
    theme: c.theme,
    body: html`${messages(c)}${c.again ? html`<p>The application asks you to confirm who you are. You stay signed in as <strong>${c.again.username}</strong> until you sign in here.</p>` : ''}
<form method="post" action="${c.prefix}/" novalidate>
${csrfField(c.csrf)}${rdField(c.rd)}${c.again ? html`<input type="hidden" name="prompt" value="login">` : ''}
<label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required${name !== undefined ? html` value="${name}"` : raw(' autofocus')}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required${raw(name !== undefined ? ' autofocus' : '')}>
${c.rememberMe ? html`<div class="check"><input type="checkbox" id="remember_me" name="remember_me" value="1"><label for="remember_me">Remember me</label></div>` : ''}
<button type="submit">Sign in</button>
</form>${c.passkey && !c.again ? passkeyButton(c.rd) : ''}${c.forgotLink && !c.again ? html`
<p class="muted"><a href="${c.forgotLink}">Forgot password?</a></p>` : ''}`,
    ...(c.passkey && !c.again ? { script: { prefix: c.prefix } } : {}),
  })
}

// ---------------------------------------------------------------- password reset

export function resetStartView(c: Common & { username?: string | undefined; channel: Channel }): string {
  return renderPage({
    title: 'Reset your password',
    theme: c.theme,
    body: html`${messages(c)}
<p>Enter your username: ${c.channel === 'email' ? 'we will email you a one-time code' : "a one-time code will be written to this server's notification file (notifier.filesystem)"} to confirm it is you.</p>
<form method="post" action="${c.prefix}/reset-password/step1" novalidate>
${csrfField(c.csrf)}
<label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus${c.username ? html` value="${c.username}"` : ''}>
<button type="submit">Send a code</button>
</form>
<p class="muted"><a href="${c.prefix}/">Back to sign in</a></p>`,
  })
}

export function resetCodeView(c: Common & { channel: Channel }): string {
  return renderPage({
    title: 'Reset your password',
    theme: c.theme,
    body: html`${messages(c)}
<p>${c.channel === 'email' ? 'Check your email for the one-time code.' : "The one-time code was written to this server's notification file: ask its administrator for it."} Type it here within 5 minutes; it works only in this browser.</p>
<form method="post" action="${c.prefix}/reset-password/identity" novalidate>
${csrfField(c.csrf)}
<label for="code">Code</label>
<input type="text" id="code" name="code" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false" maxlength="20" required autofocus>
<button type="submit">Continue</button>
</form>
<p class="muted"><a href="${c.prefix}/reset-password/step1">Ask for a new code</a> · <a href="${c.prefix}/">Back to sign in</a></p>`,
  })
}

/** The mailed link leads to a button only: mail scanners that fetch links must not spend it. */
export function resetLinkConfirmView(c: Common & { token: string }): string {
  return renderPage({
    title: 'Reset your password',
    theme: c.theme,
    body: html`${messages(c)}
<form method="post" action="${c.prefix}/reset-password/step2">
${csrfField(c.csrf)}<input type="hidden" name="token" value="${c.token}">
<button type="submit" autofocus>Choose a new password</button>
</form>`,
  })
}

export function resetNewPasswordView(c: Common & { username: string; policy?: string | undefined; maxLength?: number | undefined }): string {
  return renderPage({
    title: 'Choose a new password',
    theme: c.theme,
    body: html`${messages(c)}
<p>New password for <strong>${c.username}</strong>. You will be signed out everywhere.</p>${c.policy ? html`
<p class="muted" id="policy">${c.policy}</p>` : ''}
<form method="post" action="${c.prefix}/reset-password/step2" novalidate>
${csrfField(c.csrf)}<input type="text" name="username" value="${c.username}" autocomplete="username" hidden>
<label for="password">New password</label>
<input type="password" id="password" name="password" autocomplete="new-password" required autofocus${c.policy ? raw(' aria-describedby="policy"') : ''}>
<label for="password_again">New password, again</label>
<input type="password" id="password_again" name="password_again" autocomplete="new-password" required>
<button type="submit">Reset password</button>
</form>`,
  })
}

/** Shown only once the script runs (it unhides the button); the password form needs no script. */
function passkeyButton(rd: string | undefined): SafeHtml {
  return html`
<button type="button" class="secondary" data-webauthn="passkey"${rd ? html` data-rd="${rd}"` : ''} hidden>Sign in with a passkey</button>
<p class="error" role="alert" data-webauthn-error></p>`
}

export function signedInView(c: Common & { username: string; displayName: string; level: number; amr?: string[]; webauthn?: boolean }): string {
  const amr = c.amr ?? []
  const first = amr.includes('pwd') ? 'your password' : amr.includes('hwk') || amr.includes('swk') ? 'a passkey' : 'your password'
  const second = amr.includes('otp') ? ' and a one-time code' : amr.includes('pwd') && (amr.includes('hwk') || amr.includes('swk')) ? ' and a security key' : ''
  const how = `with ${first}${c.level >= 2 ? second : ''}`
  return renderPage({
    title: 'Signed in',
    theme: c.theme,
    body: html`${messages(c)}
<p>You are signed in as <strong>${c.displayName || c.username}</strong> (<code>${c.username}</code>) ${how}.</p>
${c.webauthn ? html`<p><a href="${c.prefix}/settings/security-keys">Security keys and passkeys</a></p>` : ''}
${signOutForm(c.prefix, c.csrf, 'Sign out', false)}`,
  })
}

/** Where the one-time code went: accurate to the configured notifier (notifier.smtp or notifier.filesystem). */
export type Channel = 'email' | 'file'
function sentTo(channel: Channel): string {
  return channel === 'email'
    ? 'We sent a one-time code to your email address.'
    : "A one-time code was written to this server's notification file (notifier.filesystem): ask its administrator for it."
}
function willSend(channel: Channel): string {
  return channel === 'email' ? 'we will email you a one-time code to confirm it is you' : "we will write a one-time code to this server's notification file to confirm it is you"
}

function requestCodeForm(prefix: string, csrf: string, rd: string | undefined, label: string, secondary: boolean): SafeHtml {
  return html`<form method="post" action="${prefix}/2fa/one-time-password/register">${csrfField(csrf)}${rdField(rd)}<button type="submit"${raw(secondary ? ' class="secondary"' : '')}>${label}</button></form>`
}

export function oneTimePasswordView(c: Common & { rd?: string | undefined; hasTotp: boolean; username: string; digits: number; channel: Channel; webauthn?: { has: boolean }; fresh?: string | undefined }): string {
  const register = requestCodeForm(c.prefix, c.csrf, c.rd, c.hasTotp ? 'Register a new device' : 'Register your device', c.hasTotp)
  const keys = c.webauthn
    ? html`<div class="row">${c.webauthn.has ? methodForm(c.prefix, c.csrf, c.rd, 'webauthn', 'Use your security key instead', c.fresh) : ''}${
        c.webauthn.has ? '' : html`<form method="post" action="${c.prefix}/2fa/webauthn/register">${csrfField(c.csrf)}${rdField(c.rd)}<button type="submit" class="secondary">Register a security key</button></form>`
      }</div>`
    : html``
  const body = c.hasTotp
    ? html`${messages(c)}
<p>Signed in as <strong>${c.username}</strong>. Enter the code shown by your authenticator app.</p>
<form method="post" action="${c.prefix}/2fa/one-time-password" novalidate>
${csrfField(c.csrf)}${rdField(c.rd)}
<label for="token">One-time code</label>
<input type="text" id="token" name="token" inputmode="numeric" pattern="[0-9]*" maxlength="${c.digits}" autocomplete="one-time-code" required autofocus>
${c.fresh ? html`<input type="hidden" name="fresh" value="${c.fresh}">` : ''}<button type="submit">Verify</button>
</form>
${keys}
<p class="muted">Lost your device? Registering a new one replaces it once it works; ${willSend(c.channel)}.</p>
<div class="row">${register}${signOutForm(c.prefix, c.csrf)}</div>`
    : html`${messages(c)}
<p>Signed in as <strong>${c.username}</strong>. This service also asks for a one-time code, and you have no device registered yet.</p>
<p class="muted">To register an authenticator app (for example on your phone)${c.webauthn ? ' or a security key' : ''}, ${willSend(c.channel)}.</p>
${keys}
<div class="row">${register}${signOutForm(c.prefix, c.csrf)}</div>`
  return renderPage({ title: 'One-time code', theme: c.theme, body })
}

export function identityCodeView(c: Common & { rd?: string | undefined; username: string; channel: Channel; action?: string; resend?: string }): string {
  return renderPage({
    title: 'Confirm your identity',
    theme: c.theme,
    body: html`${messages(c)}
<p>${sentTo(c.channel)} Type it here within 5 minutes; it works only in this browser.</p>
<form method="post" action="${c.prefix}${c.action ?? '/one-time-password/identity'}" novalidate>
${csrfField(c.csrf)}${rdField(c.rd)}
<label for="code">Code</label>
<input type="text" id="code" name="code" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false" maxlength="20" required autofocus>
<button type="submit">Continue</button>
</form>
<div class="row">${c.resend ? html`<form method="post" action="${c.prefix}${c.resend}">${csrfField(c.csrf)}${rdField(c.rd)}<button type="submit" class="secondary">Send a new code</button></form>` : requestCodeForm(c.prefix, c.csrf, c.rd, 'Send a new code', true)}${signOutForm(c.prefix, c.csrf)}</div>`,
  })
}

/** A registration link that no longer works: said on the GET, before any click. */
export function registerLinkRefusedView(c: Common & { rd?: string | undefined }): string {
  return renderPage({
    title: 'Register your device',
    theme: c.theme,
    body: html`${messages(c)}
<div class="row">${requestCodeForm(c.prefix, c.csrf, c.rd, 'Send a new code', false)}</div>`,
  })
}

export function registerConfirmView(c: Common & { token: string; username: string }): string {
  return renderPage({
    title: 'Register your device',
    theme: c.theme,
    body: html`${messages(c)}
<p>Create a new one-time password device for <strong>${c.username}</strong>. A device you registered before stops working.</p>
<form method="post" action="${c.prefix}/one-time-password/register">
${csrfField(c.csrf)}<input type="hidden" name="token" value="${c.token}">
<button type="submit" autofocus>Show my QR code</button>
</form>`,
  })
}

export function registerShowView(c: Common & { rd?: string | undefined; qrSvg: string; base32Secret: string; otpauthUrl: string; digits: number }): string {
  return renderPage({
    title: 'Register your device',
    theme: c.theme,
    body: html`${messages(c)}
<p>Scan this QR code with your authenticator app, or type the secret in by hand. The device counts only once you confirm a code from it.</p>
<div class="qr">${raw(c.qrSvg)}</div>
<p><span class="muted">Secret</span><br><code class="secret" id="secret">${c.base32Secret}</code></p>
<details><summary>Setup link</summary><p><code>${c.otpauthUrl}</code></p></details>
<form method="post" action="${c.prefix}/2fa/one-time-password" novalidate>
${csrfField(c.csrf)}${rdField(c.rd)}
<label for="token">Enter the code your app shows, to confirm</label>
<input type="text" id="token" name="token" inputmode="numeric" pattern="[0-9]*" maxlength="${c.digits}" autocomplete="one-time-code" required autofocus>
<button type="submit">Confirm</button>
</form>`,
  })
}

export function logoutView(c: Common & { username: string; rd?: string | undefined }): string {
  return renderPage({
    title: 'Sign out',
    theme: c.theme,
    body: html`${messages(c)}
<p>Sign out of <strong>${c.username}</strong>?</p>
<form method="post" action="${c.prefix}/logout">${csrfField(c.csrf)}${rdField(c.rd)}<button type="submit" autofocus>Sign out</button></form>`,
  })
}

/** Any path no route serves (src/app.ts): a page, not bare text, with a way back. */
export function notFoundView(c: { theme: Theme; prefix: string }): string {
  return renderPage({
    title: 'Page not found',
    theme: c.theme,
    body: html`<p>${ERROR_MESSAGES['not-found']} Check the address, or start again from the sign-in page.</p>
<p><a class="button" href="${c.prefix}/">Go to sign in</a></p>`,
  })
}

/** `link`: where the button goes instead of this portal's sign-in page (another address). */
export function errorView(c: { theme: Theme; prefix: string; error: ErrorCode; link?: string }): string {
  return renderPage({
    title: 'Something went wrong',
    theme: c.theme,
    body: html`<p class="error" role="alert">${ERROR_MESSAGES[c.error]}</p>
<p>${c.link ? html`<a class="button" href="${c.link}">Go to ${new URL(c.link).origin}</a>` : html`<a class="button" href="${c.prefix}/">Back to sign in</a>`}</p>`,
  })
}

// ------------------------------------------------------------------ WebAuthn (issue 11)

function methodForm(prefix: string, csrf: string, rd: string | undefined, method: 'totp' | 'webauthn', label: string, fresh?: string): SafeHtml {
  return html`<form method="post" action="${prefix}/2fa/method">${csrfField(csrf)}${rdField(rd)}${fresh ? html`<input type="hidden" name="fresh" value="${fresh}">` : ''}<input type="hidden" name="method" value="${method}"><button type="submit" class="secondary">${label}</button></form>`
}

const NEEDS_SCRIPT = 'Security keys need JavaScript in this browser (the page loads one script from this server).'

/** The security-key second factor: one button (scripted), the one-time code as the other way. */
export function webauthnView(c: Common & { rd?: string | undefined; username: string; hasTotp: boolean; done?: string | undefined; fresh?: string | undefined }): string {
  return renderPage({
    title: 'Security key',
    theme: c.theme,
    script: { prefix: c.prefix },
    body: html`${messages(c)}
<p>Signed in as <strong>${c.username}</strong>. Use your security key or passkey to continue.</p>
<noscript><p class="error">${NEEDS_SCRIPT}</p></noscript>
<button type="button" data-webauthn="assert"${c.rd ? html` data-rd="${c.rd}"` : ''}${c.done ? html` data-done="${c.done}"` : ''} hidden autofocus>Use security key</button>
<p class="error" role="alert" data-webauthn-error></p>
<div class="row">${c.hasTotp ? methodForm(c.prefix, c.csrf, c.rd, 'totp', 'Use a one-time code instead', c.fresh) : ''}${signOutForm(c.prefix, c.csrf)}</div>`,
  })
}

export function webauthnRegisterView(c: Common & { rd?: string | undefined; done: string; passkey: boolean }): string {
  return renderPage({
    title: 'Register a security key',
    theme: c.theme,
    script: { prefix: c.prefix },
    body: html`${messages(c)}
<p>Give the key a name you will recognise, then touch it when your browser asks.${c.passkey ? ' A passkey also signs you in without your password.' : ''}</p>
<noscript><p class="error">${NEEDS_SCRIPT}</p></noscript>
<label for="description">Name</label>
<input type="text" id="description" name="description" maxlength="64" placeholder="Security key" autofocus>
<div class="row"><button type="button" data-webauthn="register" data-passkey="false" data-done="${c.done}" hidden>Register security key</button>${
      c.passkey ? html`<button type="button" class="secondary" data-webauthn="register" data-passkey="true" data-done="${c.done}" hidden>Register passkey</button>` : ''
    }</div>
<p class="error" role="alert" data-webauthn-error></p>`,
  })
}

export interface KeyRow {
  id: string
  description: string
  createdAt: string
  lastUsedAt?: string | undefined
  passkey: boolean
  cloneWarning: boolean
}

/** The signed-in user's credentials; rename and remove are plain forms (no script needed). */
export function securityKeysView(c: Common & { keys: KeyRow[] }): string {
  const rows = c.keys.map(
    (k) => html`<tr><td><strong>${k.description}</strong>${k.passkey ? html` <span class="muted">(passkey)</span>` : ''}${
      k.cloneWarning ? html`<br><span class="error">Possibly cloned: it no longer signs you in. Remove it.</span>` : ''
    }<br><span class="muted">Added ${k.createdAt}${k.lastUsedAt ? html`, last used ${k.lastUsedAt}` : ''}</span>
<form method="post" action="${c.prefix}/settings/security-keys/rename" class="row">${csrfField(c.csrf)}<input type="hidden" name="id" value="${k.id}"><input type="text" name="description" aria-label="New name for ${k.description}" maxlength="64" required><button type="submit" class="secondary">Rename</button></form>
<form method="post" action="${c.prefix}/settings/security-keys/remove">${csrfField(c.csrf)}<input type="hidden" name="id" value="${k.id}"><button type="submit" class="secondary" aria-label="Remove ${k.description}">Remove</button></form></td></tr>`,
  )
  return renderPage({
    title: 'Security keys and passkeys',
    theme: c.theme,
    body: html`${messages(c)}
${c.keys.length > 0 ? html`<table class="keys">${rows}</table>` : html`<p>You have no security key registered.</p>`}
<p class="muted">Renaming or removing a key asks for your second factor if you have not used it in the last five minutes.</p>
<div class="row"><form method="post" action="${c.prefix}/2fa/webauthn/register">${csrfField(c.csrf)}<button type="submit">Add a security key</button></form><a class="button secondary" href="${c.prefix}/">Done</a></div>`,
  })
}

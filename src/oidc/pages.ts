import { randomBytes } from 'node:crypto'
import type { Theme } from '../config/schema.js'
import { html } from '../portal/pages/html.js'
import { renderPage } from '../portal/pages/layout.js'
import type { PendingConsent } from './consent.js'

const SCOPE_DESCRIPTIONS: Record<string, string> = {
  openid: 'Use OpenID to verify your identity',
  offline_access: 'Automatically refresh these permissions without user interaction',
  profile: 'Access your profile information',
  email: 'Access your email addresses',
  groups: 'Access your group membership',
}

/** docs/security.md ERRPAGE: escaped, no Location, nothing sent to any redirect URI. */
export function renderErrorPage(theme: Theme, code: string, description: string): string {
  return renderPage({
    title: 'Authorization error',
    theme,
    body: html`<p class="error">${code}</p>
<p>${description}</p>
<p class="muted">The application that sent you here made a request this server cannot accept. Nothing was sent back to it.</p>`,
  })
}

export function renderConsentPage(theme: Theme, p: PendingConsent, action: string, csrfToken: string): string {
  const { consent, client } = p
  const scopes = consent.requestedScopes.map((s) => html`<li><strong>${s}</strong>: ${SCOPE_DESCRIPTIONS[s] ?? s}</li>`)
  const audience = consent.requestedAudience.length
    ? html`<p class="muted">Audience: ${consent.requestedAudience.join(', ')}</p>`
    : ''
  const remember =
    client.config.consentMode === 'pre-configured'
      ? html`<div class="check"><input type="checkbox" id="pre_configure" name="pre_configure" value="true"><label for="pre_configure">Remember my decision</label></div>`
      : ''
  return renderPage({
    title: 'Consent request',
    theme,
    body: html`<p>The application <strong>${client.config.description}</strong> (${client.id}) asks for:</p>
<ul class="scopes">${scopes}</ul>
${audience}
<form method="post" action="${action}">
<input type="hidden" name="id" value="${consent.id}">
<input type="hidden" name="csrf_token" value="${csrfToken}">
${remember}
<div class="row">
<button type="submit" name="decision" value="accept">Accept</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</div>
</form>`,
  })
}

/**
 * OAuth 2.0 Form Post Response Mode: an auto-submitting form. Works without JavaScript (a
 * button); with it, one inline script allowed by a per-response nonce submits at once.
 */
export function renderFormPost(theme: Theme, action: string, params: Record<string, string>): { html: string; csp: string } {
  const nonce = randomBytes(16).toString('base64')
  const inputs = Object.entries(params).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)
  const page = renderPage({
    title: 'Continue',
    theme,
    body: html`<form method="post" action="${action}" id="form_post">${inputs}
<noscript><p>JavaScript is disabled: press the button to continue.</p></noscript>
<button type="submit">Continue</button>
</form>
<script nonce="${nonce}">document.getElementById('form_post').submit()</script>`,
  })
  let target: string
  try {
    const u = new URL(action)
    target = u.origin !== 'null' ? u.origin : `${u.protocol}`
  } catch {
    target = "'none'"
  }
  const csp =
    `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; form-action ${target}; ` +
    "frame-ancestors 'none'; object-src 'none'; base-uri 'self'"
  return { html: page, csp }
}

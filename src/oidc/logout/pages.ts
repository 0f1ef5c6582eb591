import type { Theme } from '../../config/schema.js'
import { CONTENT_SECURITY_POLICY } from '../../server/headers.js'
import { html } from '../../portal/pages/html.js'
import { renderPage } from '../../portal/pages/layout.js'
import type { EndSessionPlan } from './end-session.js'

/**
 * RP-Initiated Logout 1.0 §2: the end-session request could not prove who sent it, so the user
 * confirms. A form posting the checked values (never the hint) with the session's CSRF token;
 * every value escaped (docs/security.md W5, E1). `form-action` allows our own origin and the
 * post-logout redirect's, which Chromium applies to the redirect after the post.
 */
export function renderLogoutConfirmPage(opts: { theme: Theme; action: string; csrf: string; username: string; plan: EndSessionPlan; cancel: string }): { html: string; csp: string } {
  const { plan } = opts
  const hidden = (name: string, value: string | undefined) => (value === undefined ? '' : html`<input type="hidden" name="${name}" value="${value}">`)
  const page = renderPage({
    title: 'Sign out',
    theme: opts.theme,
    body: html`<p>${plan.client ? html`The application <strong>${plan.client.config.description}</strong> asks to sign you out.` : 'An application asks to sign you out.'}</p>
<p>Sign <strong>${opts.username}</strong> out of Latchkey and every application signed in through it?</p>
<form method="post" action="${opts.action}">
<input type="hidden" name="csrf" value="${opts.csrf}">
${hidden('client_id', plan.client?.id)}${hidden('post_logout_redirect_uri', plan.postLogoutRedirectUri)}${hidden('state', plan.state)}
<div class="row">
<button type="submit" name="decision" value="logout" autofocus>Sign out</button>
<a class="button secondary" href="${opts.cancel}">Stay signed in</a>
</div>
</form>`,
  })
  const target = plan.postLogoutRedirectUri ? ` ${new URL(plan.postLogoutRedirectUri).origin}` : ''
  return { html: page, csp: CONTENT_SECURITY_POLICY.replace("form-action 'self'", `form-action 'self'${target}`) }
}

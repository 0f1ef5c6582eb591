import type { Theme } from '../../config/schema.js'
import { CONTENT_SECURITY_POLICY } from '../../server/headers.js'
import { html } from './html.js'
import { renderPage } from './layout.js'

/**
 * The page after a sign-out that relying parties must see in the browser (Front-Channel Logout 1.0
 * §3): one hidden iframe per front-channel logout URI, then on to `next`, if any, once they have
 * loaded (a meta refresh runs after the document, iframes included, has loaded; no script). The
 * CSP allows frames from exactly those origins and nothing else (docs/security.md E5).
 */
export function renderSignedOutPage(opts: { theme: Theme; frames: string[]; next?: string | undefined; signInUrl: string }): { html: string; csp: string } {
  const origins = [...new Set(opts.frames.map((f) => new URL(f).origin))]
  const frames = opts.frames.map((f) => html`<iframe class="logout-frame" src="${f}" title="Signing out of ${new URL(f).host}" width="0" height="0" style="border:0;width:0;height:0;position:absolute" sandbox="allow-same-origin allow-scripts" referrerpolicy="no-referrer"></iframe>`)
  const next = opts.next
  const page = renderPage({
    title: 'Signed out',
    theme: opts.theme,
    body: html`${next ? html`<meta http-equiv="refresh" content="1;url=${next}">` : ''}
<p class="ok" role="status">You have been signed out.</p>
${frames.length ? html`<p class="muted">Signing you out of ${frames.length} application${frames.length === 1 ? '' : 's'} as well.</p>` : ''}
${frames}
<p>${next ? html`<a class="button" href="${next}">Continue</a>` : html`<a class="button" href="${opts.signInUrl}">Sign in again</a>`}</p>`,
  })
  const csp = origins.length ? `${CONTENT_SECURITY_POLICY}; frame-src ${origins.join(' ')}` : CONTENT_SECURITY_POLICY
  return { html: page, csp }
}

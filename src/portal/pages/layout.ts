import type { Theme } from '../../config/schema.js'
import { html, raw, type SafeHtml } from './html.js'

/**
 * The one page shell every server-rendered page uses: no external assets, no JavaScript needed,
 * light and dark themes from `theme` (`auto` follows the browser), readable on a phone.
 */
/** `script`: the page loads the portal's one script (WebAuthn buttons); `prefix` is server.path. */
export function renderPage(opts: { title: string; theme: Theme; body: SafeHtml; nonce?: string; script?: { prefix: string } }): string {
  const themeClass = opts.theme === 'auto' ? '' : `theme-${opts.theme}`
  return (
    '<!doctype html>\n' +
    html`<html lang="en" class="${themeClass}"${opts.script ? html` data-prefix="${opts.script.prefix}"` : ''}>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${opts.title} · Latchkey</title>
<style>${raw(STYLE)}</style>
${opts.script ? html`<script src="${opts.script.prefix}/static/webauthn.js" defer></script>` : ''}
</head>
<body>
<main class="card">
<h1>${opts.title}</h1>
${opts.body}
</main>
<footer>Latchkey</footer>
</body>
</html>`.value
  )
}

// Raw text inside <style>: an HTML-escaped `&quot;` would reach the CSS parser as is and drop the
// declaration around it. Kept inline so the pages work with `default-src 'self'` and no asset route; the CSP allows it
// through a hash-free `style-src 'unsafe-inline'`, which carries no script risk.
const STYLE = `
:root{--bg:#f4f5f7;--fg:#1d2330;--muted:#5b6475;--card:#fff;--accent:#1f5fd1;--accent-fg:#fff;--err:#b3261e;--ok:#1e7d32;--border:#cfd5e0}
@media (prefers-color-scheme:dark){:root:not(.theme-light){--bg:#12151b;--fg:#e7eaf0;--muted:#a4adbd;--card:#1c212b;--accent:#7aa7ff;--accent-fg:#0b1020;--err:#ff8a80;--ok:#81c784;--border:#3a4252}}
.theme-dark,.theme-oled{--bg:#12151b;--fg:#e7eaf0;--muted:#a4adbd;--card:#1c212b;--accent:#7aa7ff;--accent-fg:#0b1020;--err:#ff8a80;--ok:#81c784;--border:#3a4252}
.theme-oled{--bg:#000;--card:#0b0b0b}
.theme-grey{--bg:#d9dbe0;--card:#eceef1}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;flex-direction:column;align-items:center;justify-content:center;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;padding:1rem}
.card{width:100%;max-width:26rem;background:var(--card);border:1px solid var(--border);border-radius:12px;padding:2rem}
h1{font-size:1.4rem;margin:0 0 1rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input[type=text],input[type=password],input[type=email]{width:100%;padding:.6rem .7rem;border:1px solid var(--border);border-radius:8px;background:var(--bg);color:var(--fg);font-size:1rem}
input:focus,button:focus,a:focus{outline:3px solid var(--accent);outline-offset:2px}
.check{display:flex;gap:.5rem;align-items:center;margin:.75rem 0}
.check label{display:inline;font-weight:400;margin:0}
button,.button{display:inline-block;margin-top:1rem;padding:.65rem 1.2rem;border:0;border-radius:8px;background:var(--accent);color:var(--accent-fg);font-size:1rem;font-weight:600;cursor:pointer;text-decoration:none}
button.secondary{background:transparent;color:var(--accent);border:1px solid var(--accent)}
.row{display:flex;gap:.75rem;flex-wrap:wrap}
.error{color:var(--err);font-weight:600}
.ok{color:var(--ok)}
.muted{color:var(--muted);font-size:.9rem}
code,.secret{font-family:ui-monospace,monospace;word-break:break-all}
.qr{background:#fff;padding:.5rem;border-radius:8px;display:inline-block}
.qr svg{width:14rem;height:14rem;display:block}
ul.scopes{padding-left:1.2rem}
footer{margin-top:1rem;color:var(--muted);font-size:.8rem}
table.keys{width:100%;border-collapse:collapse;margin:.5rem 0}table.keys td{border-top:1px solid var(--border);padding:.4rem .2rem;vertical-align:top}
[hidden]{display:none!important}
`

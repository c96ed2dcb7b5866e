/** Escapes text for HTML element content and quoted attributes. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** JSON for a `<script type="application/json">` block: `<` is escaped so the data cannot close the element. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export interface LayoutOptions {
  /** Latchkey's base path under PUBLIC_URL ('' at the root), for links and assets. */
  basePath: string;
  /** Scripts of `/assets/` to load after `page.js`, e.g. `popup-result.js`. */
  scripts?: string[];
  /** Lets page.js drop the query from the address bar once the page is shown. */
  cleanUrl?: boolean;
  /** Stylesheets of `/assets/` to load after `latchkey.css`, e.g. `admin.css`. */
  styles?: string[];
  /** A URL the page moves on to at once (`<meta http-equiv="refresh">`: no script needed). */
  refreshTo?: string;
}

/**
 * The page shell. Styles and scripts come from Latchkey's own `/assets/`, never from another
 * origin and never inline, so the pages work under a `script-src 'self'` CSP. The pages are
 * complete without JavaScript; page.js only adds niceties (local times, a clean address bar).
 */
export function layout(title: string, body: string, options: LayoutOptions): string {
  const asset = (name: string) => escapeHtml(`${options.basePath}/assets/${name}`);
  const scripts = ['page.js', ...(options.scripts ?? [])]
    .map((name) => `<script src="${asset(name)}" defer></script>`)
    .join('\n');
  const styles = ['latchkey.css', ...(options.styles ?? [])]
    .map((name) => `<link rel="stylesheet" href="${asset(name)}">`)
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
${options.refreshTo ? `<meta http-equiv="refresh" content="0; url=${escapeHtml(options.refreshTo)}">\n` : ''}<title>${escapeHtml(title)} · Latchkey</title>
<link rel="icon" href="${asset('favicon.svg')}" type="image/svg+xml">
${styles}
${scripts}
</head>
<body${options.cleanUrl ? ' data-clean-url="true"' : ''}>
<header class="site-header"><div class="wrap"><span class="mark" aria-hidden="true"></span><span>Latchkey</span></div></header>
<main class="wrap" id="main">
${body}
</main>
<footer class="site-footer"><div class="wrap">Latchkey keeps your credentials encrypted and never shows them to the application or to this page.</div></footer>
</body>
</html>`;
}

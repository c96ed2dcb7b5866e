/** Everything the consent page shows about an authorization request. */
export interface ConsentPageModel {
  requestId: string;
  clientId: string;
  scopes: string[];
  redirectUri: string;
}

/** Friendly descriptions of the scopes a VideoAsk-like provider grants. */
const SCOPE_DESCRIPTIONS: Readonly<Record<string, string>> = {
  openid: 'Confirm your identity',
  profile: 'See your name and profile',
  email: 'See your email address',
  offline_access: 'Stay connected when you are not using the app',
};

/** Content-Security-Policy for sandbox pages: no external resources, inline CSS only, no framing. */
export const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

const STYLE = `
  :root { color-scheme: light; font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; }
  * { box-sizing: border-box; }
  body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: #f4f1fb; color: #1d1733; }
  main { width: min(420px, calc(100vw - 32px)); background: #fff; border-radius: 16px; padding: 32px;
    box-shadow: 0 12px 40px rgba(45, 21, 110, 0.12); }
  .brand { display: flex; align-items: center; gap: 10px; font-weight: 700; color: #5b2bd9; margin-bottom: 20px; }
  .logo { width: 32px; height: 32px; border-radius: 8px; background: #5b2bd9; color: #fff;
    display: grid; place-items: center; font-size: 18px; }
  h1 { font-size: 20px; line-height: 1.35; margin: 0 0 12px; }
  p { margin: 0 0 16px; color: #4a4463; line-height: 1.5; }
  code { background: #f0ecfa; padding: 2px 6px; border-radius: 4px; font-size: 13px; word-break: break-all; }
  ul { list-style: none; padding: 0; margin: 0 0 24px; border: 1px solid #e6e1f3; border-radius: 10px; }
  li { padding: 10px 14px; border-top: 1px solid #e6e1f3; display: flex; flex-direction: column; gap: 2px; }
  li:first-child { border-top: 0; }
  li .scope { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; color: #7a7394; }
  .actions { display: flex; gap: 12px; }
  button { flex: 1; font: inherit; font-weight: 600; padding: 12px 16px; border-radius: 10px; cursor: pointer;
    border: 1px solid #5b2bd9; }
  button[value='approve'] { background: #5b2bd9; color: #fff; }
  button[value='deny'] { background: #fff; color: #5b2bd9; }
  button:focus-visible { outline: 3px solid #b9a4f5; outline-offset: 2px; }
  .fine { font-size: 12px; color: #7a7394; margin: 20px 0 0; }
`;

/** Escapes text for safe inclusion in HTML element content and attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

function renderDocument(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<div class="brand"><span class="logo" aria-hidden="true">&#9654;</span><span>Sandbox VideoAsk</span></div>
${body}
</main>
</body>
</html>
`;
}

function renderScopeItem(scope: string): string {
  const description = SCOPE_DESCRIPTIONS[scope] ?? 'Access to ' + scope.replace(/[_:.]/g, ' ');
  return `<li><span>${escapeHtml(description)}</span><span class="scope">${escapeHtml(scope)}</span></li>`;
}

/** Renders the consent page with Approve and Deny buttons posting to `/authorize/decision`. */
export function renderConsentPage(model: ConsentPageModel): string {
  const scopeItems = model.scopes.length
    ? model.scopes.map(renderScopeItem).join('\n')
    : '<li><span>Basic access to your account</span></li>';
  return renderDocument(
    'Authorize access - Sandbox VideoAsk',
    `<h1>Sandbox VideoAsk wants access to your account</h1>
<p>The application <code>${escapeHtml(model.clientId)}</code> is asking for permission to:</p>
<ul>
${scopeItems}
</ul>
<form method="post" action="/authorize/decision">
<input type="hidden" name="request_id" value="${escapeHtml(model.requestId)}">
<div class="actions">
<button name="decision" value="deny">Deny</button>
<button name="decision" value="approve">Approve</button>
</div>
</form>
<p class="fine">You will be sent back to <code>${escapeHtml(model.redirectUri)}</code>.
This is a sandbox provider for testing; no real account is involved.</p>`,
  );
}

/** Renders a plain error page, used when the client cannot be trusted with a redirect (RFC 6749 §4.1.2.1). */
export function renderErrorPage(title: string, message: string): string {
  return renderDocument(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>`);
}

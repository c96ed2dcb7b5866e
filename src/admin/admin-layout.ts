import { escapeHtml, layout } from '../public/html';
import { formatAbsoluteTime, formatRelativeTime } from '../public/format-time';

/**
 * The shell of the operator console's pages: the Connect page's layout and stylesheet, with
 * `admin.css` for the wider tables, a navigation bar and the sign-out form. Plain HTML forms
 * only: no inline script or style (the CSP forbids them), and every action works without
 * JavaScript and from the keyboard. Everything written into a page goes through escapeHtml.
 */

export type AdminSection = 'connections' | 'events' | 'deliveries' | 'providers';

export interface AdminFrame {
  /** Latchkey's base path under PUBLIC_URL ('' at the root). */
  basePath: string;
  /** The signed-in key's name and the session's CSRF token; absent on the sign-in pages. */
  session?: { keyName: string; csrf: string };
  section?: AdminSection;
  now: number;
}

const SECTIONS: Array<[AdminSection, string, string]> = [
  ['connections', 'Connections', ''],
  ['events', 'Events', '/events'],
  ['deliveries', 'Webhook deliveries', '/deliveries'],
  ['providers', 'Providers', '/providers'],
];

/** `/admin…` under the base path, escaped for an attribute. */
export function adminHref(frame: Pick<AdminFrame, 'basePath'>, path = ''): string {
  return escapeHtml(`${frame.basePath}/admin${path}`);
}

/** The path (under `/admin`) of one connection's page. */
export function connectionPath(provider: string, connectionId: string): string {
  return `/connections/${encodeURIComponent(provider)}/${encodeURIComponent(connectionId)}`;
}

/** `?name=value&…` of the values given (empty ones left out), or '' when none is. */
export function queryString(values: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) if (value) params.set(name, value);
  const query = params.toString();
  return query ? `?${query}` : '';
}

/** One `<option>` of a filter's `<select>`, selected when it is the filter's value ('' for none). */
export function selectOption(value: string, label: string, selected: string | undefined): string {
  return `<option value="${escapeHtml(value)}"${value === (selected ?? '') ? ' selected' : ''}>${escapeHtml(label)}</option>`;
}

/** The hidden CSRF field every POST form of a session carries. */
export function csrfField(frame: AdminFrame): string {
  return `<input type="hidden" name="csrf" value="${escapeHtml(frame.session?.csrf ?? '')}">`;
}

/** A form of one button that POSTs to `path` (an action), with the CSRF field. */
export function actionForm(
  frame: AdminFrame,
  path: string,
  label: string,
  options: { secondary?: boolean; extra?: string; id?: string } = {},
): string {
  return `<form method="post" action="${adminHref(frame, path)}" class="inline-form"${options.id ? ` id="${escapeHtml(options.id)}"` : ''}>
${csrfField(frame)}${options.extra ?? ''}
<button class="button${options.secondary ? ' secondary' : ''}" type="submit">${escapeHtml(label)}</button>
</form>`;
}

/** "in 5 minutes", "in 3 hours"… for a time ahead of `now` (an expiry, a next attempt). */
function formatAhead(ms: number, now: number): string {
  const minutes = Math.round((ms - now) / 60_000);
  if (minutes <= 1) return 'in a minute';
  if (minutes < 90) return `in ${minutes} minutes`;
  const hours = Math.round(minutes / 60);
  return hours < 36 ? `in ${hours} hours` : `in ${Math.round(hours / 24)} days`;
}

/** A time as "5 minutes ago" (or "in 5 minutes") with its UTC date under it (page.js shows it in local time). */
export function timeCell(ms: number | null, now: number, none = 'never'): string {
  if (ms === null) return `<span class="sub">${escapeHtml(none)}</span>`;
  const iso = new Date(ms).toISOString();
  const relative = ms - now > 45_000 ? formatAhead(ms, now) : formatRelativeTime(ms, now);
  return `<time datetime="${iso}">${escapeHtml(relative)}</time><span class="sub" data-local-time="${iso}">${escapeHtml(formatAbsoluteTime(ms))}</span>`;
}

export function statusBadge(status: string): string {
  return status === 'active'
    ? '<span class="badge ok">active</span>'
    : `<span class="badge warn">${escapeHtml(status)}</span>`;
}

export interface Notice {
  kind: 'ok' | 'warn' | 'error';
  text: string;
}

export function renderNotice(notice: Notice | undefined): string {
  if (!notice) return '';
  const role = notice.kind === 'error' ? 'alert' : 'status';
  return `<div class="notice ${notice.kind}" role="${role}" id="notice"><p>${escapeHtml(notice.text)}</p></div>`;
}

function navigation(frame: AdminFrame): string {
  if (!frame.session) return '';
  const links = SECTIONS.map(([section, label, path]) => {
    const current = section === frame.section ? ' aria-current="page"' : '';
    return `<li><a href="${adminHref(frame, path)}"${current}>${escapeHtml(label)}</a></li>`;
  }).join('');
  return `<nav class="admin-nav" aria-label="Operator console">
<ul>${links}</ul>
<form method="post" action="${adminHref(frame, '/sign-out')}" class="inline-form sign-out">
${csrfField(frame)}
<span class="sub">Signed in as <strong id="signed-in-key">${escapeHtml(frame.session.keyName)}</strong></span>
<button class="button secondary" type="submit">Sign out</button>
</form>
</nav>`;
}

/** A whole console page. */
export function adminPage(title: string, body: string, frame: AdminFrame): string {
  return layout(
    `${title} · Operator console`,
    `<div class="admin">
${navigation(frame)}
${body}
</div>`,
    { basePath: frame.basePath, styles: ['admin.css'] },
  );
}

/** Shown on every /admin route while ADMIN_API_KEYS is empty. */
export function renderConsoleOff(frame: AdminFrame): string {
  return adminPage(
    'Not enabled',
    `<div class="card">
<p class="eyebrow">Operator console</p>
<h1>The operator console is not enabled</h1>
<p>This Latchkey has no console key. To turn the console on, set <code>ADMIN_API_KEYS</code> to one or more long random keys (comma-separated, at least 16 characters each), for example in <code>.env</code>:</p>
<p class="code-line"><code>ADMIN_API_KEYS=$(openssl rand -hex 32)</code></p>
<p>then restart Latchkey, or send it <code>SIGHUP</code> when the key is in <code>.env</code>. Sign in here with that key.</p>
</div>`,
    frame,
  );
}

export interface SignInModel {
  /** The sign-in form's CSRF token (its cookie's value). */
  csrf: string;
  error?: string;
  notice?: Notice;
}

/** The sign-in form: the key is pasted into a password field and never written back. */
export function renderSignIn(frame: AdminFrame, model: SignInModel): string {
  const describedBy = model.error ? 'admin-key-error admin-key-hint' : 'admin-key-hint';
  const error = model.error ? `<p class="field-error" id="admin-key-error">${escapeHtml(model.error)}</p>` : '';
  return adminPage(
    'Sign in',
    `<h1>Operator console</h1>
<p class="lead">Connections, events, webhook deliveries and providers of this Latchkey.</p>
${renderNotice(model.notice)}
<div class="card narrow">
<form method="post" action="${adminHref(frame, '/sign-in')}" novalidate>
<input type="hidden" name="csrf" value="${escapeHtml(model.csrf)}">
<label for="admin-key">Console key</label>
<input id="admin-key" name="key" type="password" autocomplete="off" autocapitalize="off" spellcheck="false" required autofocus aria-describedby="${describedBy}"${model.error ? ' aria-invalid="true"' : ''}>
${error}
<p class="hint" id="admin-key-hint">One of the keys in <code>ADMIN_API_KEYS</code>. The session lasts 12 hours.</p>
<div class="actions"><button class="button" type="submit">Sign in</button></div>
</form>
</div>`,
    frame,
  );
}

/** A console error: what happened, the code (as in `Latchkey-Error`), and the way back. */
export function renderAdminError(frame: AdminFrame, code: string, message: string): string {
  return adminPage(
    'Error',
    `<div class="card">
<p class="eyebrow">Operator console</p>
<h1 id="error-title">That did not work</h1>
<p>${escapeHtml(message)}</p>
<p class="code-line">Error code: <code class="code" id="error-code">${escapeHtml(code)}</code></p>
<div class="actions"><a class="button" href="${adminHref(frame)}">Back to the console</a></div>
</div>`,
    frame,
  );
}

import { escapeHtml } from '../public/html';
import type { Provider } from '../providers/registry';
import type { ConnectionCount, ConnectionInfo, ConnectionStatus, LoggedEvent } from '../store';
import {
  actionForm,
  adminHref,
  adminPage,
  connectionPath,
  renderNotice,
  selectOption,
  statusBadge,
  timeCell,
  type AdminFrame,
  type Notice,
  queryString,
} from './admin-layout';
import { eventTable } from './ops-pages';

/** The console's connection pages: the list (search, filters, counts, pages) and one connection. */

export const STATUSES: ConnectionStatus[] = ['active', 'reauth_required'];

export interface ConnectionFilter {
  q?: string;
  provider?: string;
  status?: ConnectionStatus;
}

export interface ConnectionListModel {
  filter: ConnectionFilter;
  connections: ConnectionInfo[];
  /** The next page's cursor (null: this is the last page). */
  nextCursor: string | null;
  /** Whether this page came after a cursor (so "first page" is offered). */
  paged: boolean;
  counts: ConnectionCount[];
  providers: Provider[];
  notice?: Notice;
}

/** `?q=…&provider=…&status=…[&cursor=…]`, the filter's query (empty values left out). */
export function filterQuery(filter: ConnectionFilter, cursor?: string): string {
  return queryString({ q: filter.q, provider: filter.provider, status: filter.status, cursor });
}

function countSummary(frame: AdminFrame, counts: ConnectionCount[], filter: ConnectionFilter): string {
  const relevant = filter.provider ? counts.filter((c) => c.provider === filter.provider) : counts;
  const byStatus = (s: ConnectionStatus) => relevant.filter((c) => c.status === s).reduce((n, c) => n + c.count, 0);
  const total = STATUSES.reduce((n, s) => n + byStatus(s), 0);
  const items = STATUSES.map((s) => {
    const link = adminHref(frame, filterQuery({ ...filter, status: s }));
    return `<li><a href="${link}" data-status-count="${s}"><span class="count">${byStatus(s)}</span> ${escapeHtml(s)}</a></li>`;
  }).join('');
  const scope = filter.provider ? ` of ${escapeHtml(filter.provider)}` : '';
  return `<ul class="counts" aria-label="Connections${scope} by status">
<li><a href="${adminHref(frame, filterQuery({ ...filter, status: undefined }))}" data-status-count="all"><span class="count">${total}</span> in all</a></li>${items}
</ul>`;
}

function filterForm(frame: AdminFrame, model: ConnectionListModel): string {
  const { filter } = model;
  const providers = [selectOption('', 'Every provider', filter.provider)]
    .concat(model.providers.map((p) => selectOption(p.id, `${p.displayName} (${p.id})`, filter.provider)))
    .join('');
  const statuses = [selectOption('', 'Any status', filter.status)].concat(
    STATUSES.map((s) => selectOption(s, s, filter.status)),
  );
  return `<form method="get" action="${adminHref(frame)}" class="filters" role="search" aria-label="Find connections">
<div class="field grow"><label for="q">Search</label>
<input id="q" name="q" type="search" value="${escapeHtml(filter.q ?? '')}" maxlength="128" aria-describedby="q-hint" autocomplete="off">
<span class="hint" id="q-hint">Start of a connection id or account label</span></div>
<div class="field"><label for="provider">Provider</label><select id="provider" name="provider">${providers}</select></div>
<div class="field"><label for="status">Status</label><select id="status" name="status">${statuses.join('')}</select></div>
<div class="field"><button class="button" type="submit">Show</button></div>
</form>`;
}

function connectionRows(frame: AdminFrame, connections: ConnectionInfo[]): string {
  return connections
    .map((c) => {
      const href = adminHref(frame, connectionPath(c.provider, c.connectionId));
      const account = c.account?.label ?? c.account?.id;
      return `<tr>
<th scope="row"><a href="${href}" class="connection-link">${escapeHtml(c.connectionId)}</a></th>
<td>${escapeHtml(c.provider)}</td>
<td>${statusBadge(c.status)}</td>
<td class="account">${account ? escapeHtml(account) : '<span class="sub">unknown</span>'}</td>
<td>${timeCell(c.updatedAt, frame.now)}</td>
</tr>`;
    })
    .join('\n');
}

export function renderConnectionList(frame: AdminFrame, model: ConnectionListModel): string {
  const { filter } = model;
  const table = model.connections.length
    ? `<table class="data" aria-label="Connections">
<thead><tr><th scope="col">Connection</th><th scope="col">Provider</th><th scope="col">Status</th><th scope="col">Account</th><th scope="col">Updated</th></tr></thead>
<tbody>
${connectionRows(frame, model.connections)}
</tbody>
</table>`
    : '<p class="empty" id="no-connections">No connection matches.</p>';
  const pages = [
    model.paged ? `<a class="button secondary" href="${adminHref(frame, filterQuery(filter))}">First page</a>` : '',
    model.nextCursor
      ? `<a class="button secondary" rel="next" id="next-page" href="${adminHref(frame, filterQuery(filter, model.nextCursor))}">Next page</a>`
      : '',
  ].join('');
  return adminPage(
    'Connections',
    `<h1>Connections</h1>
${renderNotice(model.notice)}
${countSummary(frame, model.counts, filter)}
<section class="card wide" aria-labelledby="list-heading">
<h2 id="list-heading" class="visually-hidden">Connections found</h2>
${filterForm(frame, model)}
${table}
${pages ? `<nav class="pager" aria-label="Pages">${pages}</nav>` : ''}
</section>`,
    frame,
  );
}

export interface ConnectionDetailModel {
  connection: ConnectionInfo;
  provider: Provider;
  events: LoggedEvent[];
  /** The cursor of older events (null: these are all). */
  olderEvents: string | null;
  notice?: Notice;
}

function valueTable(label: string, values: Record<string, string | number | boolean>, id: string): string {
  const entries = Object.entries(values);
  if (!entries.length) return `<h3 id="${id}">${escapeHtml(label)}</h3><p class="empty">None.</p>`;
  const rows = entries
    .map(
      ([k, v]) =>
        `<tr><th scope="row">${escapeHtml(k)}</th><td class="account"><code>${escapeHtml(JSON.stringify(v))}</code></td></tr>`,
    )
    .join('');
  return `<h3 id="${id}">${escapeHtml(label)}</h3><table class="data" aria-labelledby="${id}"><tbody>${rows}</tbody></table>`;
}

export function renderConnectionDetail(frame: AdminFrame, model: ConnectionDetailModel): string {
  const { connection: c, provider } = model;
  const path = connectionPath(c.provider, c.connectionId);
  const canUse = provider.enabled;
  const refresh =
    canUse && c.authMode === 'oauth2'
      ? actionForm(frame, `${path}/refresh`, 'Refresh now', { id: 'refresh-form' })
      : '';
  const link = canUse
    ? actionForm(frame, `${path}/connect-link`, 'New connect link', { secondary: true, id: 'connect-link-form' })
    : '';
  const disconnect = `<form method="post" action="${adminHref(frame, `${path}/disconnect`)}" class="inline-form disconnect" id="disconnect-form">
<input type="hidden" name="csrf" value="${escapeHtml(frame.session?.csrf ?? '')}">
<input type="checkbox" id="confirm-disconnect" name="confirm" value="yes" required>
<label for="confirm-disconnect" class="inline-label">Revoke and delete this connection</label>
<button class="button danger" type="submit">Disconnect</button>
</form>`;
  const events = model.events.length
    ? eventTable(frame, model.events, { showConnection: false })
    : '<p class="empty">No event recorded for this connection.</p>';
  const older = model.olderEvents
    ? `<p><a href="${adminHref(frame, `/events?provider=${encodeURIComponent(c.provider)}&connection_id=${encodeURIComponent(c.connectionId)}&cursor=${encodeURIComponent(model.olderEvents)}`)}">Older events</a></p>`
    : '';
  const account = c.account
    ? `${escapeHtml(c.account.label ?? '')}${c.account.id ? ` <span class="sub">id ${escapeHtml(c.account.id)}</span>` : ''}`
    : '<span class="sub">unknown</span>';
  return adminPage(
    `${c.provider} ${c.connectionId}`,
    `<p class="eyebrow"><a href="${adminHref(frame, filterQuery({ provider: c.provider }))}">${escapeHtml(provider.displayName)}</a></p>
<h1 id="connection-title">${escapeHtml(c.connectionId)}</h1>
${renderNotice(model.notice)}
<section class="card wide" aria-labelledby="facts-heading">
<h2 id="facts-heading">Connection</h2>
<dl class="facts">
<dt>Status</dt><dd id="connection-status">${statusBadge(c.status)}</dd>
<dt>Provider</dt><dd>${escapeHtml(provider.displayName)} <span class="sub">${escapeHtml(c.provider)}, ${escapeHtml(c.authMode)}</span></dd>
<dt>Account</dt><dd class="account">${account}</dd>
<dt>Scopes</dt><dd class="account">${c.scopes.length ? escapeHtml(c.scopes.join(' ')) : '<span class="sub">none</span>'}</dd>
<dt>Created</dt><dd>${timeCell(c.createdAt, frame.now)}</dd>
<dt>Updated</dt><dd>${timeCell(c.updatedAt, frame.now)}</dd>
<dt>Last refreshed</dt><dd id="last-refreshed">${timeCell(c.lastRefreshedAt, frame.now)}</dd>
<dt>Access token expires</dt><dd>${timeCell(c.expiresAt, frame.now, c.authMode === 'api_key' ? 'does not expire' : 'unknown')}</dd>
</dl>
${valueTable('Config', c.config, 'config-heading')}
${valueTable('Metadata', c.metadata, 'metadata-heading')}
</section>
<section class="card wide" aria-labelledby="actions-heading">
<h2 id="actions-heading">Actions</h2>
<div class="actions">${refresh}${link}</div>
${disconnect}
</section>
<section class="card wide" aria-labelledby="timeline-heading">
<h2 id="timeline-heading">Timeline</h2>
${events}
${older}
</section>`,
    { ...frame, section: 'connections' },
  );
}

export interface ConnectLinkModel {
  provider: Provider;
  connectionId: string;
  url: string;
  expiresAt: number;
}

/**
 * The new connect link, shown once on the answer to the POST (never in a redirect, a log or
 * history): single-use, 15 minutes, for the person whose account it is.
 */
export function renderConnectLink(frame: AdminFrame, model: ConnectLinkModel): string {
  const back = adminHref(frame, connectionPath(model.provider.id, model.connectionId));
  return adminPage(
    'Connect link',
    `<h1>New connect link</h1>
<div class="card wide">
<p>Send this link to the person who owns the ${escapeHtml(model.provider.displayName)} account of <strong>${escapeHtml(model.connectionId)}</strong>. It connects (or reconnects) that connection once and expires ${timeCell(model.expiresAt, frame.now)}.</p>
<label for="connect-link">Connect link</label>
<input id="connect-link" type="text" readonly value="${escapeHtml(model.url)}">
<p class="hint">It is shown only here: it is not stored in the clear and not written to the logs.</p>
<div class="actions"><a class="button secondary" href="${back}">Back to the connection</a></div>
</div>`,
    { ...frame, section: 'connections' },
  );
}

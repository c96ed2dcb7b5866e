import { missingValuesOf, type MissingValue } from '../connect/missing-values';
import type { Provider } from '../providers/registry';
import type { ConnectionInfo } from '../store';
import { errorTextFor } from './error-text';
import { formatAbsoluteTime, formatRelativeTime } from './format-time';
import { escapeHtml, layout } from './html';

/** The outcome of the last flow in this browser. */
export interface FlowResult {
  provider: string;
  connectionId: string;
  status: 'connected' | 'denied' | 'error';
  code?: string;
  at: number;
}

/** A connection made in this browser, and when this browser made it. */
export interface ConnectionRow {
  connection: ConnectionInfo;
  connectedAt: number;
}

export interface ConnectPageModel {
  providers: Provider[];
  /** Connections made in this browser session, and no one else's. */
  connections: ConnectionRow[];
  /** Shown once, right after a flow. */
  result?: FlowResult;
  basePath: string;
  now: number;
  /** Without anonymous connect, a person needs a connect link from their application. */
  anonymousConnect: boolean;
}

function displayNameOf(providers: Provider[], id: string): string {
  return providers.find((p) => p.id === id)?.displayName ?? id;
}

function accountLabelOf(connection: ConnectionInfo | undefined): string | undefined {
  return connection?.account?.label ?? connection?.account?.id;
}

/** The values this connection's calls need and lack (none for a provider without templates). */
function missingOf(model: ConnectPageModel, connection: ConnectionInfo | undefined): MissingValue[] {
  const provider = connection && model.providers.find((p) => p.id === connection.provider);
  return provider ? missingValuesOf(provider, connection) : [];
}

/** What one missing value means for calls, in words: the 409 they answer, or the header they go without. `nameHtml` is escaped. */
function renderMissingValue(value: MissingValue, nameHtml: string): string {
  const how = value.key.startsWith('config.') ? 'was not given' : `could not be read from ${nameHtml}`;
  const effects: string[] = [];
  if (value.blocksCalls) {
    effects.push(
      `calls to ${nameHtml} answer <code>409 connection_incomplete</code> until it is set, since their address needs it`,
    );
  }
  if (value.headersLeftOut.length) {
    const headers = value.headersLeftOut.map((h) => `<code>${escapeHtml(h)}</code>`).join(', ');
    effects.push(
      `calls are sent without the ${headers} header${value.headersLeftOut.length > 1 ? 's' : ''}, so those that need it fail`,
    );
  }
  return `<li data-missing="${escapeHtml(value.key)}"><strong>${escapeHtml(value.words)}</strong> (<code>${escapeHtml(value.key)}</code>) ${how}: ${effects.join('; ')}.</li>`;
}

/** Shown under "… is connected" when a post-connect call (or the token response) left a value missing. */
function renderMissingNotice(missing: MissingValue[], nameHtml: string): string {
  if (!missing.length) return '';
  return `<div class="notice warn" role="status" id="missing-values">
<h2>Something is missing</h2>
<ul>${missing.map((v) => renderMissingValue(v, nameHtml)).join('')}</ul>
<p>Connect again to let Latchkey try once more. Your application can also set the value itself.</p>
</div>`;
}

function renderCode(code: string): string {
  return `<p class="code-line">Error code: <code>${escapeHtml(code)}</code></p>`;
}

function renderResultNotice(model: ConnectPageModel, result: FlowResult): string {
  const name = escapeHtml(displayNameOf(model.providers, result.provider));
  if (result.status === 'connected') {
    const row = model.connections.find(
      (r) => r.connection.provider === result.provider && r.connection.connectionId === result.connectionId,
    );
    const label = accountLabelOf(row?.connection);
    const who = label ? `<p>Signed in as <strong>${escapeHtml(label)}</strong>.</p>` : '';
    const missing = renderMissingNotice(missingOf(model, row?.connection), name);
    return `<div class="notice ok" role="status" id="result">
<h2>${name} is connected</h2>
${who}<p>Your application can now work with ${name} for you. You can close this page or connect another service.</p>
</div>${missing ? `\n${missing}` : ''}`;
  }
  if (result.status === 'denied') {
    const text = errorTextFor('access_denied');
    return `<div class="notice warn" role="status" id="result">
<h2>You declined the connection to ${name}</h2>
<p>${escapeHtml(text.explanation)} ${escapeHtml(text.action)}</p>
${renderCode('access_denied')}
</div>`;
  }
  const code = result.code ?? 'provider_error';
  const text = errorTextFor(code);
  return `<div class="notice error" role="alert" id="result">
<h2>${name} was not connected</h2>
<p>${escapeHtml(text.title)}. ${escapeHtml(text.explanation)} ${escapeHtml(text.action)}</p>
${renderCode(code)}
</div>`;
}

function renderProvider(provider: Provider, model: ConnectPageModel, primary: boolean): string {
  const name = escapeHtml(provider.displayName);
  const how =
    provider.authMode === 'api_key' ? `Paste an API key from your ${name} account` : `Sign in on ${name}'s own page`;
  // Without anonymous connect a button here could only fail: a flow needs the application's link.
  const button = model.anonymousConnect
    ? `\n<a class="button${primary ? '' : ' secondary'}" href="${escapeHtml(`${model.basePath}/auth/${provider.id}`)}" data-provider="${escapeHtml(provider.id)}">Connect ${name}</a>`
    : '';
  return `<li class="provider" data-provider="${escapeHtml(provider.id)}">
<span class="avatar" aria-hidden="true">${escapeHtml(provider.displayName.charAt(0).toUpperCase())}</span>
<span class="provider-text"><span class="provider-name">${name}</span><span class="provider-how">${how}</span></span>${button}
</li>`;
}

function renderProviders(model: ConnectPageModel): string {
  // In catalog order: the built-in entries (VideoAsk first), then PROVIDERS_FILE additions.
  const items = model.providers.map((p, i) => renderProvider(p, model, i === 0)).join('\n');
  const note = model.anonymousConnect
    ? ''
    : '<p class="hint" id="connect-from-app">Connections are started from your application: use its Connect button or link, which tells Latchkey which account to connect. This page shows what this browser has connected.</p>';
  return `<section class="card" aria-labelledby="services-heading">
<h2 id="services-heading">${model.anonymousConnect ? 'Services' : 'Services you can connect from your application'}</h2>
${items ? `<ul class="providers">${items}</ul>` : '<p class="empty">No service is enabled on this Latchkey yet.</p>'}
${note}
</section>`;
}

function renderStatus(connection: ConnectionInfo, model: ConnectPageModel): string {
  if (connection.status === 'active') {
    const missing = missingOf(model, connection)
      .map((v) => `<span class="sub missing">${escapeHtml(v.words)} missing</span>`)
      .join('');
    return `<span class="badge ok">Connected</span>${missing}`;
  }
  const again = model.anonymousConnect
    ? `<a class="sub" href="${escapeHtml(`${model.basePath}/auth/${connection.provider}?connection_id=${encodeURIComponent(connection.connectionId)}`)}">Connect again</a>`
    : '<span class="sub">Connect again from your application</span>';
  return `<span class="badge warn">Needs reconnecting</span>${again}`;
}

function renderWhen(ms: number, now: number): string {
  const iso = new Date(ms).toISOString();
  return `<time datetime="${iso}">${escapeHtml(formatRelativeTime(ms, now))}</time><span class="sub" data-local-time="${iso}">${escapeHtml(formatAbsoluteTime(ms))}</span>`;
}

function renderConnections(model: ConnectPageModel): string {
  if (!model.connections.length) {
    return `<section class="card" aria-labelledby="connections-heading">
<h2 id="connections-heading">Connected in this browser</h2>
<p class="empty">Nothing is connected from this browser yet.</p>
</section>`;
  }
  const rows = model.connections
    .map(({ connection: c, connectedAt }) => {
      const label = accountLabelOf(c) ?? (c.authMode === 'api_key' ? 'API key' : 'Account not named by the service');
      const id =
        c.connectionId === 'default' ? '' : `<span class="sub">Connection ${escapeHtml(c.connectionId)}</span>`;
      const account = `${escapeHtml(label)}${id}`;
      return `<tr data-provider="${escapeHtml(c.provider)}" data-connection-id="${escapeHtml(c.connectionId)}">
<th scope="row">${escapeHtml(displayNameOf(model.providers, c.provider))}</th>
<td class="account">${account}</td>
<td>${renderStatus(c, model)}</td>
<td>${renderWhen(connectedAt, model.now)}</td>
</tr>`;
    })
    .join('\n');
  return `<section class="card" aria-labelledby="connections-heading">
<h2 id="connections-heading">Connected in this browser</h2>
<table aria-labelledby="connections-heading">
<thead><tr><th scope="col">Service</th><th scope="col">Account</th><th scope="col">Status</th><th scope="col">Connected</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
</section>`;
}

/**
 * The Connect page (`GET /`): a button per enabled provider, VideoAsk first (only with anonymous
 * connect: otherwise the services are listed without buttons, since a flow needs the host
 * application's link); the result of the last flow; and the connections this browser made —
 * which account, status and when. Plain links and server-rendered HTML, so the redirect flow
 * works with JavaScript off.
 */
export function renderConnectPage(model: ConnectPageModel): string {
  return layout(
    'Connect your accounts',
    `<h1>Connect your accounts</h1>
<p class="lead">Connect a service so your application can work with it for you. You sign in on the service's own page: Latchkey never sees your password.</p>
${model.result ? renderResultNotice(model, model.result) : ''}
${renderProviders(model)}
${renderConnections(model)}`,
    { basePath: model.basePath, cleanUrl: true },
  );
}

import type { RetryingDelivery } from '../client/webhook-delivery';
import { escapeHtml } from '../public/html';
import { providerEnvPrefix, type Provider } from '../providers/registry';
import type { ConnectionCount, DeadDelivery, LoggedEvent } from '../store';
import { EVENT_TYPES } from '../wire/api-schemas';
import {
  actionForm,
  adminHref,
  adminPage,
  connectionPath,
  renderNotice,
  selectOption,
  timeCell,
  type AdminFrame,
  type Notice,
  queryString,
} from './admin-layout';

/** The console's pages about the log and the set-up: the event feed, webhook deliveries, providers. */

const connectionHref = (frame: AdminFrame, provider: string, connectionId: string) =>
  adminHref(frame, connectionPath(provider, connectionId));

/** An event's detail (codes and counts, never a secret) as `key=value` pairs. */
function detailText(event: LoggedEvent): string {
  const pairs = Object.entries(event.detail).map(([k, v]) => `${k}=${String(v)}`);
  return pairs.length ? `<code>${escapeHtml(pairs.join(' '))}</code>` : '<span class="sub">—</span>';
}

/** Events, newest first; with `showConnection`, each links to its connection. */
export function eventTable(frame: AdminFrame, events: LoggedEvent[], options: { showConnection: boolean }): string {
  const rows = events
    .map((e) => {
      const connection = options.showConnection
        ? `<td><a href="${connectionHref(frame, e.provider, e.connectionId)}">${escapeHtml(e.connectionId)}</a><span class="sub">${escapeHtml(e.provider)}</span></td>`
        : '';
      return `<tr data-event-id="${escapeHtml(e.id)}">
<td>${timeCell(e.at, frame.now)}</td>
<th scope="row">${escapeHtml(e.type.replace(/^connection\./, ''))}</th>
${connection}<td class="account">${detailText(e)}</td>
</tr>`;
    })
    .join('\n');
  const head = options.showConnection ? '<th scope="col">Connection</th>' : '';
  return `<table class="data timeline" aria-label="Events">
<thead><tr><th scope="col">When</th><th scope="col">Event</th>${head}<th scope="col">Detail</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`;
}

export interface EventFilter {
  provider?: string;
  connectionId?: string;
  type?: string;
}

export interface EventFeedModel {
  filter: EventFilter;
  events: LoggedEvent[];
  nextCursor: string | null;
  paged: boolean;
  providers: Provider[];
}

function eventQuery(filter: EventFilter, cursor?: string): string {
  return queryString({ provider: filter.provider, connection_id: filter.connectionId, type: filter.type, cursor });
}

export function renderEventFeed(frame: AdminFrame, model: EventFeedModel): string {
  const { filter } = model;
  const providers = [selectOption('', 'Every provider', filter.provider)]
    .concat(model.providers.map((p) => selectOption(p.id, p.displayName, filter.provider)))
    .join('');
  const types = [selectOption('', 'Every type', filter.type)]
    .concat(EVENT_TYPES.map((t) => selectOption(t, t.replace(/^connection\./, ''), filter.type)))
    .join('');
  const pages = [
    model.paged
      ? `<a class="button secondary" href="${adminHref(frame, `/events${eventQuery(filter)}`)}">Newest</a>`
      : '',
    model.nextCursor
      ? `<a class="button secondary" rel="next" id="older-events" href="${adminHref(frame, `/events${eventQuery(filter, model.nextCursor)}`)}">Older</a>`
      : '',
  ].join('');
  return adminPage(
    'Events',
    `<h1>Events</h1>
<section class="card wide" aria-labelledby="feed-heading">
<h2 id="feed-heading" class="visually-hidden">Event feed</h2>
<form method="get" action="${adminHref(frame, '/events')}" class="filters" aria-label="Filter events">
<div class="field"><label for="event-provider">Provider</label><select id="event-provider" name="provider">${providers}</select></div>
<div class="field grow"><label for="event-connection">Connection id</label><input id="event-connection" name="connection_id" type="text" maxlength="128" value="${escapeHtml(filter.connectionId ?? '')}" autocomplete="off"></div>
<div class="field"><label for="event-type">Type</label><select id="event-type" name="type">${types}</select></div>
<div class="field"><button class="button" type="submit">Show</button></div>
</form>
${model.events.length ? eventTable(frame, model.events, { showConnection: true }) : '<p class="empty">No event matches.</p>'}
${pages ? `<nav class="pager" aria-label="Pages">${pages}</nav>` : ''}
</section>`,
    { ...frame, section: 'events' },
  );
}

export interface DeliveriesModel {
  /** WEBHOOK_URL's origin, or null when webhooks are off. */
  receiver: string | null;
  /** Pending in the group plus not yet read: every instance's. */
  backlog: number;
  retrying: RetryingDelivery[];
  dead: DeadDelivery[];
  notice?: Notice;
}

export function renderDeliveries(frame: AdminFrame, model: DeliveriesModel): string {
  const receiver = model.receiver
    ? `<p>Events are delivered to <code>${escapeHtml(model.receiver)}</code> (the path of <code>WEBHOOK_URL</code> is not shown).</p>`
    : '<p>Webhooks are off: set <code>WEBHOOK_URL</code> and <code>WEBHOOK_SECRET</code> to deliver events. Dead deliveries recorded before stay retryable.</p>';
  const retrying = model.retrying.length
    ? `<table class="data" aria-label="Failed deliveries being retried">
<thead><tr><th scope="col">Event</th><th scope="col">Connection</th><th scope="col">Attempts</th><th scope="col">Last failure</th><th scope="col">Next attempt</th></tr></thead>
<tbody>${model.retrying
        .map(
          (
            r,
          ) => `<tr><th scope="row">${escapeHtml(r.event.type.replace(/^connection\./, ''))}<span class="sub">${escapeHtml(r.event.id)}</span></th>
<td><a href="${connectionHref(frame, r.event.provider, r.event.connectionId)}">${escapeHtml(r.event.connectionId)}</a><span class="sub">${escapeHtml(r.event.provider)}</span></td>
<td>${r.attempts}</td><td>${escapeHtml(r.lastFailure)}</td><td>${timeCell(r.nextAttemptAt, frame.now)}</td></tr>`,
        )
        .join('\n')}</tbody></table>`
    : '<p class="empty">No delivery is failing on this instance.</p>';
  const dead = model.dead.length
    ? `<table class="data" aria-label="Dead deliveries">
<thead><tr><th scope="col">Event</th><th scope="col">Connection</th><th scope="col">Attempts</th><th scope="col">Last failure</th><th scope="col">Dead since</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
<tbody>${model.dead
        .map(
          (
            d,
          ) => `<tr data-event-id="${escapeHtml(d.event.id)}"><th scope="row">${escapeHtml(d.event.type.replace(/^connection\./, ''))}<span class="sub">${escapeHtml(d.event.id)}</span></th>
<td><a href="${connectionHref(frame, d.event.provider, d.event.connectionId)}">${escapeHtml(d.event.connectionId)}</a><span class="sub">${escapeHtml(d.event.provider)}</span></td>
<td>${d.attempts}</td><td>${escapeHtml(d.lastError)}</td><td>${timeCell(d.deadAt, frame.now)}</td>
<td>${actionForm(frame, `/deliveries/${encodeURIComponent(d.event.id)}/retry`, 'Retry', { secondary: true })}</td></tr>`,
        )
        .join('\n')}</tbody></table>`
    : '<p class="empty" id="no-dead">No dead delivery.</p>';
  return adminPage(
    'Webhook deliveries',
    `<h1>Webhook deliveries</h1>
${renderNotice(model.notice)}
<section class="card wide" aria-labelledby="pending-heading">
<h2 id="pending-heading">Pending</h2>
${receiver}
<p><span class="count" id="backlog">${model.backlog}</span> waiting to be delivered, on every instance.</p>
</section>
<section class="card wide" aria-labelledby="failed-heading">
<h2 id="failed-heading">Failed, being retried</h2>
<p class="hint">On this instance, with backoff until <code>WEBHOOK_MAX_AGE_HOURS</code>; other instances retry their own.</p>
${retrying}
</section>
<section class="card wide" aria-labelledby="dead-heading">
<h2 id="dead-heading">Dead</h2>
<p class="hint">Retried for <code>WEBHOOK_MAX_AGE_HOURS</code> without a 2xx. Retry puts the event back to be delivered with the same <code>webhook-id</code>.</p>
${dead}
</section>`,
    { ...frame, section: 'deliveries' },
  );
}

/** The variables a provider still needs before it can be used, and why it is off. */
export function missingVariables(provider: Provider): string[] {
  const prefix = providerEnvPrefix(provider.id);
  const missing: string[] = [];
  if (provider.authMode === 'oauth2') {
    if (!provider.clientId) missing.push(`${prefix}_CLIENT_ID`);
    if (!provider.clientSecret) missing.push(`${prefix}_CLIENT_SECRET`);
  }
  return missing;
}

export function renderProviders(frame: AdminFrame, providers: Provider[], counts: ConnectionCount[]): string {
  const rows = providers
    .map((p) => {
      const missing = missingVariables(p);
      const state = p.switchedOff
        ? `<span class="badge warn">switched off</span><span class="sub">${escapeHtml(providerEnvPrefix(p.id))}_ENABLED=false or <code>enabled: false</code></span>`
        : p.enabled
          ? '<span class="badge ok">enabled</span>'
          : '<span class="badge warn">not configured</span>';
      const connections = counts.filter((c) => c.provider === p.id).reduce((n, c) => n + c.count, 0);
      return `<tr data-provider="${escapeHtml(p.id)}">
<th scope="row">${escapeHtml(p.displayName)}<span class="sub">${escapeHtml(p.id)}, ${escapeHtml(p.authMode)}</span></th>
<td>${state}</td>
<td>${p.verified ? 'yes' : '<span class="badge warn">unverified</span>'}</td>
<td class="account">${missing.length ? missing.map((m) => `<code>${escapeHtml(m)}</code>`).join(' ') : '<span class="sub">nothing</span>'}</td>
<td><a href="${adminHref(frame, `?provider=${encodeURIComponent(p.id)}`)}">${connections}</a></td>
</tr>`;
    })
    .join('\n');
  return adminPage(
    'Providers',
    `<h1>Providers</h1>
<section class="card wide" aria-labelledby="providers-heading">
<h2 id="providers-heading" class="visually-hidden">Every provider</h2>
<table class="data" aria-label="Providers">
<thead><tr><th scope="col">Provider</th><th scope="col">State</th><th scope="col">Verified</th><th scope="col">Missing variables</th><th scope="col">Connections</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
<p class="hint">Unverified entries are built from best-known facts: check their endpoints (or override them in <code>PROVIDERS_FILE</code>).</p>
</section>`,
    { ...frame, section: 'providers' },
  );
}

import type { Provider } from '../providers/registry';
import type { Connection } from '../store';
import { escapeHtml, layout } from './html';

export interface FlowResult {
  provider: string;
  connectionId: string;
  status: 'connected' | 'denied' | 'error';
  code?: string;
  at: number;
}

export interface ConnectPageModel {
  providers: Provider[];
  /** Connections made in this browser (never anyone else's). */
  connections: Connection[];
  result?: FlowResult;
  basePath: string;
}

const ERROR_TEXT: Record<string, string> = {
  invalid_state: 'This sign-in link is no longer valid: it expired, was already used, or was opened in another browser. Please start again.',
  invalid_request: 'The request was not valid. Please start again from the application.',
  unauthorized: 'This connect link has expired or was already used. Ask the application for a new one.',
  provider_error: 'The provider did not complete the connection. Please try again in a moment.',
  store_unavailable: 'Latchkey cannot reach its storage right now. Please try again in a moment.',
  rate_limited: 'Too many attempts. Please wait a moment and try again.',
};

/** Plain-language text for an error code, with the code itself always shown. */
export function describeError(code: string, fallback?: string): string {
  return ERROR_TEXT[code] ?? fallback ?? 'Something went wrong. Please try again.';
}

function resultNotice(result: FlowResult, providers: Provider[]): string {
  const name = escapeHtml(providers.find((p) => p.id === result.provider)?.displayName ?? result.provider);
  if (result.status === 'connected') {
    return `<div class="notice ok" role="status"><strong>${name} is connected.</strong> You can close this page or connect another account.</div>`;
  }
  if (result.status === 'denied') {
    return `<div class="notice warn" role="status"><strong>You declined the connection to ${name}.</strong> Nothing was stored. You can try again whenever you like.</div>`;
  }
  const code = result.code ?? 'provider_error';
  return `<div class="notice error" role="alert"><strong>${name} was not connected.</strong> ${escapeHtml(describeError(code))} <span class="code">(${escapeHtml(code)})</span></div>`;
}

export function renderConnectPage(model: ConnectPageModel): string {
  const ordered = [...model.providers].sort((a, b) => (a.id === 'videoask' ? -1 : b.id === 'videoask' ? 1 : a.displayName.localeCompare(b.displayName)));
  const buttons = ordered
    .map(
      (p) =>
        `<li><a class="button" href="${escapeHtml(`${model.basePath}/auth/${p.id}`)}" data-provider="${escapeHtml(p.id)}">Connect ${escapeHtml(p.displayName)}</a></li>`,
    )
    .join('\n');
  const rows = model.connections
    .map((c) => {
      const provider = model.providers.find((p) => p.id === c.provider);
      const account = c.account?.label ?? c.account?.id ?? c.connectionId;
      return `<tr data-provider="${escapeHtml(c.provider)}" data-connection-id="${escapeHtml(c.connectionId)}">
<td>${escapeHtml(provider?.displayName ?? c.provider)}</td><td>${escapeHtml(account)}</td>
<td class="status-${escapeHtml(c.status)}">${c.status === 'active' ? 'Connected' : 'Needs reconnecting'}</td>
<td><time datetime="${new Date(c.updatedAt).toISOString()}">${escapeHtml(new Date(c.updatedAt).toUTCString())}</time></td></tr>`;
    })
    .join('\n');
  const table = model.connections.length
    ? `<h2>Connected in this browser</h2><table><thead><tr><th scope="col">Service</th><th scope="col">Account</th><th scope="col">Status</th><th scope="col">Since</th></tr></thead><tbody>${rows}</tbody></table>`
    : '';
  return layout(
    'Connect your accounts',
    `<div class="card">
<h1>Connect your accounts</h1>
<p class="lead">Choose a service to connect. You will sign in on the service's own page; Latchkey never sees your password.</p>
${model.result ? resultNotice(model.result, model.providers) : ''}
<ul class="providers">${buttons || '<li>No provider is enabled yet.</li>'}</ul>
${table}
</div>`,
  );
}

export function renderErrorPage(code: string, message: string, basePath: string): string {
  return layout(
    'Connection problem',
    `<div class="card">
<h1>We couldn't connect your account</h1>
<div class="notice error" role="alert"><p>${escapeHtml(message)}</p><p>Error code: <span class="code" id="error-code">${escapeHtml(code)}</span></p></div>
<a class="button secondary" href="${escapeHtml(basePath)}/">Back to the Connect page</a>
</div>`,
  );
}

export interface ApiKeyFormModel {
  provider: Provider;
  action: string;
  csrf: string;
  error?: string;
}

/** The key form of an `api_key` provider. The key is never echoed back into the page. */
export function renderApiKeyForm(model: ApiKeyFormModel): string {
  const name = escapeHtml(model.provider.displayName);
  const invalid = model.error ? ' aria-invalid="true" aria-describedby="api-key-error"' : ' aria-describedby="api-key-hint"';
  return layout(
    `Connect ${model.provider.displayName}`,
    `<div class="card">
<h1>Connect ${name}</h1>
<p class="lead">${name} connects with an API key. Paste the key from your ${name} account settings.</p>
<form method="post" action="${escapeHtml(model.action)}" novalidate>
<input type="hidden" name="csrf" value="${escapeHtml(model.csrf)}">
<label for="api-key">${name} API key</label>
<input id="api-key" name="api_key" type="password" autocomplete="off" spellcheck="false" required${invalid}>
${model.error ? `<p class="field-error" id="api-key-error" role="alert">${escapeHtml(model.error)}</p>` : `<p class="hint" id="api-key-hint">The key is stored encrypted and is never shown again.</p>`}
<p><button class="button" type="submit">Connect ${name}</button></p>
</form>
</div>`,
  );
}

export interface PopupResultModel {
  message: { type: 'latchkey:result'; provider: string; connectionId: string; status: string; code?: string };
  targetOrigin: string;
  nonce: string;
}

/**
 * The last page of a popup flow: posts the result to the opener, for its exact origin only
 * (never `*`), then closes. Without an opener it shows the result and a link back.
 */
export function renderPopupResult(model: PopupResultModel): string {
  const data = JSON.stringify({ message: model.message, targetOrigin: model.targetOrigin }).replace(/</g, '\\u003c');
  const text =
    model.message.status === 'connected'
      ? 'Your account is connected. This window will close.'
      : model.message.status === 'denied'
        ? 'You declined the connection. This window will close.'
        : `The connection failed (${escapeHtml(model.message.code ?? 'provider_error')}). This window will close.`;
  return layout(
    'Connection finished',
    `<div class="card"><h1>Connection finished</h1><p role="status">${text}</p></div>
<script type="application/json" id="latchkey-result">${data}</script>`,
    {
      script: `(function(){var d=JSON.parse(document.getElementById('latchkey-result').textContent);
if(window.opener&&!window.opener.closed){window.opener.postMessage(d.message,d.targetOrigin);setTimeout(function(){window.close();},50);}})();`,
    },
  );
}

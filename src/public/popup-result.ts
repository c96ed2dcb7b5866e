import { errorTextFor } from './error-text';
import { escapeHtml, jsonForScript, layout } from './html';

/** What the popup posts to its opener: `{ type: 'latchkey:result', provider, connectionId, status, code }`. */
export interface PopupMessage {
  type: 'latchkey:result';
  provider: string;
  connectionId: string;
  status: 'connected' | 'denied' | 'error';
  code?: string;
}

export interface PopupResultModel {
  message: PopupMessage;
  /** The opener's exact origin, checked against ALLOWED_RETURN_ORIGINS. Never `*`. */
  targetOrigin: string;
  providerName?: string;
  basePath?: string;
}

function describeOutcome(message: PopupMessage, name: string): { title: string; text: string } {
  if (message.status === 'connected') return { title: `${name} is connected`, text: 'Your application has been told.' };
  if (message.status === 'denied') {
    return { title: `You declined the connection to ${name}`, text: errorTextFor('access_denied').explanation };
  }
  const code = message.code ?? 'provider_error';
  return { title: `${name} was not connected`, text: `${errorTextFor(code).title} (error code ${code}).` };
}

/**
 * The last page of a popup flow (`/callback/done`): popup-result.js posts the result to the
 * opener, for its exact origin only (never `*`), and closes the window. The result travels as
 * inert JSON, not as inline script, so the page works under a `script-src 'self'` CSP.
 */
export function renderPopupResult(model: PopupResultModel): string {
  const name = model.providerName ?? model.message.provider;
  const { title, text } = describeOutcome(model.message, name);
  const basePath = model.basePath ?? '';
  return layout(
    title,
    `<div class="card">
<h1>${escapeHtml(title)}</h1>
<p role="status">${escapeHtml(text)} This window closes by itself.</p>
<p id="no-opener" hidden>The window that started this connection is gone. <a href="${escapeHtml(basePath)}/">Go to the Connect page</a>.</p>
</div>
<script type="application/json" id="latchkey-result">${jsonForScript({ message: model.message, targetOrigin: model.targetOrigin })}</script>`,
    { basePath, scripts: ['popup-result.js'] },
  );
}

import { errorTextFor } from './error-text';
import { escapeHtml, jsonForScript, layout } from './html';
import type { PopupResultModel } from './popup-result';

export interface ErrorPageOptions {
  /**
   * When the page is shown in connect.js's popup and the opener's origin is known and allowed,
   * the error is also posted to the opener (so `Latchkey.connect` rejects with its code).
   */
  popup?: PopupResultModel;
  /** Which case of the code this is, when it covers several (see errorTextFor). */
  reason?: string;
}

/**
 * The HTML error page of the browser routes: what happened in plain language, what to do, and
 * the error code (CONTRACT.md "Errors": the same code as `Latchkey-Error`). `message` is
 * Latchkey's own text, escaped; a provider's `error_description` never reaches it (RFC 6749 §10.14).
 */
export function renderErrorPage(
  code: string,
  message: string,
  basePath: string,
  options: ErrorPageOptions = {},
): string {
  const text = errorTextFor(code, options.reason);
  // A reason's own text already says what the message would (an expired link, a used one).
  const detail =
    options.reason === undefined && message && message !== text.explanation && !text.explanation.includes(message)
      ? `<p class="detail">Details: ${escapeHtml(message)}</p>`
      : '';
  const popup = options.popup
    ? `<script type="application/json" id="latchkey-result">${jsonForScript({ message: options.popup.message, targetOrigin: options.popup.targetOrigin })}</script>`
    : '';
  return layout(
    text.title,
    `<div class="card">
<p class="eyebrow">Connection problem</p>
<h1 id="error-title">${escapeHtml(text.title)}</h1>
<p>${escapeHtml(text.explanation)}</p>
<p><strong>What you can do:</strong> ${escapeHtml(text.action)}</p>
${detail}
<p class="code-line">Error code: <code class="code" id="error-code">${escapeHtml(code)}</code></p>
<div class="actions">
<a class="button" href="${escapeHtml(basePath)}/" data-hide-in-popup>Go to the Connect page</a>
<button class="button" type="button" id="close-window" hidden>Close this window</button>
</div>
</div>
${popup}`,
    { basePath, cleanUrl: true, scripts: options.popup ? ['popup-result.js'] : [] },
  );
}

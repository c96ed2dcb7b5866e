import type { Provider } from '../providers/registry';
import { escapeHtml, layout } from './html';

export interface ApiKeyFormModel {
  provider: Provider;
  action: string;
  csrf: string;
  basePath: string;
  /** A validation message for the last submission. */
  error?: string;
}

/**
 * The key form of an `api_key` provider: one labelled field, a CSRF token, and a validation
 * message tied to the field. The key is never echoed back into the page: after a bad submission
 * the field is empty again.
 */
export function renderApiKeyForm(model: ApiKeyFormModel): string {
  const name = escapeHtml(model.provider.displayName);
  const describedBy = model.error ? 'api-key-error api-key-hint' : 'api-key-hint';
  const error = model.error ? `<p class="field-error" id="api-key-error">${escapeHtml(model.error)}</p>` : '';
  return layout(
    `Connect ${model.provider.displayName}`,
    `<h1>Connect ${name}</h1>
<p class="lead">${name} connects with an API key instead of a sign-in page. Create or copy one in your ${name} account settings, then paste it here.</p>
<div class="card">
<form method="post" action="${escapeHtml(model.action)}" novalidate>
<input type="hidden" name="csrf" value="${escapeHtml(model.csrf)}">
<label for="api-key">${name} API key</label>
<input id="api-key" name="api_key" type="password" autocomplete="off" autocapitalize="off" spellcheck="false" required aria-describedby="${describedBy}"${model.error ? ' aria-invalid="true" autofocus' : ''}>
${error}
<p class="hint" id="api-key-hint">Latchkey stores the key encrypted and never shows it again, not even to your application.</p>
<div class="actions">
<button class="button" type="submit">Connect ${name}</button>
<button class="button secondary" type="button" id="close-window" hidden>Cancel and close</button>
</div>
</form>
</div>`,
    { basePath: model.basePath },
  );
}

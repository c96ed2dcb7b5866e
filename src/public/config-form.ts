import type { Provider } from '../providers/registry';
import { escapeHtml, layout } from './html';

export interface ConfigFormField {
  name: string;
  label: string;
  /** The `connectionConfig` pattern, also given to the browser (the server checks it again). */
  pattern: string;
  /** What the person typed last time, shown again after a refusal (config is not secret). */
  value?: string;
  error?: string;
}

export interface ConfigFormModel {
  provider: Provider;
  action: string;
  csrf: string;
  basePath: string;
  fields: ConfigFormField[];
}

/**
 * The form that asks for the `connectionConfig` values a connect link did not give (a
 * subdomain, a region): one labelled field each, a CSRF token, a message tied to each refused
 * field. Plain HTML: works without JavaScript and inside the connect.js popup.
 */
export function renderConfigForm(model: ConfigFormModel): string {
  const name = escapeHtml(model.provider.displayName);
  const fields = model.fields
    .map((field) => {
      const id = `config-${escapeHtml(field.name)}`;
      const error = field.error ? `<p class="field-error" id="${id}-error">${escapeHtml(field.error)}</p>` : '';
      return `<label for="${id}">${escapeHtml(field.label)}</label>
<input id="${id}" name="${escapeHtml(field.name)}" type="text" autocomplete="off" autocapitalize="off" spellcheck="false" required pattern="${escapeHtml(field.pattern)}" value="${escapeHtml(field.value ?? '')}"${field.error ? ` aria-invalid="true" aria-describedby="${id}-error"` : ''}>
${error}`;
    })
    .join('\n');
  return layout(
    `Connect ${model.provider.displayName}`,
    `<h1>Connect ${name}</h1>
<p class="lead">${name} needs a few details about your account before you sign in.</p>
<div class="card">
<form method="post" action="${escapeHtml(model.action)}" novalidate>
<input type="hidden" name="csrf" value="${escapeHtml(model.csrf)}">
${fields}
<div class="actions">
<button class="button" type="submit">Continue</button>
<button class="button secondary" type="button" id="close-window" hidden>Cancel and close</button>
</div>
</form>
</div>`,
    { basePath: model.basePath },
  );
}

/**
 * What a config form that was accepted answers: a page that moves on at once to the provider's
 * sign-in page, and a link to it. Not a redirect: the CSP's `form-action` (protection.ts) holds
 * a form's submission and its redirects to Latchkey and the return origins, so a browser refuses
 * a 302 from this POST to the provider; a new navigation from a page is not a form's.
 */
export function renderContinueToProvider(model: { provider: Provider; location: string; basePath: string }): string {
  const name = escapeHtml(model.provider.displayName);
  return layout(
    `Continue to ${model.provider.displayName}`,
    `<h1>Continue to ${name}</h1>
<p class="lead">${name}'s sign-in page opens next.</p>
<div class="card">
<div class="actions"><a class="button" id="continue" href="${escapeHtml(model.location)}">Continue to ${name}</a></div>
</div>`,
    { basePath: model.basePath, refreshTo: model.location },
  );
}

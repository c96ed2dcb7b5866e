import type { Provider } from '../providers/registry';
import { hasTemplateValue, resolveHeaders, type TemplateRef, type TemplateValues } from '../providers/templates';

/**
 * A value the provider's API templates name that a connection lacks (a post-connect call that
 * failed, a token response without the field), and what that does to its calls (CONTRACT
 * "Additions": a header naming a missing value is left out, a URL naming one answers 409
 * `connection_incomplete`). Names only: never a value, and config and metadata are not secret.
 */
export interface MissingValue {
  /** `metadata.organizationId`, as messages and 409 answers name it. */
  key: string;
  /** `organizationId`. */
  name: string;
  /** The same name in words, for people: `organization id`. */
  words: string;
  /** True when `apiBaseUrl` needs it: every call answers 409 `connection_incomplete`. */
  blocksCalls: boolean;
  /** The `apiHeaders` sent without it, as the definition spells them. */
  headersLeftOut: string[];
}

/** `organizationId` → `organization id`, `instance_url` → `instance url`. */
export function nameInWords(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/_+/g, ' ')
    .toLowerCase();
}

/**
 * The values `apiBaseUrl` and `apiHeaders` name that `values` lacks, in the order the provider
 * names them, each once. Empty for a provider without templates and for a complete connection.
 */
export function missingValuesOf(provider: Provider, values: TemplateValues): MissingValue[] {
  const found = new Map<string, MissingValue>();
  const entry = (ref: Pick<TemplateRef, 'key'>): MissingValue => {
    let value = found.get(ref.key);
    if (!value) {
      const name = ref.key.slice(ref.key.indexOf('.') + 1);
      value = { key: ref.key, name, words: nameInWords(name), blocksCalls: false, headersLeftOut: [] };
      found.set(ref.key, value);
    }
    return value;
  };
  for (const ref of provider.templates.apiBaseUrl.refs) {
    if (!hasTemplateValue(values, ref)) entry(ref).blocksCalls = true;
  }
  for (const left of resolveHeaders(provider.templates.apiHeaders, values).leftOut) {
    if (left.problem === 'missing') entry({ key: left.value }).headersLeftOut.push(left.header);
  }
  return [...found.values()];
}

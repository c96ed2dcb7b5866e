/**
 * Per-connection templates in provider definitions (CONTRACT "Additions of the second release",
 * templates): `{config.NAME}` and `{metadata.NAME}` in `authorizationUrl`, `tokenUrl`,
 * `revocationUrl`, `apiBaseUrl`, `authorizationParams` values and `apiHeaders` values.
 *
 * A template is compiled once, at start-up, into literal parts and slots; resolving it for a
 * connection is a concatenation with each value checked for the place it goes:
 *
 * - a **host** slot is a whole DNS label followed by a literal suffix that holds a dot; its
 *   value must match `^[A-Za-z0-9-]{1,63}$`, may not be all digits, and comes only from
 *   `{config.*}` (metadata comes from the provider or from PATCH and never chooses a host);
 * - a **path** slot lies inside one path segment; its value is percent-encoded as one segment
 *   (`a/b` → `a%2Fb`), and refused when a server that decodes it could read a dot segment
 *   (`..`, `a/../b`), a second escape (`%2e`) or a control character into it;
 * - a **text** slot (a header or an authorization parameter) may hold no control character, and
 *   a header no character beyond Latin-1 (what an HTTP header can carry, RFC 9110 §5.5).
 *
 * Every value must be non-empty. A resolved URL is parsed again and must read back exactly as
 * built, so what was checked is what is sent.
 */

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** True for loopback hosts, where plain http is allowed (sandbox, tests, local development). */
export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** Names of connection config and metadata values (CONTRACT: connectionConfig). */
export const VALUE_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,40}$/;

/** What one DNS label may hold (RFC 1123 §2.1 letters, digits, hyphens; 63 octets at most). */
export const HOST_LABEL_PATTERN = /^[A-Za-z0-9-]{1,63}$/;

export type TemplateSource = 'config' | 'metadata';

/** One `{config.NAME}` or `{metadata.NAME}`. */
export interface TemplateRef {
  readonly source: TemplateSource;
  readonly name: string;
  /** `config.NAME` or `metadata.NAME`: how messages and `{ missing }` name it. */
  readonly key: string;
}

/** The values of one connection that templates are filled from. */
export interface TemplateValues {
  readonly config?: Readonly<Record<string, string>>;
  readonly metadata?: Readonly<Record<string, string | number | boolean>>;
}

/** Why a template could not be filled: a value it names is absent, or unusable where it goes. */
export type UnresolvedTemplate = { missing: string } | { invalid: string; reason: string };

/** The slot kinds, each with its own value rules. */
export type SlotKind = 'host' | 'path' | 'header' | 'param';

interface Compiled {
  /** The template as written in the provider definition. */
  readonly source: string;
  /** `literals[0] slot[0] literals[1] … slot[n-1] literals[n]`. */
  readonly literals: readonly string[];
  readonly refs: readonly TemplateRef[];
  readonly kinds: readonly SlotKind[];
}

/** A URL field, compiled. Without templates, `literals` is `[source]` and it resolves to `source` as written. */
export type UrlTemplate = Compiled;
/** A header or parameter value, compiled. */
export type TextTemplate = Compiled;

/** `apiHeaders`, compiled: the fixed headers, and the templated ones. */
export interface HeadersTemplate {
  /** The definition's `apiHeaders`, templates unresolved, as declared. */
  readonly declared: Readonly<Record<string, string>>;
  /** Headers without a template: what every call carries. */
  readonly fixed: Readonly<Record<string, string>>;
  readonly templated: readonly (readonly [name: string, value: TextTemplate])[];
}

/** `authorizationParams`, compiled. */
export interface ParamsTemplate {
  readonly declared: Readonly<Record<string, string>>;
  readonly entries: readonly (readonly [name: string, value: TextTemplate])[];
}

/** A header left out by {@link resolveHeaders}, and why (a name of a value, never the value). */
export interface LeftOutHeader {
  header: string;
  /** `metadata.organizationId`. */
  value: string;
  problem: 'missing' | 'invalid';
  reason?: string;
}

/** A template that cannot be compiled: the message says what to change (start-up errors). */
export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

const TEMPLATE_START = /\{(config|metadata)\./g;

/** True when `text` holds something meant as a template (`{config.` or `{metadata.`). */
export function mentionsTemplate(text: string): boolean {
  TEMPLATE_START.lastIndex = 0;
  return TEMPLATE_START.test(text);
}

interface Found {
  start: number;
  end: number;
  ref: TemplateRef;
}

/**
 * Finds the templates in `text`. Only `{config.` and `{metadata.` start one, so other braces
 * (an OIDC `claims` parameter's JSON) stay literal; a started template must be closed and name
 * a valid value.
 */
function findTemplates(text: string): Found[] {
  const found: Found[] = [];
  TEMPLATE_START.lastIndex = 0;
  for (let m = TEMPLATE_START.exec(text); m; m = TEMPLATE_START.exec(text)) {
    const source = m[1] as TemplateSource;
    const close = text.indexOf('}', m.index);
    const name = close === -1 ? '' : text.slice(m.index + m[0].length, close);
    if (close === -1 || !VALUE_NAME_PATTERN.test(name)) {
      const shown = close === -1 ? text.slice(m.index, m.index + 50) : text.slice(m.index, close + 1);
      throw new TemplateError(
        `"${shown}" is not a template: write {${source}.NAME} with a NAME matching ${VALUE_NAME_PATTERN.source}`,
      );
    }
    found.push({ start: m.index, end: close + 1, ref: { source, name, key: `${source}.${name}` } });
    TEMPLATE_START.lastIndex = close + 1;
  }
  return found;
}

/** The `{config.*}` / `{metadata.*}` names in a text, without compiling it (for start-up checks). */
export function templateRefs(text: string): TemplateRef[] {
  return findTemplates(text).map((f) => f.ref);
}

/** Compiles a header or parameter value. */
export function compileTextTemplate(text: string, kind: 'header' | 'param'): TextTemplate {
  const found = findTemplates(text);
  const literals: string[] = [];
  let at = 0;
  for (const f of found) {
    literals.push(text.slice(at, f.start));
    at = f.end;
  }
  literals.push(text.slice(at));
  return { source: text, literals, refs: found.map((f) => f.ref), kinds: found.map(() => kind) };
}

/** A placeholder that survives the WHATWG URL parser unchanged, in a host label as in a path. */
const slotMark = (i: number) => `zzlatchkeyslot${i}zz`;
const SLOT_MARK = /zzlatchkeyslot(\d+)zz/g;

export interface UrlTemplateRules {
  /** Whether `{metadata.*}` may appear at all (not where it is unknown yet: before the token exchange). */
  metadata: boolean;
}

/**
 * Compiles a URL field. Templates may stand only as a whole host label (then followed by a
 * literal suffix that holds a dot, `https://{config.subdomain}.zendesk.com`, and only from
 * config) or inside one path segment; never as the whole URL, its scheme or its whole host,
 * never in the user info, the port, the query or the fragment. The URL rules hold as without
 * templates: absolute, https outside loopback.
 *
 * @throws TemplateError naming what is wrong
 */
export function compileUrlTemplate(source: string, rules: UrlTemplateRules): UrlTemplate {
  const found = findTemplates(source);
  if (found.length === 0) {
    checkUrlRules(source);
    return { source, literals: [source], refs: [], kinds: [] };
  }
  if (source.toLowerCase().includes('zzlatchkeyslot')) throw new TemplateError('must not contain "zzlatchkeyslot"');
  if (!rules.metadata) {
    const metadata = found.find((f) => f.ref.source === 'metadata');
    if (metadata) {
      throw new TemplateError(
        `{${metadata.ref.key}} cannot be used here: metadata is known only once the connection is made`,
      );
    }
  }
  let marked = '';
  let at = 0;
  found.forEach((f, i) => {
    marked += source.slice(at, f.start) + slotMark(i);
    at = f.end;
  });
  marked += source.slice(at);
  if (found[0]!.start === 0) throw new TemplateError('a template may not form the whole URL or its scheme');
  let url: URL;
  try {
    url = new URL(marked);
  } catch {
    throw new TemplateError(
      'must be an absolute URL, with templates only as a whole host label or inside a path segment',
    );
  }
  const href = url.href;
  const place = (part: string, what: string) => {
    SLOT_MARK.lastIndex = 0;
    const m = SLOT_MARK.exec(part);
    if (m) throw new TemplateError(`{${found[Number(m[1])]!.ref.key}} may not stand in the ${what}`);
  };
  place(url.protocol, 'scheme');
  place(url.username, 'user info');
  place(url.password, 'user info');
  place(url.port, 'port');
  place(url.search, 'query (authorizationParams take templates for the authorization URL)');
  place(url.hash, 'fragment');

  const kinds: SlotKind[] = new Array<SlotKind>(found.length);
  const labels = url.hostname.split('.');
  let lastTemplated = -1;
  labels.forEach((label, index) => {
    SLOT_MARK.lastIndex = 0;
    const m = SLOT_MARK.exec(label);
    if (!m) return;
    const f = found[Number(m[1])]!;
    if (label !== m[0]) {
      throw new TemplateError(`{${f.ref.key}} must be a whole host label, e.g. https://{config.subdomain}.example.com`);
    }
    if (f.ref.source === 'metadata') {
      throw new TemplateError(`{${f.ref.key}} may not choose a host: a host label comes only from {config.*}`);
    }
    kinds[Number(m[1])] = 'host';
    lastTemplated = index;
  });
  if (lastTemplated >= 0) {
    const suffix = labels.slice(lastTemplated + 1);
    const last = suffix[suffix.length - 1] ?? '';
    if (suffix.length < 2 || !/^[a-z]/.test(last)) {
      const rule =
        'a host label template needs a literal suffix that holds a dot after it, e.g. https://{config.subdomain}.example.com';
      if (suffix.length === 0) throw new TemplateError(`a template may not form the whole host: ${rule}`);
      throw new TemplateError(`${rule} (".${suffix.join('.')}" is not enough)`);
    }
  }
  SLOT_MARK.lastIndex = 0;
  for (let m = SLOT_MARK.exec(url.pathname); m; m = SLOT_MARK.exec(url.pathname)) kinds[Number(m[1])] = 'path';
  found.forEach((f, i) => {
    if (kinds[i] === undefined) throw new TemplateError(`{${f.ref.key}} is dropped when the URL is normalised`);
  });
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && lastTemplated < 0 && isLoopbackHost(url.hostname))) {
    throw new TemplateError('must be https (plain http is allowed only on loopback)');
  }

  // Split the normalised URL at its slots, in the order they appear in it.
  const literals: string[] = [];
  const refs: TemplateRef[] = [];
  const orderedKinds: SlotKind[] = [];
  at = 0;
  SLOT_MARK.lastIndex = 0;
  for (let m = SLOT_MARK.exec(href); m; m = SLOT_MARK.exec(href)) {
    literals.push(href.slice(at, m.index));
    refs.push(found[Number(m[1])]!.ref);
    orderedKinds.push(kinds[Number(m[1])]!);
    at = m.index + m[0].length;
  }
  literals.push(href.slice(at));
  if (refs.length !== found.length) throw new TemplateError('a template appears where the URL cannot hold it');
  return { source, literals, refs, kinds: orderedKinds };
}

/** The URL rules of a field without templates (the same messages as before templates existed). */
function checkUrlRules(source: string): void {
  if (!URL.canParse(source)) throw new TemplateError('must be an absolute URL');
  const u = new URL(source);
  if (!(u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname)))) {
    throw new TemplateError('must be https (plain http is allowed only on loopback)');
  }
}

function lookup(values: TemplateValues, ref: TemplateRef): string | undefined {
  const bag = ref.source === 'config' ? values.config : values.metadata;
  // Own properties only: a name such as "constructor" must not read Object.prototype.
  if (!bag || !Object.hasOwn(bag, ref.name)) return undefined;
  const value = bag[ref.name];
  return value === undefined || value === null ? undefined : String(value);
}

/** True when `values` holds the value `ref` names (an empty string counts; null and absent do not). */
export function hasTemplateValue(values: TemplateValues, ref: TemplateRef): boolean {
  return lookup(values, ref) !== undefined;
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const ESCAPE = /%[0-9A-Fa-f]{2}/;
const BEYOND_LATIN1 = /[^\u0000-\u00ff]/;
const ALL_DIGITS = /^[0-9]+$/;
const MAX_VALUE_LENGTH = 1024;
/** Code points that Windows "best fit" conversions turn into a slash or a backslash (as in api-target.ts). */
const BEST_FIT_SEPARATORS = /[\u00a5\u20a9\u2044\u2215\u2216\u29f5\u29f8\u29f9]/;
const NON_ASCII = /[^\u0000-\u007f]/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Why `value` cannot go into a slot of `kind`, or undefined when it can. Exported so the connect
 * form and the connect session check a value with the same rules before storing it.
 */
export function slotValueProblem(kind: SlotKind, value: string): string | undefined {
  if (value === '') return 'is empty';
  if (value.length > MAX_VALUE_LENGTH) return `is longer than ${MAX_VALUE_LENGTH} characters`;
  if (kind === 'host') {
    if (!HOST_LABEL_PATTERN.test(value)) return 'must be one host label: 1 to 63 letters, digits or hyphens';
    if (ALL_DIGITS.test(value)) return 'may not be all digits';
    return undefined;
  }
  if (CONTROL.test(value)) return 'holds a control character';
  if (LONE_SURROGATE.test(value)) return 'is not well-formed Unicode';
  if (kind === 'header') {
    return BEYOND_LATIN1.test(value) ? 'holds characters an HTTP header cannot carry (beyond Latin-1)' : undefined;
  }
  if (kind === 'param') return undefined;
  // A path segment: what a server that decodes it (once, twice, or after NFKC) could read as syntax.
  if (value.split(/[/\\]/).some((piece) => piece === '.' || piece === '..')) return 'would read as a dot segment';
  if (ESCAPE.test(value)) return 'holds a percent escape: give the value itself, it is encoded once';
  if (BEST_FIT_SEPARATORS.test(value)) return 'holds a character some servers read as a slash or a backslash';
  for (const ch of value.match(NON_ASCII) ?? []) {
    if (/[./\\%]/.test(ch.normalize('NFKC'))) return 'holds a character that normalises to a dot, a slash or a %';
  }
  return undefined;
}

function fill(t: Compiled, values: TemplateValues): string | UnresolvedTemplate {
  let out = t.literals[0]!;
  for (let i = 0; i < t.refs.length; i++) {
    const ref = t.refs[i]!;
    const value = lookup(values, ref);
    if (value === undefined) return { missing: ref.key };
    const kind = t.kinds[i]!;
    const problem = slotValueProblem(kind, value);
    if (problem) return { invalid: ref.key, reason: problem };
    out += kind === 'host' ? value.toLowerCase() : kind === 'path' ? encodeURIComponent(value) : value;
    out += t.literals[i + 1]!;
  }
  return out;
}

/**
 * Fills a URL template with a connection's values. Without templates it answers the field as
 * written. Each value is checked for its slot (see {@link slotValueProblem}); the URL built is
 * parsed again and must read back exactly as built (the same origin, the same path), so that a
 * value can never move the target.
 *
 * @returns the URL, or why it cannot be built: `{ missing: 'config.subdomain' }` (→ 409
 *   `connection_incomplete` in the proxy) or `{ invalid, reason }`
 */
export function resolveProviderUrl(template: UrlTemplate, values: TemplateValues): string | UnresolvedTemplate {
  if (template.refs.length === 0) return template.source;
  const url = fill(template, values);
  if (typeof url !== 'string') return url;
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed?.href !== url) {
    return { invalid: template.refs.map((r) => r.key).join(', '), reason: 'the URL would not read back as built' };
  }
  return url;
}

/**
 * The provider's `apiHeaders` for a connection: the fixed ones, and each templated one whose
 * values are present and usable; the others are left out (CONTRACT: a header whose template
 * names a missing value is left out) and listed in `leftOut`. Returns a fresh object.
 */
export function resolveHeaders(
  template: HeadersTemplate,
  values: TemplateValues,
): { headers: Record<string, string>; leftOut: LeftOutHeader[] } {
  const headers: Record<string, string> = { ...template.fixed };
  const leftOut: LeftOutHeader[] = [];
  for (const [name, value] of template.templated) {
    const filled = fill(value, values);
    if (typeof filled === 'string') headers[name] = filled;
    else if ('missing' in filled) leftOut.push({ header: name, value: filled.missing, problem: 'missing' });
    else leftOut.push({ header: name, value: filled.invalid, problem: 'invalid', reason: filled.reason });
  }
  return { headers, leftOut };
}

/**
 * The provider's `authorizationParams` for a connection. They are part of the authorization
 * URL, so a missing or unusable value fails the whole (like a URL template), it is not left out.
 */
export function resolveAuthorizationParams(
  template: ParamsTemplate,
  values: TemplateValues,
): Record<string, string> | UnresolvedTemplate {
  const params: Record<string, string> = {};
  for (const [name, value] of template.entries) {
    const filled = value.refs.length === 0 ? value.source : fill(value, values);
    if (typeof filled !== 'string') return filled;
    params[name] = filled;
  }
  return params;
}

/** Compiles `apiHeaders`. @throws TemplateError (with the header's name) */
export function compileHeadersTemplate(apiHeaders: Readonly<Record<string, string>>): HeadersTemplate {
  const fixed: Record<string, string> = {};
  const templated: (readonly [string, TextTemplate])[] = [];
  for (const [name, value] of Object.entries(apiHeaders)) {
    const compiled = compileTextTemplate(value, 'header');
    if (compiled.refs.length === 0) fixed[name] = value;
    else templated.push([name, compiled]);
  }
  return { declared: apiHeaders, fixed, templated };
}

/** Compiles `authorizationParams`. @throws TemplateError */
export function compileParamsTemplate(params: Readonly<Record<string, string>>): ParamsTemplate {
  return {
    declared: params,
    entries: Object.entries(params).map(([name, value]) => [name, compileTextTemplate(value, 'param')] as const),
  };
}

/** Every value a compiled template names. */
export function refsOf(
  ...templates: (Compiled | HeadersTemplate | ParamsTemplate | null | undefined)[]
): TemplateRef[] {
  const refs: TemplateRef[] = [];
  for (const t of templates) {
    if (!t) continue;
    if ('refs' in t) refs.push(...t.refs);
    else if ('templated' in t) for (const [, v] of t.templated) refs.push(...v.refs);
    else for (const [, v] of t.entries) refs.push(...v.refs);
  }
  return refs;
}

/** The slot kinds a compiled URL gives each config name it uses (for the host-pattern check). */
export function hostRefs(template: UrlTemplate): TemplateRef[] {
  return template.refs.filter((_, i) => template.kinds[i] === 'host');
}

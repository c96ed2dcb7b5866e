import { z } from 'zod';
import { resolveApiUrl } from './api-target';
import { hostPatternProblem } from './host-pattern';
import {
  compileTextTemplate,
  compileUrlTemplate,
  hostRefs,
  isLoopbackHost,
  mentionsTemplate,
  TemplateError,
  templateRefs,
  VALUE_NAME_PATTERN,
  type TemplateRef,
  type UrlTemplateRules,
} from './templates';

/**
 * The contract's ProviderDefinition as a zod schema. Provider quirks are data: a new provider
 * needs an entry here, never an `if (provider.id === …)` in code.
 */

export { isLoopbackHost };

/** Adds a problem found by a compile step as the field's own issue (its message says what to change). */
function reportTemplateError(ctx: z.RefinementCtx, check: () => void): void {
  try {
    check();
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    ctx.addIssue({ code: 'custom', message: err.message });
  }
}

/**
 * A URL field: absolute, https outside loopback, and templates only where CONTRACT's templates
 * table allows them (a whole host label from config, inside one path segment).
 */
const urlField = (rules: UrlTemplateRules) =>
  z.string().superRefine((s, ctx) => reportTemplateError(ctx, () => compileUrlTemplate(s, rules)));

const CONTROL = /[\u0000-\u001f\u007f]/;

/** A header or authorization parameter value; `{metadata.*}` only where it is known by then. */
const textField = (kind: 'header' | 'param', rules: { metadata: boolean }) =>
  z.string().superRefine((s, ctx) =>
    reportTemplateError(ctx, () => {
      const compiled = compileTextTemplate(s, kind);
      if (compiled.literals.some((l) => CONTROL.test(l))) throw new TemplateError('holds a control character');
      const metadata = compiled.refs.find((r) => r.source === 'metadata');
      if (metadata && !rules.metadata) {
        throw new TemplateError(
          `{${metadata.key}} cannot be used here: metadata is known only once the connection is made`,
        );
      }
    }),
  );

export const providerIdSchema = z.string().regex(/^[a-z][a-z0-9-]{1,40}$/, 'must match ^[a-z][a-z0-9-]{1,40}$');

const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name');

/** An object keyed by connection config or metadata names (`^[A-Za-z][A-Za-z0-9_]{0,40}$`). */
const byValueName = <T extends z.ZodType>(value: T, max: number) =>
  z.record(z.string(), value).superRefine((record, ctx) => {
    const names = Object.keys(record);
    for (const name of names) {
      if (!VALUE_NAME_PATTERN.test(name))
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: `is not a valid name: names match ${VALUE_NAME_PATTERN.source}`,
        });
    }
    if (names.length > max) ctx.addIssue({ code: 'custom', message: `may name at most ${max} values` });
  });

/** A path under `apiBaseUrl` that the pinning of api-target.ts accepts (checked against a stand-in base). */
const apiPath = z
  .string()
  .startsWith('/', 'must start with /')
  .max(500)
  .superRefine((path, ctx) => {
    try {
      resolveApiUrl('https://api.example.invalid', path);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

/** Where a captured value is in a JSON answer: dot-separated property names or array indexes. */
const fieldPath = z
  .string()
  .max(200)
  .regex(/^[^.\s]+(\.[^.\s]+)*$/, 'must be a field path such as "results.0.organization_id"');

const regexSource = z
  .string()
  .min(1)
  .max(500)
  .superRefine((pattern, ctx) => {
    try {
      new RegExp(pattern, 'u');
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `is not a valid regular expression (${(err as Error).message})` });
    }
  });

/**
 * A value each connection supplies. `pattern` is matched against the whole value (as if written
 * `^(?:pattern)$`, with the `u` flag).
 */
const connectionConfigEntrySchema = z.strictObject({
  label: z.string().min(1).max(80),
  pattern: regexSource,
  required: z.boolean().default(true),
});

/** Where the Connect page finds "which account" after a flow: a GET on the API, two JSON fields. */
const accountInfoSchema = z.strictObject({
  path: z.string().startsWith('/'),
  idField: z.string().min(1),
  labelField: z.string().min(1),
});

/** A call made with the new credential right after a connect; its captures become metadata. */
const postConnectCallSchema = z.strictObject({
  method: z.enum(['GET', 'POST']).default('GET'),
  path: apiPath,
  capture: byValueName(fieldPath, 20),
});

const common = {
  id: providerIdSchema,
  displayName: z.string().min(1).max(80),
  /** False switches the provider off (so does `<ID>_ENABLED=false`). */
  enabled: z.boolean().default(true),
  apiBaseUrl: urlField({ metadata: true }),
  apiHeaders: z.record(headerName, textField('header', { metadata: true })).default({}),
  /** False for entries built from best-known facts rather than published documentation. */
  verified: z.boolean().default(true),
  accountInfo: accountInfoSchema.nullable().default(null),
  connectionConfig: byValueName(connectionConfigEntrySchema, 20).default({}),
  postConnect: z.array(postConnectCallSchema).max(5).default([]),
};

const oauth2Fields = z.strictObject({
  ...common,
  authMode: z.literal('oauth2'),
  authorizationUrl: urlField({ metadata: false }),
  tokenUrl: urlField({ metadata: false }),
  revocationUrl: urlField({ metadata: true }).nullable().default(null),
  scopes: z.array(z.string().min(1)).default([]),
  scopeSeparator: z.string().min(1).default(' '),
  authorizationParams: z.record(z.string(), textField('param', { metadata: false })).default({}),
  pkce: z.boolean().default(false),
  tokenRequest: z
    .strictObject({
      bodyFormat: z.enum(['form', 'json']).default('form'),
      clientAuth: z.enum(['body', 'basic']).default('body'),
    })
    .default({ bodyFormat: 'form', clientAuth: 'body' }),
  issuer: z.string().min(1).nullable().default(null),
  refreshMarginSeconds: z.number().int().min(0).max(86_400).default(300),
  tokenResponseMetadata: byValueName(fieldPath, 20).default({}),
  /** Hours after the last refresh (or connect) when a background refresh keeps the grant alive; 0: never. */
  keepAliveHours: z.number().min(0).max(8760).default(24),
});

const apiKeyFields = z.strictObject({
  ...common,
  authMode: z.literal('api_key'),
  apiKey: z.strictObject({
    header: headerName,
    format: z.string().includes('{key}', { message: 'must contain {key}' }).default('{key}'),
    /** Tried once with a pasted key before it is stored: 401 or 403 refuses it. */
    check: z
      .strictObject({ method: z.enum(['GET', 'HEAD', 'POST']).default('GET'), path: apiPath })
      .nullable()
      .default(null),
  }),
});

type Fields = z.infer<typeof oauth2Fields> | z.infer<typeof apiKeyFields>;

/** The fields whose strings may hold templates: these four as a whole, the values of the other two. */
const TEMPLATED_URLS = new Set(['authorizationUrl', 'tokenUrl', 'revocationUrl', 'apiBaseUrl']);
const TEMPLATED_VALUES = new Set(['authorizationParams', 'apiHeaders']);

function mayHoldTemplate(path: readonly (string | number)[]): boolean {
  return (
    (path.length === 1 && TEMPLATED_URLS.has(String(path[0]))) ||
    (path.length === 2 && TEMPLATED_VALUES.has(String(path[0])))
  );
}

/** Reports `{config.*}` / `{metadata.*}` anywhere the contract does not allow a template. */
function refuseMisplacedTemplates(value: unknown, path: (string | number)[], ctx: z.RefinementCtx): void {
  if (typeof value === 'string') {
    if (mentionsTemplate(value) && !mayHoldTemplate(path)) {
      ctx.addIssue({
        code: 'custom',
        path,
        message:
          'may not hold a template: {config.*} and {metadata.*} belong only in authorizationUrl, tokenUrl, revocationUrl, apiBaseUrl and the values of authorizationParams and apiHeaders',
      });
    }
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => refuseMisplacedTemplates(item, [...path, i], ctx));
    return;
  }
  if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (mentionsTemplate(key)) {
        ctx.addIssue({ code: 'custom', path: [...path, key], message: 'a name may not hold a template' });
      }
      refuseMisplacedTemplates(item, [...path, key], ctx);
    }
  }
}

interface TemplatedField {
  path: (string | number)[];
  refs: TemplateRef[];
  host: TemplateRef[];
}

/** The templated fields and what they name; a field that does not compile was reported on its own. */
function templatedFields(def: Fields): TemplatedField[] {
  const fields: TemplatedField[] = [];
  const compiled = (path: (string | number)[], compile: () => { refs: TemplateRef[]; host: TemplateRef[] }) => {
    try {
      const { refs, host } = compile();
      if (refs.length) fields.push({ path, refs, host });
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
    }
  };
  const url = (name: string, value: string | null | undefined, metadata: boolean) => {
    if (!value) return;
    compiled([name], () => {
      const template = compileUrlTemplate(value, { metadata });
      return { refs: [...template.refs], host: hostRefs(template) };
    });
  };
  const text = (field: string, values: Record<string, string>) => {
    for (const [name, value] of Object.entries(values)) {
      compiled([field, name], () => ({ refs: templateRefs(value), host: [] }));
    }
  };
  url('apiBaseUrl', def.apiBaseUrl, true);
  text('apiHeaders', def.apiHeaders);
  if (def.authMode === 'oauth2') {
    url('authorizationUrl', def.authorizationUrl, false);
    url('tokenUrl', def.tokenUrl, false);
    url('revocationUrl', def.revocationUrl, true);
    text('authorizationParams', def.authorizationParams);
  }
  return fields;
}

/**
 * The checks that need the whole entry: every template names a declared value, a config value
 * used in a host can only ever be one label, metadata names are captured once, and the calls
 * made at connect can reach their URL.
 *
 * Metadata names: a `{metadata.NAME}` must be captured by `tokenResponseMetadata` or a
 * `postConnect` call. PATCH may set or change any metadata key (a VideoAsk organisation other
 * than the first), but a template can only name one the provider itself fills, so a typo is a
 * start-up error and not a header that is silently never sent.
 */
function checkWholeEntry(def: Fields, ctx: z.RefinementCtx): void {
  refuseMisplacedTemplates(def, [], ctx);

  const captured = new Map<string, string>();
  const capture = (name: string, where: string, path: (string | number)[]) => {
    const first = captured.get(name);
    if (first) ctx.addIssue({ code: 'custom', path, message: `captures metadata "${name}" again (${first} does)` });
    else captured.set(name, where);
  };
  if (def.authMode === 'oauth2') {
    for (const name of Object.keys(def.tokenResponseMetadata))
      capture(name, 'tokenResponseMetadata', ['tokenResponseMetadata', name]);
  }
  const fromPostConnect = new Set<string>();
  def.postConnect.forEach((call, i) => {
    for (const name of Object.keys(call.capture)) {
      capture(name, `postConnect ${i + 1}`, ['postConnect', i, 'capture', name]);
      fromPostConnect.add(name);
    }
  });

  const hostConfig = new Set<string>();
  for (const field of templatedFields(def)) {
    for (const ref of field.refs) {
      if (ref.source === 'config' && !Object.hasOwn(def.connectionConfig, ref.name)) {
        ctx.addIssue({
          code: 'custom',
          path: field.path,
          message: `{${ref.key}} is not declared in connectionConfig`,
        });
      }
      if (ref.source === 'metadata' && !captured.has(ref.name)) {
        ctx.addIssue({
          code: 'custom',
          path: field.path,
          message: `{${ref.key}} is captured neither by tokenResponseMetadata nor by a postConnect call`,
        });
      }
    }
    for (const ref of field.host) hostConfig.add(ref.name);
    const base = field.path.length === 1 && field.path[0] === 'apiBaseUrl';
    const late = base ? field.refs.find((r) => r.source === 'metadata' && fromPostConnect.has(r.name)) : undefined;
    if (late) {
      ctx.addIssue({
        code: 'custom',
        path: field.path,
        message: `{${late.key}} is captured by a postConnect call, which is itself made to apiBaseUrl`,
      });
    }
    const unknownAtCheck = base && def.authMode === 'api_key' && def.apiKey.check;
    const metadata = unknownAtCheck ? field.refs.find((r) => r.source === 'metadata') : undefined;
    if (metadata) {
      ctx.addIssue({
        code: 'custom',
        path: ['apiKey', 'check'],
        message: `cannot be made before the key is stored: apiBaseUrl names {${metadata.key}}`,
      });
    }
  }
  for (const name of hostConfig) {
    const entry = def.connectionConfig[name];
    const problem = entry && hostPatternProblem(entry.pattern);
    if (problem) ctx.addIssue({ code: 'custom', path: ['connectionConfig', name, 'pattern'], message: problem });
  }
}

export const oauth2ProviderSchema = oauth2Fields.superRefine(checkWholeEntry);
export const apiKeyProviderSchema = apiKeyFields.superRefine(checkWholeEntry);

export const providerDefinitionSchema = z.discriminatedUnion('authMode', [oauth2ProviderSchema, apiKeyProviderSchema]);

export type OAuth2ProviderDefinition = z.infer<typeof oauth2ProviderSchema>;
export type ApiKeyProviderDefinition = z.infer<typeof apiKeyProviderSchema>;
export type ProviderDefinition = z.infer<typeof providerDefinitionSchema>;
export type ConnectionConfigEntry = z.infer<typeof connectionConfigEntrySchema>;
export type PostConnectCall = z.infer<typeof postConnectCallSchema>;
/** What a PROVIDERS_FILE entry or a built-in catalog entry may say before defaults apply. */
export type ProviderInput = z.input<typeof providerDefinitionSchema>;

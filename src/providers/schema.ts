import { z } from 'zod';

/**
 * The contract's ProviderDefinition as a zod schema. Provider quirks are data: a new provider
 * needs an entry here, never an `if (provider.id === …)` in code.
 */

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** True for loopback hosts, where plain http is allowed (sandbox, tests, local development). */
export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

const secureUrl = z
  .string()
  .refine((s) => URL.canParse(s), 'must be an absolute URL')
  .refine((s) => {
    if (!URL.canParse(s)) return true;
    const u = new URL(s);
    return u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname));
  }, 'must be https (plain http is allowed only on loopback)');

export const providerIdSchema = z.string().regex(/^[a-z][a-z0-9-]{1,40}$/, 'must match ^[a-z][a-z0-9-]{1,40}$');

const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name');
const headers = z.record(headerName, z.string());

/** Where the Connect page finds "which account" after a flow: a GET on the API, two JSON fields. */
const accountInfoSchema = z.strictObject({
  path: z.string().startsWith('/'),
  idField: z.string().min(1),
  labelField: z.string().min(1),
});

const common = {
  id: providerIdSchema,
  displayName: z.string().min(1).max(80),
  apiBaseUrl: secureUrl,
  apiHeaders: headers.default({}),
  /** False for entries built from best-known facts rather than published documentation. */
  verified: z.boolean().default(true),
  accountInfo: accountInfoSchema.nullable().default(null),
};

export const oauth2ProviderSchema = z.strictObject({
  ...common,
  authMode: z.literal('oauth2'),
  authorizationUrl: secureUrl,
  tokenUrl: secureUrl,
  revocationUrl: secureUrl.nullable().default(null),
  scopes: z.array(z.string().min(1)).default([]),
  scopeSeparator: z.string().min(1).default(' '),
  authorizationParams: z.record(z.string(), z.string()).default({}),
  pkce: z.boolean().default(false),
  tokenRequest: z
    .strictObject({
      bodyFormat: z.enum(['form', 'json']).default('form'),
      clientAuth: z.enum(['body', 'basic']).default('body'),
    })
    .default({ bodyFormat: 'form', clientAuth: 'body' }),
  issuer: z.string().min(1).nullable().default(null),
  refreshMarginSeconds: z.number().int().min(0).max(86_400).default(300),
});

export const apiKeyProviderSchema = z.strictObject({
  ...common,
  authMode: z.literal('api_key'),
  apiKey: z.strictObject({
    header: headerName,
    format: z.string().includes('{key}', { message: 'must contain {key}' }).default('{key}'),
  }),
});

export const providerDefinitionSchema = z.discriminatedUnion('authMode', [oauth2ProviderSchema, apiKeyProviderSchema]);

export type OAuth2ProviderDefinition = z.infer<typeof oauth2ProviderSchema>;
export type ApiKeyProviderDefinition = z.infer<typeof apiKeyProviderSchema>;
export type ProviderDefinition = z.infer<typeof providerDefinitionSchema>;
/** What a PROVIDERS_FILE entry or a built-in catalog entry may say before defaults apply. */
export type ProviderInput = z.input<typeof providerDefinitionSchema>;

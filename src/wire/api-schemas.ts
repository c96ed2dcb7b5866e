import { z } from 'zod';
import { AppError, ERROR_STATUS, type ErrorCode } from '../errors';
import { VALUE_NAME_PATTERN } from '../providers/templates';
import { MAX_METADATA_VALUE_LENGTH, METADATA_KEY_PATTERN } from '../store/connection-values';

/**
 * The service API's wire format (CONTRACT "Service API", "Errors" and "Additions of the second
 * release"), written once: the routes validate requests with these schemas and type their
 * answers with them, `/openapi.json` is generated from them (http/openapi.ts), and the client
 * package's own types are checked against them by a test (test/unit/client-wire-types.test.ts).
 * Wire fields are snake_case. `.meta({ id })` names a schema in the document's components.
 *
 * Every route the document describes is served; the OpenAPI test calls each one, so the
 * document never promises a route that answers 404. The webhook's body and headers are here too.
 */

export const PROVIDER_ID_PATTERN = /^[a-z][a-z0-9-]{1,40}$/;
export const CONNECTION_ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;
/** A `connectionConfig` name (CONTRACT "Provider definition"): the one definition, in providers/templates.ts. */
export { VALUE_NAME_PATTERN };

const isoTime = () => z.iso.datetime().meta({ description: 'ISO-8601, UTC', example: '2026-01-01T12:00:00.000Z' });

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

export const ProviderIdSchema = z.string().min(1).max(64).meta({
  description: 'A provider id (`^[a-z][a-z0-9-]{1,40}$`), as listed by `GET /providers`',
  example: 'videoask',
});

export const ConnectionIdSchema = z
  .string()
  .regex(CONNECTION_ID_PATTERN, 'must match ^[A-Za-z0-9._:@-]{1,128}$')
  .meta({ description: "The host application's own id for the user or account", example: 'default' });

/** `:provider/:connectionId` of `/connections/…`. */
export const ConnectionParamsSchema = z.object({ provider: ProviderIdSchema, connectionId: ConnectionIdSchema });

export const ConnectionStatusSchema = z.enum(['active', 'reauth_required']);

const cursor = () => z.string().min(1).max(512).meta({ description: 'The `next_cursor` of the previous page' });
const limit = () =>
  z.coerce.number().int().min(1).max(1000).meta({ description: 'At most this many per page (1–1000)', example: 50 });

/**
 * `GET /connections` query (CONTRACT "Additions": listing). Without `limit`, every match and
 * `next_cursor: null`, as in the first release. Unknown parameters are ignored; an empty value is
 * no value.
 */
export const ListConnectionsQuerySchema = z.object({
  provider: ProviderIdSchema.optional(),
  status: ConnectionStatusSchema.optional(),
  q: z
    .string()
    .max(128)
    .optional()
    .meta({ description: 'Case-insensitive prefix of `connection_id` or of `account.label`', example: 'user-' }),
  limit: limit().optional(),
  cursor: cursor().optional(),
});

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/**
 * An object keyed by names that match `pattern`. zod-to-openapi leaves a record's key rule out of
 * the document, so it is written there too (`propertyNames`, JSON Schema 2020-12): the document
 * states the same rule the routes apply, from the same regex.
 */
function keyedBy<V extends z.ZodType>(pattern: RegExp, value: V) {
  return z.record(z.string().regex(pattern, `keys must match ${pattern.source}`), value).meta({
    propertyNames: { type: 'string', pattern: pattern.source },
  });
}

export const ConfigValuesSchema = keyedBy(VALUE_NAME_PATTERN, z.string().max(1024)).meta({
  description: "Values of the provider's `connectionConfig`, fixed at connect",
  example: {},
});

export const MetadataValueSchema = z.union([z.string().max(MAX_METADATA_VALUE_LENGTH), z.number(), z.boolean()]);
/** Metadata as PATCH, an import and every answer hold it: the key rule is the store's own (METADATA_KEY_PATTERN). */
export const MetadataSchema = keyedBy(METADATA_KEY_PATTERN, MetadataValueSchema).meta({
  description: 'Values captured at connect or set by PATCH; never secret',
  example: {},
});

export const AccountSchema = z
  .strictObject({ id: z.string().nullable(), label: z.string().nullable() })
  .meta({ description: "The provider's account, when its API says which" });

// ---------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------

/** The contract's `Connection`: never a token. */
export const ConnectionSchema = z
  .strictObject({
    provider: z.string(),
    connection_id: z.string(),
    status: ConnectionStatusSchema,
    scopes: z.array(z.string()),
    expires_at: isoTime().nullable().meta({ description: 'Access-token expiry; null when the provider gave none' }),
    created_at: isoTime(),
    updated_at: isoTime(),
    last_refreshed_at: isoTime().nullable(),
    config: ConfigValuesSchema,
    metadata: MetadataSchema,
    account: AccountSchema.nullable(),
  })
  .meta({ id: 'Connection', description: 'A stored connection; never holds a token' });

export const ConnectionListSchema = z
  .strictObject({
    connections: z.array(ConnectionSchema),
    next_cursor: z.string().nullable().meta({ description: 'null on the last page (and always without `limit`)' }),
  })
  .meta({ id: 'ConnectionList' });

export const ConnectSessionRequestSchema = z
  .strictObject({
    provider: ProviderIdSchema,
    connection_id: ConnectionIdSchema,
    return_to: z
      .string()
      .max(2048)
      .optional()
      .meta({ description: 'An absolute URL on ALLOWED_RETURN_ORIGINS, or a path on PUBLIC_URL' }),
    connection_config: ConfigValuesSchema.optional(),
  })
  .meta({ id: 'ConnectSessionRequest', example: { provider: 'videoask', connection_id: 'user-42' } });

export const ConnectSessionSchema = z
  .strictObject({
    token: z.string().meta({ description: 'Single use, 15 minutes' }),
    url: z.url().meta({ description: 'The `/auth/:provider?token=…` link to open in the browser' }),
    expires_at: isoTime(),
  })
  .meta({ id: 'ConnectSession' });

export const TokenSchema = z
  .strictObject({
    access_token: z.string(),
    token_type: z.string().meta({ description: '`Bearer` (or the provider’s), `api_key` for an API-key connection' }),
    expires_at: isoTime().nullable(),
  })
  .meta({ id: 'Token' });

export const ConnectionConfigFieldSchema = z.strictObject({
  name: z.string(),
  label: z.string(),
  pattern: z.string(),
  required: z.boolean(),
});

export const ProviderSchema = z
  .strictObject({
    id: z.string(),
    display_name: z.string(),
    auth_mode: z.enum(['oauth2', 'api_key']),
    configured: z.boolean().meta({ description: 'Its credentials are set (always true for api_key)' }),
    verified: z.boolean(),
    connection_config: z.array(ConnectionConfigFieldSchema),
  })
  .meta({ id: 'Provider' });

export const ProviderListSchema = z.strictObject({ providers: z.array(ProviderSchema) }).meta({ id: 'ProviderList' });

export const ERROR_CODES = Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]];

/** Every error Latchkey itself answers (CONTRACT "Errors"). */
export const ErrorBodySchema = z
  .strictObject({
    error: z.strictObject({ code: z.enum(ERROR_CODES), message: z.string() }),
  })
  .meta({ id: 'Error' });

export const RevocationSchema = z.enum(['revoked', 'failed', 'not_supported', 'not_possible']).meta({
  description:
    '`revoked`, `failed` (deleted anyway), `not_supported` (no revocationUrl, or nothing to revoke) or `not_possible` (the stored credentials could not be opened: sealed with a key that is no longer configured)',
});

export const HealthSchema = z.strictObject({ status: z.literal('ok') });
export const ReadySchema = z.strictObject({ status: z.literal('ready'), store: z.enum(['memory', 'redis']) });

// ---------------------------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------------------------

export const LATCHKEY_ERROR_HEADER = 'Latchkey-Error';
export const RETRY_AFTER_HEADER = 'Retry-After';
export const REVOCATION_HEADER_NAME = 'Latchkey-Revocation';

/** Request headers of `/proxy/:provider/…` (the proxy reads them itself, case-insensitively). */
export const ProxyHeadersSchema = z.object({
  'Connection-Id': ConnectionIdSchema.optional().meta({
    param: { description: 'Which connection to use; `default` when absent' },
    example: 'default',
  }),
  'Latchkey-Retries': z
    .int()
    .min(0)
    .max(3)
    .optional()
    .meta({
      param: {
        description:
          'For GET, HEAD, OPTIONS, PUT and DELETE: retry a 429 after its Retry-After (at most 10 s) and a 502, 503, 504 or connection failure after a backoff; never forwarded',
      },
      example: 0,
    }),
});

// ---------------------------------------------------------------------------------------------
// Additions of the second release (CONTRACT "Additions"): metadata, import, events, webhooks
// ---------------------------------------------------------------------------------------------

/**
 * `PATCH /connections/:provider/:connectionId`: merges, null removes a key (at most 50 keys and
 * 16 KB once merged: checked by the write, which sees the merged metadata).
 */
export const MetadataPatchSchema = z
  .strictObject({ metadata: keyedBy(METADATA_KEY_PATTERN, MetadataValueSchema.nullable()) })
  .meta({ id: 'MetadataPatch', example: { metadata: { team: 'sales', legacy_id: null } } });

/** `PUT /connections/:provider/:connectionId` (`full` keys): imports credentials. */
export const ImportConnectionSchema = z
  .strictObject({
    access_token: z.string().min(1).optional(),
    refresh_token: z.string().min(1).optional(),
    expires_at: isoTime().optional(),
    scopes: z.array(z.string()).optional(),
    api_key: z.string().min(1).optional(),
    config: ConfigValuesSchema.optional(),
    metadata: MetadataSchema.optional(),
  })
  .meta({ id: 'ImportConnection' });

export const EVENT_TYPES = [
  'connection.created',
  'connection.refreshed',
  'connection.refresh_failed',
  'connection.reauth_required',
  'connection.deleted',
  'connection.metadata_updated',
  'connection.connect_failed',
] as const;

export const EventTypeSchema = z.enum(EVENT_TYPES);

/** One entry of the event feed, and the body of a webhook delivery; `detail` holds codes and counts, never a secret. */
export const EventSchema = z
  .strictObject({
    id: z.string(),
    type: EventTypeSchema,
    provider: z.string(),
    connection_id: z.string(),
    at: isoTime(),
    detail: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
  })
  .meta({ id: 'Event' });

/** `GET /events` and `GET /connections/:provider/:connectionId/events`, newest first. */
export const EventListSchema = z
  .strictObject({ events: z.array(EventSchema), next_cursor: z.string().nullable() })
  .meta({ id: 'EventList' });

/** `GET /events` query. */
export const ListEventsQuerySchema = z.object({
  provider: ProviderIdSchema.optional(),
  connection_id: ConnectionIdSchema.optional(),
  type: EventTypeSchema.optional(),
  limit: limit().optional(),
  cursor: cursor().optional(),
});

/** `GET /connections/:provider/:connectionId/events` query. */
export const ListConnectionEventsQuerySchema = ListEventsQuerySchema.pick({ limit: true, cursor: true });

/**
 * The headers of a webhook delivery (client/webhook-delivery.ts signs them): Latchkey's own
 * signature and the Standard Webhooks ones, each signature header holding one signature per
 * secret of WEBHOOK_SECRET (a comma list during a rotation), space-separated.
 */
export const WebhookHeadersSchema = z.object({
  'Latchkey-Signature': z
    .string()
    .regex(/^sha256=[0-9a-f]{64}( sha256=[0-9a-f]{64})*$/)
    .meta({
      param: {
        description:
          '`sha256=<hex HMAC-SHA256 of the raw body>`, keyed by the bytes of the secret; one per secret, space-separated',
      },
      example: `sha256=${'0'.repeat(64)}`,
    }),
  'Latchkey-Event-Id': z.string().meta({ param: { description: 'The event id (as `webhook-id`)' }, example: 'evt_x' }),
  'webhook-id': z.string().meta({
    param: { description: 'The event id, the same on every retry of the event: de-duplicate on it' },
    example: 'evt_x',
  }),
  'webhook-timestamp': z
    .string()
    .regex(/^\d+$/)
    .meta({
      param: { description: 'When this attempt was signed, in seconds since 1970 (reject old ones)' },
      example: '1767268800',
    }),
  'webhook-signature': z
    .string()
    .regex(/^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$/)
    .meta({
      param: {
        description:
          '`v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<raw body>">`, keyed by the bytes of the secret; one per secret, space-separated (Standard Webhooks)',
      },
      example: 'v1,AAAA',
    }),
});

// ---------------------------------------------------------------------------------------------
// Types of the routes' answers
// ---------------------------------------------------------------------------------------------

export type ConnectionWire = z.infer<typeof ConnectionSchema>;
export type ConnectionListWire = z.infer<typeof ConnectionListSchema>;
export type ConnectSessionWire = z.infer<typeof ConnectSessionSchema>;
export type TokenWire = z.infer<typeof TokenSchema>;
export type ProviderWire = z.infer<typeof ProviderSchema>;
export type ListConnectionsQuery = z.infer<typeof ListConnectionsQuerySchema>;

/**
 * Parses `input` with `schema`, or throws 400 `invalid_request` naming the first field at fault
 * (`where` when the fault is the whole input: `body`, `query`).
 *
 * @throws AppError `invalid_request` (400)
 */
export function parseRequest<S extends z.ZodType>(schema: S, input: unknown, where: string): z.infer<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.map(String).join('.');
  throw new AppError('invalid_request', `${field || where}: ${issue.message}`);
}

import { OpenAPIRegistry, OpenApiGeneratorV31, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { ERROR_STATUS, type ErrorCode } from '../errors';
import {
  ConnectionListSchema,
  ConnectionParamsSchema,
  ConnectionSchema,
  ConnectSessionRequestSchema,
  ConnectSessionSchema,
  ErrorBodySchema,
  EventListSchema,
  EventSchema,
  HealthSchema,
  ImportConnectionSchema,
  ListConnectionEventsQuerySchema,
  ListEventsQuerySchema,
  LATCHKEY_ERROR_HEADER,
  ListConnectionsQuerySchema,
  MetadataPatchSchema,
  ProviderIdSchema,
  ProviderListSchema,
  ProxyHeadersSchema,
  ReadySchema,
  RETRY_AFTER_HEADER,
  REVOCATION_HEADER_NAME,
  RevocationSchema,
  TokenSchema,
  ConnectionIdSchema,
  WebhookHeadersSchema,
} from '../wire/api-schemas';

/**
 * The OpenAPI 3.1 description of Latchkey's service API, its ops routes and the connect link
 * (CONTRACT "Service API", "Operations", "Additions"), served at `GET /openapi.json`. Generated
 * from the zod schemas of wire/api-schemas.ts, which the routes validate with, so the document
 * cannot drift from the validation. The examples are real: the OpenAPI test calls every
 * operation with them and checks that the answer's status and shape are documented here; the
 * document is linted with Redocly (redocly.yaml lists the warnings accepted, and why).
 */

type Status = (typeof ERROR_STATUS)[ErrorCode];

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });

const codesOf = (status: number) =>
  (Object.keys(ERROR_STATUS) as ErrorCode[]).filter((c) => ERROR_STATUS[c] === status);
const RETRYABLE_STATUSES = new Set<number>([429, 502, 503]);

/** The reusable error responses, one per status, each naming the codes it may carry. */
function registerErrorResponses(registry: OpenAPIRegistry): void {
  // 410 `link_expired` is only ever a page (the connect link's): it has a Page410, no E410.
  for (const status of [...new Set(Object.values(ERROR_STATUS))].filter((s) => s !== 410).sort()) {
    const codes = codesOf(status);
    registry.registerComponent('responses', `E${status}`, {
      description: `Latchkey's own error: ${codes.map((c) => `\`${c}\``).join(', ')}`,
      headers: {
        [LATCHKEY_ERROR_HEADER]: {
          description: 'The error code, also in the body',
          required: true,
          schema: { type: 'string', enum: codes },
        },
        ...(RETRYABLE_STATUSES.has(status)
          ? { [RETRY_AFTER_HEADER]: { $ref: '#/components/headers/RetryAfter' } }
          : {}),
      },
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    });
  }
  // The connect link's errors are pages for a browser, with the same code in Latchkey-Error.
  for (const status of [400, 404, 410, 429] as const) {
    const codes = codesOf(status);
    registry.registerComponent('responses', `Page${status}`, {
      description: `An error page for the browser: ${codes.map((c) => `\`${c}\``).join(', ')}`,
      headers: {
        [LATCHKEY_ERROR_HEADER]: {
          description: 'The error code, also shown on the page',
          required: true,
          schema: { type: 'string', enum: codes },
        },
      },
      content: { 'text/html': { schema: { type: 'string' } } },
    });
  }
}

const errors = (...statuses: Status[]) =>
  Object.fromEntries(statuses.map((s) => [String(s), { $ref: `#/components/responses/E${s}` }]));

/** What every route behind the API key may answer besides its own errors. */
const SERVICE_ERRORS = [401, 403, 429, 500, 503] as const;

const connectionPath = (suffix = '') => `/connections/{provider}/{connectionId}${suffix}`;

function registerServiceRoutes(registry: OpenAPIRegistry): void {
  const connectionParams = ConnectionParamsSchema.extend({
    provider: ProviderIdSchema.meta({ example: 'videoask' }),
    connectionId: ConnectionIdSchema.meta({ example: 'default' }),
  });

  registry.registerPath({
    method: 'post',
    path: '/connect-sessions',
    operationId: 'createConnectSession',
    tags: ['connections'],
    summary: 'A single-use, 15-minute link that lets one browser create or replace one named connection',
    description:
      "`connection_config` holds values for the provider's `connectionConfig`; this release refuses a non-empty one (400 `invalid_request` naming the field) until connections keep their config. Needs a `full` key.",
    request: { body: { required: true, content: json(ConnectSessionRequestSchema) } },
    responses: {
      201: { description: 'Issued', content: json(ConnectSessionSchema) },
      ...errors(400, 404, 413, ...SERVICE_ERRORS),
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/connections',
    operationId: 'listConnections',
    tags: ['connections'],
    summary: 'The connections, ordered by (provider, connection_id); filtered, and paged with `limit`',
    description:
      'Without `limit`, every match (and `next_cursor: null`). A key limited to some providers sees only theirs. Needs `read`.',
    request: { query: ListConnectionsQuerySchema },
    responses: {
      200: { description: 'The connections', content: json(ConnectionListSchema) },
      ...errors(400, 404, ...SERVICE_ERRORS),
    },
  });

  registry.registerPath({
    method: 'get',
    path: connectionPath(),
    operationId: 'getConnection',
    tags: ['connections'],
    summary: 'One connection',
    description:
      'Answers from the plaintext fields, so it also answers for a connection whose credentials no configured key opens. Needs `read`.',
    request: { params: connectionParams },
    responses: {
      200: { description: 'The connection', content: json(ConnectionSchema) },
      ...errors(400, 404, ...SERVICE_ERRORS),
    },
  });

  registry.registerPath({
    method: 'patch',
    path: connectionPath(),
    operationId: 'updateConnectionMetadata',
    tags: ['connections'],
    summary: 'Merges metadata into the connection (a null value removes its key)',
    description:
      'Version-checked, so it never puts back a refresh token that a refresh rotated meanwhile; at most 50 keys and 16 KB once merged. Event `connection.metadata_updated`. Needs `full`.',
    request: { params: connectionParams, body: { required: true, content: json(MetadataPatchSchema) } },
    responses: {
      200: { description: 'The connection as written', content: json(ConnectionSchema) },
      ...errors(400, 404, 409, 413, ...SERVICE_ERRORS),
    },
  });

  registry.registerPath({
    method: 'put',
    path: connectionPath(),
    operationId: 'importConnection',
    tags: ['connections'],
    summary: 'Imports credentials obtained elsewhere (hand-written glue, another tool) as this connection',
    description:
      'oauth2: an `access_token` or a `refresh_token` (a refresh token is never spent to check it; an access token is tried against the provider’s `accountInfo`); api_key: `api_key` (checked with `apiKey.check`). ' +
      'The config is checked against `connectionConfig`, then the provider’s `postConnect` calls run with the credential (a header or URL they fill is left out while they fail). ' +
      'Version-checked like every write; event `connection.created`. A refused credential is 400 `invalid_request` and nothing is stored. Needs `full`.',
    request: {
      params: connectionParams,
      body: {
        required: true,
        // A refresh token only: the one import that needs no live provider to be checked.
        content: { 'application/json': { schema: ImportConnectionSchema, example: { refresh_token: 'rt_example' } } },
      },
    },
    responses: {
      200: { description: 'Replaced a stored connection', content: json(ConnectionSchema) },
      201: { description: 'Created', content: json(ConnectionSchema) },
      ...errors(400, 404, 413, 502, 504, ...SERVICE_ERRORS),
    },
  });

  registry.registerPath({
    method: 'delete',
    path: connectionPath(),
    operationId: 'deleteConnection',
    tags: ['connections'],
    summary: 'Revokes the grant at the provider when it has a `revocationUrl` (RFC 7009), then deletes the connection',
    description:
      'The connection is deleted even when the revocation fails, and also for a provider switched off; `Latchkey-Revocation` says what became of the grant. Needs `full`.',
    request: { params: connectionParams },
    responses: {
      204: {
        description: 'Deleted',
        headers: z.object({ [REVOCATION_HEADER_NAME]: RevocationSchema }),
      },
      ...errors(400, 404, ...SERVICE_ERRORS),
    },
  });

  registry.registerPath({
    method: 'post',
    path: connectionPath('/refresh'),
    operationId: 'refreshConnection',
    tags: ['tokens'],
    summary: 'Forces a refresh of the access token',
    description:
      '409 `reauth_required` when the user must reconnect, `credential_unreadable` when no configured key opens the stored credentials (the message names the key id). Needs `full`.',
    request: { params: connectionParams },
    responses: {
      200: { description: 'The refreshed connection (Cache-Control: no-store)', content: json(ConnectionSchema) },
      ...errors(400, 404, 409, 502, ...SERVICE_ERRORS),
    },
  });

  registry.registerPath({
    method: 'get',
    path: connectionPath('/token'),
    operationId: 'getToken',
    tags: ['tokens'],
    summary: 'A working access token, refreshed first when it is within the provider’s margin of expiry',
    description:
      'For an API-key connection, the key with `token_type: "api_key"`. 409 as for a refresh. Needs `proxy`.',
    request: { params: connectionParams },
    responses: {
      200: { description: 'The token (Cache-Control: no-store)', content: json(TokenSchema) },
      ...errors(400, 404, 409, 502, ...SERVICE_ERRORS),
    },
  });

  registry.registerPath({
    method: 'get',
    path: connectionPath('/events'),
    operationId: 'listConnectionEvents',
    tags: ['events'],
    summary: 'This connection’s events, newest first (at most 100 are kept per connection)',
    description: 'Paged with `limit` (default 50) and `cursor`. Needs `read`.',
    request: { params: connectionParams, query: ListConnectionEventsQuerySchema },
    responses: {
      200: { description: 'The events (Cache-Control: no-store)', content: json(EventListSchema) },
      ...errors(400, 404, ...SERVICE_ERRORS),
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/events',
    operationId: 'listEvents',
    tags: ['events'],
    summary: 'Every connection’s events, newest first, filtered by provider, connection and type',
    description:
      'The store’s event log (100 per connection, 100,000 in all), the same events the webhook delivers. Paged with `limit` (default 50) and `cursor`. A key limited to some providers sees only their events, and 403 `forbidden` for another provider. Needs `read`.',
    request: { query: ListEventsQuerySchema },
    responses: {
      200: { description: 'The events (Cache-Control: no-store)', content: json(EventListSchema) },
      ...errors(400, 404, ...SERVICE_ERRORS),
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/providers',
    operationId: 'listProviders',
    tags: ['connections'],
    summary: 'Every provider that is not switched off, with what a host application needs to draw its buttons',
    description: '`configured` says whether its credentials are set. A key limited to some providers sees only those.',
    responses: {
      200: { description: 'The providers', content: json(ProviderListSchema) },
      ...errors(...SERVICE_ERRORS),
    },
  });
}

/**
 * The proxy's path is documented as one parameter, `path`, that holds the whole rest of the URL,
 * `/` included. OpenAPI path parameters cannot contain `/`, so a generated client encodes
 * `forms/123` as `forms%2F123` by default, which the proxy refuses (an encoded slash could leave
 * `apiBaseUrl`): the document marks the parameter with `x-latchkey-multi-segment` (and AutoRest's
 * `x-ms-skip-url-encoding`), and says how to have openapi-fetch encode it segment by segment.
 */
export const PROXY_PATH_DESCRIPTION =
  "The path on the provider's API, relative to `apiBaseUrl`, with its `/` between segments kept as they are (each segment percent-encoded on its own). " +
  'A client generated from this document must not encode the `/` (`%2F` is refused with 400): with openapi-fetch, pass ' +
  '`pathSerializer: (p, params) => p.replace(/\\{([^}]+)\\}/g, (_, n) => n === "path" ? String(params.path).split("/").map(encodeURIComponent).join("/") : encodeURIComponent(String(params[n])))`.';

/** The proxy passes any query through: one free-form parameter (OpenAPI's form-exploded object). */
export const PROXY_QUERY_DESCRIPTION =
  "The provider's query parameters, passed through as they are: each key of this object is one parameter (`style: form, explode: true`). " +
  "With openapi-fetch, pass `querySerializer: { object: { style: 'form', explode: true } }` (its default for objects is deepObject).";

/** Whatever the provider answers: any media type, any body. */
const PROVIDER_ANSWER = { '*/*': { schema: {} } };

const PROXY_METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options'] as const;

function registerProxy(registry: OpenAPIRegistry): void {
  for (const method of PROXY_METHODS) {
    const hasBody = method === 'post' || method === 'put' || method === 'patch';
    const route: RouteConfig = {
      method,
      path: '/proxy/{provider}/{path}',
      operationId: `proxy${method[0]!.toUpperCase()}${method.slice(1)}`,
      tags: ['proxy'],
      summary: `${method.toUpperCase()} on the provider's API with the stored credential`,
      description:
        "Forwards the method, the path after `/proxy/:provider`, the query and the body (buffered up to `PROXY_BODY_LIMIT_BYTES`) to the provider's `apiBaseUrl`, " +
        "with the stored credential and the provider's `apiHeaders`, and streams the answer back with the provider's status and headers (less hop-by-hop ones). " +
        "The caller's `Authorization`, `Cookie`, `Host`, `Connection-Id`, `Forwarded`, `X-Forwarded-*`, `Proxy-*`, `Latchkey-*` and hop-by-hop headers are never forwarded. " +
        'A path that could leave `apiBaseUrl` (`//`, `@` in the first segment, encoded dots or slashes, backslashes, dot segments, absolute URLs) is refused with 400. ' +
        'Redirects are handed back, never followed. On a provider 401 the credential is refreshed once and the call retried once. ' +
        'Provider answers carry no `Latchkey-Error` header; Latchkey’s own errors do. TRACE and CONNECT are refused. Needs `proxy`.',
      request: {
        params: z.object({
          provider: ProviderIdSchema.meta({ example: 'videoask' }),
          path: z.string().meta({
            description: PROXY_PATH_DESCRIPTION,
            example: 'me',
            param: {
              description: PROXY_PATH_DESCRIPTION,
              'x-latchkey-multi-segment': true,
              'x-ms-skip-url-encoding': true,
            },
          }),
        }),
        query: z.object({
          query: z
            .record(z.string(), z.string())
            .optional()
            .meta({
              param: {
                description: PROXY_QUERY_DESCRIPTION,
                style: 'form',
                explode: true,
              },
            }),
        }),
        headers: ProxyHeadersSchema,
        ...(hasBody
          ? {
              body: {
                required: false,
                description: 'Passed through as it is',
                content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: '*/*' } } },
              },
            }
          : {}),
      },
      responses: {
        200: {
          description: "The provider's answer, passed through",
          ...(method === 'head' ? {} : { content: PROVIDER_ANSWER }),
        },
        default: {
          description: "The provider's answer (any status), passed through",
          ...(method === 'head' ? {} : { content: PROVIDER_ANSWER }),
        },
        ...errors(400, 404, 409, 413, 502, 504, ...SERVICE_ERRORS),
      },
    };
    registry.registerPath(route);
  }
}

function registerConnectLink(registry: OpenAPIRegistry): void {
  registry.registerPath({
    method: 'get',
    path: '/auth/{provider}',
    operationId: 'openConnectLink',
    tags: ['browser'],
    security: [],
    summary: 'The connect link a browser opens (the `url` of a connect session)',
    description:
      'oauth2: a redirect to the provider; api_key, or a required `connectionConfig` value not given: a form. ' +
      'A link that expired or was already used answers 410 `link_expired` (the page says which); no link at all is 400 `invalid_request`. ' +
      '`connection_id` instead of `token` only where ALLOW_ANONYMOUS_CONNECT is on.',
    request: {
      params: z.object({ provider: ProviderIdSchema.meta({ example: 'videoask' }) }),
      query: z.object({
        token: z.string().optional().meta({ description: 'The connect session token' }),
        connection_id: ConnectionIdSchema.optional().meta({ example: 'default' }),
        return_to: z.string().optional().meta({ description: 'As in a connect session' }),
      }),
    },
    responses: {
      200: {
        description: 'A form for the API key or the connection config',
        content: { 'text/html': { schema: z.string() } },
      },
      302: { description: "oauth2: to the provider's authorization endpoint" },
      400: { $ref: '#/components/responses/Page400' },
      404: { $ref: '#/components/responses/Page404' },
      410: { $ref: '#/components/responses/Page410' },
      429: { $ref: '#/components/responses/Page429' },
    },
  });
}

/**
 * The webhook (OpenAPI 3.1 `webhooks`): what Latchkey POSTs to WEBHOOK_URL for every event of
 * the log, at least once, signed with WEBHOOK_SECRET.
 */
function registerWebhook(registry: OpenAPIRegistry): void {
  registry.registerWebhook({
    method: 'post',
    path: 'connectionEvent',
    operationId: 'connectionEvent',
    tags: ['events'],
    security: [],
    summary: 'One connection event, POSTed to WEBHOOK_URL',
    description:
      'Delivered at least once from the event log: verify a signature over the raw bytes before parsing, then de-duplicate on `webhook-id`. ' +
      'Any 2xx acknowledges the event; any other answer, a redirect, a timeout (10 s) or a network failure is retried after 1 s, doubling up to 5 minutes, for `WEBHOOK_MAX_AGE_HOURS` (24), after which the event is dead (kept, retryable). ' +
      'With several secrets in WEBHOOK_SECRET (a rotation), each signature header holds one signature per secret.',
    request: {
      headers: WebhookHeadersSchema,
      body: { required: true, content: json(EventSchema) },
    },
    responses: {
      200: { description: 'Acknowledged (any 2xx does)' },
      400: { description: 'Not acknowledged (as is any answer but a 2xx): delivered again later' },
    },
  });
}

function registerOps(registry: OpenAPIRegistry): void {
  registry.registerPath({
    method: 'get',
    path: '/healthz',
    operationId: 'healthz',
    tags: ['ops'],
    security: [],
    summary: 'Answers while the process runs',
    responses: { 200: { description: 'Alive', content: json(HealthSchema) } },
  });
  registry.registerPath({
    method: 'get',
    path: '/readyz',
    operationId: 'readyz',
    tags: ['ops'],
    security: [],
    summary: 'Answers 200 only while the store answers',
    responses: { 200: { description: 'Ready', content: json(ReadySchema) }, ...errors(503) },
  });
  registry.registerPath({
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    tags: ['ops'],
    security: [],
    summary:
      'Prometheus text: request durations by route, proxy upstream durations by provider, refreshes by result, lock waits',
    responses: {
      200: { description: 'Prometheus exposition format', content: { 'text/plain': { schema: z.string() } } },
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/openapi.json',
    operationId: 'openapi',
    tags: ['ops'],
    security: [],
    summary: 'This document',
    responses: {
      200: {
        description: 'OpenAPI 3.1',
        content: json(z.object({ openapi: z.string(), paths: z.record(z.string(), z.unknown()) })),
      },
    },
  });
}

export interface OpenApiOptions {
  /** PUBLIC_URL: the document's server. */
  publicUrl: string;
}

/** Builds the document; `/openapi.json` serves it with this Latchkey's PUBLIC_URL as the server. */
// Annotated through the generator, so the declaration emit can name the type from any checkout.
export function buildOpenApiDocument(options: OpenApiOptions): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'apiKey', {
    type: 'http',
    scheme: 'bearer',
    description: 'One of CONNECTOR_API_KEYS, or a key of API_KEYS_FILE (with its access: read, proxy or full)',
  });
  registry.registerComponent('headers', 'RetryAfter', {
    description: 'Seconds to wait before trying again',
    schema: { type: 'integer', minimum: 0 },
  });
  registerErrorResponses(registry);
  registerServiceRoutes(registry);
  registerProxy(registry);
  registerConnectLink(registry);
  registerOps(registry);
  registerWebhook(registry);

  // The error body is named by its `.meta({ id })`, for the error responses' $refs.
  return new OpenApiGeneratorV31([
    ...registry.definitions,
    { type: 'schema', schema: ErrorBodySchema },
  ]).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Latchkey service API',
      version: '2',
      description:
        'OAuth connector backend: internal services create connect links, read and delete connections, get working access tokens, ' +
        "and call the provider's API through the proxy without ever handling a refresh token. " +
        'Every route except the ops routes and the connect link needs `Authorization: Bearer <key>`; a key used beyond its access (read, proxy, full) or its providers gets 403 `forbidden`. ' +
        'Errors are `{ "error": { "code", "message" } }` with `Latchkey-Error: <code>`.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [
      {
        url: options.publicUrl,
        description: 'This Latchkey (PUBLIC_URL); internal services may reach it at another address',
      },
    ],
    tags: [
      { name: 'connections', description: 'Connect sessions, stored connections and providers' },
      { name: 'tokens', description: 'Working credentials' },
      { name: 'events', description: 'The event log, and the webhook that delivers it' },
      { name: 'proxy', description: "The provider's API with the stored credential" },
      { name: 'browser', description: 'Where a connect link leads (no API key)' },
      { name: 'ops', description: 'Probes and metrics (no API key)' },
    ],
    security: [{ apiKey: [] }],
  });
}

export type OpenApiDocument = ReturnType<typeof buildOpenApiDocument>;

import { ERROR_STATUS, type ErrorCode } from '../errors';

/**
 * The OpenAPI 3.1 description of Latchkey's service API and ops routes (CONTRACT "Service API"
 * and "Operations"), served at `GET /openapi.json`. The examples are real: the OpenAPI test calls
 * every operation with them and checks that the answer's status and shape are documented here.
 */

type Schema = Record<string, unknown>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Schema, example?: unknown) => ({
  'application/json': { schema, ...(example === undefined ? {} : { example }) },
});

/** Latchkey's own error answers, one reusable response per status, naming the codes it may carry. */
function errorResponse(status: number): Schema {
  const codes = (Object.keys(ERROR_STATUS) as ErrorCode[]).filter((c) => ERROR_STATUS[c] === status);
  return {
    description: `Latchkey's own error: ${codes.map((c) => `\`${c}\``).join(', ')}`,
    headers: {
      'Latchkey-Error': { description: 'The error code, also in the body', schema: { type: 'string', enum: codes } },
      ...(status === 429 || status === 502 || status === 503
        ? { 'Retry-After': { description: 'Seconds to wait', schema: { type: 'integer' } } }
        : {}),
    },
    content: json(ref('Error')),
  };
}

const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [String(s), { $ref: `#/components/responses/E${s}` }]));

const providerParam = {
  name: 'provider',
  in: 'path',
  required: true,
  description: 'A provider id from the catalog',
  schema: { type: 'string', pattern: '^[a-z][a-z0-9-]{1,40}$' },
  example: 'videoask',
};
const connectionParam = {
  name: 'connectionId',
  in: 'path',
  required: true,
  description: "The host application's own id for the user or account",
  schema: { type: 'string', pattern: '^[A-Za-z0-9._:@-]{1,128}$' },
  example: 'default',
};

const proxyOperation = (method: string) => ({
  operationId: `proxy${method[0]!.toUpperCase()}${method.slice(1)}`,
  tags: ['proxy'],
  summary: `${method.toUpperCase()} on the provider's API with the stored credential`,
  description:
    "Forwards the method, the path after `/proxy/:provider`, the query and the body (buffered up to `PROXY_BODY_LIMIT_BYTES`) to the provider's `apiBaseUrl`, " +
    "with the stored credential and the provider's `apiHeaders`, and streams the answer back with the provider's status and headers (less hop-by-hop ones). " +
    "The caller's `Authorization`, `Cookie`, `Host`, `Connection-Id`, `Forwarded`, `X-Forwarded-*`, `Proxy-*` and hop-by-hop headers are never forwarded. " +
    'A path that could leave `apiBaseUrl` (`//`, `@` in the first segment, encoded dots or slashes, backslashes, dot segments, absolute URLs) is refused with 400. ' +
    'Redirects are handed back, never followed. On a provider 401 the credential is refreshed once and the call retried once. ' +
    'Provider answers carry no `Latchkey-Error` header; Latchkey’s own errors do.',
  parameters: [
    providerParam,
    {
      name: 'path',
      in: 'path',
      required: true,
      description: "The path on the provider's API, relative to `apiBaseUrl`; may hold further `/` segments",
      schema: { type: 'string' },
      example: 'me',
    },
    {
      name: 'Connection-Id',
      in: 'header',
      required: false,
      description: 'Which connection to use',
      schema: { type: 'string', pattern: '^[A-Za-z0-9._:@-]{1,128}$', default: 'default' },
      example: 'default',
    },
  ],
  ...(['post', 'put', 'patch'].includes(method)
    ? { requestBody: { required: false, description: 'Passed through as is', content: { '*/*': { schema: {} } } } }
    : {}),
  responses: {
    '200': { description: "The provider's answer, passed through" },
    default: { description: "The provider's answer (any status), passed through" },
    ...errors(400, 401, 404, 409, 413, 429, 502, 503, 504),
  },
});

export const OPENAPI_DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'Latchkey service API',
    version: '1',
    description:
      'OAuth connector backend: internal services create connect links, read and delete connections, get working access tokens, ' +
      "and call the provider's API through the proxy without ever handling a refresh token. " +
      'Every route except the ops routes needs `Authorization: Bearer <one of CONNECTOR_API_KEYS>`.',
  },
  tags: [
    { name: 'connections', description: 'Connect sessions and stored connections' },
    { name: 'tokens', description: 'Working credentials' },
    { name: 'proxy', description: "The provider's API with the stored credential" },
    { name: 'ops', description: 'Probes and metrics (no API key)' },
  ],
  security: [{ apiKey: [] }],
  paths: {
    '/connect-sessions': {
      post: {
        operationId: 'createConnectSession',
        tags: ['connections'],
        summary: 'A single-use, 15-minute link that lets one browser create or replace one named connection',
        requestBody: {
          required: true,
          content: json(ref('ConnectSessionRequest'), { provider: 'videoask', connection_id: 'user-42' }),
        },
        responses: {
          '201': { description: 'Issued', content: json(ref('ConnectSession')) },
          ...errors(400, 401, 404, 413, 429, 503),
        },
      },
    },
    '/connections': {
      get: {
        operationId: 'listConnections',
        tags: ['connections'],
        summary: 'Every connection, or those of one provider',
        parameters: [
          { name: 'provider', in: 'query', required: false, schema: providerParam.schema, example: 'videoask' },
        ],
        responses: {
          '200': { description: 'The connections', content: json(ref('ConnectionList')) },
          ...errors(401, 404, 429, 503),
        },
      },
    },
    '/connections/{provider}/{connectionId}': {
      parameters: [providerParam, connectionParam],
      get: {
        operationId: 'getConnection',
        tags: ['connections'],
        summary: 'One connection',
        responses: {
          '200': { description: 'The connection', content: json(ref('Connection')) },
          ...errors(400, 401, 404, 429, 503),
        },
      },
      delete: {
        operationId: 'deleteConnection',
        tags: ['connections'],
        summary:
          'Revokes the grant at the provider when it has a `revocationUrl` (RFC 7009), then deletes the connection',
        description:
          'The connection is deleted even when the revocation fails; `Latchkey-Revocation` says what happened.',
        responses: {
          '204': {
            description: 'Deleted',
            headers: {
              'Latchkey-Revocation': {
                description:
                  '`revoked`, `failed` (deleted anyway), `not_supported` (no revocationUrl, or nothing to revoke) or `not_possible` (the stored credentials could not be opened: sealed with a key that is no longer configured)',
                schema: { type: 'string', enum: ['revoked', 'failed', 'not_supported', 'not_possible'] },
              },
            },
          },
          ...errors(400, 401, 404, 429, 503),
        },
      },
    },
    '/connections/{provider}/{connectionId}/refresh': {
      parameters: [providerParam, connectionParam],
      post: {
        operationId: 'refreshConnection',
        tags: ['tokens'],
        summary: 'Forces a refresh of the access token',
        responses: {
          '200': { description: 'The refreshed connection', content: json(ref('Connection')) },
          ...errors(400, 401, 404, 409, 429, 502, 503),
        },
      },
    },
    '/connections/{provider}/{connectionId}/token': {
      parameters: [providerParam, connectionParam],
      get: {
        operationId: 'getToken',
        tags: ['tokens'],
        summary: 'A working access token, refreshed first when it is within the provider’s margin of expiry',
        responses: {
          '200': { description: 'The token (Cache-Control: no-store)', content: json(ref('Token')) },
          ...errors(400, 401, 404, 409, 429, 502, 503),
        },
      },
    },
    '/proxy/{provider}/{path}': Object.fromEntries(
      ['get', 'post', 'put', 'patch', 'delete'].map((m) => [m, proxyOperation(m)]),
    ),
    '/healthz': {
      get: {
        operationId: 'healthz',
        tags: ['ops'],
        security: [],
        summary: 'Answers while the process runs',
        responses: {
          '200': {
            description: 'Alive',
            content: json({ type: 'object', required: ['status'], properties: { status: { const: 'ok' } } }),
          },
        },
      },
    },
    '/readyz': {
      get: {
        operationId: 'readyz',
        tags: ['ops'],
        security: [],
        summary: 'Answers 200 only while the store answers',
        responses: {
          '200': {
            description: 'Ready',
            content: json({
              type: 'object',
              required: ['status'],
              properties: { status: { const: 'ready' }, store: { type: 'string' } },
            }),
          },
          ...errors(503),
        },
      },
    },
    '/metrics': {
      get: {
        operationId: 'metrics',
        tags: ['ops'],
        security: [],
        summary:
          'Prometheus text: request durations by route, proxy upstream durations by provider, refreshes by result, lock waits',
        responses: {
          '200': {
            description: 'Prometheus exposition format',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
        },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'openapi',
        tags: ['ops'],
        security: [],
        summary: 'This document',
        responses: {
          '200': { description: 'OpenAPI 3.1', content: json({ type: 'object', required: ['openapi', 'paths'] }) },
        },
      },
    },
  },
  components: {
    securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'One of CONNECTOR_API_KEYS' } },
    responses: Object.fromEntries(
      [...new Set(Object.values(ERROR_STATUS))].filter((s) => s !== 500).map((s) => [`E${s}`, errorResponse(s)]),
    ),
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: { code: { type: 'string', enum: Object.keys(ERROR_STATUS) }, message: { type: 'string' } },
          },
        },
      },
      Connection: {
        type: 'object',
        description: 'Never holds a token',
        required: [
          'provider',
          'connection_id',
          'status',
          'scopes',
          'expires_at',
          'created_at',
          'updated_at',
          'last_refreshed_at',
        ],
        properties: {
          provider: { type: 'string' },
          connection_id: { type: 'string' },
          status: { type: 'string', enum: ['active', 'reauth_required'] },
          scopes: { type: 'array', items: { type: 'string' } },
          expires_at: { type: ['string', 'null'], format: 'date-time' },
          created_at: { type: 'string', format: 'date-time' },
          updated_at: { type: 'string', format: 'date-time' },
          last_refreshed_at: { type: ['string', 'null'], format: 'date-time' },
        },
      },
      ConnectionList: {
        type: 'object',
        required: ['connections'],
        properties: { connections: { type: 'array', items: ref('Connection') } },
      },
      ConnectSessionRequest: {
        type: 'object',
        additionalProperties: false,
        required: ['provider', 'connection_id'],
        properties: {
          provider: { type: 'string' },
          connection_id: { type: 'string', pattern: '^[A-Za-z0-9._:@-]{1,128}$' },
          return_to: {
            type: 'string',
            description: 'An absolute URL on ALLOWED_RETURN_ORIGINS, or a path on PUBLIC_URL',
          },
        },
      },
      ConnectSession: {
        type: 'object',
        required: ['token', 'url', 'expires_at'],
        properties: {
          token: { type: 'string', description: 'Single use' },
          url: {
            type: 'string',
            format: 'uri',
            description: 'The /auth/:provider?token=… link to open in the browser',
          },
          expires_at: { type: 'string', format: 'date-time' },
        },
      },
      Token: {
        type: 'object',
        required: ['access_token', 'token_type', 'expires_at'],
        properties: {
          access_token: { type: 'string' },
          token_type: { type: 'string' },
          expires_at: { type: ['string', 'null'], format: 'date-time' },
        },
      },
    },
  },
} as const;

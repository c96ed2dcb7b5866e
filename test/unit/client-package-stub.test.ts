import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Latchkey, LatchkeyError } from '../../packages/client/src/index';
import type { WireConnection } from '../../packages/client/src/wire';
import {
  ConnectionSchema,
  ErrorBodySchema,
  EventListSchema,
  ImportConnectionSchema,
  ListEventsQuerySchema,
} from '../../src/wire/api-schemas';

/**
 * The client's calls to routes the contract fixes but this server does not serve yet (PUT
 * imports, the event feed), and its reading of error answers, against a stub on loopback. The
 * stub checks each request body and query with the server's wire schemas, and its canned answers
 * are parsed with them too, so the stub speaks the contract and nothing else.
 */

const connection = (connectionId: string): WireConnection =>
  ConnectionSchema.parse({
    provider: 'videoask',
    connection_id: connectionId,
    status: 'active',
    scopes: ['openid'],
    expires_at: '2026-01-01T13:00:00.000Z',
    created_at: '2026-01-01T12:00:00.000Z',
    updated_at: '2026-01-01T12:00:00.000Z',
    last_refreshed_at: null,
    config: {},
    metadata: { team: 'sales' },
    account: { id: 'u1', label: 'ada@example.com' },
  });

const events = EventListSchema.parse({
  events: [
    {
      id: 'evt_2',
      type: 'connection.refresh_failed',
      provider: 'videoask',
      connection_id: 'user-42',
      at: '2026-01-01T12:05:00.000Z',
      detail: { code: 'provider_error', attempts: 2 },
    },
    {
      id: 'evt_1',
      type: 'connection.created',
      provider: 'videoask',
      connection_id: 'user-42',
      at: '2026-01-01T12:00:00.000Z',
      detail: {},
    },
  ],
  next_cursor: 'c2',
});

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

describe('the Node client against a stub of the routes not served yet, and of error answers', () => {
  let server: Server;
  let latchkey: Latchkey;
  const seen: Seen[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let raw = '';
      req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
      req.on('end', () => {
        try {
          answer();
        } catch (err) {
          // A request the contract's schemas refuse: the client's call fails with this status and message.
          res.writeHead(599, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ error: { code: 'invalid_request', message: String(err) } }));
        }
      });
      const answer = () => {
        const body: unknown = raw ? JSON.parse(raw) : undefined;
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        const url = new URL(req.url!, 'http://stub');
        const json = (status: number, value: unknown, headers: Record<string, string> = {}) => {
          res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
          res.end(JSON.stringify(value));
        };
        const error = (status: number, code: string, headers: Record<string, string> = {}) =>
          json(status, ErrorBodySchema.parse({ error: { code, message: `stub ${code}` } }), {
            'Latchkey-Error': code,
            ...headers,
          });
        const route = `${req.method} ${url.pathname}`;
        if (route === 'PUT /connections/videoask/imp-new') {
          ImportConnectionSchema.parse(body);
          return json(201, connection('imp-new'));
        }
        if (route === 'PUT /connections/videoask/imp-old') {
          ImportConnectionSchema.parse(body);
          return json(200, connection('imp-old'));
        }
        if (route === 'PUT /connections/webinargeek/refused') return error(400, 'invalid_request');
        if (route === 'GET /events') {
          ListEventsQuerySchema.parse(Object.fromEntries(url.searchParams));
          return json(200, events);
        }
        if (route === 'GET /connections/videoask/user-42/events') return json(200, events);
        if (route === 'GET /connections/videoask/busy') return error(429, 'rate_limited', { 'Retry-After': '7' });
        if (route === 'GET /connections/videoask/down')
          return error(503, 'store_unavailable', {
            'Retry-After': new Date(Date.now() + 30_000).toUTCString(),
          });
        if (route === 'GET /connections/videoask/scoped') return error(403, 'forbidden');
        if (route === 'GET /connections/videoask/gateway') {
          res.writeHead(502, { 'Content-Type': 'text/html' });
          return res.end('<h1>Bad gateway</h1>');
        }
        res.writeHead(500).end();
      };
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    latchkey = new Latchkey({
      baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      apiKey: 'stub-key',
    });
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function rejection(promise: Promise<unknown>): Promise<LatchkeyError> {
    try {
      await promise;
    } catch (err) {
      if (err instanceof LatchkeyError) return err;
      throw err;
    }
    throw new Error('expected a LatchkeyError');
  }

  it('imports credentials with PUT: snake_case body, created true on 201 and false on 200', async () => {
    const created = await latchkey.connections.import('videoask', 'imp-new', {
      accessToken: 'at',
      refreshToken: 'rt',
      expiresAt: '2026-01-01T13:00:00.000Z',
      scopes: ['openid'],
      metadata: { team: 'sales' },
    });
    expect(created.created).toBe(true);
    expect(created.connection).toMatchObject({ connectionId: 'imp-new', metadata: { team: 'sales' } });
    expect(seen.at(-1)).toMatchObject({
      method: 'PUT',
      body: {
        access_token: 'at',
        refresh_token: 'rt',
        expires_at: '2026-01-01T13:00:00.000Z',
        scopes: ['openid'],
        metadata: { team: 'sales' },
      },
      headers: { authorization: 'Bearer stub-key', 'content-type': 'application/json' },
    });
    expect((await latchkey.connections.import('videoask', 'imp-old', { refreshToken: 'rt' })).created).toBe(false);
    const refused = await rejection(latchkey.connections.import('webinargeek', 'refused', { apiKey: 'wrong' }));
    expect(refused).toMatchObject({ code: 'invalid_request', status: 400 });
    expect(seen.at(-1)?.body).toEqual({ api_key: 'wrong' });
  });

  it('reads the event feed and a connection’s events, newest first, with the cursor', async () => {
    const page = await latchkey.events.list({
      provider: 'videoask',
      connectionId: 'user-42',
      type: 'connection.refresh_failed',
      limit: 2,
    });
    expect(seen.at(-1)?.url).toBe(
      '/events?provider=videoask&connection_id=user-42&type=connection.refresh_failed&limit=2',
    );
    expect(page).toEqual({
      events: [
        {
          id: 'evt_2',
          type: 'connection.refresh_failed',
          provider: 'videoask',
          connectionId: 'user-42',
          at: '2026-01-01T12:05:00.000Z',
          detail: { code: 'provider_error', attempts: 2 },
        },
        expect.objectContaining({ id: 'evt_1', type: 'connection.created' }),
      ],
      nextCursor: 'c2',
    });
    const mine = await latchkey.connections.events('videoask', 'user-42', { cursor: 'c2' });
    expect(seen.at(-1)?.url).toBe('/connections/videoask/user-42/events?cursor=c2');
    expect(mine.events.map((e) => e.id)).toEqual(['evt_2', 'evt_1']);
  });

  it('gives retryAfter from Retry-After, in seconds or as a date, and says which errors are retryable', async () => {
    expect(await rejection(latchkey.connections.get('videoask', 'busy'))).toMatchObject({
      code: 'rate_limited',
      status: 429,
      retryAfter: 7,
      retryable: true,
    });
    const down = await rejection(latchkey.connections.get('videoask', 'down'));
    expect(down).toMatchObject({ code: 'store_unavailable', status: 503, retryable: true });
    expect(down.retryAfter).toBeGreaterThanOrEqual(29);
    expect(down.retryAfter).toBeLessThanOrEqual(31);
    expect(await rejection(latchkey.connections.get('videoask', 'scoped'))).toMatchObject({
      code: 'forbidden',
      status: 403,
      retryAfter: undefined,
      retryable: false,
    });
  });

  it('reports an answer that is not Latchkey’s (a gateway page) as invalid_response with its status', async () => {
    expect(await rejection(latchkey.connections.get('videoask', 'gateway'))).toMatchObject({
      code: 'invalid_response',
      status: 502,
      message: 'Latchkey answered 502',
    });
  });
});

import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createApp, type LatchkeyApp } from '../../src/app';
import { createLogger } from '../../src/logger';
import { startHarness, type Harness } from '../helpers/harness';
import { apiAuth, listen, rawRequest, type Listening } from '../helpers/proxy-harness';
import { seedApiKeyConnection } from '../helpers/seed';

/** What the raw upstream writes for a path: the bytes, and whether it then closes the socket. */
interface RawAnswer {
  bytes: string;
  close: boolean;
}

/** Every answer here is something a proxy must not relay (RFC 9110 §15.6.3: 502 to an invalid response). */
const MALFORMED: Record<string, RawAnswer> = {
  'reason-with-del': { bytes: 'HTTP/1.1 200 O\x7fK\r\nContent-Length: 2\r\n\r\nok', close: false },
  'status-line-with-control-character': { bytes: 'HTTP/1.1 200 OK\x01\r\nContent-Length: 2\r\n\r\nok', close: false },
  'status-line-with-nul': { bytes: 'HTTP/1.1 200 O\x00K\r\nContent-Length: 2\r\n\r\nok', close: false },
  'reason-not-utf8': { bytes: 'HTTP/1.1 200 \xd6k\r\nContent-Length: 2\r\n\r\nok', close: false },
  'no-content-with-length': { bytes: 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello', close: false },
  'no-content-chunked': {
    bytes: 'HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    close: false,
  },
  'status-out-of-range': { bytes: 'HTTP/1.1 999 Nope\r\nContent-Length: 0\r\n\r\n', close: false },
  'garbage-status-line': { bytes: 'FOO BAR BAZ\r\n\r\n', close: false },
  'truncated-header-block': { bytes: 'HTTP/1.1 200 OK\r\nContent-Type: text/pl', close: true },
  'closed-before-headers': { bytes: '', close: true },
};

const ANSWERS: Record<string, RawAnswer> = {
  ...MALFORMED,
  ok: { bytes: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok', close: false },
  // Reason phrases HTTP allows but Node would not write by itself: relayed as the provider gave them.
  'own-reason': { bytes: 'HTTP/1.1 200 Fine\tThanks\r\nContent-Length: 2\r\n\r\nok', close: false },
  'other-code-reason': { bytes: 'HTTP/1.1 201 OK\r\nContent-Length: 2\r\n\r\nok', close: false },
  'empty-reason': { bytes: 'HTTP/1.1 404 \r\nContent-Length: 2\r\n\r\nno', close: false },
  // Valid headers, then the body breaks off: the status is out already, so the caller's connection is cut.
  'body-cut-short': { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b', close: true },
};

interface LogLine {
  level: number;
  reqId?: string;
  code?: string;
  msg: string;
  res?: { statusCode: number };
}

/**
 * Issue 13 part 8: a provider that answers something that is not HTTP (or not relayable as it
 * came) gets the caller the contract's 502 `provider_error` JSON, since no byte went out yet, and
 * the log says it is Latchkey's failure (error level, code provider_error), never a 499 "caller
 * went away". The provider is a raw TCP server writing the bytes by hand.
 */
describe('proxy: malformed upstream answers', () => {
  let h: Harness;
  let upstream: Server;
  let app: LatchkeyApp;
  let latchkey: Listening;
  const lines: LogLine[] = [];
  const sockets = new Set<Socket>();

  /** Answers each request on the connection by its path, from {@link ANSWERS}. */
  function serveRaw(socket: Socket): void {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      const path = /^[A-Z]+ \/([a-z0-9-]+)/.exec(buffered)?.[1] ?? '';
      buffered = buffered.slice(end + 4);
      const answer = ANSWERS[path] ?? ANSWERS.ok!;
      if (answer.close) socket.end(Buffer.from(answer.bytes, 'latin1'));
      else socket.write(Buffer.from(answer.bytes, 'latin1'));
    });
  }

  beforeAll(async () => {
    upstream = createServer(serveRaw);
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const { port } = upstream.address() as AddressInfo;
    h = await startHarness({
      providerSources: () => [
        {
          source: 'test providers',
          entries: [
            {
              id: 'raw',
              displayName: 'Raw',
              authMode: 'api_key',
              apiKey: { header: 'Api-Token' },
              apiBaseUrl: `http://127.0.0.1:${port}`,
            },
          ],
        },
      ],
    });
    await seedApiKeyConnection(h.store, 'raw', 'default', 'raw-key');
    app = createApp({
      config: h.config,
      store: h.store,
      providers: h.providers,
      logger: createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) }),
    });
    latchkey = await listen(app.handler);
  });

  afterAll(async () => {
    await latchkey.close();
    await app.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
    await h.close();
  });

  it.each(Object.keys(MALFORMED))(
    'answers %s with 502 provider_error JSON, logged as Latchkey’s failure and never as 499',
    async (name) => {
      const res = await rawRequest(latchkey.port, { path: `/proxy/raw/${name}`, headers: apiAuth });

      expect(res.status).toBe(502);
      expect(res.headers['latchkey-error']).toBe('provider_error');
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'provider_error' } });

      const reqId = res.headers['x-request-id'];
      const mine = lines.filter((l) => l.reqId === reqId);
      // The error line of the one reporter, and the access line: both at error level, none a 499.
      expect(mine).toContainEqual(expect.objectContaining({ level: 50, code: 'provider_error' }));
      expect(mine).toContainEqual(expect.objectContaining({ level: 50, res: { statusCode: 502 } }));
      expect(mine.filter((l) => l.res?.statusCode === 499)).toEqual([]);
    },
  );

  it('logs an answer the provider broke off after its headers as its failure (502, error), never as 499', async () => {
    const reqId = 'cut-short-1';
    await expect(
      rawRequest(latchkey.port, { path: '/proxy/raw/body-cut-short', headers: { ...apiAuth, 'x-request-id': reqId } }),
    ).rejects.toThrow();
    const waitForLine = async () => {
      for (let i = 0; i < 100 && !lines.some((l) => l.reqId === reqId && l.res); i++) {
        await new Promise((r) => setImmediate(r));
      }
    };
    await waitForLine();
    const access = lines.filter((l) => l.reqId === reqId && l.res);
    expect(access).toEqual([expect.objectContaining({ level: 50, res: { statusCode: 502 } })]);
  });

  it.each([
    ['own-reason', 200, 'Fine\tThanks'],
    ['ok', 200, 'OK'],
    ['other-code-reason', 201, 'OK'],
    // No phrase from the provider: Node's standard one.
    ['empty-reason', 404, 'Not Found'],
  ])('relays the status line of %s as the provider wrote it', async (name, status, phrase) => {
    const res = await rawRequest(latchkey.port, { path: `/proxy/raw/${name}`, headers: apiAuth });
    expect(res).toMatchObject({ status, statusMessage: phrase });
  });

  it('relays a valid answer from the same upstream, also right after a 204 that declared a body', async () => {
    const before = await rawRequest(latchkey.port, { path: '/proxy/raw/ok', headers: apiAuth });
    expect(before).toMatchObject({ status: 200, body: 'ok' });
    // The bytes after that 204 sit on its socket: had it been reused, they would be read as the next answer.
    expect(
      (await rawRequest(latchkey.port, { path: '/proxy/raw/no-content-with-length', headers: apiAuth })).status,
    ).toBe(502);
    const after = await rawRequest(latchkey.port, { path: '/proxy/raw/ok', headers: apiAuth });
    expect(after).toMatchObject({ status: 200, body: 'ok' });
  });
});

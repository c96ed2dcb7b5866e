import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/logger';
import { SERVER_TIMEOUTS, startLatchkey, type RunningLatchkey } from '../../src/server';

const API_KEY = 'server-timeouts-api-key-0123456789';
const CANARY = 'canary-header-5d4c3b2a1f';

/** The raw answer on a socket: its status, headers and body, once the server has closed it. */
interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The socket was closed by the server. */
  closed: true;
}

function answerOf(socket: Socket): Promise<RawAnswer> {
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('close', () => {
      const [head = '', body = ''] = data.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(
        lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
      );
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body, closed: true });
    });
  });
}

describe("the HTTP server's own bounds and refusals", () => {
  const logLines: string[] = [];
  let latchkey: RunningLatchkey;

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logLines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    latchkey = await startLatchkey({
      env: { NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', CONNECTOR_API_KEYS: API_KEY, LOG_LEVEL: 'info' },
      logger: createLogger('info', sink),
      // Short bounds, checked often, so the test does not wait for the production ones.
      serverTimeouts: { headersTimeoutMs: 400, requestTimeoutMs: 800, connectionsCheckingIntervalMs: 50 },
    });
  });

  afterAll(() => latchkey.close());

  async function open(): Promise<Socket> {
    const socket = connect(latchkey.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    return socket;
  }

  /** The contract's shape: JSON `{ error: { code, message } }` with `Latchkey-Error`, and the connection closed. */
  function expectContractError(answer: RawAnswer, status: number, code: string, message: RegExp) {
    expect({ status: answer.status, header: answer.headers['latchkey-error'] }).toEqual({ status, header: code });
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.headers.connection).toBe('close');
    const body = JSON.parse(answer.body) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(body.error.message).toMatch(message);
  }

  it('sets deliberate bounds by default: headers 10 s, request 60 s, keep-alive 65 s, idle socket 2 min', () => {
    expect(SERVER_TIMEOUTS).toEqual({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 60_000,
      keepAliveTimeoutMs: 65_000,
      socketIdleTimeoutMs: 120_000,
      connectionsCheckingIntervalMs: 1_000,
    });
    // The running server carries them (the test's shorter request bounds excepted).
    expect(latchkey.server.keepAliveTimeout).toBe(65_000);
    expect(latchkey.server.timeout).toBe(120_000);
    expect([latchkey.server.headersTimeout, latchkey.server.requestTimeout]).toEqual([400, 800]);
  });

  it('cuts off a body dribbled a byte at a time once the request bound is over, with a 408 in the contract shape', async () => {
    const socket = await open();
    const answer = answerOf(socket);
    socket.write(
      'POST /connect-sessions HTTP/1.1\r\nHost: latchkey.test\r\n' +
        `Authorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`,
    );
    // The client keeps sending: it is the server's bound, not the client's silence, that ends this.
    const dribble = setInterval(() => socket.writable && socket.write(' '), 50);
    const started = performance.now();
    try {
      expectContractError(await answer, 408, 'invalid_request', /not received in time/);
    } finally {
      clearInterval(dribble);
    }
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(700);
    expect(elapsed).toBeLessThan(5_000);
  });

  it('cuts off headers dribbled a byte at a time once the headers bound is over', async () => {
    const socket = await open();
    const answer = answerOf(socket);
    socket.write('GET /healthz HTTP/1.1\r\nHost: latchkey.test\r\nX-Slow: ');
    const dribble = setInterval(() => socket.writable && socket.write('a'), 50);
    try {
      expectContractError(await answer, 408, 'invalid_request', /not received in time/);
    } finally {
      clearInterval(dribble);
    }
  });

  it('answers headers over the size limit with 431 in the contract shape, and logs no header value', async () => {
    const socket = await open();
    const answer = answerOf(socket);
    socket.write(`GET /healthz HTTP/1.1\r\nHost: latchkey.test\r\nCookie: ${CANARY}${'x'.repeat(20_000)}\r\n\r\n`);
    expectContractError(await answer, 431, 'invalid_request', /headers are too large/);
    expect(logLines.some((l) => l.includes('HPE_HEADER_OVERFLOW'))).toBe(true);
    expect(logLines.join('\n')).not.toContain(CANARY);
  });

  it.each([
    ['a malformed request line', 'GARBAGE\r\n\r\n'],
    ['an unknown HTTP version', 'GET /healthz HTTP/9.9\r\nHost: latchkey.test\r\n\r\n'],
    ['a Content-Length that is not a number', 'POST /x HTTP/1.1\r\nHost: latchkey.test\r\nContent-Length: ten\r\n\r\n'],
    [
      'a control character in a header',
      `GET /healthz HTTP/1.1\r\nHost: latchkey.test\r\nX-Bad: a\u0001${CANARY}\r\n\r\n`,
    ],
    [
      'both Content-Length and Transfer-Encoding (request smuggling)',
      'POST /x HTTP/1.1\r\nHost: latchkey.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
  ])('answers %s with 400 in the contract shape', async (_what, request) => {
    const socket = await open();
    const answer = answerOf(socket);
    socket.write(request);
    expectContractError(await answer, 400, 'invalid_request', /not valid HTTP/);
    expect(logLines.join('\n')).not.toContain(CANARY);
  });

  it('still answers a request sent in time, on a connection kept alive', async () => {
    const socket = await open();
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
    const twoAnswers = new Promise<void>((resolve) =>
      socket.on('data', () => (data.match(/HTTP\/1\.1 200/g)?.length === 2 ? resolve() : undefined)),
    );
    socket.write('GET /healthz HTTP/1.1\r\nHost: latchkey.test\r\n\r\n');
    socket.write('GET /healthz HTTP/1.1\r\nHost: latchkey.test\r\n\r\n');
    await twoAnswers;
    expect(data).toContain('"status":"ok"');
    socket.destroy();
  });
});

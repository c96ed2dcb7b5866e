import { Writable } from 'node:stream';
import { loggableUrl } from '../../src/http/request-logging';
import { pathWithQueryNames, requestIdOf } from '../../src/wire/access-log';
import { createLogger, withRequestId } from '../../src/logger';

function capture() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return {
    logger: createLogger('trace', sink),
    lines,
    parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('the logger', () => {
  it('blanks credentials in headers, token fields, query and body parameters, and axios request configs', () => {
    const { logger, lines, parsed } = capture();
    logger.info({
      req: { headers: { authorization: 'Bearer secret-1', cookie: 'sid=secret-2', 'api-token': 'secret-3' } },
      headers: { 'x-api-key': 'secret-4', 'set-cookie': 'secret-5' },
      access_token: 'secret-6',
      tokens: { refresh_token: 'secret-7', client_secret: 'secret-8', apiKey: 'secret-9' },
      query: { code: 'secret-10', state: 'secret-11' },
      body: { api_key: 'secret-12' },
      err: {
        message: 'Request failed',
        config: { headers: { Authorization: 'Bearer secret-13' }, data: 'client_secret=secret-14' },
      },
    });
    expect(lines.join('\n')).not.toMatch(/secret-\d+/);
    const line = parsed()[0]!;
    expect((line.req as { headers: Record<string, string> }).headers.authorization).toBe('[redacted]');
    expect(line.access_token).toBe('[redacted]');
    expect((line.query as Record<string, string>).code).toBe('[redacted]');
    expect((line.err as Record<string, unknown>).message).toBe('Request failed');
  });

  it('blanks the input an error carries (body, rawBody, data, headers, config, command args), on the error and its causes', () => {
    const { logger, lines, parsed } = capture();
    const carried = (n: number) => ({
      body: `api_key=secret-${n}a`,
      rawBody: `secret-${n}b`,
      data: { token: `secret-${n}c` },
      headers: { 'x-custom': `secret-${n}d` },
      config: { url: `https://x/?k=secret-${n}e` },
      request: { path: `/secret-${n}f` },
      response: { data: `secret-${n}g` },
      rawPacket: `GET /secret-${n}h`,
      command: { name: 'set', args: [`secret-${n}i`] },
    });
    // Plain objects, as a line may carry them: the redaction is the safety net under the sanitiser.
    logger.error({ err: { message: 'm', ...carried(1), cause: { ...carried(2), cause: { ...carried(3) } } } });
    logger.warn({ error: carried(4), context: { err: carried(5), cause: carried(6) } });
    expect(lines.join('\n')).not.toMatch(/secret-\d+/);
    expect((parsed()[0]!.err as Record<string, unknown>).message).toMatch(/^m\b/);
  });

  it('sanitises every logged Error object: a body-parser error loses its raw body and its quoting message', () => {
    const { logger, lines, parsed } = capture();
    const bodyParserLike = Object.assign(new SyntaxError('Unexpected token \'s\', "secret-20" is not valid JSON'), {
      body: '{"api_key": secret-20}',
      status: 400,
      type: 'entity.parse.failed',
    });
    logger.error({ err: new Error('wrapped', { cause: bodyParserLike }) }, 'failed');
    logger.error(bodyParserLike, 'passed as the object');
    expect(lines.join('\n')).not.toMatch(/secret-\d+/);
    expect(parsed()[0]!.err).toMatchObject({ message: expect.stringContaining('wrapped') });
    expect(parsed()[1]!.err).toMatchObject({ name: 'SyntaxError', status: 400 });
  });

  it('blanks secrets at any depth and in any case, and sanitises an Error under any key', () => {
    const { logger, lines, parsed } = capture();
    const bodyParserLike = Object.assign(new Error('bad'), { body: 'api_key=secret-30', status: 400 });
    logger.warn({
      a: { b: { c: { d: { Refresh_Token: 'secret-31', AUTHORIZATION: 'secret-32' } } } },
      list: [{ password: 'secret-33' }, { nested: [{ clientSecret: 'secret-34' }] }],
      failure: bodyParserLike,
      blob: Buffer.from('secret-35'),
    });
    expect(lines.join('\n')).not.toMatch(/secret-\d+/);
    expect(parsed()[0]).toMatchObject({ failure: { status: 400 } });
  });

  it('keeps the name of the API key that called, but blanks an apiKey field one level down', () => {
    const { logger, parsed } = capture();
    logger.info({ apiKey: 'key-0123abcd', nested: { apiKey: 'secret-36' } });
    expect(parsed()[0]).toMatchObject({ apiKey: 'key-0123abcd', nested: { apiKey: '[redacted]' } });
  });

  it('keeps an error code and other harmless fields that share a name with a secret elsewhere', () => {
    const { logger, parsed } = capture();
    logger.error({ code: 'provider_error', err: { code: 'ECONNREFUSED' }, state: 'draining' }, 'failed');
    expect(parsed()[0]).toMatchObject({ code: 'provider_error', err: { code: 'ECONNREFUSED' }, state: 'draining' });
  });

  it('binds a request id to the lines logged on its behalf, once, and leaves other lines without one', () => {
    const { logger, lines, parsed } = capture();
    withRequestId(logger, 'req-1').info('for the request');
    withRequestId(logger, undefined).info('no request');
    logger.info('outside');
    expect(parsed().map((l) => [l.msg, l.reqId])).toEqual([
      ['for the request', 'req-1'],
      ['no request', undefined],
      ['outside', undefined],
    ]);
    expect(lines[0]!.match(/"reqId"/g)).toHaveLength(1);
  });
});

describe('URLs in the access log', () => {
  it('keeps only the path of the flow routes, whose queries carry codes, states and connect-session tokens', () => {
    expect(loggableUrl('/callback?code=c&state=s&iss=x')).toBe('/callback');
    expect(loggableUrl('/callback/done?x=1')).toBe('/callback/done');
    expect(loggableUrl('/auth/videoask?token=t&return_to=https%3A%2F%2Fapp')).toBe('/auth/videoask');
  });

  it('logs only the names of a proxied query, never a value, whatever the name (SECURITY.md 22)', () => {
    const url =
      '/proxy/videoask/forms?limit=5&api_key=k1&Access_Token=t1&%63ode=c1&hapikey=h1&client-secret=s1&x-api-key=x1';
    const logged = pathWithQueryNames(url);
    expect(logged).toBe('/proxy/videoask/forms?limit&api_key&Access_Token&code&hapikey&client-secret&x-api-key');
    for (const value of ['k1', 't1', 'c1', 'h1', 's1', 'x1', '=']) expect(logged).not.toContain(value);
    expect(pathWithQueryNames('/proxy/videoask/me')).toBe('/proxy/videoask/me');
    expect(pathWithQueryNames('/proxy/videoask/me?')).toBe('/proxy/videoask/me');
    // A name is the caller's text too: it cannot break the line or smuggle markup.
    expect(pathWithQueryNames('/proxy/videoask/me?a%0Ab%22=1')).toBe('/proxy/videoask/me?a%0Ab%22');
  });

  it("keeps values on Latchkey's own routes only for parameters known to be safe (an allowlist)", () => {
    expect(loggableUrl('/connections?provider=videoask&status=active&limit=50&cursor=abc')).toBe(
      '/connections?provider=videoask&status=active&limit=50&cursor=abc',
    );
    // Names no denylist foresaw keep their name and lose their value.
    expect(loggableUrl('/connections?provider=videoask&hapikey=h2&client-secret=s2&Token=t2')).toBe(
      '/connections?provider=videoask&hapikey&client-secret&Token',
    );
    // A safe name in another case is another name: value dropped.
    expect(loggableUrl('/connections?Provider=videoask')).toBe('/connections?Provider');
    expect(loggableUrl('/healthz')).toBe('/healthz');
  });

  it('cuts very long URLs', () => {
    expect(loggableUrl(`/connections?provider=${'x'.repeat(5000)}`).length).toBe(1000);
  });
});

describe('request ids', () => {
  it("takes the caller's X-Request-Id when it is short and plain, and makes a UUID otherwise", () => {
    expect(requestIdOf('abc-123_x.y:z')).toBe('abc-123_x.y:z');
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    expect(requestIdOf(undefined)).toMatch(uuid);
    expect(requestIdOf('has space')).toMatch(uuid);
    expect(requestIdOf('line\nbreak')).toMatch(uuid);
    expect(requestIdOf('x'.repeat(65))).toMatch(uuid);
    expect(requestIdOf(['a', 'b'])).toMatch(uuid);
  });
});

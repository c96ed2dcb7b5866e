import { Writable } from 'node:stream';
import express from 'express';
import supertest from 'supertest';
import { AppError, sanitizeCause, toAppError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import { reportError } from '../../src/wire/error-report';

const CANARY = 'canary-0f9e8d7c6b5a';

function capture() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: createLogger('trace', sink), lines };
}

/** What body-parser passes to `next` for a body it cannot parse, obtained from body-parser itself. */
async function bodyParserError(
  parser: express.RequestHandler,
  contentType: string,
  body: string,
): Promise<Error & Record<string, unknown>> {
  let caught: unknown;
  const app = express();
  app.post('/', parser, (_req, res) => res.end());
  app.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    caught = err;
    res.status(400).end();
  });
  await supertest(app).post('/').set('Content-Type', contentType).send(body);
  return caught as Error & Record<string, unknown>;
}

describe('the cause sanitiser', () => {
  it('keeps only name, code, status and type of an error that carries a request body, and not a message that quotes it', async () => {
    const err = await bodyParserError(express.json(), 'application/json', `{"api_key": ${CANARY}}`);
    expect(String(err.body)).toContain(CANARY); // the premise: body-parser attaches the raw body
    const safe = sanitizeCause(err) as Error & Record<string, unknown>;
    expect(JSON.stringify({ ...safe, message: safe.message, stack: safe.stack })).not.toContain(CANARY);
    expect(safe).toMatchObject({ name: 'SyntaxError', status: 400, type: 'entity.parse.failed' });
    expect(safe.body).toBeUndefined();
  });

  it('drops every carrier field (body, rawBody, data, headers, config, request, response, rawPacket, command, args)', () => {
    for (const field of ['body', 'rawBody', 'data', 'headers', 'config', 'request', 'response', 'rawPacket', 'args']) {
      const err = Object.assign(new Error('upstream failed'), {
        [field]: { secret: CANARY },
        code: 'E_X',
        statusCode: 418,
      });
      const safe = sanitizeCause(err) as Error & Record<string, unknown>;
      expect({ field, out: JSON.stringify(safe) + safe.stack }).toEqual({
        field,
        out: expect.not.stringContaining(CANARY),
      });
      expect(safe).toMatchObject({ message: 'upstream failed', code: 'E_X', status: 418 });
    }
    const redisError = Object.assign(new Error('WRONGTYPE Operation against a key'), {
      command: { name: 'evalsha', args: ['sha', 1, `latchkey:conn:${CANARY}`, CANARY] },
    });
    const safe = sanitizeCause(redisError) as Error & Record<string, unknown>;
    expect(safe.command).toBe('evalsha');
    expect(JSON.stringify(safe)).not.toContain(CANARY);
  });

  it('withholds a message that quotes the body it carries', () => {
    const err = Object.assign(new Error(`could not read "${CANARY}"`), { body: `x=${CANARY}` });
    expect((sanitizeCause(err) as Error).message).not.toContain(CANARY);
    const buffer = Object.assign(new Error(`bad bytes ${CANARY}`), { rawPacket: Buffer.from(`GET / ${CANARY}`) });
    expect((sanitizeCause(buffer) as Error).message).not.toContain(CANARY);
  });

  it('sanitises causes at any depth, without touching the original error', () => {
    const dirty = Object.assign(new Error('parse failed'), { body: CANARY });
    const middle = new Error('middle', { cause: dirty });
    const outer = Object.assign(new Error('outer', { cause: middle }), { code: 'E_OUTER' });
    const safe = sanitizeCause(outer) as Error & { code?: string; cause?: Error & { cause?: Record<string, unknown> } };
    expect(safe).not.toBe(outer);
    expect(safe).toMatchObject({ message: 'outer', code: 'E_OUTER' });
    expect(safe.cause!.message).toBe('middle');
    expect(safe.cause!.cause!.body).toBeUndefined();
    expect(dirty.body).toBe(CANARY);
    const clean = new Error('clean', { cause: new Error('also clean') });
    expect(sanitizeCause(clean)).toBe(clean);
  });

  it('is applied to the cause of every AppError', () => {
    const err = new AppError('provider_error', 'failed', {
      cause: { isAxiosError: true, message: 'Request failed', config: { headers: { Authorization: CANARY } } },
    });
    expect(JSON.stringify(err.cause)).not.toContain(CANARY);
  });
});

describe('library errors as contract errors', () => {
  it('maps body-parser failures by their status, with a message of our own', async () => {
    const cases: Array<[express.RequestHandler, string, string, string, string]> = [
      [express.json(), 'application/json', `{"a": ${CANARY}`, 'invalid_request', 'not valid JSON'],
      [express.json({ limit: 10 }), 'application/json', `{"a":"${CANARY}"}`, 'payload_too_large', 'at most 10 bytes'],
      [express.json(), 'application/json; charset=latin1', `{"a":"${CANARY}"}`, 'invalid_request', 'UTF-8'],
      [
        express.urlencoded({ parameterLimit: 2 }),
        'application/x-www-form-urlencoded',
        `a=1&b=2&c=${CANARY}`,
        'payload_too_large',
        'too many fields',
      ],
    ];
    for (const [parser, type, body, code, message] of cases) {
      const error = toAppError(await bodyParserError(parser, type, body));
      expect({ type, code: error.code, message: error.message }).toEqual({
        type,
        code,
        message: expect.stringContaining(message),
      });
      expect(error.message).not.toContain(CANARY);
    }
  });

  it('maps an unknown 4xx of a library to invalid_request and anything else to internal_error', () => {
    expect(toAppError(Object.assign(new Error('x'), { status: 422 })).code).toBe('invalid_request');
    expect(toAppError(Object.assign(new Error('x'), { statusCode: 404 })).code).toBe('not_found');
    expect(toAppError(new Error('boom')).code).toBe('internal_error');
  });

  it('reports a body-parser failure at info without its cause, and a 5xx at error with a sanitised one', async () => {
    const { logger, lines } = capture();
    const err = await bodyParserError(
      express.urlencoded({ parameterLimit: 1 }),
      'application/x-www-form-urlencoded',
      `csrf=${CANARY}&api_key=${CANARY}`,
    );
    reportError(logger, toAppError(err), { method: 'POST', path: '/auth/webinargeek' });
    reportError(
      logger,
      new AppError('internal_error', 'boom', { cause: Object.assign(new Error('x'), { body: CANARY }) }),
      {
        path: '/x',
      },
    );
    const parsed = lines.map((l) => JSON.parse(l) as { level: number; err?: unknown });
    expect(parsed.map((l) => l.level)).toEqual([30, 50]);
    expect(parsed[0]!.err).toBeUndefined();
    expect(lines.join('\n')).not.toContain(CANARY);
  });
});

import { errors } from 'undici';
import { AppError } from '../../src/errors';
import { DeadlineError, MalformedAnswerError } from '../../src/proxy/proxy-error';
import {
  isConnectionFailure,
  MAX_RETRY_AFTER_MS,
  NO_RETRIES,
  RETRY_HEADROOM_MS,
  retriesFor,
  retryAfterMs,
  RetryBudget,
} from '../../src/proxy/retries';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const PLENTY = 60_000;
const connectionError = (code: string) => Object.assign(new Error(code), { code });

describe('Latchkey-Retries: the header', () => {
  it('defaults to no retry when the header is absent, and shares one budget for it', () => {
    expect(retriesFor(undefined, 'GET')).toBe(NO_RETRIES);
    expect(NO_RETRIES.left).toBe(0);
  });

  it.each(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])('takes 0–3 retries for %s', (method) => {
    expect(retriesFor('0', method).left).toBe(0);
    expect(retriesFor('1', method).left).toBe(1);
    expect(retriesFor('3', method).left).toBe(3);
  });

  it.each(['POST', 'PATCH', 'PROPFIND'])('accepts the header on %s but never retries it', (method) => {
    expect(retriesFor('3', method)).toBe(NO_RETRIES);
  });

  it.each(['4', '-1', '1.0', 'one', '', '1, 2', '01', '+1'])('refuses %p with 400 invalid_request', (value) => {
    expect(() => retriesFor(value, 'GET')).toThrow(AppError);
    try {
      retriesFor(value, 'POST');
    } catch (err) {
      expect(err).toMatchObject({ code: 'invalid_request', status: 400 });
    }
  });

  it('refuses the header given twice', () => {
    expect(() => retriesFor(['1', '2'], 'GET')).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });
});

describe('Retry-After (RFC 9110 §10.2.3)', () => {
  it('reads delay-seconds', () => {
    expect(retryAfterMs('0', NOW)).toBe(0);
    expect(retryAfterMs('5', NOW)).toBe(5000);
    expect(retryAfterMs(' 7 ', NOW)).toBe(7000);
  });

  it('reads an HTTP date in each of the three formats, and a past one as no wait', () => {
    expect(retryAfterMs('Tue, 01 Dec 2026 12:00:03 GMT', NOW)).toBe(3000);
    expect(retryAfterMs('Tuesday, 01-Dec-26 12:00:04 GMT', NOW)).toBe(4000);
    expect(retryAfterMs('Tue Dec  1 12:00:02 2026', NOW)).toBe(2000);
    expect(retryAfterMs('Tue, 01 Dec 2026 11:59:00 GMT', NOW)).toBe(0);
  });

  it('takes anything else as no Retry-After', () => {
    for (const v of [undefined, '', 'soon', '1.5', '-1', '5s', 'Blursday']) expect(retryAfterMs(v, NOW)).toBeNull();
    expect(retryAfterMs(['1', '2'], NOW)).toBeNull();
  });
});

describe('RetryBudget: which answers are retried, and when', () => {
  it('retries a 429 after its Retry-After, up to 10 s, and passes a longer or missing one through', () => {
    const budget = new RetryBudget(3);
    expect(budget.waitForAnswer(429, { 'retry-after': '2' }, PLENTY, NOW)).toBe(2000);
    expect(budget.waitForAnswer(429, { 'retry-after': String(MAX_RETRY_AFTER_MS / 1000) }, PLENTY, NOW)).toBe(10_000);
    expect(budget.waitForAnswer(429, { 'retry-after': '11' }, PLENTY, NOW)).toBe(-1);
    expect(budget.waitForAnswer(429, { 'retry-after': 'Tue, 01 Dec 2026 12:00:30 GMT' }, PLENTY, NOW)).toBe(-1);
    expect(budget.waitForAnswer(429, {}, PLENTY, NOW)).toBe(-1);
  });

  it('retries a 502, 503 or 504 after a backoff that doubles, with jitter in its upper half', () => {
    const low = new RetryBudget(3, () => 0);
    const high = new RetryBudget(3, () => 1);
    for (const [i, ceiling] of [100, 200, 400].entries()) {
      expect(low.waitForAnswer([502, 503, 504][i]!, {}, PLENTY)).toBe(ceiling / 2);
      expect(high.waitForAnswer(503, {}, PLENTY)).toBe(ceiling);
      low.spend();
      high.spend();
    }
    expect(low.left).toBe(0);
    expect(low.waitForAnswer(503, {}, PLENTY)).toBe(-1);
  });

  it('never retries other answers', () => {
    const budget = new RetryBudget(3);
    for (const status of [200, 201, 204, 301, 400, 401, 403, 404, 409, 500, 501, 505]) {
      expect(budget.waitForAnswer(status, { 'retry-after': '1' }, PLENTY)).toBe(-1);
    }
  });

  it('makes no retry whose wait would not leave it time before the deadline', () => {
    const budget = new RetryBudget(3);
    expect(budget.waitForAnswer(429, { 'retry-after': '2' }, 2000 + RETRY_HEADROOM_MS + 1, NOW)).toBe(2000);
    expect(budget.waitForAnswer(429, { 'retry-after': '2' }, 2000 + RETRY_HEADROOM_MS, NOW)).toBe(-1);
    expect(new RetryBudget(3, () => 1).waitForAnswer(503, {}, 100 + RETRY_HEADROOM_MS)).toBe(-1);
  });

  it('retries a connection failure after a backoff, never an answer that is not HTTP nor the deadline', () => {
    const budget = new RetryBudget(1, () => 0);
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']) {
      expect(isConnectionFailure(connectionError(code))).toBe(true);
      expect(budget.waitForFailure(connectionError(code), PLENTY)).toBe(50);
    }
    expect(budget.waitForFailure(new MalformedAnswerError('a 204 answer declares a body'), PLENTY)).toBe(-1);
    expect(budget.waitForFailure(new errors.HTTPParserError('Expected HTTP/'), PLENTY)).toBe(-1);
    expect(budget.waitForFailure(new DeadlineError('in_flight'), PLENTY)).toBe(-1);
    expect(budget.waitForFailure(new errors.HeadersTimeoutError(), PLENTY)).toBe(-1);
    expect(new RetryBudget(0).waitForFailure(connectionError('ECONNREFUSED'), PLENTY)).toBe(-1);
  });
});

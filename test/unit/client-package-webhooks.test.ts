import { createHmac } from 'node:crypto';
import { verifyWebhookSignature } from '../../packages/client/src/index';
import { signWebhookBody } from '../../src/client/webhooks';

/**
 * The client package's verifier of Latchkey's webhooks (CONTRACT "Events and webhooks"): the
 * Standard Webhooks scheme (checked against the specification's own example), the legacy
 * `Latchkey-Signature` signed by the server's own signer, rotation and the timestamp tolerance.
 */

const SECRET = 'webhook-secret-0123456789';
const BODY = '{"id":"evt_1","type":"connection.created","provider":"videoask","connection_id":"user-42"}';
const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const TS = String(NOW / 1000);

const standard = (secret: string, id: string, ts: string, body: string) =>
  `v1,${createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${id}.${ts}.${body}`).digest('base64')}`;

const headersFor = (signature: string, ts = TS) => ({
  'webhook-id': 'evt_1',
  'webhook-timestamp': ts,
  'webhook-signature': signature,
});

describe('verifyWebhookSignature (the client package)', () => {
  it('accepts the Standard Webhooks specification’s own example (secret given as bytes)', () => {
    const key = Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64');
    const headers = {
      'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      'webhook-timestamp': '1614265330',
      'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    };
    const body = '{"test": 2432232314}';
    expect(verifyWebhookSignature({ secret: key, body, headers, now: 1614265330_000 })).toBe(true);
    expect(verifyWebhookSignature({ secret: key, body: `${body} `, headers, now: 1614265330_000 })).toBe(false);
  });

  it('accepts a Standard Webhooks delivery keyed by the bytes of WEBHOOK_SECRET, from a Headers or a Node headers object', () => {
    const signature = standard(SECRET, 'evt_1', TS, BODY);
    expect(verifyWebhookSignature({ secret: SECRET, body: BODY, headers: headersFor(signature), now: NOW })).toBe(true);
    expect(
      verifyWebhookSignature({
        secret: SECRET,
        body: new TextEncoder().encode(BODY),
        headers: new Headers(headersFor(signature)),
        now: NOW,
      }),
    ).toBe(true);
  });

  it('refuses a changed body, another id, another secret, or a missing header', () => {
    const signature = standard(SECRET, 'evt_1', TS, BODY);
    const ok = { secret: SECRET, body: BODY, headers: headersFor(signature), now: NOW };
    expect(verifyWebhookSignature({ ...ok, body: BODY.replace('user-42', 'user-43') })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, headers: { ...headersFor(signature), 'webhook-id': 'evt_2' } })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, secret: 'another-secret' })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, secret: '' })).toBe(false);
    const { 'webhook-timestamp': _dropped, ...withoutTimestamp } = headersFor(signature);
    expect(verifyWebhookSignature({ ...ok, headers: withoutTimestamp })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, headers: headersFor(signature.replace('v1,', 'v2,')) })).toBe(false);
  });

  it('refuses a timestamp outside the tolerance (default 5 minutes), either way', () => {
    const old = String(NOW / 1000 - 301);
    const late = {
      secret: SECRET,
      body: BODY,
      headers: headersFor(standard(SECRET, 'evt_1', old, BODY), old),
      now: NOW,
    };
    expect(verifyWebhookSignature(late)).toBe(false);
    expect(verifyWebhookSignature({ ...late, toleranceSeconds: 600 })).toBe(true);
    const ahead = String(NOW / 1000 + 301);
    expect(
      verifyWebhookSignature({
        secret: SECRET,
        body: BODY,
        headers: headersFor(standard(SECRET, 'evt_1', ahead, BODY), ahead),
        now: NOW,
      }),
    ).toBe(false);
  });

  it('accepts any of several space-separated signatures, with any of several secrets (rotation)', () => {
    const both = `${standard('new-secret-0123456789', 'evt_1', TS, BODY)} ${standard(SECRET, 'evt_1', TS, BODY)}`;
    expect(verifyWebhookSignature({ secret: SECRET, body: BODY, headers: headersFor(both), now: NOW })).toBe(true);
    expect(
      verifyWebhookSignature({ secret: ['new-secret-0123456789'], body: BODY, headers: headersFor(both), now: NOW }),
    ).toBe(true);
    const onlyOld = standard(SECRET, 'evt_1', TS, BODY);
    expect(
      verifyWebhookSignature({
        secret: ['new-secret-0123456789', SECRET],
        body: BODY,
        headers: headersFor(onlyOld),
        now: NOW,
      }),
    ).toBe(true);
  });

  it('accepts the legacy Latchkey-Signature (the server’s own signer) only with legacy: true', () => {
    const headers = { 'latchkey-signature': signWebhookBody(SECRET, BODY) };
    expect(verifyWebhookSignature({ secret: SECRET, body: BODY, headers })).toBe(false);
    expect(verifyWebhookSignature({ secret: SECRET, body: BODY, headers, legacy: true })).toBe(true);
    expect(verifyWebhookSignature({ secret: SECRET, body: `${BODY}\n`, headers, legacy: true })).toBe(false);
    const rotated = { 'Latchkey-Signature': `${signWebhookBody('new-secret', BODY)} ${signWebhookBody(SECRET, BODY)}` };
    expect(verifyWebhookSignature({ secret: SECRET, body: BODY, headers: rotated, legacy: true })).toBe(true);
  });

  it('checks the Standard Webhooks headers when present, even with legacy: true (no downgrade to the scheme without a timestamp)', () => {
    const old = String(NOW / 1000 - 3600);
    const headers = {
      ...headersFor(standard(SECRET, 'evt_1', old, BODY), old),
      'latchkey-signature': signWebhookBody(SECRET, BODY),
    };
    expect(verifyWebhookSignature({ secret: SECRET, body: BODY, headers, now: NOW, legacy: true })).toBe(false);
  });
});

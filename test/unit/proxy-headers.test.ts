import { buildUpstreamHeaders, filterResponseHeaders } from '../../src/proxy/proxy-headers';

const credential = { name: 'Authorization', value: 'Bearer stored-token' };

describe('buildUpstreamHeaders', () => {
  it('drops the caller’s credentials, origin headers, Connection-Id and hop-by-hop headers', () => {
    const out = buildUpstreamHeaders(
      {
        authorization: 'Bearer latchkey-api-key',
        cookie: 'sid=1',
        host: 'latchkey.internal',
        'connection-id': 'user-1',
        forwarded: 'for=10.0.0.1',
        'x-forwarded-for': '10.0.0.1',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'http',
        'x-real-ip': '10.0.0.1',
        'proxy-authorization': 'Basic eA==',
        'proxy-connection': 'keep-alive',
        connection: 'keep-alive, X-Secret-Hop',
        'x-secret-hop': 'never',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        trailer: 'x',
        upgrade: 'websocket',
        'transfer-encoding': 'chunked',
        'content-length': '999',
        expect: '100-continue',
        'latchkey-anything': 'x',
        accept: 'application/json',
        'content-type': 'application/json',
        'organization-id': 'org_1',
      },
      {},
      credential,
      12,
    );
    expect(out).toEqual({
      accept: 'application/json',
      'content-type': 'application/json',
      'organization-id': 'org_1',
      authorization: 'Bearer stored-token',
      'content-length': '12',
    });
  });

  /** SECURITY.md §27: headers that rewrite the target or the method upstream, or forge the caller's address. */
  const targetRewriting = [
    'x-original-url',
    'x-original-uri',
    'x-original-path',
    'x-rewrite-url',
    'x-override-url',
    'x-http-destinationurl',
    'x-envoy-original-path',
    'x-original-host',
    'x-host',
    'x-http-host-override',
    'x-original-method',
    'x-http-method-override',
    'x-http-method',
    'x-method-override',
    'x-middleware-subrequest',
    'x-forwarded-path',
    'x-forwarded-prefix',
    'x-forwarded-uri',
    'x-forwarded-method',
    'x-envoy-original-url',
    'x-envoy-upstream-rq-timeout-ms',
  ];
  const clientAddress = [
    'via',
    'forwarded',
    'x-forwarded',
    'x-forwarded-for',
    'x-real-ip',
    'true-client-ip',
    'x-true-client-ip',
    'x-client-ip',
    'client-ip',
    'cf-connecting-ip',
    'cf-connecting-ipv6',
    'cf-pseudo-ipv4',
    'fastly-client-ip',
    'x-cluster-client-ip',
    'x-originating-ip',
    'x-remote-ip',
    'x-remote-addr',
    'x-proxyuser-ip',
    'x-original-forwarded-for',
    'wl-proxy-client-ip',
    'proxy-client-ip',
    'x-appengine-user-ip',
    'x-azure-clientip',
    'x-azure-socketip',
    'x-envoy-external-address',
  ];
  const latchkeyOnly = ['latchkey-retries', 'latchkey-error', 'latchkey-anything'];

  it.each([...targetRewriting, ...clientAddress, ...latchkeyOnly])('never forwards %s', (name) => {
    // Node lower-cases request header names, which makes each of these checks case-insensitive;
    // test/integration/proxy-pinning.test.ts sends them in mixed case on the wire.
    const out = buildUpstreamHeaders({ [name]: 'forged', accept: 'application/json' }, {}, credential, null);
    expect(out).toEqual({ accept: 'application/json', authorization: 'Bearer stored-token' });
  });

  it('still forwards look-alikes outside those families', () => {
    const kept = {
      'x-request-id': 'r-1',
      'x-original-request-id': 'r-0',
      'cf-access-client-id': 'svc.access',
      'x-client-version': '1.4',
      'x-hostname-hint': 'a',
      'client-ip-country': 'FR',
    };
    expect(buildUpstreamHeaders(kept, {}, credential, null)).toEqual({ ...kept, authorization: 'Bearer stored-token' });
  });

  it('adds the provider’s apiHeaders and puts the stored credential last, whatever the case of the names', () => {
    const out = buildUpstreamHeaders(
      { 'api-token': 'caller-supplied', accept: 'text/plain' },
      { Accept: 'application/vnd.api+json' },
      { name: 'Api-Token', value: 'stored-key' },
      null,
    );
    expect(out).toEqual({ accept: 'application/vnd.api+json', 'api-token': 'stored-key' });
  });
});

describe('filterResponseHeaders', () => {
  it('strips hop-by-hop headers, those named in Connection, and any Latchkey-* header', () => {
    const out = filterResponseHeaders(
      {
        connection: 'close, x-hop',
        'x-hop': '1',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        'proxy-authenticate': 'Basic',
        upgrade: 'h2c',
        trailer: 'x',
        'latchkey-error': 'forged',
        'content-type': 'application/json',
        'set-cookie': ['a=1', 'b=2'],
        'x-ratelimit-remaining': '9',
      },
      'req-1',
    );
    expect(out).toEqual({
      'content-type': 'application/json',
      'set-cookie': ['a=1', 'b=2'],
      'x-ratelimit-remaining': '9',
      'X-Request-Id': 'req-1',
    });
  });

  it('puts Latchkey’s request id in place of one the provider sent', () => {
    const out = filterResponseHeaders({ 'x-request-id': 'provider-7', 'content-type': 'text/plain' }, 'req-2');
    expect(out).toEqual({ 'content-type': 'text/plain', 'X-Request-Id': 'req-2' });
  });
});

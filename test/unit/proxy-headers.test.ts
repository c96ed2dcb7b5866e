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
    const out = filterResponseHeaders({
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
    });
    expect(out).toEqual({
      'content-type': 'application/json',
      'set-cookie': ['a=1', 'b=2'],
      'x-ratelimit-remaining': '9',
    });
  });
});

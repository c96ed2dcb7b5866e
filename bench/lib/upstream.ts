import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { reportUsageOnRequest } from './child-process';

/**
 * The provider stand-in: a bare node:http server answering every request with the same ~2 KB
 * JSON document, keep-alive on. It runs in its own process so it never shares the event loop
 * of the server being measured.
 */
export const PAYLOAD = JSON.stringify({
  count: 20,
  results: Array.from({ length: 20 }, (_, i) => ({
    form_id: `form_bench_${String(i).padStart(4, '0')}`,
    title: `Benchmark form number ${i}`,
    created_at: '2026-01-01T00:00:00.000Z',
  })),
});

const body = Buffer.from(PAYLOAD);
const server = createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.send!({ type: 'listening', port: (server.address() as AddressInfo).port, bytes: body.length });
});
reportUsageOnRequest(() => {
  server.close();
});

import type { IncomingMessage, ServerResponse } from 'node:http';
import { loggableUrl, REQUEST_ID_HEADER, requestIdOf } from '../http/request-logging';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';

const ROUTE_LABEL = '/proxy/:provider/*';

/**
 * The proxy's access log line and request metric, written when the exchange is over. It
 * follows the app's access log (request id from a sane `X-Request-Id` or a new one, echoed back;
 * the loggable URL, never headers or bodies; error for 5xx, warn for 4xx) without pino-http,
 * whose per-request child logger costs more CPU than the rest of a proxied call.
 *
 * @returns the request id, for the lines logged while the call is handled
 */
export function recordProxyRequest(
  req: IncomingMessage,
  res: ServerResponse,
  logger: Logger,
  metrics: Metrics,
): string {
  const reqId = requestIdOf(req.headers['x-request-id']);
  res.setHeader(REQUEST_ID_HEADER, reqId);
  const started = performance.now();
  const record = (status: number) => {
    const seconds = (performance.now() - started) / 1000;
    metrics.httpDuration.observe({ route: ROUTE_LABEL, method: req.method ?? 'GET', status: String(status) }, seconds);
    const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
    if (!logger.isLevelEnabled(level)) return;
    const url = loggableUrl(req.url ?? '');
    logger[level](
      {
        reqId,
        req: { method: req.method, url, remoteAddress: req.socket.remoteAddress },
        res: { statusCode: status },
        responseTime: Math.round(seconds * 1000),
      },
      `${req.method} ${url} ${status}`,
    );
  };
  // On 'finish', like the app's access log: the line is written before the connection closes.
  const onFinish = () => {
    res.off('close', onClose);
    record(res.statusCode);
  };
  // 499: the caller closed the connection before the answer was complete (nginx's convention).
  const onClose = () => {
    res.off('finish', onFinish);
    record(499);
  };
  res.once('finish', onFinish);
  res.once('close', onClose);
  return reqId;
}

import type { RequestHandler } from 'express';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';

/** Request durations by route pattern (the pattern, never the raw path: no ids in labels). */
export function requestMetrics(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const end = metrics.httpDuration.startTimer();
    res.once('finish', () => {
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      end({ route, method: req.method, status: String(res.statusCode) });
    });
    next();
  };
}

/** Access log (to be built with pino-http: request id, redaction). */
export function requestLogging(_logger: Logger): RequestHandler {
  return (_req, _res, next) => next();
}

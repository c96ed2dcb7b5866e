import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { AppError } from '../errors';

/**
 * `Authorization: Bearer <one of CONNECTOR_API_KEYS>`, compared in constant time: both sides
 * are hashed first so neither the length nor a prefix of a key shows in the timing.
 */
export function requireApiKey(apiKeys: readonly string[]): RequestHandler {
  const digests = apiKeys.map((k) => createHash('sha256').update(k).digest());
  const ids = digests.map((d) => d.toString('hex').slice(0, 12));
  return (req, res, next) => {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null;
    if (match) {
      const presented = createHash('sha256').update(match[1]!).digest();
      let found = -1;
      digests.forEach((d, i) => {
        if (timingSafeEqual(d, presented)) found = i;
      });
      if (found >= 0) {
        res.locals.apiKeyId = ids[found];
        return next();
      }
    }
    next(new AppError('unauthorized', 'A valid API key is required: Authorization: Bearer <key>'));
  };
}

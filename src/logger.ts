import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Paths pino blanks in every log line: credentials in headers, bodies and errors (SECURITY.md
 * §8). The redaction is a safety net; code never logs a secret on purpose.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'req.headers["api-token"]',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.access_token',
  '*.refresh_token',
  '*.id_token',
  '*.client_secret',
  '*.code_verifier',
  '*.api_key',
  '*.apiKey',
  '*.accessToken',
  '*.refreshToken',
  '*.password',
  '*.token',
  '*.code',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'latchkey' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

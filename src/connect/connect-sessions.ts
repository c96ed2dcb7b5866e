import { z } from 'zod';
import { AppError } from '../errors';
import { randomToken } from '../oauth/random';
import { CONNECT_SESSION_TTL_MS } from '../store';
import { CONNECTION_ID_PATTERN, type FlowDeps } from './authorization-flow';
import { resolveReturnTo } from './return-to';

const connectSessionRequest = z.strictObject({
  provider: z.string().min(1).max(64),
  connection_id: z.string().regex(CONNECTION_ID_PATTERN, 'must match ^[A-Za-z0-9._:@-]{1,128}$'),
  return_to: z.string().max(2048).optional(),
});

export interface IssuedConnectSession {
  token: string;
  url: string;
  expires_at: string;
}

/**
 * Issues a single-use, 15-minute token that lets one browser create or replace one named
 * connection. Only its hash is stored.
 */
export async function createConnectSession(deps: FlowDeps, body: unknown): Promise<IssuedConnectSession> {
  const parsed = connectSessionRequest.safeParse(body ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new AppError('invalid_request', `${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  const { provider: providerId, connection_id, return_to } = parsed.data;
  const provider = deps.providers.requireEnabled(providerId);
  const returnTo = return_to === undefined ? undefined : resolveReturnTo(return_to, deps.config);
  const now = deps.clock.now();
  const token = randomToken(32);
  const expiresAt = now + CONNECT_SESSION_TTL_MS;
  await deps.store.saveConnectSession(token, {
    provider: provider.id,
    connectionId: connection_id,
    returnTo,
    createdAt: now,
    expiresAt,
  });
  return {
    token,
    url: `${deps.config.publicUrl}/auth/${provider.id}?token=${encodeURIComponent(token)}`,
    expires_at: new Date(expiresAt).toISOString(),
  };
}

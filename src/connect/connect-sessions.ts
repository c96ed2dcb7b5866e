import { AppError, isAppError } from '../errors';
import { randomToken } from '../oauth/random';
import { checkConnectionConfig } from '../providers/provider-templates';
import type { Provider } from '../providers/registry';
import { CONNECT_SESSION_TTL_MS, type ConnectSession } from '../store';
import { ConnectSessionRequestSchema, parseRequest, type ConnectSessionWire } from '../wire/api-schemas';
import type { FlowDeps } from './authorization-flow';
import { resolveReturnTo } from './return-to';

export type IssuedConnectSession = ConnectSessionWire;

/**
 * Issues a single-use, 15-minute token that lets one browser create or replace one named
 * connection. Only its hash is stored.
 */
export async function createConnectSession(deps: FlowDeps, body: unknown): Promise<IssuedConnectSession> {
  const {
    provider: providerId,
    connection_id,
    return_to,
    connection_config,
  } = parseRequest(ConnectSessionRequestSchema, body ?? {}, 'body');
  const provider = deps.providers.requireEnabled(providerId);
  // Checked now (400 naming the field); a required value not given is asked for on the form at /auth.
  // An empty value given on purpose is a mistake of the caller's, not a value to ask for later.
  const empty = Object.entries(connection_config ?? {}).find(([, value]) => value === '');
  if (empty) throw new AppError('invalid_request', `connection_config.${empty[0]}: must not be empty`);
  const checked = checkConnectionConfig(provider, connection_config, { partial: true });
  if ('problems' in checked) {
    const [first] = checked.problems;
    throw new AppError(
      'invalid_request',
      `connection_config${first!.name ? `.${first!.name}` : ''}: ${first!.message}`,
    );
  }
  const returnTo = return_to === undefined ? undefined : resolveReturnTo(return_to, deps.config);
  const now = deps.clock.now();
  const token = randomToken(32);
  const expiresAt = now + CONNECT_SESSION_TTL_MS;
  await deps.store.saveConnectSession(token, {
    provider: provider.id,
    connectionId: connection_id,
    returnTo,
    ...(Object.keys(checked.config).length ? { config: checked.config } : {}),
    createdAt: now,
    expiresAt,
  });
  return {
    token,
    url: `${deps.config.publicUrl}/auth/${provider.id}?token=${encodeURIComponent(token)}`,
    expires_at: new Date(expiresAt).toISOString(),
  };
}

/** Why a browser may not connect with the link it brought (each has its own page text). */
export type LinkProblem = 'missing' | 'expired' | 'used' | 'other_provider';

const LINK_ERROR_CODE = {
  missing: 'invalid_request',
  expired: 'link_expired',
  used: 'link_expired',
  other_provider: 'invalid_request',
} as const;

/**
 * A connect link that cannot be used: no link at all (400 `invalid_request`), an expired or
 * already used one (410 `link_expired`, told apart in `problem` and in the message), or one
 * issued for another provider (400). Never `unauthorized`: that is the service API key's code.
 */
export class ConnectLinkError extends AppError {
  constructor(
    readonly problem: LinkProblem,
    message: string,
  ) {
    super(LINK_ERROR_CODE[problem], message);
    this.name = 'ConnectLinkError';
  }
}

export function isConnectLinkError(err: unknown): err is ConnectLinkError {
  return isAppError(err) && err instanceof ConnectLinkError;
}

/** What `/auth` reads before it takes a link: tokens are 43 base64url characters; allow some room. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{16,128}$/;

/** A connect link taken from the store by one request: see {@link claimConnectLink}. */
export interface ClaimedLink {
  token: string;
  session: ConnectSession;
}

const EXPIRED_OR_UNKNOWN =
  'This connect link has expired or is not one Latchkey issued. A link works for 15 minutes: ask the application for a new one.';

/**
 * Takes the link `token` for `provider`, or refuses it. The store's take is one compare-and-set
 * that checks the provider and leaves a used marker in place of the link, so of two concurrent
 * uses exactly one gets it, a link for another provider is left untouched (a wrong request does
 * not use it up), and a spent link keeps saying "already used" for an hour after its use. The
 * caller gives the link back ({@link releaseConnectLink}) when it fails before the flow is
 * written.
 */
export async function claimConnectLink(deps: FlowDeps, token: string, provider: Provider): Promise<ClaimedLink> {
  const taken = TOKEN_SHAPE.test(token)
    ? await deps.store.takeConnectSession(token, { provider: provider.id })
    : ({ kind: 'unknown' } as const);
  switch (taken.kind) {
    case 'ok':
      return { token, session: taken.session };
    case 'used':
      throw new ConnectLinkError(
        'used',
        'This connect link was already used. A link works once: ask the application for a new one.',
      );
    case 'other_provider':
      throw new ConnectLinkError('other_provider', 'This connect link is for another provider.');
    case 'expired':
    case 'unknown':
      throw new ConnectLinkError('expired', EXPIRED_OR_UNKNOWN);
  }
}

/** Puts a claimed link back, unused: the request that claimed it failed before starting a flow. */
export async function releaseConnectLink(deps: FlowDeps, link: ClaimedLink): Promise<void> {
  await deps.store.restoreConnectSession(link.token, link.session);
}

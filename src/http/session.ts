import session, { type SessionData } from 'express-session';
import type { RequestHandler } from 'express';
import type { Config } from '../config';
import { AppError } from '../errors';
import type { Store } from '../store';

/** What Latchkey keeps in a browser's session. */
export interface LatchkeySession {
  /** The result of the last flow in this browser, shown on the Connect page. */
  lastResult?: {
    provider: string;
    connectionId: string;
    status: 'connected' | 'denied' | 'error';
    code?: string;
    at: number;
  };
  /** Connections made in this browser: the Connect page shows these and no one else's. */
  connections?: Array<{ provider: string; connectionId: string; accountId?: string; connectedAt?: number }>;
  /** A popup flow's result, handed once to /callback/done. */
  popupResult?: {
    provider: string;
    connectionId: string;
    status: 'connected' | 'denied' | 'error';
    code?: string;
    openerOrigin: string;
  };
  /** An api_key form in progress: what the posted key is for, and its CSRF token. */
  apiKeyFlow?: {
    provider: string;
    connectionId: string;
    returnTo: string;
    csrf: string;
    mode: 'redirect' | 'popup';
    openerOrigin?: string;
    expiresAt: number;
    /** The connection's config values, checked (from the link or the config form). */
    config?: Record<string, string>;
  };
  /** A config form in progress (a required `connectionConfig` value the link did not give), and its CSRF token. */
  configFlow?: {
    provider: string;
    connectionId: string;
    returnTo: string;
    csrf: string;
    mode: 'redirect' | 'popup';
    openerOrigin?: string;
    expiresAt: number;
    /** Values the link gave already. */
    config: Record<string, string>;
  };
  /** Marks the session as started, so that it is saved and its id stays stable. */
  started?: boolean;
}

declare module 'express-session' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface SessionData extends LatchkeySession {}
}

const SESSION_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * express-session on Latchkey's own Store, so sessions share the one Redis connection. The store
 * seals each session (it holds the connect-session binding and CSRF tokens) and keys it by a hash
 * of the session id, never the id (SECURITY.md 20); a session it cannot open reads as none, so a
 * fresh one starts. A store failure is an error, never a silently empty session: the request
 * fails closed (503).
 */
export class LatchkeySessionStore extends session.Store {
  constructor(private readonly store: Store) {
    super();
  }

  override get(sid: string, callback: (err: unknown, session?: SessionData | null) => void): void {
    this.store.getBrowserSession(sid).then(
      (raw) => callback(null, raw ? (JSON.parse(raw) as SessionData) : null),
      (err) => callback(asStoreError(err)),
    );
  }

  override set(sid: string, data: SessionData, callback?: (err?: unknown) => void): void {
    this.store.setBrowserSession(sid, JSON.stringify(data), ttlOf(data)).then(
      () => callback?.(),
      (err) => callback?.(asStoreError(err)),
    );
  }

  override touch(sid: string, data: SessionData, callback?: () => void): void {
    this.set(sid, data, () => callback?.());
  }

  override destroy(sid: string, callback?: (err?: unknown) => void): void {
    this.store.destroyBrowserSession(sid).then(
      () => callback?.(),
      (err) => callback?.(asStoreError(err)),
    );
  }
}

function ttlOf(data: SessionData): number {
  const expires = data.cookie?.expires ? new Date(data.cookie.expires).getTime() - Date.now() : SESSION_TTL_MS;
  return Math.max(1000, expires);
}

function asStoreError(err: unknown): unknown {
  return err instanceof AppError
    ? err
    : new AppError('store_unavailable', 'The session store is unavailable', { cause: err });
}

/**
 * Own cookie name, HttpOnly, SameSite=Lax (Strict would drop the cookie on the way back from
 * the provider), Secure when PUBLIC_URL is https (SECURITY.md §9).
 */
export function sessionMiddleware(config: Config, store: Store): RequestHandler {
  return session({
    name: 'latchkey.sid',
    secret: config.sessionSecrets,
    store: new LatchkeySessionStore(store),
    resave: false,
    saveUninitialized: false,
    rolling: false,
    proxy: config.trustProxy !== false,
    cookie: {
      httpOnly: true,
      sameSite: 'lax',
      secure: config.publicUrl.startsWith('https:'),
      maxAge: SESSION_TTL_MS,
      path: new URL(config.publicUrl).pathname.replace(/\/?$/, '/'),
    },
  });
}

/** Saves the session now (so its id is known to the store before the browser leaves). */
export function saveSession(req: { session: session.Session }): Promise<void> {
  return new Promise((resolve, reject) => req.session.save((err) => (err ? reject(asStoreError(err)) : resolve())));
}

/** A new session id with the same data (SECURITY.md §7: regenerated when a connection is made). */
export function regenerateSession(req: { session: session.Session & Partial<SessionData> }): Promise<void> {
  const keep: LatchkeySession = {
    lastResult: req.session.lastResult,
    connections: req.session.connections,
    popupResult: req.session.popupResult,
    started: true,
  };
  return new Promise((resolve, reject) =>
    req.session.regenerate((err) => {
      if (err) return reject(asStoreError(err));
      Object.assign(req.session, keep);
      resolve();
    }),
  );
}

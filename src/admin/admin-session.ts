import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { CookieOptions, Response } from 'express';
import type { Clock } from '../clock';
import { AppError } from '../errors';
import { randomToken } from '../oauth/random';
import type { Store } from '../store';

/**
 * The operator console's own sessions (CONTRACT "Operator console"), apart from the Connect
 * page's: another cookie (`latchkey.admin`, HttpOnly, SameSite=Strict, path `/admin`, Secure
 * when PUBLIC_URL is https), and records in the store's browser-session storage under ids of
 * their own (`admin:<token>`), so they are sealed and keyed by a hash of the id like the Connect
 * page's, and neither kind can be read as the other. A session ends 12 hours after sign-in, at
 * sign-out, or when its key leaves ADMIN_API_KEYS.
 */

export const ADMIN_SESSION_COOKIE = 'latchkey.admin';
/** The sign-in form's CSRF token, before there is a session (a double-submitted cookie). */
export const SIGN_IN_COOKIE = 'latchkey.admin.signin';
export const ADMIN_SESSION_TTL_MS = 12 * 60 * 60 * 1000;
const SIGN_IN_FORM_TTL_MS = 30 * 60 * 1000;
const STORE_ID_PREFIX = 'admin:';
/** What a cookie value may look like: a base64url token, nothing else is looked up. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{20,100}$/;

export interface AdminSession {
  /** The store id's token (the cookie's value): kept to end the session. */
  token: string;
  /** The signed-in key's name (`key-<8 hex>`), written in every log line of its actions. */
  keyName: string;
  /** The CSRF token of every form of this session. */
  csrf: string;
  createdAt: number;
  expiresAt: number;
}

interface StoredSession {
  kind: 'admin';
  keyName: string;
  csrf: string;
  createdAt: number;
  expiresAt: number;
}

/** One cookie of the `Cookie` header (RFC 6265 §5.4), or undefined. */
export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return TOKEN_PATTERN.test(value) ? value : undefined;
  }
  return undefined;
}

/** Whether a posted token equals the expected one, in constant time for tokens of one length. */
export function sameToken(posted: unknown, expected: string): boolean {
  if (typeof posted !== 'string') return false;
  const a = Buffer.from(posted);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface AdminSessionsOptions {
  store: Pick<Store, 'getBrowserSession' | 'setBrowserSession' | 'destroyBrowserSession'>;
  clock: Clock;
  /** PUBLIC_URL: https makes the cookies Secure; its path is the console's base. */
  publicUrl: string;
  /** Whether a key of this name is still in force. */
  keyInForce(name: string): boolean;
}

export interface AdminSessions {
  /** The request's live session, or undefined (none, expired, or its key removed: then ended). */
  current(req: IncomingMessage): Promise<AdminSession | undefined>;
  /** Starts a session for `keyName` and sets its cookie (a new id at every sign-in). */
  start(res: Response, keyName: string): Promise<AdminSession>;
  /** Ends the session and clears its cookie. */
  end(res: Response, session: AdminSession): Promise<void>;
  /** The sign-in form's CSRF token: the cookie's when it has one, else a new one set now. */
  signInToken(req: IncomingMessage, res: Response): string;
  /** Whether a posted sign-in form carries this browser's sign-in token. */
  isSignInForm(req: IncomingMessage, posted: unknown): boolean;
}

export function createAdminSessions(options: AdminSessionsOptions): AdminSessions {
  const { store, clock } = options;
  const url = new URL(options.publicUrl);
  const cookie = (maxAge: number): CookieOptions => ({
    httpOnly: true,
    sameSite: 'strict',
    secure: url.protocol === 'https:',
    path: `${url.pathname.replace(/\/$/, '')}/admin`,
    maxAge,
  });
  const storeId = (token: string) => `${STORE_ID_PREFIX}${token}`;
  const storeFailure = (err: unknown) =>
    new AppError('store_unavailable', 'The session store is unavailable', { cause: err });

  const read = async (token: string): Promise<StoredSession | undefined> => {
    const raw = await store.getBrowserSession(storeId(token)).catch((err: unknown) => {
      // Fail closed: a store that does not answer is an error, never a signed-out page.
      throw storeFailure(err);
    });
    if (!raw) return undefined;
    try {
      const parsed = JSON.parse(raw) as Partial<StoredSession>;
      return parsed.kind === 'admin' && typeof parsed.keyName === 'string' && typeof parsed.csrf === 'string'
        ? (parsed as StoredSession)
        : undefined;
    } catch {
      return undefined;
    }
  };

  return {
    async current(req) {
      const token = readCookie(req, ADMIN_SESSION_COOKIE);
      if (!token) return undefined;
      const stored = await read(token);
      if (!stored) return undefined;
      if (stored.expiresAt <= clock.now() || !options.keyInForce(stored.keyName)) {
        await store.destroyBrowserSession(storeId(token)).catch(() => undefined);
        return undefined;
      }
      return { token, ...stored };
    },
    async start(res, keyName) {
      const token = randomToken(32);
      const now = clock.now();
      const stored: StoredSession = {
        kind: 'admin',
        keyName,
        csrf: randomToken(32),
        createdAt: now,
        expiresAt: now + ADMIN_SESSION_TTL_MS,
      };
      await store
        .setBrowserSession(storeId(token), JSON.stringify(stored), ADMIN_SESSION_TTL_MS)
        .catch((err: unknown) => {
          throw storeFailure(err);
        });
      res.cookie(ADMIN_SESSION_COOKIE, token, cookie(ADMIN_SESSION_TTL_MS));
      res.clearCookie(SIGN_IN_COOKIE, { ...cookie(0), maxAge: undefined });
      return { token, ...stored };
    },
    async end(res, session) {
      await store.destroyBrowserSession(storeId(session.token)).catch((err: unknown) => {
        throw storeFailure(err);
      });
      res.clearCookie(ADMIN_SESSION_COOKIE, { ...cookie(0), maxAge: undefined });
    },
    signInToken(req, res) {
      const existing = readCookie(req, SIGN_IN_COOKIE);
      if (existing) return existing;
      const token = randomToken(32);
      res.cookie(SIGN_IN_COOKIE, token, cookie(SIGN_IN_FORM_TTL_MS));
      return token;
    },
    isSignInForm(req, posted) {
      const expected = readCookie(req, SIGN_IN_COOKIE);
      return expected !== undefined && sameToken(posted, expected);
    },
  };
}

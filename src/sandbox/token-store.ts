import { randomBytes } from 'node:crypto';

/** How long a pending consent request stays answerable. */
export const PENDING_REQUEST_TTL_MS = 10 * 60 * 1000;
/** Authorization code lifetime; RFC 6749 §4.1.2 recommends at most 10 minutes, VideoAsk-like servers use far less. */
export const AUTHORIZATION_CODE_TTL_MS = 60 * 1000;

/** The validated parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3) awaiting consent. */
export interface AuthorizationRequest {
  clientId: string;
  redirectUri: string;
  scope: string;
  state: string | undefined;
  codeChallenge: string | undefined;
  audience: string | undefined;
}

interface Expiring {
  expiresAt: number;
}

interface AuthorizationCodeRecord extends AuthorizationRequest, Expiring {
  /** Set once the code was exchanged; the family it started, so a replay can revoke it (RFC 6749 §4.1.2). */
  redeemedFamilyId: string | undefined;
}

interface AccessTokenRecord extends Expiring {
  familyId: string;
  scope: string;
  revoked: boolean;
}

interface RefreshTokenRecord {
  familyId: string;
  scope: string;
  state: 'active' | 'rotated' | 'revoked';
}

interface TokenFamily {
  clientId: string;
  revoked: boolean;
}

/** A read-only view of a stored authorization code. */
export type AuthorizationCode = Readonly<AuthorizationCodeRecord>;
/** A read-only view of a stored refresh token. */
export type RefreshToken = Readonly<RefreshTokenRecord> & { readonly clientId: string };

/** Result of looking up a bearer access token (RFC 6750 §3.1). */
export type AccessTokenStatus = { status: 'valid'; scope: string } | { status: 'expired' } | { status: 'invalid' };

/** Generates an opaque random token: `prefix` + base64url of `bytes` random bytes. */
export function randomToken(prefix: string, bytes = 32): string {
  return prefix + randomBytes(bytes).toString('base64url');
}

/**
 * In-memory state of the sandbox authorization server: pending consent requests, authorization codes and
 * token families. A family is everything descended from one authorization code, so it can be revoked as a whole
 * when a code or a rotated refresh token is replayed (RFC 6749 §10.4, §10.5).
 */
export class TokenStore {
  private readonly pending = new Map<string, { request: AuthorizationRequest; expiresAt: number }>();
  private readonly codes = new Map<string, AuthorizationCodeRecord>();
  private readonly families = new Map<string, TokenFamily>();
  private readonly accessTokens = new Map<string, AccessTokenRecord>();
  private readonly refreshTokens = new Map<string, RefreshTokenRecord>();

  constructor(private readonly now: () => number) {}

  /** Forgets every request, code and token. */
  clear(): void {
    this.pending.clear();
    this.codes.clear();
    this.families.clear();
    this.accessTokens.clear();
    this.refreshTokens.clear();
  }

  /** Keeps an authorization request server-side until the user decides; returns its opaque id. */
  savePendingRequest(request: AuthorizationRequest): string {
    const id = randomToken('sbx_req_', 18);
    this.pending.set(id, { request, expiresAt: this.now() + PENDING_REQUEST_TTL_MS });
    return id;
  }

  /** Removes and returns a pending request, or undefined when unknown or older than 10 minutes. */
  takePendingRequest(id: string): AuthorizationRequest | undefined {
    const entry = this.pending.get(id);
    this.pending.delete(id);
    return entry && !this.isExpired(entry) ? entry.request : undefined;
  }

  /** Issues a single-use authorization code bound to the approved request (RFC 6749 §4.1.2). */
  issueAuthorizationCode(request: AuthorizationRequest): string {
    const code = randomToken('sbx_code_', 24);
    this.codes.set(code, {
      ...request,
      expiresAt: this.now() + AUTHORIZATION_CODE_TTL_MS,
      redeemedFamilyId: undefined,
    });
    return code;
  }

  /** Looks up a code, whether or not it was already used; undefined when unknown. */
  findAuthorizationCode(code: string): AuthorizationCode | undefined {
    return this.codes.get(code);
  }

  /** True when a code (or pending request) is past its lifetime. */
  isExpired(entry: Expiring): boolean {
    return this.now() >= entry.expiresAt;
  }

  /** Makes a code unusable without it counting as redeemed (after a failed exchange attempt). */
  discardAuthorizationCode(code: string): void {
    this.codes.delete(code);
  }

  /** Records that a code was exchanged, starting the token family it descends into. */
  redeemAuthorizationCode(code: string): string {
    const record = this.codes.get(code);
    if (!record) throw new Error('Unknown authorization code');
    const familyId = this.startFamily(record.clientId);
    record.redeemedFamilyId = familyId;
    return familyId;
  }

  /** Starts a new token family for a client (also used to seed tokens without the browser step). */
  startFamily(clientId: string): string {
    const familyId = randomToken('fam_', 12);
    this.families.set(familyId, { clientId, revoked: false });
    return familyId;
  }

  /** Issues a Bearer access token in a family, valid for `ttlSeconds`. */
  issueAccessToken(familyId: string, scope: string, ttlSeconds: number): string {
    const token = randomToken('sbx_at_');
    this.accessTokens.set(token, {
      familyId,
      scope,
      revoked: false,
      expiresAt: this.now() + ttlSeconds * 1000,
    });
    return token;
  }

  /** Issues a refresh token in a family (RFC 6749 §1.5). */
  issueRefreshToken(familyId: string, scope: string): string {
    const token = randomToken('sbx_rt_');
    this.refreshTokens.set(token, { familyId, scope, state: 'active' });
    return token;
  }

  /** Classifies an access token presented to the API; revocation wins over expiry. */
  checkAccessToken(token: string): AccessTokenStatus {
    const record = this.accessTokens.get(token);
    if (!record || record.revoked || this.isFamilyRevoked(record.familyId)) return { status: 'invalid' };
    if (this.isExpired(record)) return { status: 'expired' };
    return { status: 'valid', scope: record.scope };
  }

  /** Looks up a refresh token, reporting `revoked` when its family was revoked. */
  findRefreshToken(token: string): RefreshToken | undefined {
    const record = this.refreshTokens.get(token);
    const family = record && this.families.get(record.familyId);
    if (!record || !family) return undefined;
    const state = family.revoked ? 'revoked' : record.state;
    return { ...record, state, clientId: family.clientId };
  }

  /** Marks a refresh token as used by a rotation; presenting it again is a replay. */
  markRefreshTokenRotated(token: string): void {
    const record = this.refreshTokens.get(token);
    if (record) record.state = 'rotated';
  }

  /** Revokes every access and refresh token of a family. */
  revokeFamily(familyId: string): void {
    const family = this.families.get(familyId);
    if (family) family.revoked = true;
  }

  /**
   * Revokes one token as RFC 7009 §2.1 describes: an access token alone, a refresh token together with
   * its whole family. Returns false when the token is unknown (which is still a success for the client).
   */
  revokeToken(token: string): boolean {
    const access = this.accessTokens.get(token);
    if (access) {
      access.revoked = true;
      return true;
    }
    const refresh = this.refreshTokens.get(token);
    if (refresh) {
      refresh.state = 'revoked';
      this.revokeFamily(refresh.familyId);
      return true;
    }
    return false;
  }

  /** Makes every issued access token expired as of now. */
  expireAllAccessTokens(): void {
    const now = this.now();
    for (const record of this.accessTokens.values()) record.expiresAt = Math.min(record.expiresAt, now);
  }

  private isFamilyRevoked(familyId: string): boolean {
    return this.families.get(familyId)?.revoked ?? true;
  }
}

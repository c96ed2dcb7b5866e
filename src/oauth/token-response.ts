import { z } from 'zod';
import { AppError } from '../errors';
import { readFieldPath } from '../providers/provider-templates';

/**
 * A token endpoint's success answer (RFC 6749 §5.1), parsed once at the edge. Providers get the
 * details wrong: `expires_in` comes as a string, `token_type` in lower case, `scope` missing.
 */
const tokenResponseSchema = z.object({
  access_token: z.string().min(1),
  token_type: z.string().min(1).optional(),
  expires_in: z
    .union([
      z.number(),
      z
        .string()
        .regex(/^\s*\d+(\.\d+)?\s*$/)
        .transform(Number),
      z.null(),
    ])
    .optional()
    .refine((n) => n === undefined || n === null || (Number.isFinite(n) && n >= 0), 'must be a non-negative number'),
  refresh_token: z.string().min(1).optional().nullable(),
  scope: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .nullable(),
  id_token: z.string().optional().nullable(),
});

export interface TokenSet {
  accessToken: string;
  tokenType: string;
  /** ms epoch, or null when the provider gave no `expires_in`. */
  expiresAt: number | null;
  refreshToken?: string;
  /** Granted scopes, when the provider says (RFC 6749 §5.1: omitted means "as requested"). */
  scopes?: string[];
  idToken?: string;
  /**
   * The provider's `tokenResponseMetadata` read from the answer (`{ instanceUrl: 'instance_url' }`):
   * only the fields it names, only strings, numbers and booleans. Absent names are left out.
   */
  captured?: Record<string, string | number | boolean>;
}

/**
 * Parses a token endpoint's answer; `capture` names the fields to keep as metadata (the
 * provider's `tokenResponseMetadata`): nothing else of the raw answer is kept.
 */
export function parseTokenResponse(
  body: unknown,
  now: number,
  capture: Readonly<Record<string, string>> = {},
): TokenSet {
  const parsed = tokenResponseSchema.safeParse(body);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || 'body'))].join(', ');
    throw new AppError('provider_error', `The provider's token response is malformed (${fields})`);
  }
  const t = parsed.data;
  const expiresIn = typeof t.expires_in === 'number' ? t.expires_in : undefined;
  const scopes = typeof t.scope === 'string' ? t.scope.split(/[\s,]+/).filter(Boolean) : (t.scope ?? undefined);
  return {
    accessToken: t.access_token,
    tokenType: normalizeTokenType(t.token_type),
    expiresAt: expiresIn === undefined ? null : now + Math.floor(expiresIn * 1000),
    refreshToken: t.refresh_token ?? undefined,
    scopes,
    idToken: t.id_token ?? undefined,
    ...captureFields(body, capture),
  };
}

function captureFields(body: unknown, capture: Readonly<Record<string, string>>): Pick<TokenSet, 'captured'> {
  const names = Object.entries(capture);
  if (names.length === 0) return {};
  const captured: Record<string, string | number | boolean> = {};
  for (const [name, path] of names) {
    const value = readFieldPath(body, path);
    if (value !== undefined) captured[name] = value;
  }
  return { captured };
}

function normalizeTokenType(type: string | undefined): string {
  if (!type || type.toLowerCase() === 'bearer') return 'Bearer';
  return type;
}

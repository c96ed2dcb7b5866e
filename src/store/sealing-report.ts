import type { Logger } from '../logger';
import type { SealingAudit, Store } from './types';

/** How much of the store the start-up check looks at: it must never hold a start-up up for long. */
export const STARTUP_AUDIT_BOUNDS = { maxConnections: 10_000, maxMs: 2_000 } as const;

/**
 * The start-up warning about connections whose credentials no configured key opens, or null
 * when the look found none. Names key ids and counts, never key material.
 */
export function describeSealingAudit(
  audit: SealingAudit,
  bounds: { maxConnections: number; maxMs: number } = STARTUP_AUDIT_BOUNDS,
): string | null {
  if (!audit.unreadable.length) return null;
  const total = audit.unreadable.reduce((n, u) => n + u.connections, 0);
  const parts = audit.unreadable.map((u) =>
    u.reason === 'unknown_key'
      ? `${u.connections} sealed with key "${u.keyId}", which is not in TOKEN_ENCRYPTION_KEYS`
      : u.reason === 'wrong_key'
        ? `${u.connections} sealed with key "${u.keyId}", which the configured key of that id does not open (it was changed)`
        : `${u.connections} whose sealed value is malformed`,
  );
  const scope = audit.complete
    ? `all ${audit.checked} stored connections checked`
    : `only the first ${audit.checked} stored connections checked: the check stops after ${bounds.maxConnections} connections or ${bounds.maxMs} ms, so there may be more`;
  return (
    `${total} stored connection${total === 1 ? '' : 's'} cannot be decrypted: ${parts.join('; ')} (${scope}). ` +
    'They answer 409 credential_unreadable until the key that sealed them is configured again; listing still shows them, and DELETE removes them.'
  );
}

/** Runs the bounded check once at start-up and logs what it found; a store failure is logged, not thrown. */
export async function warnOfUnreadableConnections(store: Store, logger: Logger): Promise<void> {
  try {
    const audit = await store.auditSealingKeys(STARTUP_AUDIT_BOUNDS);
    const message = describeSealingAudit(audit);
    if (message) {
      logger.warn(
        {
          unreadable: audit.unreadable,
          checked: audit.checked,
          complete: audit.complete,
          maxConnections: STARTUP_AUDIT_BOUNDS.maxConnections,
          maxMs: STARTUP_AUDIT_BOUNDS.maxMs,
        },
        message,
      );
    }
  } catch (err) {
    logger.warn({ err }, 'Could not check which keys sealed the stored connections');
  }
}

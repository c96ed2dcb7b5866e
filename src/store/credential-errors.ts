import { AppError } from '../errors';
import type { SealedValueError } from './encryption';

/**
 * 409 `credential_unreadable`: a connection whose stored credentials no configured key opens
 * (SECURITY.md 26). It concerns that connection only; its plaintext fields still list and read.
 * The message names the key id, never key material.
 */
export class UnreadableCredentialError extends AppError {
  readonly keyId: string;
  readonly reason: SealedValueError['reason'];

  constructor(provider: string, connectionId: string, cause: SealedValueError) {
    super(
      'credential_unreadable',
      cause.reason === 'unknown_key'
        ? `The credentials of ${provider} connection "${connectionId}" are sealed with encryption key "${cause.keyId}", which is not in TOKEN_ENCRYPTION_KEYS: add that key again, or delete the connection and connect it anew.`
        : cause.reason === 'wrong_key'
          ? `The credentials of ${provider} connection "${connectionId}" are sealed with encryption key "${cause.keyId}", and the configured key of that id does not open them (it was changed): configure the key that sealed them, or delete the connection and connect it anew.`
          : `The credentials of ${provider} connection "${connectionId}" are not a sealed value Latchkey can read: delete the connection and connect it anew.`,
    );
    this.name = 'UnreadableCredentialError';
    this.keyId = cause.keyId;
    this.reason = cause.reason;
  }
}

export function isUnreadableCredential(err: unknown): err is UnreadableCredentialError {
  return err instanceof UnreadableCredentialError;
}

import type { ConnectionMetadata } from './types';

/** A metadata key (CONTRACT "Connections"): what PATCH, imports and captures may name. */
export const METADATA_KEY_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
export const MAX_METADATA_KEYS = 50;
export const MAX_METADATA_VALUE_LENGTH = 1024;
/** Of the metadata's JSON, keys and values together. */
export const MAX_METADATA_BYTES = 16 * 1024;

/**
 * Why `metadata` may not be stored, or undefined when it may: keys match
 * {@link METADATA_KEY_PATTERN}, values are strings of at most {@link MAX_METADATA_VALUE_LENGTH}
 * characters, finite numbers or booleans, at most {@link MAX_METADATA_KEYS} keys and
 * {@link MAX_METADATA_BYTES} of JSON. The message names the key, never the value.
 */
export function checkMetadata(metadata: unknown): string | undefined {
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) return 'metadata must be an object';
  const entries = Object.entries(metadata as Record<string, unknown>);
  if (entries.length > MAX_METADATA_KEYS) return `metadata holds more than ${MAX_METADATA_KEYS} keys`;
  for (const [key, value] of entries) {
    if (!METADATA_KEY_PATTERN.test(key))
      return `metadata key "${key.slice(0, 64)}" must match ${METADATA_KEY_PATTERN.source}`;
    if (typeof value === 'string') {
      if (value.length > MAX_METADATA_VALUE_LENGTH)
        return `metadata.${key} is longer than ${MAX_METADATA_VALUE_LENGTH} characters`;
    } else if (typeof value === 'number') {
      if (!Number.isFinite(value)) return `metadata.${key} must be a finite number`;
    } else if (typeof value !== 'boolean') {
      return `metadata.${key} must be a string, a number or a boolean`;
    }
  }
  if (Buffer.byteLength(JSON.stringify(metadata)) > MAX_METADATA_BYTES)
    return `metadata is larger than ${MAX_METADATA_BYTES / 1024} KB`;
  return undefined;
}

/**
 * `base` with `patch` merged in: a null value removes its key. A fresh object; neither input is
 * changed.
 */
export function mergeMetadata(
  base: ConnectionMetadata,
  patch: Readonly<Record<string, ConnectionMetadata[string] | null>>,
): ConnectionMetadata {
  const merged: ConnectionMetadata = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  return merged;
}

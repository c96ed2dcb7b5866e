import type { ProviderSource } from '../providers/registry';

/**
 * A PROVIDERS_FILE-style override that points the built-in `videoask` entry at a sandbox:
 * the same mechanism an operator uses, so the demo and the tests run the real code path.
 */
export function videoaskSandboxSource(sandboxUrl: string, fields: Record<string, unknown> = {}): ProviderSource {
  return {
    source: 'sandbox override',
    entries: [
      {
        id: 'videoask',
        authorizationUrl: `${sandboxUrl}/authorize`,
        tokenUrl: `${sandboxUrl}/oauth/token`,
        revocationUrl: `${sandboxUrl}/oauth/revoke`,
        apiBaseUrl: sandboxUrl,
        ...fields,
      },
    ],
  };
}

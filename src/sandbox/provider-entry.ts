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

/**
 * Points the built-in API-key providers, WebinarGeek and Livestorm (API token), at the sandbox's
 * stand-ins (`/webinargeek`, `/livestorm`), which accept the keys in `sandbox.options.apiKeys`
 * (the demo's `sbx-demo-api-key`). Their `apiKey.check` stays as built in, so a pasted key is
 * checked by the sandbox and never reaches the real service.
 */
export function apiKeySandboxSource(sandboxUrl: string): ProviderSource {
  return {
    source: 'sandbox override',
    entries: [
      { id: 'webinargeek', apiBaseUrl: `${sandboxUrl}/webinargeek` },
      { id: 'livestorm-token', apiBaseUrl: `${sandboxUrl}/livestorm` },
    ],
  };
}

/** What `npm run demo` passes: every built-in provider that can reach the sandbox, pointed at it. */
export function demoProviderSources(sandboxUrl: string): ProviderSource[] {
  return [videoaskSandboxSource(sandboxUrl), apiKeySandboxSource(sandboxUrl)];
}

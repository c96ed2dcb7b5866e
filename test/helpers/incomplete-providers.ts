import type { HarnessOptions } from './harness';

/** VideoAsk-like, whose post-connect call fails (the sandbox answers 503): its `organization-id` header is left out. */
export function brokenProviderEntry(sandboxUrl: string): Record<string, unknown> {
  return {
    id: 'broken',
    displayName: 'Broken',
    authMode: 'oauth2',
    authorizationUrl: `${sandboxUrl}/authorize`,
    tokenUrl: `${sandboxUrl}/oauth/token`,
    apiBaseUrl: sandboxUrl,
    apiHeaders: { 'organization-id': '{metadata.organizationId}' },
    postConnect: [{ method: 'GET', path: '/status/503', capture: { organizationId: 'results.0.organization_id' } }],
  };
}

/** Its API URL takes `{metadata.site}`, captured from the token response's `site`. */
export function sitedProviderEntry(sandboxUrl: string): Record<string, unknown> {
  return {
    id: 'sited',
    displayName: 'Sited',
    authMode: 'oauth2',
    authorizationUrl: `${sandboxUrl}/authorize`,
    tokenUrl: `${sandboxUrl}/oauth/token`,
    apiBaseUrl: `${sandboxUrl}/echo/t/{metadata.site}`,
    tokenResponseMetadata: { site: 'site' },
  };
}

/**
 * Two sandbox providers whose connections come out incomplete (issue 10 part 2): `broken`,
 * VideoAsk-like, whose post-connect call fails (the sandbox answers 503), so its
 * `organization-id` header is left out; and `sited`, whose API URL takes `{metadata.site}` from a
 * token response that lacks it, so its calls answer 409 `connection_incomplete`.
 */
export const incompleteProviders: Pick<HarnessOptions, 'env' | 'providerSources'> = {
  env: {
    BROKEN_CLIENT_ID: 'sandbox-client',
    BROKEN_CLIENT_SECRET: 'sandbox-secret',
    SITED_CLIENT_ID: 'sandbox-client',
    SITED_CLIENT_SECRET: 'sandbox-secret',
  },
  providerSources: (sandboxUrl) => [
    {
      source: 'test providers',
      entries: [brokenProviderEntry(sandboxUrl), sitedProviderEntry(sandboxUrl)],
    },
  ],
};

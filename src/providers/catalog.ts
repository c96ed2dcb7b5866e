import type { ProviderInput } from './schema';

/**
 * The built-in providers, as data. VideoAsk is taken from its public API documentation;
 * the others are best known, and Interact (no published API) is marked unverified and meant
 * to be overridden through PROVIDERS_FILE.
 *
 * VideoAsk wants an `organization-id` header on most calls (`/forms`, `/questions`, …): the
 * first organisation of `GET /organizations` (`{ results: [{ organization_id, name }] }`) is
 * captured at connect and sent; a caller's own `organization-id` wins (another organisation).
 *
 * Livestorm has two entries: `livestorm` is its OAuth, open to technology partners only;
 * `livestorm-token` is the personal API token most teams use, sent raw in `Authorization`.
 */
export const BUILT_IN_PROVIDERS: readonly ProviderInput[] = [
  {
    id: 'videoask',
    displayName: 'VideoAsk',
    authMode: 'oauth2',
    authorizationUrl: 'https://auth.videoask.com/authorize',
    tokenUrl: 'https://auth.videoask.com/oauth/token',
    revocationUrl: null,
    scopes: ['openid', 'profile', 'email', 'offline_access'],
    scopeSeparator: ' ',
    authorizationParams: { audience: 'https://api.videoask.com/' },
    pkce: false,
    tokenRequest: { bodyFormat: 'form', clientAuth: 'body' },
    issuer: null,
    apiBaseUrl: 'https://api.videoask.com',
    apiHeaders: { 'organization-id': '{metadata.organizationId}' },
    refreshMarginSeconds: 300,
    accountInfo: { path: '/me', idField: 'user_id', labelField: 'email' },
    postConnect: [{ method: 'GET', path: '/organizations', capture: { organizationId: 'results.0.organization_id' } }],
  },
  {
    id: 'livestorm',
    displayName: 'Livestorm',
    authMode: 'oauth2',
    authorizationUrl: 'https://app.livestorm.co/oauth/authorize',
    tokenUrl: 'https://app.livestorm.co/oauth/token',
    revocationUrl: null,
    scopes: ['identity:read', 'events:read'],
    scopeSeparator: ' ',
    authorizationParams: {},
    pkce: true,
    tokenRequest: { bodyFormat: 'form', clientAuth: 'body' },
    issuer: null,
    apiBaseUrl: 'https://api.livestorm.co/v1',
    apiHeaders: { Accept: 'application/vnd.api+json' },
    refreshMarginSeconds: 300,
  },
  {
    id: 'livestorm-token',
    // The same name as the OAuth entry: people know one Livestorm. Configure one of the two (README).
    displayName: 'Livestorm',
    authMode: 'api_key',
    apiKey: { header: 'Authorization', format: '{key}', check: { method: 'GET', path: '/me' } },
    apiBaseUrl: 'https://api.livestorm.co/v1',
    apiHeaders: { Accept: 'application/vnd.api+json' },
  },
  {
    id: 'webinargeek',
    displayName: 'WebinarGeek',
    authMode: 'api_key',
    // Best known: /account answers 401 to a missing or wrong Api-Token; WebinarGeek's public
    // documentation does not name a cheapest authenticated endpoint.
    apiKey: { header: 'Api-Token', format: '{key}', check: { method: 'GET', path: '/account' } },
    apiBaseUrl: 'https://app.webinargeek.com/api/v2',
    apiHeaders: {},
  },
  {
    id: 'interact',
    displayName: 'Interact',
    authMode: 'oauth2',
    verified: false,
    authorizationUrl: 'https://app.tryinteract.com/oauth/authorize',
    tokenUrl: 'https://app.tryinteract.com/oauth/token',
    revocationUrl: null,
    scopes: [],
    scopeSeparator: ' ',
    authorizationParams: {},
    pkce: false,
    tokenRequest: { bodyFormat: 'form', clientAuth: 'body' },
    issuer: null,
    apiBaseUrl: 'https://api.tryinteract.com',
    apiHeaders: {},
    refreshMarginSeconds: 300,
  },
];

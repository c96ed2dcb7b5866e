export * from './types';
export { authHeaderFor, createCredentialSource, type CredentialSourceDeps } from './credential-source';
export {
  createApiClient,
  resolveApiUrl,
  type ApiClient,
  type ApiClientDeps,
  type ApiRequestConfig,
  type ConnectionClient,
} from './api-client';
export { resolveRefreshSettings, type RefreshSettings } from './refresh-settings';
export { DEFAULT_RETRY, type RetryOptions } from './retry-policy';
export {
  createWebhookSink,
  signWebhookBody,
  verifyWebhookSignature,
  type WebhookSink,
  type WebhookSinkOptions,
} from './webhooks';

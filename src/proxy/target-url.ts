/**
 * Path pinning moved below the proxy and the API client, to `src/providers/api-target.ts`, so
 * that the proxy, the client and the post-connect calls share one implementation. This
 * re-export keeps `proxy-handler.ts` compiling; new code imports from there.
 */
export { parseApiBase, resolveTargetPath, type ApiBase } from '../providers/api-target';

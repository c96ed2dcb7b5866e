import type { z } from 'zod';
import type { ErrorCode } from '../../src/errors';
import type { TokenResponseView } from '../../src/http/token-routes';
import type { ProviderView } from '../../src/http/provider-routes';
import type { ConnectionView } from '../../src/http/views';
import type * as Wire from '../../packages/client/src/wire';
import type { LatchkeyErrorCode } from '../../packages/client/src/types';
import {
  CONNECTION_ID_PATTERN,
  ERROR_CODES,
  EVENT_TYPES,
  type ConnectionListSchema,
  type ConnectionSchema,
  type ConnectSessionRequestSchema,
  type ConnectSessionSchema,
  type ErrorBodySchema,
  type EventListSchema,
  type EventSchema,
  type ImportConnectionSchema,
  type ListConnectionsQuerySchema,
  type ListEventsQuerySchema,
  type MetadataPatchSchema,
  type ProviderListSchema,
  type ProviderSchema,
  type RevocationSchema,
  type TokenSchema,
} from '../../src/wire/api-schemas';
import { CONNECTION_ID_PATTERN as FLOW_CONNECTION_ID_PATTERN } from '../../src/connect/authorization-flow';
import type { DeletionRevocation } from '../../src/http/service-routes';

/**
 * The client package's own wire types must be the server's (STYLE "Shapes shared by two layers
 * live below both"): each line below is a type-level equality that `npm run lint`'s tsc checks,
 * so a field added, removed or retyped on either side fails the lint. Requests compare with
 * what the schemas accept (`z.input`, before coercion for query strings: `z.output`), answers with
 * what they produce (`z.output`).
 */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

export const answers: [
  Equal<Wire.WireConnection, z.output<typeof ConnectionSchema>>,
  Equal<Wire.WireConnectionList, z.output<typeof ConnectionListSchema>>,
  Equal<Wire.WireConnectSession, z.output<typeof ConnectSessionSchema>>,
  Equal<Wire.WireToken, z.output<typeof TokenSchema>>,
  Equal<Wire.WireProvider, z.output<typeof ProviderSchema>>,
  Equal<Wire.WireProviderList, z.output<typeof ProviderListSchema>>,
  Equal<Wire.WireEvent, z.output<typeof EventSchema>>,
  Equal<Wire.WireEventList, z.output<typeof EventListSchema>>,
  Equal<Wire.WireErrorBody, z.output<typeof ErrorBodySchema>>,
  Equal<Wire.WireRevocation, z.output<typeof RevocationSchema>>,
] = [true, true, true, true, true, true, true, true, true, true];

export const requests: [
  Equal<Wire.WireConnectSessionRequest, z.input<typeof ConnectSessionRequestSchema>>,
  Equal<Wire.WireMetadataPatch, z.input<typeof MetadataPatchSchema>>,
  Equal<Wire.WireImportRequest, z.input<typeof ImportConnectionSchema>>,
  Equal<Wire.WireListConnectionsQuery, z.output<typeof ListConnectionsQuerySchema>>,
  Equal<Wire.WireListEventsQuery, z.output<typeof ListEventsQuerySchema>>,
] = [true, true, true, true, true];

/** The server's views are the schemas' types too, so what the routes write is what the schemas say. */
export const views: [
  Equal<ConnectionView, z.output<typeof ConnectionSchema>>,
  Equal<TokenResponseView, z.output<typeof TokenSchema>>,
  Equal<ProviderView, z.output<typeof ProviderSchema>>,
  Equal<DeletionRevocation, z.output<typeof RevocationSchema>>,
  Equal<Exclude<LatchkeyErrorCode, 'network_error' | 'invalid_response'>, ErrorCode>,
] = [true, true, true, true, true];

describe('the client package’s wire types and the server’s schemas', () => {
  it('are checked by the type-level equalities above (compiled by npm run lint)', () => {
    expect([...answers, ...requests, ...views].every((same) => same)).toBe(true);
  });

  it('know the same error codes and event types at run time', () => {
    const clientCodes: Record<Wire.WireErrorCode, true> = {
      invalid_request: true,
      invalid_state: true,
      unauthorized: true,
      forbidden: true,
      unknown_provider: true,
      provider_not_enabled: true,
      connection_not_found: true,
      not_found: true,
      reauth_required: true,
      credential_unreadable: true,
      connection_incomplete: true,
      link_expired: true,
      payload_too_large: true,
      rate_limited: true,
      internal_error: true,
      provider_error: true,
      store_unavailable: true,
      upstream_timeout: true,
    };
    expect(Object.keys(clientCodes).sort()).toEqual([...ERROR_CODES].sort());
    const clientEvents: Record<Wire.WireEventType, true> = {
      'connection.created': true,
      'connection.refreshed': true,
      'connection.refresh_failed': true,
      'connection.reauth_required': true,
      'connection.deleted': true,
      'connection.metadata_updated': true,
      'connection.connect_failed': true,
    };
    expect(Object.keys(clientEvents).sort()).toEqual([...EVENT_TYPES].sort());
  });

  it('validate connection ids with the same pattern as the flows', () => {
    expect(CONNECTION_ID_PATTERN.source).toBe(FLOW_CONNECTION_ID_PATTERN.source);
  });
});

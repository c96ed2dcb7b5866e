import type { ConnectionInput } from '../../src/store';
import { ConnectionListSchema } from '../../src/wire/api-schemas';
import { startHarness, type Harness } from '../helpers/harness';
import { connectionInput } from '../helpers/seed';

/**
 * `GET /connections?provider=&status=&q=&limit=&cursor=` (CONTRACT "Additions": listing): every
 * answer parses with the wire schema the document is generated from.
 */
describe('GET /connections: filters and pages', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ store: 'memory' });
    const seed = (connectionId: string, extra: Partial<ConnectionInput>) =>
      h.store.saveConnection(
        connectionInput({ provider: 'videoask', connectionId, credentials: { accessToken: 'a' }, ...extra }),
      );
    await seed('user-1', { account: { id: '1', label: 'Ada@Example.com' } });
    await seed('user-2', { status: 'reauth_required' });
    await seed('user-3', {});
    await seed('team-1', { account: { id: 't', label: 'user-team' } });
    await h.store.saveConnection(
      connectionInput({
        provider: 'webinargeek',
        connectionId: 'user-9',
        authMode: 'api_key',
        expiresAt: null,
        credentials: { apiKey: 'k' },
      }),
    );
  });
  afterAll(() => h.close());

  const list = async (query: string) => {
    const res = await h.api().get(`/connections${query}`);
    expect([res.status, res.headers['latchkey-error']]).toEqual([200, undefined]);
    const body = ConnectionListSchema.parse(res.body);
    return { ids: body.connections.map((c) => `${c.provider}/${c.connection_id}`), next: body.next_cursor };
  };

  it('lists every match in (provider, connection_id) order without limit, with next_cursor null', async () => {
    expect(await list('')).toEqual({
      ids: ['videoask/team-1', 'videoask/user-1', 'videoask/user-2', 'videoask/user-3', 'webinargeek/user-9'],
      next: null,
    });
    expect((await list('?provider=webinargeek')).ids).toEqual(['webinargeek/user-9']);
    expect((await list('?provider=')).ids).toHaveLength(5);
  });

  it('filters by status, and by q as a case-insensitive prefix of the connection id or the account label', async () => {
    expect((await list('?status=reauth_required')).ids).toEqual(['videoask/user-2']);
    expect((await list('?q=USER-&provider=videoask')).ids).toEqual([
      'videoask/team-1',
      'videoask/user-1',
      'videoask/user-2',
      'videoask/user-3',
    ]);
    expect((await list('?q=ada@')).ids).toEqual(['videoask/user-1']);
  });

  it('pages with limit and cursor without gaps or repeats, also while connections are added', async () => {
    const first = await list('?limit=2');
    expect(first.ids).toEqual(['videoask/team-1', 'videoask/user-1']);
    // Added before and after the cursor: the next page starts right after the last one handed out.
    await h.store.saveConnection(connectionInput({ provider: 'videoask', connectionId: 'aaa', credentials: {} }));
    await h.store.saveConnection(connectionInput({ provider: 'videoask', connectionId: 'user-4', credentials: {} }));
    const second = await list(`?limit=2&cursor=${first.next}`);
    expect(second.ids).toEqual(['videoask/user-2', 'videoask/user-3']);
    const third = await list(`?limit=2&cursor=${second.next}`);
    expect(third).toEqual({ ids: ['videoask/user-4', 'webinargeek/user-9'], next: null });
  });

  it.each(['?limit=0', '?limit=1001', '?limit=two', '?status=broken', '?cursor=not-a-cursor', '?limit=1&limit=2'])(
    'refuses %s with 400 invalid_request',
    async (query) => {
      const res = await h.api().get(`/connections${query}`);
      expect([res.status, res.body.error?.code]).toEqual([400, 'invalid_request']);
    },
  );
});

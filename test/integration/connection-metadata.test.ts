import supertest from 'supertest';
import { startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { seedOAuthConnection } from '../helpers/seed';
import { METADATA_KEY_PATTERN } from '../../src/store/connection-values';
import { ConnectionSchema } from '../../src/wire/api-schemas';

/** `PATCH /connections/:provider/:connectionId` and the view's config, metadata and account (CONTRACT "Connections"). */
describe('connection metadata', () => {
  let h: Harness;
  const auth = { Authorization: `Bearer ${TEST_API_KEY}` };
  const patch = (id: string, body: unknown) =>
    supertest(h.app)
      .patch(`/connections/videoask/${id}`)
      .set(auth)
      .send(body as object);

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h.close());

  it('shows config, metadata and account on the view, {} for a connection without them', async () => {
    await seedOAuthConnection(h.store, h.sandbox, { connectionId: 'plain' });
    const res = await h.api().get('/connections/videoask/plain').expect(200);
    expect(res.body).toMatchObject({ config: {}, metadata: {}, account: null });
  });

  it('merges metadata (null removes a key), keeps the credentials and version-checks the write', async () => {
    const { connection, refreshToken } = await seedOAuthConnection(h.store, h.sandbox, {
      connectionId: 'merge',
      metadata: { organizationId: 'org-1', keep: 'yes' },
    });
    const res = await patch('merge', {
      metadata: { organizationId: 'org-2', keep: null, seats: 3, trial: true },
    }).expect(200);
    expect(res.body.metadata).toEqual({ organizationId: 'org-2', seats: 3, trial: true });
    const stored = await h.store.getConnection('videoask', 'merge');
    expect(stored?.metadata).toEqual({ organizationId: 'org-2', seats: 3, trial: true });
    expect(stored?.credentials.refreshToken).toBe(refreshToken);
    expect(stored!.version).toBeGreaterThan(connection.version);
  });

  it('never puts back a refresh token rotated while it wrote: a lost version check reads again', async () => {
    const { connection } = await seedOAuthConnection(h.store, h.sandbox, { connectionId: 'race' });
    const realUpdate = h.store.updateConnection.bind(h.store);
    let raced = false;
    const spy = jest.spyOn(h.store, 'updateConnection').mockImplementation(async (input, expected) => {
      if (!raced) {
        raced = true;
        // A refresh lands between the PATCH's read and its write.
        const { version, ...rest } = (await h.store.getConnection('videoask', 'race'))!;
        await realUpdate({ ...rest, credentials: { ...rest.credentials, refreshToken: 'rotated' } }, version);
      }
      return realUpdate(input, expected);
    });
    try {
      await patch('race', { metadata: { note: 'x' } }).expect(200);
    } finally {
      spy.mockRestore();
    }
    const stored = await h.store.getConnection('videoask', 'race');
    expect(stored?.credentials.refreshToken).toBe('rotated');
    expect(stored?.metadata).toEqual({ note: 'x' });
    expect(stored!.version).toBeGreaterThan(connection.version + 1);
  });

  it.each([
    ['a key that does not match the pattern', { metadata: { '1bad': 'x' } }],
    ['a key longer than 64 characters', { metadata: { ['k'.repeat(65)]: 'x' } }],
    ['a value longer than 1024 characters', { metadata: { k: 'x'.repeat(1025) } }],
    ['an object value', { metadata: { k: { nested: true } } }],
    ['more than 50 keys', { metadata: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 1])) }],
    [
      'more than 16 KB',
      { metadata: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, 'x'.repeat(1000)])) },
    ],
    ['another field', { metadata: {}, config: { subdomain: 'x' } }],
    ['no metadata', {}],
  ])('refuses %s with 400 invalid_request and writes nothing', async (_name, body) => {
    const { connection } = await seedOAuthConnection(h.store, h.sandbox, { connectionId: 'refused' });
    const res = await patch('refused', body).expect(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect((await h.store.getConnectionInfo('videoask', 'refused'))?.version).toBe(connection.version);
  });

  it('refuses a merge that would exceed the bounds', async () => {
    const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, i]));
    await seedOAuthConnection(h.store, h.sandbox, { connectionId: 'full', metadata: many });
    const res = await patch('full', { metadata: { one: 'more' } }).expect(400);
    expect(res.body.error.message).toContain('50 keys');
  });

  it('states one key rule: a key PATCH accepts reads back through the Connection schema, and the document says the same', async () => {
    const doc = (await supertest(h.app).get('/openapi.json').expect(200)).body;
    const { Connection, MetadataPatch } = doc.components.schemas;
    const documented = [
      Connection.properties.metadata.propertyNames.pattern,
      MetadataPatch.properties.metadata.propertyNames.pattern,
    ];
    expect(documented).toEqual([METADATA_KEY_PATTERN.source, METADATA_KEY_PATTERN.source]);
    const rule = new RegExp(documented[0]);

    await seedOAuthConnection(h.store, h.sandbox, { connectionId: 'keys' });
    const accepted = ['a', 'Z', `k${'x'.repeat(63)}`, 'org.id', 'legacy-id', 'snake_case_1', 'organizationId'];
    const sent = Object.fromEntries(accepted.map((key, i) => [key, i]));
    const res = await patch('keys', { metadata: sent }).expect(200);
    expect(ConnectionSchema.parse(res.body).metadata).toEqual(sent);
    const view = await h.api().get('/connections/videoask/keys').expect(200);
    expect(ConnectionSchema.parse(view.body).metadata).toEqual(sent);
    for (const key of accepted) expect(rule.test(key)).toBe(true);

    // And the other way round: what the document refuses, PATCH refuses.
    for (const key of ['1a', '_a', '.a', 'a b', 'a/b', 'k'.repeat(65), 'é', '']) {
      expect(rule.test(key)).toBe(false);
      expect((await patch('keys', { metadata: { [key]: 1 } })).status).toBe(400);
    }
  });

  it('answers 404 for an unknown connection', async () => {
    const res = await patch('nobody', { metadata: { a: 1 } }).expect(404);
    expect(res.body.error.code).toBe('connection_not_found');
  });
});

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import supertest from 'supertest';
import { connectVideoAsk, startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { seedApiKeyConnection } from '../helpers/seed';
import { waitUntil } from '../helpers/latchkey-process';

/** The event log through the service API (CONTRACT "Additions": events), on both stores. */

const WEBINAR_READER = 'webinar-reader-key-0123456789';
const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');

interface EventBody {
  id: string;
  type: string;
  provider: string;
  connection_id: string;
  at: string;
  detail: Record<string, unknown>;
}

describe.each(['redis', 'memory'] as const)('events on the %s store', (storeKind) => {
  let h: Harness;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-events-'));
    const file = join(dir, 'api-keys.json');
    writeFileSync(
      file,
      JSON.stringify([
        { name: 'webinar-reader', sha256: sha256(WEBINAR_READER), access: 'read', providers: ['webinargeek'] },
      ]),
    );
    h = await startHarness({ store: storeKind, env: { API_KEYS_FILE: file, REFRESH_COOLDOWN_MS: '0' } });
  });
  afterAll(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const eventsOf = async (path: string): Promise<EventBody[]> => {
    const res = await h.api().get(path);
    expect(res.status).toBe(200);
    return (res.body as { events: EventBody[] }).events;
  };

  it('records every transition of a connection once, newest first, with codes in detail and no secret', async () => {
    expect((await connectVideoAsk(h.browser(), '?connection_id=journey')).status).toBe(303);
    expect((await h.api().post('/connections/videoask/journey/refresh')).status).toBe(200);
    h.sandbox.failNextTokenRequests(1, 503);
    expect((await h.api().post('/connections/videoask/journey/refresh')).status).toBe(502);
    expect(
      (
        await supertest(h.app)
          .patch('/connections/videoask/journey')
          .set('Authorization', `Bearer ${TEST_API_KEY}`)
          .send({ metadata: { team: 'blue' } })
      ).status,
    ).toBe(200);
    const stored = await h.store.getConnection('videoask', 'journey');
    await h.store.updateConnection(
      { ...stored!, credentials: { ...stored!.credentials, refreshToken: 'sbx_rt_unknown' } },
      stored!.version,
    );
    expect((await h.api().post('/connections/videoask/journey/refresh')).status).toBe(409);
    expect((await h.api().delete('/connections/videoask/journey')).status).toBe(204);

    const expected = [
      'connection.deleted',
      'connection.reauth_required',
      'connection.metadata_updated',
      'connection.refresh_failed',
      'connection.refreshed',
      'connection.created',
    ];
    await waitUntil(async () => (await eventsOf('/connections/videoask/journey/events')).length === expected.length);
    const events = await eventsOf('/connections/videoask/journey/events');
    expect(events.map((e) => e.type)).toEqual(expected);
    for (const e of events) {
      expect(e).toEqual({
        id: expect.stringMatching(/^evt_/),
        type: expect.any(String),
        provider: 'videoask',
        connection_id: 'journey',
        at: new Date(e.at).toISOString(),
        detail: expect.any(Object),
      });
    }
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    expect(events[1]!.detail).toEqual({ code: 'invalid_grant' });
    expect(events[3]!.detail).toMatchObject({ code: 'provider_error' });
    // Nothing from the credentials reaches an event.
    const text = JSON.stringify(events);
    expect(text).not.toMatch(/sbx_(at|rt)_/);

    const feed = await eventsOf('/events?provider=videoask&connection_id=journey&type=connection.refreshed');
    expect(feed.map((e) => e.id)).toEqual([events[4]!.id]);
  });

  it('records a flow that failed at the token endpoint as connection.connect_failed with its code', async () => {
    h.sandbox.failNextTokenRequests(1, 503);
    const done = await connectVideoAsk(h.browser(), '?connection_id=unlucky');
    expect(new URL(done.headers.location!, 'http://x').searchParams.get('status')).toBe('error');
    await waitUntil(async () => (await eventsOf('/connections/videoask/unlucky/events')).length === 1);
    const [failed] = await eventsOf('/connections/videoask/unlucky/events');
    expect(failed).toMatchObject({ type: 'connection.connect_failed', detail: { code: 'provider_error' } });
  });

  it('pages the feed without gaps or repeats while new events arrive', async () => {
    for (let i = 0; i < 7; i++) await seedApiKeyConnection(h.store, 'webinargeek', `page-${i}`, 'wg-key');
    for (let i = 0; i < 7; i++) expect((await h.api().delete(`/connections/webinargeek/page-${i}`)).status).toBe(204);
    await waitUntil(async () => (await eventsOf('/events?provider=webinargeek&limit=100')).length >= 7);
    const all = (await eventsOf('/events?provider=webinargeek&limit=100')).map((e) => e.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let n = 0;
    do {
      const res = await h.api().get(`/events?provider=webinargeek&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      seen.push(...(res.body.events as EventBody[]).map((e) => e.id));
      cursor = res.body.next_cursor as string | null;
      await seedApiKeyConnection(h.store, 'webinargeek', `late-${n}`, 'wg-key');
      expect((await h.api().delete(`/connections/webinargeek/late-${n++}`)).status).toBe(204);
    } while (cursor);
    expect(seen).toEqual(all);
  });

  it('shows a key limited to providers only their events, and refuses another provider', async () => {
    const limited = (path: string) => h.api().get(path).set('Authorization', `Bearer ${WEBINAR_READER}`);
    const feed = await limited('/events?limit=1000');
    expect(feed.status).toBe(200);
    const providers = new Set((feed.body.events as EventBody[]).map((e) => e.provider));
    expect([...providers]).toEqual(['webinargeek']);
    expect((await limited('/events?provider=videoask')).status).toBe(403);
    expect((await limited('/connections/videoask/journey/events')).status).toBe(403);
  });

  it('records a PATCH of metadata as connection.metadata_updated on /events, naming the connection, with no value or secret', async () => {
    expect((await connectVideoAsk(h.browser(), '?connection_id=patched')).status).toBe(303);
    const patch = (metadata: Record<string, unknown>) =>
      supertest(h.app)
        .patch('/connections/videoask/patched')
        .set('Authorization', `Bearer ${TEST_API_KEY}`)
        .send({ metadata });
    expect((await patch({ team: 'meta-canary-blue' })).status).toBe(200);
    expect((await patch({ team: null })).status).toBe(200);
    // A refused merge changes nothing, and so records nothing.
    expect((await patch({ 'bad key!': 'x' })).status).toBe(400);

    const feed = '/events?type=connection.metadata_updated&provider=videoask&connection_id=patched';
    await waitUntil(async () => (await eventsOf(feed)).length >= 2);
    const events = await eventsOf(feed);
    expect(events).toHaveLength(2);
    for (const e of events) {
      expect(e).toMatchObject({ type: 'connection.metadata_updated', provider: 'videoask', connection_id: 'patched' });
    }
    // The whole feed of the connection agrees (created, then the two updates), and detail holds
    // neither the metadata's value nor anything of the credential.
    const all = await eventsOf('/connections/videoask/patched/events');
    expect(all.map((e) => e.type)).toEqual([
      'connection.metadata_updated',
      'connection.metadata_updated',
      'connection.created',
    ]);
    const { credentials } = (await h.store.getConnection('videoask', 'patched'))!;
    const details = JSON.stringify(events.map((e) => e.detail));
    for (const secret of ['meta-canary-blue', credentials.accessToken!, credentials.refreshToken!]) {
      expect(details).not.toContain(secret);
    }
  });

  it('refuses a cursor it did not hand out and a limit out of range', async () => {
    expect((await h.api().get('/events?cursor=nope')).headers['latchkey-error']).toBe('invalid_request');
    expect((await h.api().get('/events?limit=0')).status).toBe(400);
    expect((await h.api().get('/events?type=connection.exploded')).status).toBe(400);
  });
});

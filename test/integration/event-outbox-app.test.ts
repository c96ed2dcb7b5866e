import supertest from 'supertest';
import { startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { seedApiKeyConnection } from '../helpers/seed';

/**
 * Through the service API on Redis: a change whose event could not be moved to the log (the
 * stream's append failed, as when a process dies there) is still answered as done, its event waits
 * in the outbox, and recovery puts it in `GET /events` once, with the id it was written with.
 */
describe('a change whose event did not reach the log at once', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ store: 'redis' });
  });
  afterAll(async () => h.close());

  const eventsOf = async (connectionId: string) => {
    const res = await h.api().get(`/connections/webinargeek/${connectionId}/events`);
    expect(res.status).toBe(200);
    return (res.body as { events: Array<{ id: string; type: string }> }).events;
  };

  it('is answered as done, then appears once after recovery, with the same id', async () => {
    await seedApiKeyConnection(h.store, 'webinargeek', 'late', 'wg-key-1');
    const spy = jest.spyOn(h.store.eventLog, 'appendRecorded').mockRejectedValueOnce(new Error('stream down'));
    const res = await supertest(h.app)
      .patch('/connections/webinargeek/late')
      .set('Authorization', `Bearer ${TEST_API_KEY}`)
      .send({ metadata: { team: 'blue' } });
    expect(res.status).toBe(200);
    expect(spy).toHaveBeenCalledTimes(1);
    const written = spy.mock.calls[0]![0];
    expect(written).toMatchObject({ type: 'connection.metadata_updated', connectionId: 'late' });
    expect(await eventsOf('late')).toEqual([]);

    expect(await h.store.recoverEventOutboxes(0, 10)).toMatchObject({ relayed: 1 });
    expect(await eventsOf('late')).toEqual([
      expect.objectContaining({ id: written.id, type: 'connection.metadata_updated' }),
    ]);
    expect(await h.store.recoverEventOutboxes(0, 10)).toMatchObject({ relayed: 0 });
    expect(await eventsOf('late')).toHaveLength(1);
  });
});

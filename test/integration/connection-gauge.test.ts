import { startHarness, type Harness } from '../helpers/harness';
import { connectionInput } from '../helpers/seed';

/** `latchkey_connections{provider,status}` from the counts the store keeps (issue 11 part 7). */
describe('the latchkey_connections gauge', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h?.close());

  const gauge = async () => {
    const res = await h.api().get('/metrics');
    expect(res.status).toBe(200);
    return res.text
      .split('\n')
      .filter((line) => line.startsWith('latchkey_connections{'))
      .sort();
  };

  it('follows creates, a status change and a delete, on Redis', async () => {
    expect(await gauge()).toEqual([]);
    for (const id of ['a', 'b', 'c']) {
      await h.store.saveConnection(connectionInput({ provider: 'videoask', connectionId: id, credentials: {} }));
    }
    await h.store.saveConnection(
      connectionInput({ provider: 'webinargeek', connectionId: 'w', credentials: {}, status: 'reauth_required' }),
    );
    expect(await gauge()).toEqual([
      'latchkey_connections{provider="videoask",status="active"} 3',
      'latchkey_connections{provider="webinargeek",status="reauth_required"} 1',
    ]);
    const b = (await h.store.getConnection('videoask', 'b'))!;
    const { version, ...rest } = b;
    await h.store.updateConnection({ ...rest, status: 'reauth_required' }, version);
    await h.store.deleteConnection('webinargeek', 'w');
    expect(await gauge()).toEqual([
      'latchkey_connections{provider="videoask",status="active"} 2',
      'latchkey_connections{provider="videoask",status="reauth_required"} 1',
    ]);
  });
});

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import supertest from 'supertest';
import type { ConnectionInput } from '../../src/store';
import { ConnectionListSchema } from '../../src/wire/api-schemas';
import { startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { connectionInput } from '../helpers/seed';

/**
 * `GET /connections` answered from the store's listing index on Redis (issue 11 part 4): pages
 * for a key limited to providers, and the parameter errors, each naming its parameter.
 */
const LIMITED_KEY = 'limited-key-0123456789abcdef0123';
const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');

let h: Harness;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-list-'));
  const file = join(dir, 'api-keys.json');
  writeFileSync(
    file,
    JSON.stringify([
      { name: 'two-providers', sha256: sha256(LIMITED_KEY), access: 'read', providers: ['webinargeek', 'livestorm'] },
    ]),
  );
  h = await startHarness({ env: { API_KEYS_FILE: file } });
  // A fresh store: the first backfill pass has nothing to do and marks the index ready.
  expect((await h.store.backfillConnectionIndex(100)).passDone).toBe(true);
  const seed = (provider: string, connectionId: string, extra: Partial<ConnectionInput> = {}) =>
    h.store.saveConnection(connectionInput({ provider, connectionId, credentials: { accessToken: 'a' }, ...extra }));
  for (const id of ['v-1', 'v-2', 'v-3']) await seed('videoask', id);
  for (const id of ['w-1', 'w-2', 'w-3'])
    await seed('webinargeek', id, { status: id === 'w-2' ? 'reauth_required' : 'active' });
  for (const id of ['l-1', 'l-2']) await seed('livestorm', id, { account: { label: `Team ${id}` } });
});
afterAll(async () => {
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = (query: string, key = TEST_API_KEY) =>
  supertest(h.app).get(`/connections${query}`).set('Authorization', `Bearer ${key}`);

async function walk(query: string, key = TEST_API_KEY): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | null = null;
  do {
    const res = await get(`${query}${cursor ? `&cursor=${cursor}` : ''}`, key);
    expect([res.status, res.headers['latchkey-error']]).toEqual([200, undefined]);
    const body = ConnectionListSchema.parse(res.body);
    pages.push(body.connections.map((c) => `${c.provider}/${c.connection_id}`));
    cursor = body.next_cursor;
  } while (cursor !== null);
  return pages;
}

it('pages a key limited to two providers through both, in order, and never shows another provider', async () => {
  expect(await walk('?limit=2', LIMITED_KEY)).toEqual([
    ['livestorm/l-1', 'livestorm/l-2'],
    ['webinargeek/w-1', 'webinargeek/w-2'],
    ['webinargeek/w-3'],
  ]);
  expect(await walk('?limit=1&status=reauth_required', LIMITED_KEY)).toEqual([['webinargeek/w-2']]);
  expect(await walk('?limit=5&q=team', LIMITED_KEY)).toEqual([['livestorm/l-1', 'livestorm/l-2']]);
  // Without limit, every match in one answer, as in the first release.
  expect(await walk('?status=active', LIMITED_KEY)).toEqual([
    ['livestorm/l-1', 'livestorm/l-2', 'webinargeek/w-1', 'webinargeek/w-3'],
  ]);
  const refused = await get('?provider=videoask&limit=1', LIMITED_KEY);
  expect([refused.status, refused.body.error?.code]).toEqual([403, 'forbidden']);
});

it('pages every connection for a key with no provider limit, and without limit lists them all', async () => {
  const pages = await walk('?limit=3');
  expect(pages.map((p) => p.length)).toEqual([3, 3, 2]);
  expect(pages.flat()).toEqual((await walk('')).flat());
  expect(pages.flat()[0]).toBe('livestorm/l-1');
});

it.each([
  ['?limit=0', 'limit'],
  ['?limit=1001', 'limit'],
  ['?limit=1.5', 'limit'],
  ['?status=paused', 'status'],
  ['?cursor=not-a-cursor', 'cursor'],
  [
    `?cursor=${Buffer.from(JSON.stringify({ p: 'videoask', c: 'bad id!', f: ['', '', ''] })).toString('base64url')}`,
    'cursor',
  ],
])('refuses %s with 400 invalid_request naming %s', async (query, name) => {
  const res = await get(query);
  expect([res.status, res.body.error?.code]).toEqual([400, 'invalid_request']);
  expect(res.body.error.message).toContain(name);
});

it('refuses a cursor handed out for another filter', async () => {
  const first = ConnectionListSchema.parse((await get('?limit=1&status=active')).body);
  expect(first.next_cursor).not.toBeNull();
  const res = await get(`?limit=1&status=reauth_required&cursor=${first.next_cursor}`);
  expect([res.status, res.body.error?.code]).toEqual([400, 'invalid_request']);
  expect(res.body.error.message).toContain('cursor');
  expect((await get(`?limit=1&status=active&cursor=${first.next_cursor}`)).status).toBe(200);
});

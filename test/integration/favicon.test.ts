import { startHarness, type Harness } from '../helpers/harness';

/** The favicon: every page links Latchkey's own icon, so browsers ask for nothing else. */
describe('the favicon', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ store: 'memory' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('is linked from every page and served from /assets/ as SVG', async () => {
    for (const path of ['/', '/auth/webinargeek', '/callback?state=nope']) {
      const page = await h.browser().get(path);
      expect([path, page.text]).toEqual([
        path,
        expect.stringContaining('<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">'),
      ]);
    }
    const icon = await h.browser().get('/assets/favicon.svg');
    expect(icon.status).toBe(200);
    expect(icon.headers['content-type']).toMatch(/^image\/svg\+xml/);
    expect(String(icon.body ?? icon.text)).toContain('<svg');
  });
});

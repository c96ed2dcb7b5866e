import { startHarness, type Harness } from '../helpers/harness';

/** What the browser tests take for granted about the files Latchkey serves, checked over HTTP. */
describe('the files behind the browser pages', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ store: 'memory', env: { ALLOWED_RETURN_ORIGINS: 'https://app.example.com' } });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('serves connect.js as embeddable JavaScript with the allowed origins written in', async () => {
    const res = await h.browser().get('/connect.js');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/javascript/);
    expect(res.headers['cross-origin-resource-policy']).toBe('cross-origin');
    expect(res.text).toContain('var ALLOWED_ORIGINS = ["http://latchkey.test","https://app.example.com"];');
    expect(res.text).not.toContain('latchkey:allowed-origins');
    expect(res.text).not.toMatch(/postMessage\([^)]*'\*'/);
  });

  it('serves only the listed assets, with their types', async () => {
    const css = await h.browser().get('/assets/latchkey.css');
    expect(css.status).toBe(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
    const js = await h.browser().get('/assets/popup-result.js');
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    for (const path of ['/assets/nope.js', '/assets/..%2fconnect.js', '/assets/%2e%2e%2f%2e%2e%2fpackage.json']) {
      expect((await h.browser().get(path)).status).toBe(404);
    }
  });

  it('links every page only to Latchkey itself: no CDN, web font or other origin', async () => {
    const pages = [
      await h.browser().get('/'),
      await h.browser().get('/auth/webinargeek'),
      await h.browser().get('/callback?state=nope'),
    ];
    for (const page of pages) {
      const links = [...page.text.matchAll(/\b(?:src|href|action)="([^"]*)"/g)].map((m) => m[1]!);
      expect(links.length).toBeGreaterThan(1);
      for (const link of links) expect(link).toMatch(/^\/(?!\/)/);
      expect(page.text).not.toMatch(/<script>|<style>|\sstyle="|\son[a-z]+="/);
    }
  });

  it('posts nothing from a popup opened by an origin that is not allowed', async () => {
    const res = await h.browser().get(`/auth/videoask?popup=1&origin=${encodeURIComponent('https://evil.example')}`);
    expect(res.status).toBe(400);
    expect(res.headers['latchkey-error']).toBe('invalid_request');
    expect(res.text).not.toContain('latchkey-result');
    expect(res.text).not.toContain('popup-result.js');
  });

  it('reports an error of a popup flow to its allowed opener, and only to that origin', async () => {
    const res = await h
      .browser()
      .get(`/auth/videoask?popup=1&origin=${encodeURIComponent('https://app.example.com')}&token=expired`);
    expect(res.status).toBe(410);
    const data = /<script type="application\/json" id="latchkey-result">([^<]*)<\/script>/.exec(res.text)?.[1];
    expect(JSON.parse(data!)).toEqual({
      message: {
        type: 'latchkey:result',
        provider: 'videoask',
        connectionId: '',
        status: 'error',
        code: 'link_expired',
      },
      targetOrigin: 'https://app.example.com',
    });
  });
});

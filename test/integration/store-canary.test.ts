import { CredentialCipher } from '../../src/store';
import { createKeys } from '../../src/store/keys';
import { callbackPath, consent, startHarness, TEST_API_KEY, type Harness } from '../helpers/harness';
import { encryptionKeyEnv, testEncryptionKey } from '../helpers/keys';
import { keysUnder, rawRedis } from '../helpers/redis';
import { dumpRedis } from '../helpers/redis-dump';

/**
 * SECURITY.md 8 and 20: nothing a reader of Redis could use is in Redis. Flows (finished and in
 * progress), browser sessions, connect links (used and not), an API-key form in progress and the
 * connections they made, then every key and value under the prefix is searched for each secret.
 */

const API_KEY = 'wg-canary-api-key-5d1f0a';

/** The session id inside express-session's signed cookie (`s:<sid>.<signature>`), and the cookie value itself. */
function sessionOf(cookieHeader: string[] | string | undefined): { sid: string; cookie: string } {
  const first = ([] as string[]).concat(cookieHeader ?? [])[0]!;
  const cookie = first.split(';')[0]!.split('=')[1]!;
  const signed = decodeURIComponent(cookie);
  return { sid: signed.slice(2, signed.lastIndexOf('.')), cookie };
}

describe('Redis holds nothing a reader could use', () => {
  const key = testEncryptionKey('canary');
  let h: Harness;
  afterAll(async () => h?.close());

  it('after flows, sessions, connect links, an API-key form and connections, no secret is in any key or value', async () => {
    h = await startHarness({
      env: { TOKEN_ENCRYPTION_KEYS: encryptionKeyEnv(key) },
      videoask: { pkce: true },
      sandbox: { requirePkce: true, apiKeys: [API_KEY] },
    });
    const secrets: Record<string, string> = {};
    const prefix = h.prefix;
    const keys = createKeys(prefix);
    const cipher = new CredentialCipher([key]);
    const raw = rawRedis();

    try {
      // A finished flow, started from a connect link: its state, its session, the link's token.
      const link = await h.api().post('/connect-sessions').send({ provider: 'videoask', connection_id: 'linked' });
      expect(link.status).toBe(201);
      secrets.usedLinkToken = link.body.token;
      const finished = h.browser();
      const start = await finished.get(`/auth/videoask?token=${link.body.token}`);
      expect(start.status).toBe(302);
      const finishedState = new URL(start.headers.location!).searchParams.get('state')!;
      secrets.finishedState = finishedState;
      const finishedSession = sessionOf(start.headers['set-cookie']);
      secrets.finishedSid = finishedSession.sid;
      secrets.finishedCookie = finishedSession.cookie;
      // The verifier, read back the only way there is: opening the sealed flow state with the key.
      const sealedFlow = await raw.get(keys.flowState(finishedState));
      expect(sealedFlow).toMatch(/^v1\.canary\./);
      secrets.finishedVerifier = (
        JSON.parse(cipher.open(sealedFlow!, keys.flowState(finishedState))) as {
          codeVerifier: string;
        }
      ).codeVerifier;
      expect(secrets.finishedVerifier).toMatch(/^[A-Za-z0-9_-]{43,128}$/);
      const redirect = await consent(start.headers.location!, 'approve');
      secrets.code = redirect.searchParams.get('code')!;
      const done = await finished.get(callbackPath(redirect));
      expect(done.status).toBe(303);
      // The session id is regenerated when a connection is made (SECURITY.md 7): the new one too.
      const regenerated = sessionOf(done.headers['set-cookie']);
      secrets.regeneratedSid = regenerated.sid;
      expect(regenerated.sid).not.toBe(finishedSession.sid);

      // A flow in progress, anonymous: its state, verifier and session are in Redis right now.
      const pending = h.browser();
      const pendingStart = await pending.get('/auth/videoask?connection_id=pending');
      expect(pendingStart.status).toBe(302);
      const pendingState = new URL(pendingStart.headers.location!).searchParams.get('state')!;
      secrets.pendingState = pendingState;
      secrets.pendingSid = sessionOf(pendingStart.headers['set-cookie']).sid;
      const pendingFlow = await raw.get(keys.flowState(pendingState));
      secrets.pendingVerifier = (
        JSON.parse(cipher.open(pendingFlow!, keys.flowState(pendingState))) as {
          codeVerifier: string;
        }
      ).codeVerifier;

      // A connect link not used yet.
      const unused = await h.api().post('/connect-sessions').send({ provider: 'webinargeek', connection_id: 'later' });
      secrets.unusedLinkToken = unused.body.token;

      // An API-key form in progress (its CSRF token is in the session), and one submitted.
      const formOpen = h.browser();
      const openForm = await formOpen.get('/auth/webinargeek?connection_id=open-form');
      expect(openForm.status).toBe(200);
      secrets.openCsrf = /name="csrf" value="([^"]+)"/.exec(openForm.text)![1]!;
      secrets.openFormSid = sessionOf(openForm.headers['set-cookie']).sid;
      const submitted = h.browser();
      const form = await submitted.get('/auth/webinargeek?connection_id=wg');
      const csrf = /name="csrf" value="([^"]+)"/.exec(form.text)![1]!;
      secrets.submittedCsrf = csrf;
      const posted = await submitted.post('/auth/webinargeek').type('form').send({ csrf, api_key: API_KEY });
      expect(posted.status).toBe(303);
      secrets.apiKey = API_KEY;

      // The connections' tokens.
      const linked = await h.store.getConnection('videoask', 'linked');
      secrets.accessToken = linked!.credentials.accessToken!;
      secrets.refreshToken = linked!.credentials.refreshToken!;
      expect((await h.store.getConnection('webinargeek', 'wg'))?.credentials.apiKey).toBe(API_KEY);
      secrets.serviceApiKey = TEST_API_KEY;

      const dump = await dumpRedis(raw, await keysUnder(raw, prefix));
      // Every kind of record is there, so the search below looks where the secrets would be.
      const kinds = new Set(dump.map(([k]) => k.slice(prefix.length).split(':')[0]));
      expect([...kinds].sort()).toEqual([
        'bs',
        'conn',
        'connections',
        'cs',
        'events',
        'fs',
        'idx',
        'ka',
        'rl',
        '{events}',
      ]);
      expect(dump.filter(([k]) => k.startsWith(`${prefix}fs:`))).toHaveLength(1);
      expect(dump.filter(([k]) => k.startsWith(`${prefix}bs:`)).length).toBeGreaterThanOrEqual(4);
      expect(dump.filter(([k]) => k.startsWith(`${prefix}cs:`))).toHaveLength(2);

      const text = dump.map(([k, v]) => `${k}\n${v}`).join('\n');
      for (const [name, secret] of Object.entries(secrets)) {
        expect(secret.length).toBeGreaterThanOrEqual(8);
        if (text.includes(secret)) throw new Error(`${name} is readable in Redis`);
        // Also not in the encodings a value might take on its way in.
        if (text.includes(encodeURIComponent(secret))) throw new Error(`${name} (URL-encoded) is readable in Redis`);
        if (text.includes(Buffer.from(secret).toString('base64')))
          throw new Error(`${name} (base64) is readable in Redis`);
      }
    } finally {
      raw.disconnect();
    }
  });
});

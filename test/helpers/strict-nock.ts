import nock from 'nock';

/**
 * Provider HTTP faked at the network edge: no real connection except loopback, and after each
 * test every interceptor must have been used (a mock nobody called means the code did not do
 * what the test says). Restores real sockets for later files in the same jest worker.
 */
export function useStrictNock(): void {
  beforeAll(() => {
    nock.disableNetConnect();
    nock.enableNetConnect(/^(127\.0\.0\.1|localhost)(:\d+)?$/);
  });
  afterEach(() => {
    const pending = nock.pendingMocks();
    nock.cleanAll();
    expect(pending).toEqual([]);
  });
  afterAll(() => {
    nock.enableNetConnect();
    nock.restore();
  });
}

/**
 * Single flight: concurrent callers asking for the same key share one run of the work, so 200
 * requests on an expired token in one process make one refresh, not 200 lock contenders.
 */
export interface SingleFlight<T> {
  /** Runs `work` unless a run for `key` is already in flight, in which case its result is shared. */
  run(key: string, work: () => Promise<T>): Promise<T>;
  /** Keys with a run in flight (for tests and ops). */
  inFlight(): string[];
}

export function createSingleFlight<T>(): SingleFlight<T> {
  const flights = new Map<string, Promise<T>>();
  return {
    run(key, work) {
      const current = flights.get(key);
      if (current) return current;
      const flight = (async () => {
        try {
          return await work();
        } finally {
          flights.delete(key);
        }
      })();
      flights.set(key, flight);
      return flight;
    },
    inFlight: () => [...flights.keys()],
  };
}

/** The API key the load generator presents to Latchkey. */
export const BENCH_API_KEY = 'bench-api-key-0123456789abcdef';
/** The header every contender adds upstream (Latchkey: the stored token of the seeded connection). */
export const BENCH_TOKEN = 'bench-access-token';

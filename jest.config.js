/** @type {import('jest').Config} */
const ts = { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] };
module.exports = {
  projects: [
    { displayName: 'unit', testEnvironment: 'node', transform: ts, testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform: ts,
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
    },
    { displayName: 'e2e', testEnvironment: 'node', transform: ts, testMatch: ['<rootDir>/test/e2e/**/*.test.ts'] },
  ],
  testTimeout: 30000,
};

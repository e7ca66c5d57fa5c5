import { defineConfig } from 'vitest/config';

// Tests run real processes (brokers, Redis, kcat), so they get generous timeouts and run
// files in parallel only as far as the 2-core machine allows.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'native/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});

import { defineConfig } from 'vitest/config';

// Integration tests share one local stack (Temporal dev server + fake-gcs-server) started by
// test/globalSetup.ts on test-only ports, so a developer's running stack is never disturbed.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/globalSetup.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 300_000,
    fileParallelism: false,
  },
});

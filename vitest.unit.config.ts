import { defineConfig } from 'vitest/config';

/**
 * `npm run test:unit`: the tests that need no stack (no Temporal server, no GCS emulator), no model and no
 * ffmpeg run: pure domain, workflow-state, schema and layering tests, in well under a minute. `npm test`
 * (vitest.config.ts) runs them too, with everything else.
 */
export const UNIT_TESTS = [
  'test/appearance.test.ts',
  'test/artifacts.test.ts',
  'test/augment.test.ts',
  'test/background.test.ts',
  'test/bytetrack.test.ts',
  'test/cli-report.test.ts',
  'test/identityMetrics.test.ts',
  'test/layers.test.ts',
  'test/joinAssignment.test.ts',
  'test/identityFixtures.test.ts',
  'test/liveness.test.ts',
  'test/motMetrics.test.ts',
  'test/planar.test.ts',
  'test/quality.test.ts',
  'test/report.test.ts',
  'test/routing.test.ts',
  'test/shotChange.test.ts',
  'test/runCache.test.ts',
  'test/json.test.ts',
  'test/window.test.ts',
  'test/imageWork.test.ts',
  'test/sources.test.ts',
  'test/batches.test.ts',
  'test/split.test.ts',
  'test/stitch.test.ts',
  'test/classList.test.ts',
  'test/tables.test.ts',
  'test/exports.test.ts',
  'test/merge.test.ts',
  'test/summary.test.ts',
  'test/teams.test.ts',
  'test/tracker.test.ts',
  'test/tracklets.test.ts',
  'test/validation.test.ts',
];

export default defineConfig({
  test: {
    include: UNIT_TESTS,
    pool: 'forks',
    testTimeout: 60_000,
  },
});

/**
 * Vitest global setup: starts a separate test stack (Temporal dev server + fake-gcs-server, no worker) on
 * test-only ports so a developer's running stack (7233/8233/4443) is never touched, and stops it after the run.
 *
 * Test stack: data dir `<root>/.data/test-stack`, Temporal 127.0.0.1:17233, Web UI 18233, GCS emulator
 * http://127.0.0.1:14443, bucket `dataprep-test`, namespace `default`. `TEST_PORT_OFFSET` shifts every port
 * (test/helpers/ports.ts).
 *
 * Test files see it through process.env (set here before the fork workers start, and inherited by them):
 * TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_UI_PORT, STORAGE_EMULATOR_HOST, GCS_BUCKET, DATAPREP_DATA_DIR,
 * so `loadConfig()` in a test returns the test stack. The same values are also provided as
 * `inject('testStack')` ({@link TestStackInfo}).
 *
 * KEEP_TEST_STACK=1 leaves the stack running after the tests for fast reruns (the next run finds it running
 * and starts nothing). SKIP_TEST_STACK=1 starts nothing (pure unit-test runs).
 */
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { PROJECT_ROOT } from '../src/config';
import { startStack, stopStack, type StackOptions } from '../src/stack';
import { testPort } from './helpers/ports';

/** Ports and names of the test stack (see the module comment). */
export const TEST_STACK: StackOptions = {
  dataDir: path.join(PROJECT_ROOT, '.data', 'test-stack'),
  toolsDir: path.join(PROJECT_ROOT, '.tools'),
  temporalPort: testPort(17233),
  uiPort: testPort(18233),
  gcsPort: testPort(14443),
  bucket: 'dataprep-test',
  namespace: 'default',
  withWorker: false,
};

/** What `inject('testStack')` returns in test files. */
export interface TestStackInfo {
  temporalAddress: string;
  namespace: string;
  storageEmulatorHost: string;
  bucket: string;
  dataDir: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    testStack: TestStackInfo;
  }
}

/** Starts the test stack, exports its addresses, and returns the teardown that stops it. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.SKIP_TEST_STACK === '1') return async () => undefined;
  const opts: StackOptions = { ...TEST_STACK, toolsDir: process.env.DATAPREP_TOOLS_DIR ?? TEST_STACK.toolsDir };
  await startStack(opts);
  const info: TestStackInfo = {
    temporalAddress: `127.0.0.1:${opts.temporalPort}`,
    namespace: opts.namespace,
    storageEmulatorHost: `http://127.0.0.1:${opts.gcsPort}`,
    bucket: opts.bucket,
    dataDir: opts.dataDir,
  };
  Object.assign(process.env, {
    TEMPORAL_ADDRESS: info.temporalAddress,
    TEMPORAL_NAMESPACE: info.namespace,
    TEMPORAL_UI_PORT: String(opts.uiPort),
    STORAGE_EMULATOR_HOST: info.storageEmulatorHost,
    GCS_BUCKET: info.bucket,
    DATAPREP_DATA_DIR: info.dataDir,
  });
  project.provide('testStack', info);
  return async () => {
    if (process.env.KEEP_TEST_STACK === '1') return;
    await stopStack(opts);
  };
}

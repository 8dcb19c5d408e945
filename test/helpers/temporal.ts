/**
 * Test helpers: a Temporal client and short-lived workers against the test stack's real dev server
 * (started by test/globalSetup.ts). Each worker gets its own task queue so tests never share work.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { loadConfig } from '../../src/config';
import { createPipelineWorkers, WORKFLOWS_PATH } from '../../src/workers/worker';

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
let runtimeInstalled = false;

/** The workflow bundle, built once per test file (bundling takes seconds). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
  return bundle;
}

/** A client of the test stack's Temporal server. */
export async function testClient(): Promise<Client> {
  const cfg = loadConfig();
  const connection = await Connection.connect({ address: cfg.temporalAddress });
  return new Client({ connection, namespace: cfg.temporalNamespace });
}

/**
 * Runs `fn` while this process serves a fresh task queue `q` as a pipeline worker would
 * (`createPipelineWorkers`): the shared CPU queue `q` (workflows + `activities`) and this process's own
 * queue `q@{workerId}`, and, when `gpuActivities` are given, `q-gpu` and `q-gpu@{workerId}`.
 * `opts.address` points the workers at another Temporal server than the test stack's.
 * Returns what `fn` returns.
 */
export async function withWorkers<T>(
  activities: object,
  fn: (taskQueue: string) => Promise<T>,
  gpuActivities?: object,
  opts: { taskQueue?: string; workerId?: string; address?: string } = {},
): Promise<T> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    runtimeInstalled = true;
  }
  const cfg = loadConfig();
  const taskQueue = opts.taskQueue ?? `test-${randomUUID().slice(0, 8)}`;
  const connection = await NativeConnection.connect({ address: opts.address ?? cfg.temporalAddress });
  const { workers } = await createPipelineWorkers({
    connection,
    namespace: cfg.temporalNamespace,
    taskQueue,
    workflowBundle: await workflowBundle(),
    cpuActivities: activities as Record<string, unknown>,
    gpuActivities: gpuActivities as Record<string, unknown> | undefined,
    shutdownGraceTime: '5s',
    workerId: opts.workerId,
  });
  const others = workers.slice(1).map((w) => w.run());
  try {
    return await workers[0].runUntil(fn(taskQueue));
  } finally {
    for (const w of workers.slice(1)) w.shutdown();
    await Promise.allSettled(others);
    await connection.close();
  }
}

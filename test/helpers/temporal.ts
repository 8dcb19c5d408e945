/**
 * Test helpers: a Temporal client and short-lived workers against the test stack's real dev server
 * (started by test/globalSetup.ts). Each worker gets its own task queue so tests never share work.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { loadConfig } from '../../src/config';
import { WORKER_TUNING, WORKFLOWS_PATH } from '../../src/workers/worker';

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
 * Runs `fn` while a CPU worker (workflows + `activities`) polls a fresh task queue `q` and, when
 * `gpuActivities` are given, a GPU worker polls `q-gpu`. Returns what `fn` returns.
 */
export async function withWorkers<T>(
  activities: object,
  fn: (taskQueue: string) => Promise<T>,
  gpuActivities?: object,
): Promise<T> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    runtimeInstalled = true;
  }
  const cfg = loadConfig();
  const taskQueue = `test-${randomUUID().slice(0, 8)}`;
  const connection = await NativeConnection.connect({ address: cfg.temporalAddress });
  const workers = [
    await Worker.create({ connection, namespace: cfg.temporalNamespace, taskQueue, workflowBundle: await workflowBundle(), activities, shutdownGraceTime: '5s', ...WORKER_TUNING }),
  ];
  if (gpuActivities) {
    workers.push(await Worker.create({ connection, namespace: cfg.temporalNamespace, taskQueue: `${taskQueue}-gpu`, activities: gpuActivities, shutdownGraceTime: '5s', ...WORKER_TUNING }));
  }
  const others = workers.slice(1).map((w) => w.run());
  try {
    return await workers[0].runUntil(fn(taskQueue));
  } finally {
    for (const w of workers.slice(1)) w.shutdown();
    await Promise.allSettled(others);
    await connection.close();
  }
}

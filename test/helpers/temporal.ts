/**
 * Test helpers: a Temporal client and short-lived workers against the test stack's real dev server
 * (started by test/globalSetup.ts). Each worker gets its own task queue so tests never share work.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { LivenessOptions } from '../../src/activities/liveness';
import { loadConfig, PROJECT_ROOT } from '../../src/config';
import { bundlePipelineWorkflows, createPipelineWorkers, WORKER_READY_MESSAGE } from '../../src/workers/worker';

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
let runtimeInstalled = false;

/** The workflow bundle as workers build it (`bundlePipelineWorkflows`), built once per test file (bundling takes seconds). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundlePipelineWorkflows();
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
 * `opts.address` points the workers at another Temporal server than the test stack's; `opts.liveness` sets the
 * activities' heartbeat interval and stall limit (src/activities/liveness.ts).
 * Returns what `fn` returns.
 */
export async function withWorkers<T>(
  activities: object,
  fn: (taskQueue: string) => Promise<T>,
  gpuActivities?: object,
  opts: { taskQueue?: string; workerId?: string; address?: string; liveness?: Partial<LivenessOptions> } = {},
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
    liveness: opts.liveness,
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

/**
 * Starts a worker process (`npm run worker`'s entry point) with `env` on top of this process's environment
 * and resolves once it logs that its workers are ready. scripts/worker.sh execs `node --import tsx` (not the
 * tsx CLI, which would run the worker in a grandchild that a SIGKILL of the child misses).
 * @throws Error with the tail of its log when it exits or does not get ready within 60 s
 */
export async function spawnWorkerProcess(env: Record<string, string>): Promise<{ child: ChildProcess; exited: Promise<void> }> {
  // scripts/worker.sh, as `npm run worker` and the stack start it (it execs node: `child` is the worker itself).
  const child = spawn('bash', ['scripts/worker.sh', 'src/workers/main.ts'], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, DATAPREP_NODE: process.execPath, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (b: Buffer) => (log += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  for (let i = 0; i < 600 && !log.includes(WORKER_READY_MESSAGE) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
  if (!log.includes(WORKER_READY_MESSAGE)) {
    child.kill('SIGKILL');
    throw new Error(`worker process did not start: ${log.slice(-2000)}`);
  }
  return { child, exited };
}

/**
 * Waits until one of `workflowIds` has `activity` running: started on a worker (`ready` absent), or with heartbeat
 * details (decoded from JSON) that pass `ready`. Polls `describe` of each every 50 ms.
 * @throws Error after `timeoutMs`
 */
export async function waitForActivity<D>(client: Client, workflowIds: string | readonly string[], activity: string, ready?: (details: D) => boolean, timeoutMs = 120_000): Promise<void> {
  const handles = (typeof workflowIds === 'string' ? [workflowIds] : workflowIds).map((id) => client.workflow.getHandle(id));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const handle of handles) {
      const desc = await handle.describe().catch(() => undefined);
      for (const p of desc?.raw.pendingActivities ?? []) {
        if (p.activityType?.name !== activity) continue;
        if (!ready) {
          if (p.lastStartedTime) return;
          continue;
        }
        if (!p.heartbeatDetails?.payloads?.length) continue;
        if (ready(JSON.parse(Buffer.from(p.heartbeatDetails.payloads[0].data as Uint8Array).toString('utf8')) as D)) return;
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${activity} of ${[workflowIds].flat().join(', ')}`);
}

/**
 * Sends signal `signalName` to the current run of `workflowId` with `payloads` exactly as given (raw gRPC
 * `SignalWorkflowExecution`, no payload converter), as `temporal workflow signal --input-meta ...` would: lets
 * tests send payloads no SDK client would produce, e.g. an unknown encoding.
 */
export async function signalRaw(client: Client, workflowId: string, signalName: string, payloads: { metadata: Record<string, string>; data: Uint8Array }[]): Promise<void> {
  await client.workflowService.signalWorkflowExecution({
    namespace: client.options.namespace,
    workflowExecution: { workflowId },
    signalName,
    identity: 'test-raw-signal',
    input: {
      payloads: payloads.map((p) => ({ metadata: Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, Buffer.from(v)])), data: p.data })),
    },
  });
}

/** A payload with the unknown encoding `binary/garbage` (what `--input-meta encoding=binary/garbage` sends). */
export const GARBAGE_PAYLOAD = { metadata: { encoding: 'binary/garbage' }, data: Buffer.from('{"reason":"undecodable"}') };

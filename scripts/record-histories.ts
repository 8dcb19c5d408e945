/**
 * Records the workflow histories that test/replay.test.ts replays against the current workflow code.
 *
 *   TEMPORAL_ADDRESS=127.0.0.1:17233 npx tsx scripts/record-histories.ts [RECORDING]
 *
 * Needs a Temporal server with the pipeline's search attributes (the test stack, started by any
 * `KEEP_TEST_STACK=1 npx vitest run ...`, or the local stack of `npm run stack:start`). Runs complete
 * `trainPipeline` executions in this process with the current workflow code and mocked activities
 * (test/helpers/mockActivities.ts), one per scenario:
 *
 * - `completed`: two videos, every step on the claimed worker's own queues;
 * - `cancelled`: the `cancel` signal arrives while step 3 runs (also records the `requestCancellation` child);
 * - `rerouted`: the claimed worker is gone (nobody polls its queues), the steps go to the shared queues;
 * - `rejected`: an unknown option, refused with `InvalidInput` before any step (started under the
 *   conventional workflow id without a run GUID, which the workflow reads from the id);
 * - `undecodable-signal`: while step 3 runs, a `cancel` signal whose payload has an unknown encoding and a
 *   `videoProgress` signal about no video of the run arrive; both are dropped and the run completes;
 * - `hung-step`: step 6 hangs without heartbeats on a live worker; after 8 heartbeat timeouts the worker
 *   answers the ping on its own queue, so the step fails (not re-routed) and so does the run;
 * - `segmented`: a long video whose step 3 plans three time segments: three `trackSegment` child workflows,
 *   each running its `detectSegment` activity on the shared GPU queue, then step 5 stitches (patches
 *   `video-segments`, `segment-workflows`);
 * - `batched`: a video whose step 5 plans three class batches: three `cropBatch` activities on the shared CPU
 *   queue before step 6 merges, three `backgroundBatch` on the shared GPU queue before step 7 gathers, three
 *   `augmentBatch` before step 8 counts and step 9 copies (patch `class-batches`).
 *
 * and saves the history of the run and of every child workflow it started (`processVideo` per video, and theirs:
 * `trackSegment` per segment) as
 * `test/fixtures/histories/{RECORDING}/{scenario}.{workflowType}[.{n}].json`, listed in `manifest.json`.
 * RECORDING defaults to `CURRENT_RECORDING` (test/fixtures/histories/fixtures.ts). Earlier histories of the
 * same recording are replaced; other recordings (older code generations) are kept.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { loadConfig, PROJECT_ROOT } from '../src/config';
import { startRun } from '../src/cli/client';
import { runWorkflowId } from '../src/workflows/ids';
import { cancelSignal } from '../src/workflows/messages';
import type { TrainPipelineInput } from '../src/validation';
import {
  CURRENT_RECORDING,
  HISTORIES_DIR,
  historyToJson,
  MANIFEST_PATH,
  readManifest,
  SCENARIOS,
  type HistoryFixture,
  type HistoryManifest,
  type Scenario,
} from '../test/fixtures/histories/fixtures';
import { mockActivities } from '../test/helpers/mockActivities';
import { GARBAGE_PAYLOAD, signalRaw, testClient, withWorkers } from '../test/helpers/temporal';

/** The recording made: the first argument, else the current one. */
const RECORDING = process.argv[2] ?? CURRENT_RECORDING;

/** Tenant of every recorded run. */
const TENANT = 'replay';

/** A fresh run GUID per recording, so a re-recording never attaches to an earlier run. */
const runGuid = (scenario: Scenario) => `${scenario}-${randomUUID().slice(0, 8)}`;

/** Starts a run through the CLI's `startRun` (workflow id `train-pipeline:{tenant}:{runGuid}`) on `taskQueue`. */
async function start(client: Client, taskQueue: string, input: TrainPipelineInput): Promise<WorkflowHandle> {
  return (await startRun(client, { ...loadConfig(), taskQueue }, input)).handle;
}

/** Waits until the execution of `handle` is closed, whatever its outcome; returns its status name. */
async function closed(handle: WorkflowHandle): Promise<string> {
  await handle.result().catch(() => undefined);
  for (let i = 0; i < 100; i++) {
    const status = (await handle.describe()).status.name;
    if (status !== 'RUNNING') return status;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${handle.workflowId} is still running`);
}

/** A fetched history (JSON) with its manifest entry. */
type Recorded = HistoryFixture & { json: string };

/**
 * Fetches the closed history of run `workflowId` and of every child workflow it started (recursively), named
 * `{RECORDING}/{scenario}.{workflowType}[.{n}].json`, the run first. Call it while the workers still run: an abandoned
 * child (`requestCancellation`) may still be finishing.
 */
async function fetchTree(client: Client, scenario: Scenario, workflowId: string, expectedStatus: string): Promise<Recorded[]> {
  const found: { workflowId: string; workflowType: string; status: string; json: string }[] = [];
  const visit = async (id: string, workflowType: string): Promise<void> => {
    const handle = client.workflow.getHandle(id);
    const status = await closed(handle);
    const history = await handle.fetchHistory();
    found.push({ workflowId: id, workflowType, status, json: historyToJson(history) });
    for (const e of history.events ?? []) {
      const child = e.startChildWorkflowExecutionInitiatedEventAttributes;
      if (child?.workflowId && child.workflowType?.name) await visit(child.workflowId, child.workflowType.name);
    }
  };
  await visit(workflowId, 'trainPipeline');
  if (found[0].status !== expectedStatus) throw new Error(`${scenario}: run ${workflowId} ended ${found[0].status}, expected ${expectedStatus}`);
  return found.map((h) => {
    const sameType = found.filter((o) => o.workflowType === h.workflowType);
    const n = sameType.length > 1 ? `.${sameType.indexOf(h) + 1}` : '';
    const file = `${RECORDING}/${scenario}.${h.workflowType}${n}.json`;
    return { file, recording: RECORDING, scenario, workflowType: h.workflowType, workflowId: h.workflowId, status: h.status, json: h.json };
  });
}

/** Records every scenario (see the module comment) and writes the fixtures and `manifest.json`. */
async function main(): Promise<void> {
  const client = await testClient();
  const fixtures: Recorded[] = [];
  try {
    // (a) A completed run of two videos.
    {
      const m = mockActivities();
      const saved = await withWorkers(
        m.cpu,
        async (q) => {
          const handle = await start(client, q, { tenantId: TENANT, runGuid: runGuid('completed'), videos: [{ source: '/a.mp4' }, { source: '/b.mp4' }] });
          await handle.result();
          return fetchTree(client, 'completed', handle.workflowId, 'COMPLETED');
        },
        m.gpu,
      );
      fixtures.push(...saved);
    }

    // (b) Cancelled through the `cancel` signal while step 3 runs (held until its cancellation).
    {
      const m = mockActivities({ hold: 'extractFramesForDetections', gate: new Promise(() => undefined) });
      const saved = await withWorkers(
        m.cpu,
        async (q) => {
          const handle = await start(client, q, { tenantId: TENANT, runGuid: runGuid('cancelled'), videos: [{ source: '/a.mp4' }] });
          for (let i = 0; i < 200 && !m.calls.some((c) => c.name === 'extractFramesForDetections'); i++) await new Promise((r) => setTimeout(r, 100));
          if (!m.calls.some((c) => c.name === 'extractFramesForDetections')) throw new Error('cancelled: step 3 did not start within 20 s');
          await client.workflow.getHandle(handle.workflowId).signal(cancelSignal, { reason: 'recorded for the replay tests', by: 'record-histories' });
          return fetchTree(client, 'cancelled', handle.workflowId, 'CANCELLED');
        },
        m.gpu,
      );
      fixtures.push(...saved);
    }

    // (c) Re-routed: the claimed worker answers the claim, then nobody polls its queues (as in test/workflow.test.ts).
    {
      const m = mockActivities();
      const ghost = { workerId: 'ghost', cpu: 'ghost-cpu-queue', gpu: 'ghost-gpu-queue' };
      const saved = await withWorkers(
        { ...m.cpu, claimWorker: async () => ghost },
        async (q) => {
          const options = { routing: { scheduleToStartSeconds: 1 } };
          const handle = await start(client, q, { tenantId: TENANT, runGuid: runGuid('rerouted'), videos: [{ source: '/a.mp4' }], options });
          const summary = (await handle.result()) as { videos: { routing?: { reroutes: unknown[] } }[] };
          if (summary.videos[0].routing?.reroutes.length !== 1) throw new Error(`rerouted: expected one re-route, got ${JSON.stringify(summary.videos[0].routing)}`);
          return fetchTree(client, 'rerouted', handle.workflowId, 'COMPLETED');
        },
        m.gpu,
      );
      fixtures.push(...saved);
    }

    // (d) Rejected: started directly (as from the Temporal CLI), bypassing client-side validation.
    {
      const m = mockActivities();
      const saved = await withWorkers(
        m.cpu,
        async (taskQueue) => {
          const input = { tenantId: TENANT, videos: [{ source: '/a.mp4' }], options: { frameStrid: 3 } };
          const handle = await client.workflow.start('trainPipeline', { taskQueue, workflowId: runWorkflowId(TENANT, runGuid('rejected')), args: [input] });
          return fetchTree(client, 'rejected', handle.workflowId, 'FAILED');
        },
        m.gpu,
      );
      fixtures.push(...saved);
    }

    // (e) Undecodable and foreign signals while step 3 runs: dropped, the run completes.
    {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const m = mockActivities({ hold: 'extractFramesForDetections', gate });
      const saved = await withWorkers(
        m.cpu,
        async (q) => {
          const handle = await start(client, q, { tenantId: TENANT, runGuid: runGuid('undecodable-signal'), videos: [{ source: '/a.mp4' }] });
          for (let i = 0; i < 200 && !m.calls.some((c) => c.name === 'extractFramesForDetections'); i++) await new Promise((r) => setTimeout(r, 100));
          if (!m.calls.some((c) => c.name === 'extractFramesForDetections')) throw new Error('undecodable-signal: step 3 did not start within 20 s');
          await signalRaw(client, handle.workflowId, 'cancel', [GARBAGE_PAYLOAD]);
          await client.workflow.getHandle(handle.workflowId).signal('videoProgress', { videoGuid: 'not-a-video-of-this-run' });
          // A query answers only after the workflow task that received both signals completed.
          await handle.query('progress');
          release();
          return fetchTree(client, 'undecodable-signal', handle.workflowId, 'COMPLETED');
        },
        m.gpu,
      );
      fixtures.push(...saved);
    }

    // (f) Step 6 hangs on a live worker without heartbeats (its liveness timer is off, as when the event loop is
    // blocked): 8 heartbeat timeouts, the ping of the worker's own queue is answered, so the step fails (not
    // re-routed) and the run fails with step, attempts and cause. About 3 minutes (retry backoff).
    {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const m = mockActivities();
      const saved = await withWorkers(
        { ...m.cpu, extractCrops: () => gate.then(() => Promise.reject(new Error('released after recording'))) },
        async (q) => {
          const options = { routing: { heartbeatTimeoutSeconds: 5, scheduleToStartSeconds: 3 } };
          const handle = await start(client, q, { tenantId: TENANT, runGuid: runGuid('hung-step'), videos: [{ source: '/a.mp4' }], options });
          const tree = await fetchTree(client, 'hung-step', handle.workflowId, 'FAILED');
          release();
          return tree;
        },
        m.gpu,
        { liveness: { intervalMs: 3_600_000 } },
      );
      fixtures.push(...saved);
    }

    // (g) A long video: step 3 plans three segments (the mock does for a source named "…segments…").
    {
      const m = mockActivities();
      const saved = await withWorkers(
        m.cpu,
        async (q) => {
          const handle = await start(client, q, { tenantId: TENANT, runGuid: runGuid('segmented'), videos: [{ source: '/long-segments.mp4' }] });
          await handle.result();
          if (m.calls.filter((c) => c.name === 'detectSegment').length !== 3) throw new Error('segmented: expected three detectSegment calls');
          return fetchTree(client, 'segmented', handle.workflowId, 'COMPLETED');
        },
        m.gpu,
      );
      fixtures.push(...saved);
    }

    // (h) Many boxes: step 5 plans three class batches (the mock does for a source named "…batches…").
    {
      const m = mockActivities();
      const saved = await withWorkers(
        m.cpu,
        async (q) => {
          const handle = await start(client, q, { tenantId: TENANT, runGuid: runGuid('batched'), videos: [{ source: '/many-batches.mp4' }] });
          await handle.result();
          for (const part of ['cropBatch', 'backgroundBatch', 'augmentBatch']) if (m.calls.filter((c) => c.name === part).length !== 3) throw new Error(`batched: expected three ${part} calls`);
          return fetchTree(client, 'batched', handle.workflowId, 'COMPLETED');
        },
        m.gpu,
      );
      fixtures.push(...saved);
    }

    const sdkVersion = (JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'node_modules/@temporalio/worker/package.json'), 'utf8')) as { version: string }).version;
    // Only now that every scenario went as expected: replace this recording's earlier histories, keep the others.
    const dir = path.join(HISTORIES_DIR, RECORDING);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    for (const f of fixtures) fs.writeFileSync(path.join(HISTORIES_DIR, f.file), f.json + '\n');
    const previous: HistoryManifest = fs.existsSync(MANIFEST_PATH) ? readManifest() : { recordings: {}, histories: [] };
    const manifest: HistoryManifest = {
      recordings: { ...previous.recordings, [RECORDING]: { recordedAt: new Date().toISOString(), sdkVersion, scenarios: [...SCENARIOS] } },
      histories: [...previous.histories.filter((h) => h.recording !== RECORDING), ...fixtures.map(({ json: _json, ...entry }) => entry)],
    };
    fs.writeFileSync(MANIFEST_PATH, JSON.stringify(manifest, null, 2) + '\n');
    for (const f of fixtures) console.log(`${f.file.padEnd(56)} ${f.workflowType.padEnd(20)} ${f.status.padEnd(10)} ${f.workflowId}`);
    console.log(`${fixtures.length} histories in ${path.relative(process.cwd(), path.join(HISTORIES_DIR, RECORDING))}`);
  } finally {
    await client.connection.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

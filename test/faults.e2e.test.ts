/**
 * Fault injection with the real activities on 8 s of vtest.avi, on a stack of its own (Temporal
 * 47233, Web UI 48233, GCS emulator 44443, data in `.data/test-stack-faults`) because one test restarts the
 * Temporal server. Each faulted run must end with outputs byte-identical to an undisturbed run:
 * - kill -9 of the worker process in the middle of frame extraction (the run finishes on another worker);
 * - the Temporal dev server killed and restarted in the middle of detection;
 * - the GCS emulator unreachable for several seconds during uploads (a proxy answers 503 meanwhile);
 * - 8 runs at once on two (short) videos with two option sets: every run equals its own undisturbed reference,
 *   so no run saw another's cache entries or files.
 *
 * All runs of one option set share a run GUID (augmentation seeds match) under different tenant ids; JSON
 * and HTML are compared with the tenant id normalised.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../src/activities';
import { prepareInput, startRun } from '../src/cli/client';
import { loadConfig, PROJECT_ROOT, type Config } from '../src/config';
import { stackStatus, startStack, stopStack, type StackOptions } from '../src/stack';
import { createObjectStore } from '../src/storage/gcs';
import { RunLayout } from '../src/storage/layout';
import type { PipelineOptionsInput } from '../src/validation';
import { createDeps, splitActivities } from '../src/workers/worker';
import { videoWorkflowId } from '../src/workflows/ids';
import type { RunSummary } from '../src/workflows/types';
import { startFaultyProxy, type FaultyProxy } from './helpers/faultyProxy';
import { testPort } from './helpers/ports';
import { spawnWorkerProcess, waitForActivity, withWorkers } from './helpers/temporal';

const DATA = '/usr/share/doc/opencv-doc/examples/data';
const STACK: StackOptions = {
  dataDir: path.join(PROJECT_ROOT, '.data', 'test-stack-faults'),
  toolsDir: process.env.DATAPREP_TOOLS_DIR ?? path.join(PROJECT_ROOT, '.tools'),
  temporalPort: testPort(47233),
  uiPort: testPort(48233),
  gcsPort: testPort(44443),
  bucket: 'dataprep-faults',
  namespace: 'default',
  withWorker: false,
};
const ADDRESS = `127.0.0.1:${STACK.temporalPort}`;
const EMULATOR = `http://127.0.0.1:${STACK.gcsPort}`;
const tmp = mkdtempSync(path.join(tmpdir(), 'dataprep-faults-'));
const clipA = path.join(tmp, 'vtest_8s.avi');
const clipB = path.join(tmp, 'vtest_late_3s.avi');
const clipC = path.join(tmp, 'vtest_4s.avi');
const suffix = Math.random().toString(36).slice(2, 8);
/** Short timeouts so lost workers are noticed quickly (defaults: 30 s heartbeat, 60 s schedule-to-start). */
const ROUTING = { heartbeatTimeoutSeconds: 5, scheduleToStartSeconds: 3 };
const OPTIONS: PipelineOptionsInput = { frameStride: 1, augment: { count: 1 }, routing: ROUTING };

let client: Client;
let proxy: FaultyProxy;
const store = createObjectStore({ bucket: STACK.bucket, emulatorHost: EMULATOR });
/** Worker configuration: this stack, with storage through the fault-injecting proxy. */
let cfg: Config;

/** Real activities over their own folder; storage through the proxy. */
function realActivities(name: string) {
  const deps = createDeps({ ...cfg, dataDir: path.join(tmp, name) });
  return { deps, ...splitActivities(createActivities(deps)) };
}

/** Runs `fn` with in-process workers (real activities, cache on) on `taskQueue` (fresh when undefined). */
async function withRealWorkers<T>(name: string, fn: (taskQueue: string) => Promise<T>, taskQueue?: string): Promise<T> {
  const a = realActivities(name);
  try {
    return await withWorkers(a.cpu, fn, a.gpu, { address: ADDRESS, taskQueue });
  } finally {
    await a.deps.release();
  }
}

async function start(taskQueue: string, tenantId: string, runGuid: string, videos: string[], options: PipelineOptionsInput = OPTIONS) {
  return startRun(client, { ...cfg, taskQueue }, { tenantId, runGuid, videos: videos.map((source) => ({ source })), options });
}

/** sha256 of every object of a run's video folders, by path relative to the run (tenant id normalised). */
async function snapshot(tenantId: string, runGuid: string): Promise<Record<string, string>> {
  const prefix = new RunLayout(tenantId, runGuid).prefix;
  const out: Record<string, string> = {};
  for (const o of await store.list(prefix)) {
    const rel = o.name.slice(prefix.length);
    if (!rel.startsWith('video_')) continue; // run-level bookkeeping holds timings and queue names
    let data = await store.get(o.name);
    if (/\.(json|csv|html)$/.test(o.name)) data = Buffer.from(data.toString('utf8').replaceAll(tenantId, 'TENANT'), 'utf8');
    out[rel] = createHash('sha256').update(data).digest('hex');
  }
  return out;
}

/** Waits until the child workflow of `source` in `run` has `activity` running with details passing `ready`. */
async function waitForStep(run: { workflowId: string }, source: string, activity: string, ready: (details: Record<string, number>) => boolean): Promise<void> {
  const videoGuid = prepareInput({ tenantId: 'x', videos: [{ source }] }).videos[0].videoGuid!;
  await waitForActivity(client, videoWorkflowId(run.workflowId, videoGuid), activity, ready);
}

/** A worker process on `taskQueue` of this stack, its data under `name`. */
function spawnWorker(taskQueue: string, name: string) {
  return spawnWorkerProcess({ TASK_QUEUE: taskQueue, TEMPORAL_ADDRESS: ADDRESS, STORAGE_EMULATOR_HOST: EMULATOR, GCS_BUCKET: STACK.bucket, DATAPREP_DATA_DIR: path.join(tmp, name), SOURCE_ROOTS: tmp });
}

/** Awaits a run's result, riding out a Temporal server restart (the client reconnects). */
async function resultOf(run: { handle: WorkflowHandle }): Promise<RunSummary> {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await run.handle.result()) as RunSummary;
    } catch (err) {
      if (attempt >= 30 || !/unavailable|connect|transport|14 UNAVAILABLE|deadline/i.test(String(err))) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

const REF = `ref-${suffix}`;
let reference: Record<string, string>;

beforeAll(async () => {
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', path.join(DATA, 'vtest.avi'), '-t', '8', '-c', 'copy', clipA]);
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', path.join(DATA, 'vtest.avi'), '-t', '4', '-c', 'copy', clipC]);
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-ss', '40', '-i', path.join(DATA, 'vtest.avi'), '-t', '3', '-c:v', 'mpeg4', '-q:v', '3', clipB]);
  await startStack(STACK);
  proxy = await startFaultyProxy(EMULATOR);
  const base = loadConfig();
  // This test's folder is a source root, as a deployment lists its video folders.
  cfg = { ...base, temporalAddress: ADDRESS, bucket: STACK.bucket, storageEmulatorHost: proxy.url, sourceRoots: [...base.sourceRoots, tmp] };
  client = new Client({ connection: await Connection.connect({ address: ADDRESS }) });
  // The undisturbed reference.
  const summary = await withRealWorkers('ref', async (q) => resultOf(await start(q, 'reference', REF, [clipA])));
  expect(summary.status).toBe('completed');
  reference = await snapshot('reference', REF);
  expect(Object.keys(reference).filter((n) => n.includes('/datasets/train/')).length).toBeGreaterThan(20);
}, 300_000);

afterAll(async () => {
  await client?.connection.close();
  await proxy?.close();
  await stopStack(STACK);
});

describe('fault injection (real activities, own stack)', () => {
  it('survives kill -9 of the worker in the middle of frame extraction', async () => {
    const taskQueue = `kill3-${suffix}`;
    const { child, exited } = await spawnWorker(taskQueue, 'killed');
    try {
      const run = await start(taskQueue, 'killextract', REF, [clipA]);
      // Kill as soon as the step has started (its first heartbeat, `phase: started`, is recorded at once).
      // Progress heartbeats reach the server only every 2 s (the throttle), and the clip's 80 frames can
      // extract in less: waiting for one could miss the step entirely.
      await waitForStep(run, clipA, 'extractFramesForDetections', () => true);
      child.kill('SIGKILL');
      await exited;
      const summary = await withRealWorkers('rescue3', () => resultOf(run), taskQueue);
      expect(summary.status).toBe('completed');
      expect(summary.videos[0].routing!.reroutes[0]?.step).toBe('extractFramesForDetections');
      expect(await snapshot('killextract', REF)).toEqual(reference);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 300_000);

  it('survives a Temporal server restart in the middle of detection', async () => {
    const summary = await withRealWorkers('restart', async (q) => {
      const run = await start(q, 'restart', REF, [clipA]);
      await waitForStep(run, clipA, 'detectPlayers', (d) => (d.framesDone ?? 0) >= 10);
      const temporal = (await stackStatus(STACK)).find((s) => s.name === 'temporal')!;
      process.kill(temporal.pid!, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 2000));
      const restarted = await startStack(STACK);
      expect(restarted.find((s) => s.name === 'temporal')?.state).toBe('running');
      return resultOf(run);
    });
    expect(summary.status).toBe('completed');
    expect(await snapshot('restart', REF)).toEqual(reference);
  }, 300_000);

  it('survives the GCS emulator being unreachable for several seconds during uploads', async () => {
    const summary = await withRealWorkers('gcsdown', async (q) => {
      const run = await start(q, 'gcsdown', REF, [clipA]);
      await waitForStep(run, clipA, 'extractCrops', () => true);
      const before = proxy.counts().failed;
      proxy.failFor(4000, '503', { onNextUpload: true });
      const result = await resultOf(run);
      expect(proxy.counts().failed - before).toBeGreaterThan(0);
      return result;
    });
    expect(summary.status).toBe('completed');
    expect(await snapshot('gcsdown', REF)).toEqual(reference);
  }, 300_000);

  it('runs 8 pipelines at once on two videos without any run seeing another run\'s data', async () => {
    // Two option sets whose every artifact differs (JPEG quality), each with its own reference run.
    const sets = [
      // Default routing timeouts: 16 videos queue for two workers' model sessions, and nothing is killed here.
      { runGuid: `c80-${suffix}`, options: { frameStride: 3, jpegQuality: 80, augment: { count: 1 } } },
      { runGuid: `c95-${suffix}`, options: { frameStride: 3, jpegQuality: 95, augment: { count: 1 } } },
    ];
    const refs: Record<string, string>[] = [];
    for (const s of sets) {
      const r = await withRealWorkers(`ref-${s.runGuid}`, async (q) => resultOf(await start(q, 'solo', s.runGuid, [clipC, clipB], s.options)));
      expect(r.status).toBe('completed');
      refs.push(await snapshot('solo', s.runGuid));
    }
    // Two workers on one queue (a worker process and this process), 8 runs alternating the option sets.
    const runs = Array.from({ length: 8 }, (_, i) => ({ tenant: `conc${i}`, set: i % 2 }));
    const taskQueue = `conc-${suffix}`;
    const other = await spawnWorker(taskQueue, 'conc-process');
    let summaries: RunSummary[];
    try {
      summaries = await withRealWorkers(
        'conc-local',
        async () => {
          const started = await Promise.all(runs.map((r) => start(taskQueue, r.tenant, sets[r.set].runGuid, [clipC, clipB], sets[r.set].options)));
          return Promise.all(started.map((s) => resultOf(s)));
        },
        taskQueue,
      );
    } finally {
      other.child.kill('SIGTERM');
      await other.exited;
    }
    for (const [i, s] of summaries.entries()) {
      expect(s.status).toBe('completed');
      expect(await snapshot(runs[i].tenant, sets[runs[i].set].runGuid)).toEqual(refs[runs[i].set]);
    }
    expect(refs[0]).not.toEqual(refs[1]);
  }, 900_000);
});

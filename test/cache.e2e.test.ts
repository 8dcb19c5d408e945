/**
 * End to end: the run cache and worker-specific task queues with the real activities (ffmpeg,
 * sharp, YOLOv8n), the real dev server and the GCS emulator, on 6 s of vtest.avi.
 *
 * One reference run with the cache off; then, each compared byte for byte with it:
 * - cache on: no step after the import downloads an artifact from GCS (checked at the store), and the
 *   finished run leaves nothing in the cache;
 * - the worker process holding the run's cache is killed (SIGKILL) during detection: the run completes
 *   through the fallback path (shared queues, GCS);
 * - a cache bound far below the run's size: never exceeded, entries evicted, run still identical.
 *
 * All runs share one run GUID (so augmentation seeds match) under different tenant ids; JSON and HTML
 * outputs are compared with the tenant id normalised.
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../src/activities';
import { startRun } from '../src/cli/client';
import { loadConfig, type Config } from '../src/config';
import { createObjectStore, type ObjectStore } from '../src/storage/gcs';
import { RunLayout } from '../src/storage/layout';
import type { PipelineOptionsInput } from '../src/validation';
import { createDeps, splitActivities } from '../src/workers/worker';
import { progressQuery } from '../src/workflows/messages';
import type { RunSummary } from '../src/workflows/types';
import { videoSnapshot } from './helpers/snapshot';
import { spawnWorkerProcess, testClient, withWorkers } from './helpers/temporal';

const DATA = '/usr/share/doc/opencv-doc/examples/data';
const tmp = mkdtempSync(path.join(tmpdir(), 'dataprep-cache-'));
const clip = path.join(tmp, 'vtest_6s.avi');
const configured = loadConfig();
/** The test stack, with this test's folder as a source root (as a deployment lists its video folders). */
const cfg: Config = { ...configured, sourceRoots: [...configured.sourceRoots, tmp] };
const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost });
const runGuid = `cache-${Math.random().toString(36).slice(2, 8)}`;
/** Every frame of the clip (60), so the decoded frames (~80 MB) dwarf the small cache bound below. */
const OPTIONS: PipelineOptionsInput = { frameStride: 1, augment: { count: 1 } };
let client: Client;

/** A store that records the name of every object downloaded through it (and its scoped views). */
function recordingStore(inner: ObjectStore, downloads: string[]): ObjectStore {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'get' || prop === 'getFile') {
        return (name: string, ...rest: unknown[]) => {
          downloads.push(name);
          return (target[prop] as (...a: unknown[]) => unknown)(name, ...rest);
        };
      }
      if (prop === 'scoped') return () => recordingStore(target.scoped(), downloads);
      return Reflect.get(target, prop, receiver);
    },
  });
}

/** Real activities over their own worker folder and cache settings, with downloads recorded. */
function realDeps(name: string, over: Partial<Config> = {}) {
  const deps = createDeps({ ...cfg, dataDir: path.join(tmp, name), ...over });
  const downloads: string[] = [];
  deps.store = recordingStore(deps.store, downloads);
  return { deps, downloads, ...splitActivities(createActivities(deps)) };
}

/** Runs the clip under `tenantId` on in-process workers built from `d` and returns the summary. */
async function runWith(d: ReturnType<typeof realDeps>, tenantId: string, options: PipelineOptionsInput = OPTIONS): Promise<RunSummary> {
  return withWorkers(
    d.cpu,
    async (taskQueue) => {
      const run = await startRun(client, { ...cfg, taskQueue }, { tenantId, runGuid, videos: [{ source: clip }], options });
      return run.handle.result();
    },
    d.gpu,
  );
}

/** {@link videoSnapshot} of the clip's video in run `tenantId` of this test's run GUID. */
function snapshot(tenantId: string, videoGuid: string): Promise<Record<string, string>> {
  return videoSnapshot(store, tenantId, runGuid, videoGuid);
}

let reference: Record<string, string>;
let videoGuid: string;

beforeAll(async () => {
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', path.join(DATA, 'vtest.avi'), '-t', '6', '-c', 'copy', clip]);
  client = await testClient();
  // Reference: cache off, every step reads its inputs from GCS.
  const off = realDeps('off', { cacheEnabled: false });
  const summary = await runWith(off, 'cacheoff');
  await off.deps.release();
  expect(summary.status).toBe('completed');
  videoGuid = summary.videos[0].videoGuid;
  reference = await snapshot('cacheoff', videoGuid);
  expect(Object.keys(reference).filter((n) => n.startsWith('datasets/train/')).length).toBeGreaterThan(20);
  // With the cache off the later steps do download their inputs (this is what the cache saves).
  expect(off.downloads.filter((n) => n.includes('/selected_frames/')).length).toBeGreaterThanOrEqual(60);
  expect(summary.cache.artifactDownloads).toBeGreaterThan(100);
}, 300_000);

afterAll(async () => {
  await client?.connection.close();
});

describe('run cache and worker-specific task queues (real activities)', () => {
  it('with the cache on, downloads no intermediate artifact and gives byte-identical outputs', async () => {
    const on = realDeps('on');
    const summary = await runWith(on, 'cacheon');
    expect(summary.status).toBe('completed');
    // Nothing of the video's folder was downloaded: every step after the import found its inputs in memory.
    const videoPrefix = new RunLayout('cacheon', runGuid).video(videoGuid).prefix;
    expect(on.downloads.filter((n) => n.startsWith(videoPrefix))).toEqual([]);
    expect(summary.cache.artifactDownloads).toBe(0);
    expect(summary.cache.hits).toBeGreaterThan(200);
    // Steps 4 to 6 read the frames' JPEGs from memory: step 5 and step 6 each read every frame.
    const frames = await store.list(new RunLayout('cacheon', runGuid).video(videoGuid).framesPrefix);
    expect(frames.length).toBeGreaterThanOrEqual(50);
    expect(summary.cache.bytesFromCache).toBeGreaterThan(2 * frames.reduce((n, o) => n + o.size, 0));
    // Every step ran on this worker's own queues.
    const routing = summary.videos[0].routing!;
    expect(routing.cpu).toMatch(/@/);
    expect(routing.gpu).toMatch(/-gpu@/);
    expect(routing.reroutes).toEqual([]);
    expect(await snapshot('cacheon', videoGuid)).toEqual(reference);
    // The finished run left nothing in the cache, in memory or on disk.
    expect(on.deps.cache.count('cacheon/')).toBe(0);
    expect(existsSync(path.join(on.deps.cache.fileDir, 'cacheon'))).toBe(false);
    await on.deps.release();
  });

  it('never exceeds a byte bound smaller than the run and still gives identical outputs', async () => {
    const maxBytes = 3 * 1024 * 1024; // the run's frame JPEGs alone are ~6 MB (60 frames of 768x576)
    const small = realDeps('small', { cacheMaxBytes: maxBytes });
    const summary = await runWith(small, 'cachesmall');
    expect(summary.status).toBe('completed');
    const stats = small.deps.cache.stats();
    expect(stats.peakBytes).toBeLessThanOrEqual(maxBytes);
    expect(stats.peakBytes).toBeGreaterThan(maxBytes / 2);
    expect(stats.evicted).toBeGreaterThan(0);
    // Evicted inputs were read back from GCS: the fallback path inside one worker.
    expect(summary.cache.artifactDownloads).toBeGreaterThan(0);
    expect(await snapshot('cachesmall', videoGuid)).toEqual(reference);
    expect(small.deps.cache.count('cachesmall/')).toBe(0);
    await small.deps.release();
  });

  it('completes through the fallback path when the worker holding the cache is killed during detection', async () => {
    const taskQueue = `kill-${Math.random().toString(36).slice(2, 8)}`;
    const workerDir = path.join(tmp, 'killed');
    // The worker to kill: a separate process (`npm run worker`'s entry point) on this test's queue.
    const { child, exited } = await spawnWorkerProcess({ TASK_QUEUE: taskQueue, DATAPREP_DATA_DIR: workerDir, SOURCE_ROOTS: tmp });
    try {
      // Short timeouts so the test notices the dead worker quickly (defaults: 30 s heartbeat, 60 s start).
      const options = { ...OPTIONS, routing: { heartbeatTimeoutSeconds: 5, scheduleToStartSeconds: 3 } };
      const run = await startRun(client, { ...cfg, taskQueue }, { tenantId: 'cachekill', runGuid, videos: [{ source: clip }], options });
      let step: string | null | undefined;
      for (let i = 0; i < 1200 && step !== 'detectPlayers'; i++) {
        step = (await run.handle.query(progressQuery).catch(() => undefined))?.videos[0]?.currentStep;
        if (step !== 'detectPlayers') await new Promise((r) => setTimeout(r, 50));
      }
      expect(step).toBe('detectPlayers');
      await new Promise((r) => setTimeout(r, 1500)); // well inside the ~60-frame detection loop
      child.kill('SIGKILL');
      await exited;
      // A fresh worker (empty cache) takes over the shared queues.
      const rescue = realDeps('rescue');
      const summary: RunSummary = await withWorkers(rescue.cpu, () => run.handle.result(), rescue.gpu, { taskQueue });
      await rescue.deps.release();
      expect(summary.status).toBe('completed');
      const routing = summary.videos[0].routing!;
      expect(routing.reroutes.length).toBeGreaterThanOrEqual(1);
      expect(routing.reroutes[0].step).toBe('detectPlayers');
      expect(routing).toMatchObject({ cpu: taskQueue, gpu: `${taskQueue}-gpu` });
      // The remaining steps read their inputs from GCS.
      expect(rescue.downloads.some((n) => n.includes('/selected_frames/'))).toBe(true);
      expect(await snapshot('cachekill', videoGuid)).toEqual(reference);
      // The killed worker's cache files are garbage now; the next worker start on that folder removes them.
      const cacheDir = path.join(workerDir, 'worker-cache');
      expect(readdirSync(cacheDir).length).toBe(1);
      createDeps({ ...cfg, dataDir: workerDir });
      expect(readdirSync(cacheDir)).toEqual([]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

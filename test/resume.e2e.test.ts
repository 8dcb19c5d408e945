/**
 * Step 5 resumes from its last heartbeat (docs/ARCHITECTURE.md "Resuming a step"): the real `detectPlayers` activity in Temporal's
 * MockActivityEnvironment is cancelled part-way (as a crash or timeout would end an attempt), then run again
 * with the last heartbeat details, as Temporal hands them to a retry. It must continue after the last
 * checkpoint chunk instead of starting over, and write a `detections.json` byte-identical to an
 * uninterrupted run. A chunk that fails verification makes it start over, with the same result. Step 7
 * (background removal with the segmentation model) likewise skips the crops its checkpoint verified. Retried
 * steps 3, 6, 8 and 9 skip the uploads (or, step 8, the work) that the cancelled attempt already did.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../src/activities';
import { BACKGROUND_CHUNK, type BackgroundHeartbeat } from '../src/activities/crops';
import { DETECT_CHUNK_FRAMES, type DetectHeartbeat } from '../src/activities/detectFrames';
import { loadConfig, type Config } from '../src/config';
import { createObjectStore } from '../src/storage/gcs';
import { RunLayout } from '../src/storage/layout';
import { validateInput } from '../src/validation';
import { createDeps } from '../src/workers/worker';
import type { StepInput } from '../src/workflows/types';

const DATA = '/usr/share/doc/opencv-doc/examples/data';
const tmp = mkdtempSync(path.join(tmpdir(), 'dataprep-resume-'));
const clip = path.join(tmp, 'vtest_8s.avi');
const configured = loadConfig();
/** The test stack, with this test's folder as a source root (as a deployment lists its video folders). */
const cfg: Config = { ...configured, sourceRoots: [...configured.sourceRoots, tmp] };
const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost });
const runGuid = `resume-${Math.random().toString(36).slice(2, 8)}`;
const videoGuid = 'resumevideo';
/** 80 sampled frames: one checkpoint chunk of 50, then 30 more. */
const options = validateInput({ tenantId: 'x', videos: [{ source: '/x' }], options: { frameStride: 1 } }).options;
const deps = createDeps({ ...cfg, dataDir: path.join(tmp, 'worker') });
const acts = createActivities(deps);

/** Runs steps 1-4 for `tenantId` and returns step 5's input. */
async function prepare(tenantId: string): Promise<StepInput> {
  const base: StepInput = { tenantId, runGuid, videoGuid, workflowId: `wf-${tenantId}`, source: clip, options };
  await acts.importVideo(base);
  await acts.loadVideo(base);
  await acts.extractFramesForDetections(base);
  const { grass } = await acts.initializeGrassMask(base);
  return { ...base, grass };
}

/**
 * Runs a step activity in a mock activity context, as attempt `info` (e.g. with the last heartbeat details
 * of an earlier attempt), cancelling it once a heartbeat's `progress` reaches `cancelAt`. Returns its result
 * or error and the progress heartbeats it sent (those where `progress` is defined).
 */
async function runStepActivity<R, H>(
  fn: (input: StepInput) => Promise<R>,
  input: StepInput,
  info: { heartbeatDetails?: unknown; attempt?: number },
  progress: (details: H) => number | undefined,
  cancelAt?: number,
) {
  const env = new MockActivityEnvironment({ ...info, taskQueue: 'resume-test' });
  const beats: H[] = [];
  env.on('heartbeat', (d: H) => {
    const done = d === undefined ? undefined : progress(d);
    if (done === undefined) return;
    beats.push(d);
    if (cancelAt !== undefined && done >= cancelAt) env.cancel();
  });
  const outcome = await (env.run(fn, input) as Promise<R>).then(
    (result) => ({ result, error: undefined }),
    (error: unknown) => ({ result: undefined, error }),
  );
  return { ...outcome, beats };
}

/** detectPlayers through {@link runStepActivity}, cancelled at frame `cancelAtFrame`. */
function detect(input: StepInput, info: { heartbeatDetails?: unknown; attempt?: number }, cancelAtFrame?: number) {
  return runStepActivity(acts.detectPlayers, input, info, (d: DetectHeartbeat) => d.framesDone, cancelAtFrame);
}

let referenceDetections: Buffer;

beforeAll(async () => {
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', path.join(DATA, 'vtest.avi'), '-t', '8', '-c', 'copy', clip]);
  const input = await prepare('resumeref');
  const ref = await detect(input, {});
  expect(ref.error).toBeUndefined();
  expect(ref.result!.frames).toBe(80);
  referenceDetections = await store.get(new RunLayout('resumeref', runGuid).video(videoGuid).detections);
}, 300_000);

afterAll(async () => {
  await deps.release();
});

describe('step 5 resumes from its last heartbeat', () => {
  it('continues after the last checkpoint chunk and writes identical detections', async () => {
    const input = await prepare('resumeok');
    const layout = new RunLayout('resumeok', runGuid);
    const first = await detect(input, {}, DETECT_CHUNK_FRAMES + 5);
    expect(first.error).toBeInstanceOf(CancelledFailure);
    const last = first.beats.at(-1)!;
    expect(last.framesDone).toBe(DETECT_CHUNK_FRAMES + 5);
    expect(last.checkpoint?.framesDone).toBe(DETECT_CHUNK_FRAMES);
    expect(last.checkpoint?.chunks).toHaveLength(1);
    expect(await store.exists(last.checkpoint!.chunks[0].object)).toBe(true);

    const second = await detect(input, { heartbeatDetails: last, attempt: 2 });
    expect(second.error).toBeUndefined();
    // The retry did not redo the checkpointed frames: its first heartbeat is for frame 51.
    expect(second.beats[0].framesDone).toBe(DETECT_CHUNK_FRAMES + 1);
    const step5 = (await store.getJson<{ videos: Record<string, { resumedFromFrame: number }> }>(layout.stepResult(5)))!;
    expect(step5.videos[videoGuid].resumedFromFrame).toBe(DETECT_CHUNK_FRAMES);
    expect(Buffer.compare(await store.get(layout.video(videoGuid).detections), referenceDetections)).toBe(0);
    // Checkpoint chunks are removed once detections.json is written.
    expect(await store.list(layout.checkpointPrefix(videoGuid))).toEqual([]);
  });

  it('starts over when a checkpoint chunk fails verification, with the same result', async () => {
    const input = await prepare('resumebad');
    const layout = new RunLayout('resumebad', runGuid);
    const first = await detect(input, {}, DETECT_CHUNK_FRAMES + 2);
    const last = first.beats.at(-1)!;
    // Someone (or a partial write) changed the chunk: its sha256 no longer matches the heartbeat's record.
    await store.put(last.checkpoint!.chunks[0].object, '[]');
    const second = await detect(input, { heartbeatDetails: last, attempt: 2 });
    expect(second.error).toBeUndefined();
    expect(second.beats[0].framesDone).toBe(1);
    const step5 = (await store.getJson<{ videos: Record<string, { resumedFromFrame: number }> }>(layout.stepResult(5)))!;
    expect(step5.videos[videoGuid].resumedFromFrame).toBe(0);
    expect(Buffer.compare(await store.get(layout.video(videoGuid).detections), referenceDetections)).toBe(0);
  });
});

describe('step 7 resumes from its last heartbeat', () => {
  /** Steps 1-6 with the segmentation model (slow: about 0.5 s per crop) on a few crops per track. */
  const opts7 = validateInput({ tenantId: 'x', videos: [{ source: '/x' }], options: { frameStride: 1, crops: { maxPerTrack: 6 }, background: { mode: 'segmentation' } } }).options;
  async function prepare7(tenantId: string): Promise<StepInput> {
    const base: StepInput = { tenantId, runGuid, videoGuid, workflowId: `wf-${tenantId}`, source: clip, options: opts7 };
    await acts.importVideo(base);
    await acts.extractFramesForDetections(base);
    const { grass } = await acts.initializeGrassMask(base);
    await acts.detectPlayers({ ...base, grass });
    await acts.extractCrops({ ...base, grass });
    return { ...base, grass };
  }
  function background(input: StepInput, info: { heartbeatDetails?: unknown }, cancelAt?: number) {
    return runStepActivity(acts.removeCropBackground, input, info, (d: BackgroundHeartbeat) => d.cropsDone, cancelAt);
  }
  /** sha256 of every background-removed crop of a tenant's run, by relative name. */
  async function modified(tenantId: string): Promise<Record<string, string>> {
    const prefix = new RunLayout(tenantId, runGuid).video(videoGuid).cropsPrefix('modified');
    const out: Record<string, string> = {};
    for (const o of await store.list(prefix)) out[o.name.slice(prefix.length)] = createHash('sha256').update(await store.get(o.name)).digest('hex');
    return out;
  }

  it('skips the crops its checkpoint verified and makes identical outputs', async () => {
    const ref = await prepare7('bgref');
    expect((await background(ref, {})).error).toBeUndefined();
    const reference = await modified('bgref');
    expect(Object.keys(reference).length).toBeGreaterThan(BACKGROUND_CHUNK + 5);

    const input = await prepare7('bgresume');
    const first = await background(input, {}, BACKGROUND_CHUNK + 3);
    expect(first.error).toBeInstanceOf(CancelledFailure);
    const last = first.beats.at(-1)!;
    expect(last.checkpoint?.chunks).toHaveLength(1);
    const second = await background(input, { heartbeatDetails: last });
    expect(second.error).toBeUndefined();
    expect(second.beats[0].skipped).toBe(BACKGROUND_CHUNK);
    const layout = new RunLayout('bgresume', runGuid);
    const step7 = (await store.getJson<{ videos: Record<string, { resumedCrops: number }> }>(layout.stepResult(7)))!;
    expect(step7.videos[videoGuid].resumedCrops).toBe(BACKGROUND_CHUNK);
    expect(await modified('bgresume')).toEqual(reference);
    expect(await store.list(layout.checkpointPrefix(videoGuid))).toEqual([]);
  }, 600_000);
});

describe('steps 3, 6, 8 and 9 skip what an earlier attempt already stored', () => {
  /** A short full run: every frame, at most 8 crops per track, background copied, one augmented copy. */
  const optsSkip = validateInput({
    tenantId: 'x',
    videos: [{ source: '/x' }],
    options: { frameStride: 1, crops: { maxPerTrack: 8 }, background: { mode: 'none' }, augment: { count: 1 } },
  }).options;
  type Beat = Record<string, number | undefined>;
  type Io = { io: { uploadsSkipped: number; cacheHits: number } };

  /** sha256 of every object of a tenant's video folder by relative name (JSON and HTML with the tenant normalised). */
  async function videoFolder(tenantId: string): Promise<Record<string, string>> {
    const prefix = new RunLayout(tenantId, runGuid).video(videoGuid).prefix;
    const out: Record<string, string> = {};
    for (const o of await store.list(prefix)) {
      const rel = o.name.slice(prefix.length);
      if (rel.startsWith('intermediate/')) continue; // step records hold timings and I/O counters
      let data = await store.get(o.name);
      if (/\.(json|csv|html)$/.test(rel)) data = Buffer.from(data.toString('utf8').replaceAll(tenantId, 'TENANT'), 'utf8');
      out[rel] = createHash('sha256').update(data).digest('hex');
    }
    return out;
  }

  /**
   * Runs `fn` as attempt 1, cancelled once the heartbeat field `field` reaches `cancelAt`, then (after the
   * first attempt's in-flight uploads settled, and `beforeRetry`) as attempt 2 with its last heartbeat.
   * Returns the second attempt's result and how many objects under `prefix` the first attempt stored.
   */
  async function interrupted<R>(fn: (input: StepInput) => Promise<R>, input: StepInput, field: string, cancelAt: number, prefix: string, beforeRetry?: () => Promise<void>) {
    const first = await runStepActivity(fn, input, {}, (d: Beat) => d[field], cancelAt);
    expect(first.error).toBeInstanceOf(CancelledFailure);
    await new Promise((r) => setTimeout(r, 1500));
    const storedBefore = (await store.list(prefix)).length;
    await beforeRetry?.();
    const second = await runStepActivity(fn, input, { heartbeatDetails: first.beats.at(-1), attempt: 2 }, (d: Beat) => d[field]);
    expect(second.error).toBeUndefined();
    return { result: second.result as R & Io, storedBefore };
  }

  it('retries upload only what is missing and end byte-identical to an uninterrupted run', async () => {
    // The uninterrupted reference.
    const ref: StepInput = { tenantId: 'skipref', runGuid, videoGuid, workflowId: 'wf-skipref', source: clip, options: optsSkip };
    await acts.importVideo(ref);
    await acts.extractFramesForDetections(ref);
    const refGrass = { ...ref, grass: (await acts.initializeGrassMask(ref)).grass };
    await acts.detectPlayers(refGrass);
    await acts.extractCrops(refGrass);
    await acts.removeCropBackground(refGrass);
    await acts.augmentCrops(refGrass);
    await acts.createTrainingAndValidationSets(refGrass);
    const reference = await videoFolder('skipref');
    expect(Object.keys(reference).filter((n) => n.startsWith('datasets/train/')).length).toBeGreaterThan(40);

    const base: StepInput = { ...ref, tenantId: 'skipretry', workflowId: 'wf-skipretry' };
    const video = new RunLayout('skipretry', runGuid).video(videoGuid);
    await acts.importVideo(base);

    // Step 3: frames stored by the cancelled attempt are not uploaded again.
    const s3 = await interrupted(acts.extractFramesForDetections, base, 'framesDone', 30, video.framesPrefix);
    expect(s3.storedBefore).toBeGreaterThanOrEqual(20);
    expect(s3.storedBefore).toBeLessThan(80);
    expect(s3.result.io.uploadsSkipped).toBe(s3.storedBefore);

    const input = { ...base, grass: (await acts.initializeGrassMask(base)).grass };
    await acts.detectPlayers(input);

    // Step 6: crops stored by the cancelled attempt are not uploaded again.
    const s6 = await interrupted(acts.extractCrops, input, 'cropsWritten', 15, video.cropsPrefix('original'));
    expect(s6.storedBefore).toBeGreaterThanOrEqual(10);
    expect(s6.result.io.uploadsSkipped).toBe(s6.storedBefore);

    await acts.removeCropBackground(input);

    // Step 8: on the same worker, the copies the cancelled attempt made are taken from the run cache.
    const s8 = await interrupted(acts.augmentCrops, input, 'augmented', 10, video.prefix);
    expect(s8.result.io.cacheHits).toBeGreaterThanOrEqual(10);

    // Step 9: no manifest while incomplete; stored images are neither copied nor uploaded again, and a
    // leftover the plan does not contain is removed.
    const stale = video.datasetImage('train', 999, 'crop_0.jpg');
    const s9 = await interrupted(acts.createTrainingAndValidationSets, input, 'imagesWritten', 20, video.datasetPrefix, async () => {
      expect(await store.exists(video.manifest)).toBe(false);
      await store.put(stale, 'not part of this dataset');
    });
    expect(s9.storedBefore).toBeGreaterThanOrEqual(20);
    expect(s9.result.io.uploadsSkipped).toBe(s9.storedBefore);
    expect(await store.exists(stale)).toBe(false);

    expect(await videoFolder('skipretry')).toEqual(reference);
  }, 600_000);
});

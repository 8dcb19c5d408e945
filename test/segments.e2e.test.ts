/**
 * End to end: one video tracked in time segments (docs/ARCHITECTURE.md "Segments"), with the real activities
 * (ffmpeg, sharp, YOLOv8n), the real dev server and the GCS emulator, on 9 s of vtest.avi (every frame) in
 * segments of 6 s with a 1 s overlap: two segments, the first long enough to write a checkpoint chunk.
 *
 * One reference run on one in-process worker; then, each compared byte for byte with it:
 * - two worker processes' worth of workers (in-process, each with its own run cache and own queues) on one
 *   task queue, with steps 6 and 8 also fanned out over class batches of about 150 tracked boxes
 *   (docs/ARCHITECTURE.md "Class batches"): the result does not depend on which worker tracked which segment
 *   or cropped and augmented which batch, and batches give the outputs that one piece gives;
 * - the worker process tracking a segment is killed (SIGKILL): only that segment is tracked again, by
 *   another worker, and the run completes;
 * - the worker process augmenting a class batch (step 8's fan-out) is killed: the batch is made again by another
 *   worker, and the run completes;
 * - the run cache off: every segment and step 5 read their inputs from GCS.
 *
 * All runs share one run GUID (so augmentation seeds match) under different tenant ids; JSON and HTML
 * outputs are compared with the tenant id normalised.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../src/activities';
import { startRun } from '../src/cli/client';
import { loadConfig, type Config } from '../src/config';
import { framesOfBatch, inBatch, type ClassBatch } from '../src/dataset/batches';
import { cropIndexSchema, detectionsBatchFileSchema, detectionsFileSchema, segmentFileSchema, stepResultFileSchema } from '../src/storage/artifacts';
import { createObjectStore } from '../src/storage/gcs';
import { RunLayout } from '../src/storage/layout';
import { validateInput, type PipelineOptionsInput } from '../src/validation';
import { createDeps, splitActivities } from '../src/workers/worker';
import { segmentWorkflowId, videoWorkflowId } from '../src/workflows/ids';
import { progressQuery } from '../src/workflows/messages';
import type { RunSummary } from '../src/workflows/types';
import { videoSnapshot } from './helpers/snapshot';
import { spawnWorkerProcess, testClient, waitForActivity, withWorkers } from './helpers/temporal';

const DATA = '/usr/share/doc/opencv-doc/examples/data';
const tmp = mkdtempSync(path.join(tmpdir(), 'dataprep-segments-'));
const clip = path.join(tmp, 'vtest_9s.avi');
const configured = loadConfig();
const cfg: Config = { ...configured, sourceRoots: [...configured.sourceRoots, tmp] };
const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost });
const runGuid = `segs-${Math.random().toString(36).slice(2, 8)}`;
/**
 * vtest.avi plays at 10 fps: 90 frames, all sampled; segments of 60 frames reaching 10 into the next, so the
 * first tracks 70 frames and writes a checkpoint chunk after 50 (DETECT_CHUNK_FRAMES).
 */
const OPTIONS: PipelineOptionsInput = { frameStride: 1, augment: { count: 1 }, segments: { seconds: 6, overlapSeconds: 1 } };
let client: Client;

/** Real activities over their own worker folder. */
function realDeps(name: string, over: Partial<Config> = {}) {
  const deps = createDeps({ ...cfg, dataDir: path.join(tmp, name), ...over });
  return { deps, ...splitActivities(createActivities(deps)) };
}

/** Class batches of about 150 tracked boxes (the clip has several hundred): steps 6 and 8 fan out over several. */
const BATCHES: PipelineOptionsInput = { batches: { boxes: 150 } };

/** Starts the clip under `tenantId` on `taskQueue` (with `extra` options) and waits for the run's summary. */
async function runClip(taskQueue: string, tenantId: string, extra: PipelineOptionsInput = {}): Promise<RunSummary> {
  return (await startRun(client, { ...cfg, taskQueue }, { tenantId, runGuid, videos: [{ source: clip }], options: { ...OPTIONS, ...extra } })).handle.result();
}

/** Runs the clip under `tenantId` on in-process workers over `d` alone, then releases `d`. */
async function runOn(d: ReturnType<typeof realDeps>, tenantId: string): Promise<RunSummary> {
  const summary = await withWorkers(d.cpu, (taskQueue) => runClip(taskQueue, tenantId), d.gpu);
  await d.deps.release();
  return summary;
}

/** Routing of the worker-kill tests: short timeouts, so a dead worker is noticed quickly (defaults 30 s and 60 s). */
const KILL_ROUTING: PipelineOptionsInput = { routing: { heartbeatTimeoutSeconds: 5, scheduleToStartSeconds: 3 } };

/**
 * Kills `worker` (SIGKILL) and finishes the run of `handle` on `taskQueue` with in-process workers over fresh
 * real activities (`realDeps(name)`, an empty run cache).
 * @returns the run's summary
 */
async function killAndRescue(worker: Awaited<ReturnType<typeof spawnWorkerProcess>>, handle: { result(): Promise<RunSummary> }, taskQueue: string, name: string): Promise<RunSummary> {
  worker.child.kill('SIGKILL');
  await worker.exited;
  const rescue = realDeps(name);
  const summary: RunSummary = await withWorkers(rescue.cpu, () => handle.result(), rescue.gpu, { taskQueue });
  await rescue.deps.release();
  return summary;
}

/** {@link videoSnapshot} of the clip's video in run `tenantId` of this test's run GUID. */
function snapshot(tenantId: string, videoGuid: string): Promise<Record<string, string>> {
  return videoSnapshot(store, tenantId, runGuid, videoGuid);
}

/** Step 5's result entry of the video in run `tenantId`, with its segments' results. */
async function step5(tenantId: string, videoGuid: string) {
  const file = stepResultFileSchema.parse(JSON.parse((await store.get(new RunLayout(tenantId, runGuid).stepResult(5))).toString('utf8')));
  return file.videos[videoGuid] as Record<string, unknown> & { segments?: Record<string, { taskQueue?: string; frames: number; segment: { from: number; to: number } }> };
}

let reference: Record<string, string>;
let videoGuid: string;

beforeAll(async () => {
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', path.join(DATA, 'vtest.avi'), '-t', '9', '-c', 'copy', clip]);
  client = await testClient();
  const summary = await runOn(realDeps('one'), 'segone');
  expect(summary.status).toBe('completed');
  videoGuid = summary.videos[0].videoGuid;
  reference = await snapshot('segone', videoGuid);
}, 300_000);

afterAll(async () => {
  await client?.connection.close();
});

describe('one video in time segments (real activities)', () => {
  it('tracks each segment apart and stitches them into one detections.json over every sampled frame', async () => {
    const layout = new RunLayout('segone', runGuid);
    const video = layout.video(videoGuid);
    const frameIds = (await store.list(video.framesPrefix)).map((o) => video.frameIdOf(o.name)!).sort((a, b) => a - b);
    expect(frameIds.length).toBe(90);
    const r = await step5('segone', videoGuid);
    // Two segments: 60 frames reaching 10 into the next, then the rest; each tracked its own sampled frames.
    const segs = Object.values(r.segments ?? {}).sort((a, b) => a.segment.from - b.segment.from);
    expect(segs.map((s) => [s.segment.from, s.segment.to])).toEqual([
      [0, 69],
      [60, 89],
    ]);
    for (const s of segs) expect(s.frames).toBe(frameIds.filter((id) => id >= s.segment.from && id <= s.segment.to).length);
    // Step 5's own entry says where it cut between the segments and how many tracks it continued.
    const stitch = r.stitch as { segments: number; cuts: number[]; links: number };
    expect(stitch.segments).toBe(2);
    expect(stitch.cuts).toEqual([0, 65]);
    expect(stitch.links).toBeGreaterThan(0);
    // The pieces are stored, and their frames overlap where the plan says.
    const piece = segmentFileSchema.parse(JSON.parse((await store.get(layout.segment(videoGuid, 1))).toString('utf8')));
    expect(piece.frames[0].frame_id).toBe(60);
    expect(piece.frames[piece.frames.length - 1].frame_id).toBe(89);
    // The first segment's checkpoint chunk (after 50 frames) was deleted with the others once it completed.
    expect(await store.list(layout.checkpointPrefix(videoGuid))).toEqual([]);
    // detections.json: every sampled frame once, in order; track ids numbered 0.. without gaps.
    const det = detectionsFileSchema.parse(JSON.parse((await store.get(video.detections)).toString('utf8')));
    expect(det.frames.map((f) => f.frame_id)).toEqual(frameIds);
    const tracklets = [...new Set(det.frames.flatMap((f) => f.detections.map((d) => d.tracklet_id!)))].sort((a, b) => a - b);
    expect(tracklets.length).toBeGreaterThan(5);
    expect(tracklets).toEqual(tracklets.map((_, i) => i));
    // People walk across the cuts between segments: some tracklet has boxes on both sides of a cut.
    const span = new Map<number, [number, number]>();
    for (const f of det.frames) for (const d of f.detections) span.set(d.tracklet_id!, [Math.min(span.get(d.tracklet_id!)?.[0] ?? f.frame_id, f.frame_id), f.frame_id]);
    expect([...span.values()].some(([a, b]) => a < 60 && b > 70)).toBe(true);
    // The dataset was written from it.
    expect(Object.keys(reference).filter((n) => n.startsWith('datasets/val/')).length).toBeGreaterThan(5);
  });

  it('gives identical outputs whichever of two workers tracks which segment and crops and augments which class batch', async () => {
    const a = realDeps('two-a');
    const b = realDeps('two-b');
    const taskQueue = `segtwo-${Math.random().toString(36).slice(2, 8)}`;
    const summary: RunSummary = await withWorkers(
      b.cpu,
      () =>
        withWorkers(
          a.cpu,
          () => runClip(taskQueue, 'segtwo', BATCHES),
          a.gpu,
          { taskQueue, workerId: 'worker-a' },
        ),
      b.gpu,
      { taskQueue, workerId: 'worker-b' },
    );
    await a.deps.release();
    await b.deps.release();
    expect(summary.status).toBe('completed');
    expect(await snapshot('segtwo', videoGuid)).toEqual(reference);
    // Each segment ran from the shared GPU queue and says which worker's cache holds it.
    const segs = Object.values((await step5('segtwo', videoGuid)).segments ?? {});
    expect(segs.length).toBe(2);
    for (const s of segs) expect(s.taskQueue).toBe(`${taskQueue}-gpu`);
    // Steps 6 and 8 ran in class batches from the shared CPU queue, which cover every class once; step 6 merged
    // their crops into the crop index, step 9 copied their augmented copies into the dataset (both identical to
    // the reference's, made in one piece) and deleted the copies.
    const layout = new RunLayout('segtwo', runGuid);
    type Part = { taskQueue?: string; crops?: number; augmented?: number; detectionsRead?: string; batch: { index: number; from: number; to: number; boxes: number } };
    const partsOf = async (n: number) => {
      const entry = stepResultFileSchema.parse(JSON.parse((await store.get(layout.stepResult(n))).toString('utf8'))).videos[videoGuid] as unknown as { augmented?: number; batches?: Record<string, Part> };
      return { entry, parts: Object.values(entry.batches ?? {}).sort((x, y) => x.batch.from - y.batch.from) };
    };
    const step6 = await partsOf(6);
    const { entry: step8, parts: batches } = await partsOf(8);
    expect(batches.length).toBeGreaterThan(2);
    expect(step6.parts.map((x) => x.batch)).toEqual(batches.map((x) => x.batch));
    for (const x of [...batches, ...step6.parts]) expect(x.taskQueue).toBe(taskQueue);
    for (let i = 1; i < batches.length; i++) expect(batches[i].batch.from).toBeGreaterThan(batches[i - 1].batch.to);
    // Each crop batch read its own part of detections.json (written by step 5), which holds exactly the frames
    // with a box of its tracks; together the parts hold every tracked box.
    const detections = detectionsFileSchema.parse(JSON.parse((await store.get(layout.video(videoGuid).detections)).toString('utf8')));
    let boxesInParts = 0;
    for (const x of step6.parts) {
      expect(x.detectionsRead).toBe('part');
      const part = detectionsBatchFileSchema.parse(JSON.parse((await store.get(layout.detectionsBatch(videoGuid, x.batch.index))).toString('utf8')));
      expect(part.frames.map((f) => f.frame_id)).toEqual(framesOfBatch(detections.frames, x.batch).map((f) => f.frame_id));
      boxesInParts += part.frames.reduce((n, f) => n + f.detections.filter((d) => inBatch(x.batch, d.track_id)).length, 0);
    }
    expect(boxesInParts).toBe(detections.frames.reduce((n, f) => n + f.detections.length, 0));
    const index = cropIndexSchema.parse(JSON.parse((await store.get(layout.video(videoGuid).cropIndex)).toString('utf8')));
    expect(step6.parts.reduce((n, x) => n + x.crops!, 0)).toBe(index.crops.length);
    const augmentedInDataset = Object.keys(reference).filter((n) => /^datasets\/train(_aug)?\/.*_aug\d+\.jpg$/.test(n)).length;
    expect(augmentedInDataset).toBeGreaterThan(0);
    expect(batches.reduce((n, x) => n + x.augmented!, 0)).toBe(augmentedInDataset);
    expect(step8.augmented).toBe(augmentedInDataset);
    expect(await store.list(layout.augmentedPrefix(videoGuid))).toEqual([]);
    // Step 9 again, as a retry after its first attempt deleted the batches' copies: each copy it finds missing
    // is made again, bit-identical, and the dataset is unchanged.
    const again = realDeps('two-step9');
    const options = validateInput({ tenantId: 'segtwo', videos: [{ source: clip }], options: { ...OPTIONS, ...BATCHES } }).options;
    const classBatches = batches.map((x) => x.batch as ClassBatch);
    await createActivities(again.deps).createTrainingAndValidationSets({ tenantId: 'segtwo', runGuid, videoGuid, workflowId: 'step9-again', source: clip, options, batches: classBatches });
    await again.deps.release();
    expect(await snapshot('segtwo', videoGuid)).toEqual(reference);
  }, 300_000);

  it('tracks a lost worker’s segment again on another worker, with identical outputs', async () => {
    const taskQueue = `segkill-${Math.random().toString(36).slice(2, 8)}`;
    const worker = await spawnWorkerProcess({ TASK_QUEUE: taskQueue, DATAPREP_DATA_DIR: path.join(tmp, 'killed'), SOURCE_ROOTS: tmp });
    try {
      const options = { ...OPTIONS, ...KILL_ROUTING };
      const run = await startRun(client, { ...cfg, taskQueue }, { tenantId: 'segkill', runGuid, videos: [{ source: clip }], options });
      // The only worker has started tracking a segment (in the segment's trackSegment child): kill it.
      const segmentIds = [0, 1].map((k) => segmentWorkflowId(videoWorkflowId(run.workflowId, videoGuid), k));
      await waitForActivity(client, segmentIds, 'detectSegment');
      // The progress query counts the segments (asked while the worker, which also runs the workflows, lives).
      const before = await run.handle.query(progressQuery);
      expect(before.videos[0].segments).toMatchObject({ total: 2 });
      expect(before.videos[0].currentStep).toBe('detectPlayers');
      const summary = await killAndRescue(worker, run.handle, taskQueue, 'rescue');
      expect(summary.status).toBe('completed');
      expect(await snapshot('segkill', videoGuid)).toEqual(reference);
      // Only the killed worker's segment was tracked a second time (a second attempt); the other once.
      const segmentAttempts: number[] = [];
      for (const id of segmentIds) {
        const events = (await client.workflow.getHandle(id).fetchHistory()).events!;
        for (const e of events) if (e.activityTaskStartedEventAttributes?.attempt) segmentAttempts.push(e.activityTaskStartedEventAttributes.attempt);
        expect(events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name)).toEqual(['detectSegment']);
      }
      expect(segmentAttempts.sort()).toEqual([1, 2]);
    } finally {
      if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
    }
  }, 300_000);

  it('makes a lost worker’s class batch again on another worker, with identical outputs', async () => {
    const taskQueue = `batchkill-${Math.random().toString(36).slice(2, 8)}`;
    const worker = await spawnWorkerProcess({ TASK_QUEUE: taskQueue, DATAPREP_DATA_DIR: path.join(tmp, 'batchkilled'), SOURCE_ROOTS: tmp });
    try {
      const options = { ...OPTIONS, ...BATCHES, ...KILL_ROUTING };
      const run = await startRun(client, { ...cfg, taskQueue }, { tenantId: 'batchkill', runGuid, videos: [{ source: clip }], options });
      // The only worker has started augmenting a class batch (step 8's fan-out): kill it mid-batch.
      const video = client.workflow.getHandle(videoWorkflowId(run.workflowId, videoGuid));
      await waitForActivity(client, video.workflowId, 'augmentBatch');
      const summary = await killAndRescue(worker, run.handle, taskQueue, 'batchrescue');
      expect(summary.status).toBe('completed');
      expect(await snapshot('batchkill', videoGuid)).toEqual(reference);
      // At least one batch was made a second time, on the rescuing worker; every batch completed.
      const events = (await video.fetchHistory()).events!;
      const scheduled = new Map(events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [[String(e.eventId), e.activityTaskScheduledEventAttributes.activityType!.name!]] : [])));
      const batchAttempts = events.flatMap((e) => (e.activityTaskStartedEventAttributes && scheduled.get(String(e.activityTaskStartedEventAttributes.scheduledEventId)) === 'augmentBatch' ? [e.activityTaskStartedEventAttributes.attempt!] : []));
      expect(batchAttempts.length).toBeGreaterThan(1);
      expect(Math.max(...batchAttempts)).toBeGreaterThan(1);
      expect(events.filter((e) => e.activityTaskCompletedEventAttributes && scheduled.get(String(e.activityTaskCompletedEventAttributes.scheduledEventId)) === 'augmentBatch')).toHaveLength(batchAttempts.length);
    } finally {
      if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
    }
  }, 300_000);

  it('gives identical outputs with the run cache off', async () => {
    const summary = await runOn(realDeps('off', { cacheEnabled: false }), 'segoff');
    expect(summary.status).toBe('completed');
    expect(await snapshot('segoff', videoGuid)).toEqual(reference);
  }, 300_000);
});

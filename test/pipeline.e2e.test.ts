/**
 * End to end: the real workflow with the real activities (ffmpeg, sharp, the YOLOv8n model) against the
 * test stack's Temporal dev server and GCS emulator, on a few seconds of real footage (vtest.avi).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../src/activities';
import { prepareInput, startRun } from '../src/cli/client';
import { loadConfig, type Config } from '../src/config';
import type { z } from 'zod';
import { describeBackground, NO_PITCH_REASON, type BackgroundDecision } from '../src/dataset/background';
import { classBatchesOf } from '../src/dataset/batches';
import { cropIndexSchema, detectionsFileSchema, manifestSchema, metadataFileSchema, parseArtifact, pipelineInfoSchema, stepResultFileSchema } from '../src/storage/artifacts';
import { createObjectStore } from '../src/storage/gcs';
import { RunLayout } from '../src/storage/layout';
import { validateInput } from '../src/validation';
import { md5Base64, sha256 } from '../src/util/hash';
import { createDeps, splitActivities } from '../src/workers/worker';
import { GPU_STEP_NAMES, STEP_NAMES } from '../src/workflows/steps';
import type { RunSummary } from '../src/workflows/types';
import { expectExportsAgree, expectLoadableDataset, expectLoadableRunDataset } from './helpers/datasetChecks';
import { testClient, withWorkers } from './helpers/temporal';

const DATA = '/usr/share/doc/opencv-doc/examples/data';
const tmp = mkdtempSync(path.join(tmpdir(), 'dataprep-e2e-'));
/** 6 s (60 frames) of vtest.avi, still msmpeg4v3 in AVI, so the import must transcode. */
const shortClip = path.join(tmp, 'vtest_6s.avi');
/** Another 6 s of vtest.avi (from 30 s): a second video whose track ids overlap the first's. */
const secondClip = path.join(tmp, 'vtest_30s_6s.avi');

let client: Client;
const configured = loadConfig();
const media = process.env.TEST_MEDIA_DIR;
/** The test stack, with this test's folder (and the media folder) as source roots, as a deployment lists its video folders. */
const cfg: Config = { ...configured, sourceRoots: [...configured.sourceRoots, tmp, ...(media ? [path.resolve(media)] : [])] };
const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost });

function realActivities() {
  const deps = createDeps({ ...cfg, dataDir: path.join(tmp, 'worker') });
  const all = createActivities(deps) as Record<string, unknown>;
  const gpu = Object.fromEntries(Object.entries(all).filter(([k]) => (GPU_STEP_NAMES as readonly string[]).includes(k)));
  const cpu = Object.fromEntries(Object.entries(all).filter(([k]) => !(GPU_STEP_NAMES as readonly string[]).includes(k)));
  return { cpu, gpu, deps };
}

beforeAll(async () => {
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', path.join(DATA, 'vtest.avi'), '-t', '6', '-c', 'copy', shortClip]);
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-ss', '30', '-i', path.join(DATA, 'vtest.avi'), '-t', '6', '-c', 'copy', secondClip]);
  client = await testClient();
});
afterAll(async () => {
  await client?.connection.close();
});

const uniq = () => `e2e${Math.random().toString(36).slice(2, 8)}`;

/** The most elements of any array anywhere in `value` (parsed JSON). */
function longestArray(value: unknown): number {
  if (Array.isArray(value)) return Math.max(value.length, ...value.map(longestArray));
  if (value && typeof value === 'object') return Math.max(0, ...Object.values(value).map(longestArray));
  return 0;
}

/**
 * Runs `trainPipeline` on `videos` with the real activities on this process's workers, under a fresh tenant,
 * and returns the run summary (checked `completed`) with its tenant and layout.
 */
async function completedRun(videos: { source: string; tracks?: string }[], options: Record<string, unknown>, tenantId = uniq()): Promise<{ summary: RunSummary; tenantId: string; layout: RunLayout }> {
  const { cpu, gpu, deps } = realActivities();
  const summary: RunSummary = await withWorkers(
    cpu,
    async (taskQueue) => {
      const run = await startRun(client, { ...cfg, taskQueue }, { tenantId, videos, options });
      return run.handle.result();
    },
    gpu,
  );
  await deps.release();
  expect(summary.status).toBe('completed');
  return { summary, tenantId, layout: new RunLayout(tenantId, summary.runGuid) };
}

describe('trainPipeline end to end (real activities, dev server, GCS emulator)', () => {
  it('turns a real clip into the complete storage layout with consistent counts', async () => {
    const { summary, layout } = await completedRun([{ source: shortClip }], { frameStride: 5 });
    expect(summary.outputPrefix).toBe(`gs://${cfg.bucket}/${layout.prefix}`);
    const video = layout.video(summary.videos[0].videoGuid);
    const names = (await store.list(layout.prefix)).map((o) => o.name.slice(layout.prefix.length));
    const rel = (n: string) => n.slice(layout.prefix.length);

    // Every stored JSON artifact matches its schema (src/storage/artifacts.ts), and the strict ones name
    // every field written (parsing drops nothing).
    const strict: [string, z.ZodType][] = [[video.metadata, metadataFileSchema], [video.detections, detectionsFileSchema], [video.cropIndex, cropIndexSchema], [video.manifest, manifestSchema]];
    for (const [name, schema] of strict) {
      const raw = await store.getJson<unknown>(name);
      expect(parseArtifact(schema, name, raw), name).toEqual(raw);
    }
    parseArtifact(pipelineInfoSchema, layout.pipelineInfo, await store.getJson(layout.pipelineInfo));
    const cropCount = (await store.getJson<{ crops: unknown[] }>(video.cropIndex))!.crops.length;
    expect(cropCount).toBeGreaterThan(10);
    for (let n = 1; n <= 9; n++) {
      parseArtifact(stepResultFileSchema, layout.stepResult(n), await store.getJson(layout.stepResult(n)));
      // A step result is a small summary (SPEC section 4), whatever the video's length: no per-crop or
      // per-box list (the crop index and detections.json hold those, once).
      const raw = await store.get(layout.stepResult(n));
      expect(raw.length, `step ${n} result`).toBeLessThan(32 * 1024);
      expect(longestArray(JSON.parse(raw.toString('utf8'))), `step ${n} result`).toBeLessThan(cropCount);
    }

    // The exports hold every tracked box: MOT one line each; COCO one annotation each, on one image per sampled frame.
    const tracked = (await store.getJson<{ frames: { detections: unknown[] }[] }>(video.detections))!.frames;
    const boxes = tracked.reduce((n, f) => n + f.detections.length, 0);
    expect(boxes).toBeGreaterThan(0);
    const coco = JSON.parse((await store.get(video.cocoExport)).toString('utf8')) as { images: unknown[]; annotations: unknown[] };
    expect([coco.images.length, coco.annotations.length]).toEqual([tracked.length, boxes]);
    expect((await store.get(video.motExport)).toString('utf8').split('\n').filter(Boolean)).toHaveLength(boxes);

    // Run-level records.
    expect(names).toContain('.pipeline_info.json');
    for (let n = 1; n <= 9; n++) expect(names).toContain(`intermediate/step${n}_result.json`);
    const info = (await store.getJson<Record<string, any>>(layout.pipelineInfo))!;
    expect(info.status).toBe('completed');
    expect(info.model.name).toBe('yolov8n.onnx');
    expect(info.model.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.keys(info.steps[video.videoGuid])).toEqual(expect.arrayContaining([...STEP_NAMES]));
    expect(info.summary.runGuid).toBe(summary.runGuid);

    // Step 1: metadata and the transcoded MP4.
    const meta = (await store.getJson<Record<string, any>>(video.metadata))!;
    expect(meta.frameCount).toBe(60);
    expect([meta.width, meta.height]).toEqual([768, 576]);
    expect(meta.imported.mode).toBe('transcode');
    expect(names).toContain(rel(video.video));

    // Step 3: frame ids 0, 5, ..., 55.
    const frames = names.filter((n) => n.startsWith(rel(video.framesPrefix))).map((n) => Number(/frame_(\d+)\.jpg$/.exec(n)![1])).sort((a, b) => a - b);
    expect(frames).toEqual(Array.from({ length: 12 }, (_, i) => i * 5));
    expect(summary.videos[0].counts.frames).toBe(12);
    // Step 4: a lawn beside a road is no pitch, and the summary (the CLI's JSON line) says so.
    expect(summary.videos[0].pitch).toMatchObject({ found: false, framesSampled: 12 });

    // Step 5: detections of real people with track ids.
    const dets = (await store.getJson<{ frames: { frame_id: number; detections: { track_id: number; bbox: number[] }[] }[] }>(video.detections))!;
    expect(dets.frames.map((f) => f.frame_id)).toEqual(frames);
    const nDets = dets.frames.reduce((s, f) => s + f.detections.length, 0);
    expect(nDets).toBeGreaterThan(12); // several walkers per frame
    expect(summary.videos[0].counts.detections).toBe(nDets);
    const trackIds = new Set(dets.frames.flatMap((f) => f.detections.map((d) => d.track_id)));
    expect(Math.min(...trackIds)).toBe(0);
    expect(summary.videos[0].counts.tracks).toBe(trackIds.size);

    // Step 6: one original crop per kept detection.
    const originals = names.filter((n) => /crops\/original\/track_\d+\/crop_\d+\.jpg$/.test(n));
    expect(originals.length).toBe(summary.videos[0].counts.crops);
    expect(originals.length).toBeGreaterThan(0);
    // Step 7: no pitch, so the default `grass` removes nothing; step result, manifest and report say so the
    // same way, and no byte-identical second copy of every crop is stored (the dataset uses the originals).
    expect(names.filter((n) => n.includes('/crops/modified/'))).toEqual([]);
    const decision = { requestedMode: 'grass', mode: 'none', removed: false, reason: NO_PITCH_REASON };
    const step7 = parseArtifact(stepResultFileSchema, layout.stepResult(7), await store.getJson(layout.stepResult(7))).videos[video.videoGuid];
    expect(step7).toMatchObject(decision);
    expect(parseArtifact(manifestSchema, video.manifest, await store.getJson(video.manifest)).background).toEqual({ ...decision, fill: [0, 0, 0] });
    const report = (await store.get(video.report)).toString('utf8');
    expect(report).toContain(`background mode ${describeBackground(decision as BackgroundDecision)}`);
    expect(report).toContain('no background removed');
    // Teams: no pitch, so no teams; detections.json, the manifest and the report say so, every class has
    // no team or role, and no box carries a kit colour (none is taken without a pitch).
    const storedDets = parseArtifact(detectionsFileSchema, video.detections, await store.getJson(video.detections));
    expect(storedDets.teams).toMatchObject({ status: 'no-pitch', centres: null });
    expect(storedDets.teams!.reason).toMatch(/^no pitch: no teams/);
    expect(storedDets.teams!.classes.map((c) => c.track_id).sort((a, b) => a - b)).toEqual([...trackIds].sort((a, b) => a - b));
    expect(storedDets.teams!.classes.every((c) => c.team === null && c.role === null)).toBe(true);
    expect(storedDets.frames.every((f) => f.detections.every((d) => d.kit === undefined))).toBe(true);
    const manifestTeams = parseArtifact(manifestSchema, video.manifest, await store.getJson(video.manifest)).teams!;
    expect(manifestTeams.status).toBe('no-pitch');
    expect(Object.values(manifestTeams.tracks).every((t) => t.team === null && t.role === null)).toBe(true);
    expect(report).toContain('no pitch: no teams');
    // Every track's strip, in the dataset or left out of it (marked so): its first and last crop are labelled.
    const manifestAll = parseArtifact(manifestSchema, video.manifest, await store.getJson(video.manifest));
    expect(report.match(/first · frame \d+/g)?.length).toBe(Object.keys(manifestTeams.tracks).length + manifestAll.excludedTracks!.length);
    expect(Object.keys(manifestTeams.tracks).sort()).toEqual(manifestAll.classes!.map((c) => String(c.track_id)).sort());
    for (const e of manifestAll.excludedTracks!) expect(report).toContain(`not in the dataset (${e.reason})`);

    // Step 9: ImageFolder dataset and its manifest, augmented copies in train only.
    const manifest = (await store.getJson<{ images: { path: string; split: string; frame_id: number; augmentation: unknown }[] }>(video.manifest))!;
    const train = names.filter((n) => n.includes('/datasets/train/') && n.endsWith('.jpg'));
    const val = names.filter((n) => n.includes('/datasets/val/') && n.endsWith('.jpg'));
    expect(train.length).toBe(summary.videos[0].counts.train);
    expect(val.length).toBe(summary.videos[0].counts.val);
    expect(manifest.images.length).toBe(train.length + val.length);
    expect(manifest.images.filter((i) => i.augmentation !== null).every((i) => i.split === 'train')).toBe(true);
    expect(new Set(manifest.images.map((i) => i.path))).toEqual(new Set([...train, ...val].map((n) => layout.prefix + n)));
    // Every image traces back to a sampled frame, a bbox and a stored crop; no frame of a track is on both
    // sides of the split, and the gap separates the blocks.
    const full = manifest as unknown as { gapFrames: number; images: { path: string; split: string; track_id: number; frame_id: number; bbox: number[]; source_crop: string }[] };
    const all = new Set(names.map((n) => layout.prefix + n));
    const perTrack = new Map<number, { train: number[]; val: number[] }>();
    for (const img of full.images) {
      expect(frames).toContain(img.frame_id);
      expect(img.bbox).toHaveLength(4);
      expect(all.has(img.source_crop)).toBe(true);
      expect(img.source_crop).toContain('/crops/original/');
      const t = perTrack.get(img.track_id) ?? { train: [], val: [] };
      (img.split === 'train' ? t.train : t.val).push(img.frame_id);
      perTrack.set(img.track_id, t);
    }
    for (const t of perTrack.values()) {
      expect(t.train.filter((f) => t.val.includes(f))).toEqual([]);
      if (t.val.length) expect(Math.max(...t.train)).toBeLessThanOrEqual(Math.min(...t.val) - full.gapFrames);
    }
    // One class list for every split, as loaders read it; tracks that cannot be split are left out, with reasons.
    const checked = await expectLoadableDataset(store, video);
    await expectExportsAgree(store, video);
    expect(checked.classes!.every((c) => c.train > 0 && c.val > 0)).toBe(true);
    expect(checked.trainOnlyTracks).toEqual([]);
    const crops = parseArtifact(cropIndexSchema, video.cropIndex, await store.getJson(video.cropIndex)).crops;
    const cropTracks = new Set(crops.map((c) => c.track_id));
    expect(checked.classes!.length + checked.excludedTracks!.length).toBe(cropTracks.size);
    for (const e of checked.excludedTracks!) expect(e.crops).toBe(crops.filter((c) => c.track_id === e.track_id).length);
  }, 300_000);

  const media = process.env.TEST_MEDIA_DIR;
  if (!media) console.log('pipeline.e2e: TEST_MEDIA_DIR is not set: skipping the soccer-broadcast run');
  it.skipIf(!media)('runs the soccer broadcast clip to a leak-free dataset of players on the pitch', async () => {
    const source = path.join(media ?? '', 'soccer_broadcast_720p.mp4');
    const { summary, layout } = await completedRun([{ source }], { frameStride: 3, maxFrames: 24 });
    const video = layout.video(summary.videos[0].videoGuid);
    const meta = (await store.getJson<Record<string, any>>(video.metadata))!;
    expect([meta.frameCount, meta.imported.mode]).toEqual([630, 'copy']);
    const dets = (await store.getJson<{ grass: { pitchFound: boolean }; frames: { detections: unknown[]; dropped?: { reason: string }[] }[] }>(video.detections))!;
    expect(dets.grass.pitchFound).toBe(true);
    expect(summary.videos[0].pitch?.found).toBe(true);
    expect(dets.frames).toHaveLength(24);
    // Broadcast wide view: many players tracked per frame, crowd boxes dropped by the feet filter.
    const perFrame = dets.frames.map((f) => f.detections.length).sort((a, b) => a - b);
    expect(perFrame[perFrame.length >> 1]).toBeGreaterThanOrEqual(12);
    expect(dets.frames.some((f) => (f.dropped ?? []).some((d) => d.reason === 'feet-off-pitch'))).toBe(true);
    const manifest = (await store.getJson<{ gapFrames: number; images: { split: string; track_id: number; frame_id: number; augmentation: unknown; path: string }[] }>(video.manifest))!;
    expect(manifest.images.length).toBe((summary.videos[0].counts.train ?? 0) + (summary.videos[0].counts.val ?? 0));
    expect(manifest.images.filter((i) => i.augmentation !== null).every((i) => i.split === 'train' && i.path.includes('/datasets/train/'))).toBe(true);
    const perTrack = new Map<number, { train: number[]; val: number[] }>();
    for (const img of manifest.images) {
      const t = perTrack.get(img.track_id) ?? { train: [], val: [] };
      (img.split === 'train' ? t.train : t.val).push(img.frame_id);
      perTrack.set(img.track_id, t);
    }
    expect([...perTrack.values()].some((t) => t.val.length > 0)).toBe(true);
    for (const t of perTrack.values()) if (t.val.length) expect(Math.max(...t.train)).toBeLessThanOrEqual(Math.min(...t.val) - manifest.gapFrames);
    await expectLoadableDataset(store, video);
    await expectExportsAgree(store, video);
    expect(await store.exists(video.report)).toBe(true);
  }, 300_000);

  it('merges a two-video run into one run-level dataset (server-side copies, unique class names), with a test split and augmented copies apart in train_aug', async () => {
    const { summary, layout } = await completedRun([{ source: shortClip }, { source: secondClip }], { frameStride: 5, split: { testFraction: 0.2 }, augment: { placement: 'train_aug' } });
    for (const v of summary.videos) {
      const video = layout.video(v.videoGuid);
      const manifest = await expectLoadableDataset(store, video);
      expect(manifest.counts.test).toBeGreaterThan(0);
      expect(v.counts.test).toBe(manifest.counts.test);
      expect(manifest.classes!.every((c) => c.train > 0 && c.val > 0 && (c.test ?? 0) > 0)).toBe(true);
      // The test block is each class's latest stretch, after val, each held-out block after a gap.
      for (const c of manifest.classes!) {
        const frames = (split: string) => manifest.images.filter((i) => i.track_id === c.track_id && i.split === split).map((i) => i.frame_id);
        expect(Math.max(...frames('train'))).toBeLessThanOrEqual(Math.min(...frames('val')) - manifest.gapFrames);
        expect(Math.max(...frames('val'))).toBeLessThanOrEqual(Math.min(...frames('test')) - manifest.gapFrames);
      }
      // Augmented copies are train images, kept apart in train_aug/ (same class folders, checked above).
      const augmented = manifest.images.filter((i) => i.augmentation !== null);
      expect(augmented.length).toBe(2 * manifest.images.filter((i) => i.split === 'train' && i.augmentation === null).length);
      expect(augmented.every((i) => i.split === 'train' && i.file!.startsWith('train_aug/'))).toBe(true);
      expect(manifest.images.filter((i) => i.augmentation === null && i.file!.startsWith('train_aug/'))).toEqual([]);
    }
    // Both videos have a track_0 (say); the run dataset names classes by video, so none collide.
    const [a, b] = summary.videos.map((v) => v.videoGuid);
    const run = await expectLoadableRunDataset(store, layout, [a, b]);
    expect(summary.dataset).toEqual({ prefix: `gs://${cfg.bucket}/${layout.datasetPrefix}`, manifest: layout.runDatasetObject('manifest.json'), classes: run.classes.length, ...run.counts });
    const tracksOf = (g: string) => new Set(run.classes.filter((c) => c.videoGuid === g).map((c) => c.track_id));
    expect([...tracksOf(a)].some((t) => tracksOf(b).has(t))).toBe(true);
    expect(run.counts.test).toBeGreaterThan(0);
  }, 300_000);

  it('re-imports its exported MOT tracks unchanged to byte-identical datasets, and names a malformed tracks line', async () => {
    const options = { frameStride: 5, augment: { seed: 'corrections' } };
    const a = await completedRun([{ source: shortClip }], options);
    const videoA = a.layout.video(a.summary.videos[0].videoGuid);
    // The corrected file as a user would have it: the export, downloaded (here unchanged).
    const tracks = path.join(tmp, `${a.tenantId}_tracks_mot.txt`);
    writeFileSync(tracks, await store.get(videoA.motExport));
    const b = await completedRun([{ source: shortClip, tracks }], options, a.tenantId);
    const videoB = b.layout.video(b.summary.videos[0].videoGuid);
    const images = async (v: typeof videoA) => Object.fromEntries((await store.list(v.datasetPrefix)).filter((o) => o.name.endsWith('.jpg')).map((o) => [o.name.slice(v.datasetPrefix.length), o.md5]));
    const imagesA = await images(videoA);
    expect(Object.keys(imagesA).length).toBeGreaterThan(20);
    expect(await images(videoB)).toEqual(imagesA);
    for (const f of ['classes.txt', 'data.yaml'] as const) {
      const key = (v: typeof videoA) => (f === 'classes.txt' ? v.classesTxt : v.dataYaml);
      expect((await store.get(key(videoB))).equals(await store.get(key(videoA)))).toBe(true);
    }
    // Where the tracks came from, in detections.json and the manifest; no model ran.
    const manifestB = await expectLoadableDataset(store, videoB);
    const mot = await store.get(videoA.motExport);
    expect(manifestB.tracks).toEqual({ origin: 'imported', source: tracks, sha256: sha256(mot.toString('utf8')), boxes: mot.toString('utf8').trim().split('\n').length, boxesNotSampled: 0 });
    const detsB = parseArtifact(detectionsFileSchema, videoB.detections, await store.getJson(videoB.detections));
    expect([detsB.model.name, detsB.tracks?.origin]).toEqual(['none', 'imported']);
    expect(parseArtifact(manifestSchema, videoA.manifest, await store.getJson(videoA.manifest)).tracks).toEqual({ origin: 'tracker' });
    await expectExportsAgree(store, videoB);
    expect((await store.get(videoB.motExport)).equals(mot)).toBe(true);

    // A malformed line fails the run at step 5 as InvalidInput, naming the file and the line.
    const bad = path.join(tmp, `${a.tenantId}_bad_mot.txt`);
    writeFileSync(bad, `${mot.toString('utf8').split('\n')[0]}\n1,2,3\n`);
    const { cpu, gpu, deps } = realActivities();
    const err = await withWorkers(
      cpu,
      async (taskQueue) => {
        const run = await startRun(client, { ...cfg, taskQueue }, { tenantId: a.tenantId, videos: [{ source: shortClip, tracks: bad }], options });
        return run.handle.result().then(() => undefined, (e: unknown) => e);
      },
      gpu,
    );
    await deps.release();
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect([cause.type, cause.nonRetryable]).toEqual(['InvalidInput', true]);
    expect(cause.message).toContain(`${bad}:2`);
  }, 300_000);

  it('writes no augmented copies with augment.placement none, and step 8 makes none', async () => {
    const { summary, layout } = await completedRun([{ source: shortClip }], { frameStride: 5, augment: { placement: 'none' } });
    const video = layout.video(summary.videos[0].videoGuid);
    const manifest = await expectLoadableDataset(store, video);
    expect(manifest.images.every((i) => i.augmentation === null)).toBe(true);
    expect(manifest.images.filter((i) => i.split === 'train').length).toBe(summary.videos[0].counts.train);
    const step8 = (await store.getJson<Record<string, any>>(layout.stepResult(8)))!;
    expect(JSON.stringify(step8)).toMatch(/"augmented":0/);
  }, 300_000);

  it('removes backgrounds with the segmentation model, and re-running steps 6-9, in one piece or in class batches, gives byte-identical outputs', async () => {
    const { cpu, gpu, deps } = realActivities();
    const tenantId = uniq();
    // The heaviest per-call model work (u2netp, about 0.5 s per crop) must not starve the event loop that
    // carries heartbeats and cancellation: measure the longest stall over the whole run.
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const summary: RunSummary = await withWorkers(
      cpu,
      async (taskQueue) => {
        const run = await startRun(client, { ...cfg, taskQueue }, { tenantId, videos: [{ source: shortClip }], options: { frameStride: 10, background: { mode: 'segmentation', fill: [0, 0, 255] } } });
        return run.handle.result();
      },
      gpu,
    );
    loop.disable();
    console.log(`event loop during the segmentation run: p99 ${(loop.percentile(99) / 1e6).toFixed(0)} ms, max ${(loop.max / 1e6).toFixed(0)} ms`);
    expect(loop.max / 1e6).toBeLessThan(2000); // the workers' heartbeat throttle interval
    expect(summary.status).toBe('completed');
    const layout = new RunLayout(tenantId, summary.runGuid);
    const video = layout.video(summary.videos[0].videoGuid);
    const step7 = (await store.getJson<{ videos: Record<string, { mode: string; requestedMode: string; removed: boolean; meanRemovedFraction: number; eventLoopDelayMs?: { p99: number; max: number } }> }>(layout.stepResult(7)))!.videos[video.videoGuid];
    expect(step7).toMatchObject({ mode: 'segmentation', requestedMode: 'segmentation', removed: true });
    // The step recorded the worker's event-loop delay while it ran (same process as the test here).
    expect(step7.eventLoopDelayMs!.max).toBeGreaterThan(0);
    expect(step7.eventLoopDelayMs!.max).toBeLessThan(2000);
    expect(step7.meanRemovedFraction).toBeGreaterThan(0.2); // the pavement around each walker is removed
    // Re-run steps 6-9 as a retry would (same input, cold worker): every output byte stays the same.
    const before = new Map<string, string>();
    const prefixes = [video.cropsPrefix('original'), video.cropsPrefix('modified'), video.datasetPrefix];
    for (const p of prefixes) for (const o of await store.list(p)) before.set(o.name, (await store.get(o.name)).toString('base64'));
    const again = createActivities(createDeps({ ...cfg, dataDir: path.join(tmp, 'worker-rerun') }));
    const input = { tenantId, runGuid: summary.runGuid, videoGuid: video.videoGuid, workflowId: 'rerun', source: shortClip, options: validateInput({ tenantId, videos: [{ source: shortClip }], options: { frameStride: 10, background: { mode: 'segmentation', fill: [0, 0, 255] } } }).options };
    for (const step of ['extractCrops', 'removeCropBackground', 'augmentCrops', 'createTrainingAndValidationSets'] as const) await again[step](input);
    const snapshot = async () => {
      const out = new Map<string, string>();
      for (const p of prefixes) for (const o of await store.list(p)) out.set(o.name, (await store.get(o.name)).toString('base64'));
      return out;
    };
    const expectUnchanged = (after: Map<string, string>) => {
      expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
      for (const [name, bytes] of before) expect(after.get(name), name).toBe(bytes);
    };
    expectUnchanged(await snapshot());
    // Steps 6-9 in class batches of 2 tracked boxes (docs/ARCHITECTURE.md "Class batches"), on another cold
    // worker, after deleting their outputs: each batch's crops, backgrounds (the segmentation model) and
    // augmented copies, then the steps themselves; again every output byte is the same.
    const frames = (await store.getJson<{ frames: { detections: { track_id: number }[] }[] }>(video.detections))!.frames;
    const batches = classBatchesOf(frames, 2);
    expect(batches.length).toBeGreaterThan(1);
    for (const p of prefixes) await store.deletePrefix(p);
    const batched = createActivities(createDeps({ ...cfg, dataDir: path.join(tmp, 'worker-batched') }));
    for (const [part, step] of [['cropBatch', 'extractCrops'], ['backgroundBatch', 'removeCropBackground'], ['augmentBatch', 'augmentCrops']] as const) {
      for (const batch of batches) await batched[part]({ ...input, batch });
      await batched[step]({ ...input, batches });
    }
    await batched.createTrainingAndValidationSets({ ...input, batches });
    expectUnchanged(await snapshot());
    expect(await store.list(layout.augmentedPrefix(video.videoGuid))).toEqual([]);
    await deps.release();
  }, 300_000);

  it('imports a gs:// source through the object store (activity run directly, no Temporal)', async () => {
    const { cpu, deps } = realActivities();
    const tenantId = uniq();
    // The tenant's own folder: the default policy lets a tenant import from gs://{bucket}/{tenantId}/ only.
    const object = `${tenantId}/sources/vtest_6s.avi`;
    await store.putFile(object, shortClip);
    const source = `gs://${cfg.bucket}/${object}`;
    const options = validateInput({ tenantId, videos: [{ source }] }).options;
    const importVideo = cpu.importVideo as ReturnType<typeof createActivities>['importVideo'];
    const result = await importVideo({ tenantId, runGuid: 'gs-import', videoGuid: 'v1', workflowId: 'none', source, options });
    await deps.release();
    expect(result.frameCount).toBe(60);
    expect(result.mode).toBe('transcode');
    const meta = (await store.getJson<Record<string, any>>(new RunLayout(tenantId, 'gs-import').video('v1').metadata))!;
    expect(meta.source).toBe(source);
    const missing = await importVideo({ tenantId, runGuid: 'gs-import', videoGuid: 'v2', workflowId: 'none', source: `gs://${cfg.bucket}/${tenantId}/sources/none.avi`, options }).catch((e: unknown) => e);
    expect((missing as ApplicationFailure).type).toBe('BadMedia');
    expect((missing as ApplicationFailure).message).toMatch(/none\.avi: object not found/);
    await store.deletePrefix(`${tenantId}/`);
  }, 120_000);

  it('the CLI uploads a local file outside SOURCE_ROOTS to the tenant inbox, the run imports it, GUIDs stay those of the local path', async () => {
    // The default configuration: this test's folder is not a source root, so the workers may not read the clip.
    const defaults = loadConfig();
    const deps = createDeps({ ...defaults, dataDir: path.join(tmp, 'worker-upload') });
    const { cpu, gpu } = splitActivities(createActivities(deps) as Record<string, unknown>);
    const tenantId = uniq();
    const input = { tenantId, videos: [{ source: shortClip }], options: { frameStride: 20, maxFrames: 3 } };
    const expected = prepareInput(input);
    const { first, again, summary } = await withWorkers(
      cpu,
      async (taskQueue) => {
        const first = await startRun(client, { ...defaults, taskQueue }, input);
        const summary: RunSummary = await first.handle.result();
        const again = await startRun(client, { ...defaults, taskQueue }, input);
        return { first, again, summary };
      },
      gpu,
    );
    await deps.release();
    const bytes = readFileSync(shortClip);
    const object = `${tenantId}/user/uploads/${sha256(bytes).slice(0, 16)}/vtest_6s.avi`;
    const uploaded = `gs://${defaults.bucket}/${object}`;
    expect(first.staged).toEqual([{ given: shortClip, source: uploaded, action: 'uploaded' }]);
    expect(again.staged).toEqual([{ given: shortClip, source: uploaded, action: 'stored' }]);
    expect([first.runGuid, first.started, again.workflowId, again.started]).toEqual([expected.runGuid, true, first.workflowId, false]);
    expect(summary.status).toBe('completed');
    expect(summary.videos[0]).toMatchObject({ videoGuid: expected.videos[0].videoGuid, source: uploaded, counts: { frames: 3 } });
    expect((await store.list(object)).map((o) => o.md5)).toEqual([md5Base64(bytes)]);
    const meta = (await store.getJson<Record<string, any>>(new RunLayout(tenantId, summary.runGuid).video(summary.videos[0].videoGuid).metadata))!;
    expect(meta).toMatchObject({ source: uploaded, sha256: sha256(bytes) });
    await store.deletePrefix(`${tenantId}/`);
  }, 300_000);

  const badInputs: [string, () => string, RegExp][] = [
    ['a text file', () => (writeFileSync(path.join(tmp, 'notes.mp4'), 'this is not a video\n'), path.join(tmp, 'notes.mp4')), /notes\.mp4/],
    ['a missing file', () => path.join(tmp, 'missing.mp4'), /missing\.mp4: file not found/],
    ['a zero-byte file', () => (writeFileSync(path.join(tmp, 'empty.mp4'), ''), path.join(tmp, 'empty.mp4')), /empty\.mp4/],
    // A really broken video: vtest.avi cut after 400 kB (Megamind_bugy.avi decodes cleanly; see test/video.test.ts).
    ['a truncated video', () => (writeFileSync(path.join(tmp, 'cut.avi'), readFileSync(path.join(DATA, 'vtest.avi')).subarray(0, 400_000)), path.join(tmp, 'cut.avi')), /cut\.avi: .*truncated/],
  ];
  it.each(badInputs)('fails cleanly on %s: non-retryable BadMedia, failed status, no dataset', async (_label, make, message) => {
    const { cpu, gpu, deps } = realActivities();
    const tenantId = uniq();
    const source = make();
    const { err, runGuid } = await withWorkers(
      cpu,
      async (taskQueue) => {
        const run = await startRun(client, { ...cfg, taskQueue }, { tenantId, videos: [{ source }] });
        return { err: await run.handle.result().catch((e: unknown) => e), runGuid: run.runGuid };
      },
      gpu,
    );
    await deps.release();
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause.type).toBe('BadMedia');
    expect(cause.nonRetryable).toBe(true);
    expect(cause.message).toMatch(message);
    const layout = new RunLayout(tenantId, runGuid);
    const info = (await store.getJson<Record<string, any>>(layout.pipelineInfo))!;
    expect(info.status).toBe('failed');
    expect(info.error.type).toBe('BadMedia');
    expect(info.error.message).toMatch(message);
    const names = (await store.list(layout.prefix)).map((o) => o.name);
    expect(names.some((n) => n.endsWith('manifest.json'))).toBe(false);
    expect(names.every((n) => n.startsWith(layout.prefix))).toBe(true);
  }, 120_000);
});

/**
 * Steps 1-5 of the pipeline on a local video without Temporal or GCS, for identity evaluation: import to
 * MP4 (step 1), sampled frames as JPEG (step 3), the pitch model (step 4), then step 5 through
 * `VideoTracking` (src/vision/videoTracking.ts: tracklets, joins, teams), the code `detectPlayers`
 * (src/activities/detect.ts) runs, with the same default options. The MP4,
 * the JPEG frames and the detector's answers are cached under a work folder (`.data/identity-eval/{name}`);
 * the pitch model and the tracker are computed every time.
 *
 * `trackFrames` is `detectPlayers`' loop without checkpoints and storage; both call `VideoTracking`, so a
 * change to step 5's tracking reaches both.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { cropKey } from '../../src/dataset/crops';
import { planSplit, type SplitAssignment } from '../../src/dataset/split';
import { parseIdentityGroundTruth, type IdentityGroundTruth } from '../../src/dataset/identity/groundTruth';
import type { PredictedFrame } from '../../src/dataset/identity/metrics';
import type { FrameDetections } from '../../src/storage/artifacts';
import { sha256 } from '../../src/util/hash';
import { validateInput, type ValidatedInput } from '../../src/validation';
import { createDetector, type Detector } from '../../src/vision/detection/detector';
import { decodeImage, encodeJpeg, type RgbFrame } from '../../src/vision/image/rgb';
import { extractFrames } from '../../src/vision/media/frames';
import { importToMp4 } from '../../src/vision/media/import';
import { probeVideo } from '../../src/vision/media/probe';
import { fitPitchModel } from '../../src/vision/pitch/fit';
import { VideoTracking, type StoredTeams, type TrackletRecord } from '../../src/vision/videoTracking';
import { cachedDetector } from './cachedDetector';

/** The pipeline options (defaults of src/validation.ts). */
export type PipelineOptions = ValidatedInput['options'];

/** Frames sampled for the pitch model; the value of `GRASS_SAMPLE_FRAMES` in src/activities/detect.ts. */
const GRASS_SAMPLE_FRAMES = 16;

/** A video prepared up to step 3: its sampled frames as stored JPEGs, and its fps. */
export interface PreparedVideo {
  name: string;
  fps: number;
  /** Sampled frame ids, ascending. */
  frameIds: number[];
  /** The JPEG of a sampled frame, as step 3 stores it. */
  jpeg(frameId: number): Promise<Buffer>;
  workDir: string;
}

/**
 * Steps 1-3, cached: the imported MP4 and the JPEG frames are made once per source file (size and mtime),
 * stride and JPEG quality.
 */
export async function prepareVideo(name: string, source: string, workDir: string, options: PipelineOptions): Promise<PreparedVideo> {
  const st = await stat(source);
  const key = sha256(`${path.resolve(source)}:${st.size}:${st.mtimeMs}:${options.frameStride}:${options.jpegQuality}:${options.maxFrames ?? ''}`).slice(0, 12);
  const dir = path.join(workDir, `frames-${key}`);
  const meta = await probeVideo(source);
  const fps = meta.fps;
  if (!existsSync(path.join(dir, 'ids.json'))) {
    await mkdir(dir, { recursive: true });
    const mp4 = path.join(dir, 'video.mp4');
    await importToMp4(source, mp4, meta);
    const ids: number[] = [];
    for await (const frame of extractFrames(mp4, { stride: options.frameStride, maxFrames: options.maxFrames })) {
      await writeFile(path.join(dir, `frame_${frame.frameId}.jpg`), await encodeJpeg(frame, options.jpegQuality));
      ids.push(frame.frameId);
    }
    await writeFile(path.join(dir, 'ids.json.tmp'), JSON.stringify(ids));
    await rename(path.join(dir, 'ids.json.tmp'), path.join(dir, 'ids.json'));
  }
  const frameIds = JSON.parse(await readFile(path.join(dir, 'ids.json'), 'utf8')) as number[];
  return { name, fps, frameIds, jpeg: (id) => readFile(path.join(dir, `frame_${id}.jpg`)), workDir };
}

/** Result of {@link trackFrames}. */
export interface TrackingRun {
  /** The frames as step 5 writes them into `detections.json` (`frames`). */
  detections: FrameDetections[];
  /** The same boxes as the metrics take them (class = `track_id`). */
  frames: PredictedFrame[];
  /** Detector calls answered from the cache / run. */
  detectorCalls: { cached: number; run: number };
  pitchFound: boolean;
  /** Team and role per class, as step 5 writes them (absent when teams are off). */
  teams?: StoredTeams;
  /** Tracklet count, cuts and joins, as step 5 writes them. */
  tracklets: TrackletRecord;
  /** Wall-clock seconds of the run. */
  seconds: number;
}

/** A `detections.json` frame as far as the metrics read it (`tracklet_id`: runs that cut and join tracklets). */
export interface StoredFrame {
  frame_id: number;
  detections: { track_id: number; tracklet_id?: number; bbox: [number, number, number, number] }[];
}

/**
 * The boxes of `detections.json` frames as `evaluateIdentity` takes them: class = `track_id` (the dataset
 * class), or with `level` `tracklet` the tracker's tracklet before joins (`tracklet_id`, where present).
 */
export function predictedFrames(frames: readonly StoredFrame[], level: 'class' | 'tracklet' = 'class'): PredictedFrame[] {
  return frames.map((f) => ({
    frameId: f.frame_id,
    boxes: f.detections.map((d) => ({ classId: level === 'tracklet' ? (d.tracklet_id ?? d.track_id) : d.track_id, bbox: d.bbox })),
  }));
}

/** Whether the frames carry tracklet ids that differ from the classes (a run that joined tracklets). */
export function hasTracklets(frames: readonly StoredFrame[]): boolean {
  return frames.some((f) => f.detections.some((d) => d.tracklet_id !== undefined && d.tracklet_id !== d.track_id));
}

/**
 * Step 4 on the whole video, then step 5 over the sampled frames with `from <= frameId <= to`: the loop of
 * `detectPlayers` (src/activities/detect.ts) without checkpoints and storage.
 * @param detector the real detector (wrapped in a cache kept in the video's work folder)
 */
export async function trackFrames(video: PreparedVideo, detector: Detector, options: PipelineOptions, range: { from: number; to: number }): Promise<TrackingRun> {
  const t0 = performance.now();
  const ids = video.frameIds;
  // Step 4 (initializeGrassMask): up to 16 evenly spaced sampled frames.
  const step = Math.max(1, Math.floor(ids.length / GRASS_SAMPLE_FRAMES));
  const sample = ids.filter((_, i) => i % step === 0).slice(0, GRASS_SAMPLE_FRAMES);
  const images: RgbFrame[] = [];
  for (const id of sample) images.push(await decodeImage(await video.jpeg(id)));
  const grass = await fitPitchModel(images, options.grassMask);

  // Step 5 (detectPlayers).
  const cache = cachedDetector(detector, path.join(video.workDir, `detector-${detector.modelSha256.slice(0, 12)}.json`), options.detector.confThreshold);
  const videoInfo = { fps: video.fps, grass };
  const tracking = new VideoTracking(options, videoInfo);
  const frames: FrameDetections[] = [];
  for (const frameId of ids.filter((id) => id >= range.from && id <= range.to)) {
    frames.push((await tracking.track(cache, await video.jpeg(frameId), frameId)).frame);
    if (frames.length % 50 === 0) await cache.save();
  }
  await cache.save();
  const { frames: joined, teams, tracklets } = await tracking.finish(frames, videoInfo, async (id) => decodeImage(await video.jpeg(id)));
  return {
    detections: joined,
    frames: predictedFrames(joined),
    teams,
    tracklets,
    detectorCalls: { cached: cache.stats.hits, run: cache.stats.misses },
    pitchFound: grass.pitchFound,
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * The train/val/gap split of steps 8-9 over a run's boxes, taking every tracked box as a crop (step 6's
 * quality filters are not applied): `planSplit` (src/dataset/split.ts) with the run's options, the gap in
 * source frames as src/activities/dataset.ts converts it.
 * @returns the split of a crop by class and frame id
 */
export function splitOfRun(frames: PredictedFrame[], options: PipelineOptions, fps: number): (classId: number, frameId: number) => SplitAssignment | undefined {
  const counters = new Map<number, number>();
  const crops = frames.flatMap((f) =>
    f.boxes.map((b) => {
      const n = counters.get(b.classId) ?? 0;
      counters.set(b.classId, n + 1);
      return { trackId: b.classId, n, frameId: f.frameId };
    }),
  );
  const gapFrames = Math.round(options.split.gapSeconds * (fps > 0 ? fps : 25));
  const plan = planSplit(crops, { ...options.split, gapFrames });
  const byKey = new Map(crops.map((c) => [`${c.trackId}/${c.frameId}`, plan.assignments.get(cropKey(c.trackId, c.n))]));
  return (classId, frameId) => byKey.get(`${classId}/${frameId}`);
}

/**
 * The pipeline options for `source`: the defaults of src/validation.ts, with `overrides` (the same JSON a run's
 * `options` takes, e.g. `{"tracker":{"joins":{"maxAppearance":0.3}}}`) applied and validated.
 * @throws what `validateInput` throws for invalid overrides
 */
export function defaultOptions(source: string, overrides: Record<string, unknown> = {}): PipelineOptions {
  return validateInput({ tenantId: 'identity-eval', videos: [{ source }], options: overrides }).options;
}

/** The real detector of the configuration (DETECTOR_MODEL_PATH, ORT_INTRA_OP_THREADS). */
export function realDetector(): Promise<Detector> {
  const cfg = loadConfig();
  return createDetector({ modelPath: cfg.detectorModelPath, intraOpNumThreads: cfg.ortIntraOpThreads });
}

/** The fixture folders (with a `gt.txt`) under `root`, by name. */
export async function fixtureNames(root: string): Promise<string[]> {
  if (!existsSync(root)) return [];
  const entries = await readdir(root, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory() && existsSync(path.join(root, e.name, 'gt.txt'))).map((e) => e.name).sort();
}

/**
 * Reads a fixture folder (`gt.txt`, `frames.txt`, `identities.csv`; the last two optional).
 * @throws PipelineError(InvalidInput) from the parsers, with the file and line
 */
export async function loadFixture(dir: string): Promise<IdentityGroundTruth> {
  const read = async (f: string) => (existsSync(path.join(dir, f)) ? readFile(path.join(dir, f), 'utf8') : undefined);
  return parseIdentityGroundTruth({ gt: (await read('gt.txt')) ?? '', frames: await read('frames.txt'), identities: await read('identities.csv') });
}

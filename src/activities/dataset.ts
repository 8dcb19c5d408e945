/**
 * Steps 6-9: `extractCrops`, `removeCropBackground` (GPU queue), `augmentCrops`,
 * `createTrainingAndValidationSets` (SPEC section 4).
 */
import pLimit from 'p-limit';
import { applyAugmentation, planAugmentation, type Augmentation } from '../dataset/augment';
import { applyMask, decideBackground, describeBackground, grassAlpha, intersectMasks, type BackgroundDecision } from '../dataset/background';
import { cropJpeg, cropKey, padAndClamp, type Region } from '../dataset/crops';
import { scoreCrop, selectCrops, type ScoredCrop } from '../dataset/quality';
import { renderReport, type ReportTrack } from '../dataset/report';
import { planSplit, type SplitPlan } from '../dataset/split';
import { z } from 'zod';
import { cropIndexSchema, detectionsFileSchema, metadataFileSchema, type CropEntry, type CropIndex, type Manifest, type ManifestImage } from '../storage/artifacts';
import { readChunks, writeChunk, type ChunkRef } from '../storage/checkpoints';
import type { RunLayout, Split, VideoLayout } from '../storage/layout';
import { groupBy } from '../util/group';
import { md5Base64 } from '../util/hash';
import type { RgbFrame } from '../vision/image/rgb';
import type { AugmentResult, BackgroundResult, CropsResult, SplitResult, StepInput } from '../workflows/types';
import type { ActivityDeps } from './deps';
import { forEachBounded } from './liveness';
import { runStep, type StepFiles } from './runStep';
import { activityAttempt, heartbeat, previousHeartbeat } from './temporal';

/** Gaussian sigma (pixels) that feathers the grass key's edge, so players do not get jagged outlines. */
const GRASS_FEATHER_SIGMA = 0.8;

/** Images processed at once by sharp (SPEC section 10: many parallel sharp pipelines grow memory). */
const IMAGE_CONCURRENCY = 4;

async function readCropIndex(files: StepFiles, video: VideoLayout): Promise<CropEntry[]> {
  return (await files.readJson(video.cropIndex, cropIndexSchema)).crops;
}

/**
 * The split plan of a video's crops, identical in steps 8 and 9 (step 8 augments train crops only). The
 * gap is `split.gapSeconds` converted to source frames with the video's fps from `metadata.json`.
 */
async function planFor(files: StepFiles, video: VideoLayout, input: StepInput, crops: CropEntry[]): Promise<SplitPlan & { gapFrames: number }> {
  const meta = await files.readJson(video.metadata, metadataFileSchema);
  const gapFrames = Math.round(input.options.split.gapSeconds * (meta.fps > 0 ? meta.fps : 25));
  const plan = planSplit(
    crops.map((c) => ({ trackId: c.track_id, n: c.n, frameId: c.frame_id })),
    { valFraction: input.options.split.valFraction, minCropsToSplit: input.options.split.minCropsToSplit, gapFrames },
  );
  return { ...plan, gapFrames };
}

/** Background-removed crops per checkpoint chunk of step 7 (about 12 s of u2netp on 2 CPU cores). */
export const BACKGROUND_CHUNK = 25;

/**
 * A finished crop of step 7 in its checkpoint chunks: its index in the crop index, the uploaded object's size
 * and MD5 (base64, as GCS reports `md5Hash`), the removed share of its pixels.
 */
const backgroundRecordSchema = z.object({ i: z.number().int().min(0), size: z.number().int().min(0), md5: z.string(), removed: z.number() });
type BackgroundRecord = z.output<typeof backgroundRecordSchema>;

/** Step 7's heartbeat details. */
export interface BackgroundHeartbeat {
  cropsDone: number;
  skipped: number;
  checkpoint?: { chunks: ChunkRef[] };
}

/**
 * Indices of crops that an earlier attempt of step 7 finished, by its checkpoint (from the last heartbeat),
 * whose objects in GCS still match the recorded size and MD5; fills `removed` for them. Empty when there is
 * no valid checkpoint.
 */
async function verifiedBackgroundOutputs(files: StepFiles, layout: RunLayout, videoGuid: string, checkpoint: BackgroundHeartbeat['checkpoint'], crops: CropEntry[], removed: number[]): Promise<Set<number>> {
  const records = await readChunks(files.store, checkpoint?.chunks, backgroundRecordSchema);
  const done = new Set<number>();
  if (!records) return done;
  const video = layout.video(videoGuid);
  // The same listing lets this attempt's writes skip crops stored after the last checkpoint chunk, too.
  const stored = await files.loadPriorOutputs([video.cropsPrefix('modified')]);
  for (const r of records) {
    const c = crops[r.i];
    const o = c && stored.get(video.crop('modified', c.track_id, c.n));
    if (o && o.size === r.size && o.md5 === r.md5) {
      done.add(r.i);
      removed[r.i] = r.removed;
    }
  }
  return done;
}

/** Creates steps 6-9 over `deps`. */
export function createDatasetActivities(deps: ActivityDeps) {
  return {
    /**
     * Step 6: one crop per tracked detection from the full-resolution frame, padded and clamped to the
     * frame, then quality filters with their reasons recorded: too short (`tooSmall`), nothing inside the
     * frame (`offFrame`), heavily overlapped by another player's box (`occluded`), blurred (`blur`, variance
     * of the Laplacian), near-duplicate of the previous kept crop of the track (`duplicate`, dHash), and the
     * optional per-track cap (`overTrackCap`). Kept crops of a track are numbered from 0 in time order.
     * Writes `crops/original/track_{id}/crop_{n}.jpg` and the crop index.
     *
     * On a retry the crops are cut again (deterministic), and only those not already stored with the same
     * bytes by an earlier attempt are uploaded.
     */
    async extractCrops(input: StepInput): Promise<CropsResult> {
      return runStep(deps, 'extractCrops', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        const { padding, minHeight, maxPerTrack, minBlurVariance, maxOcclusion, dedupMaxDistance } = input.options.crops;
        const detections = await files.readJson(video.detections, detectionsFileSchema);
        if (activityAttempt() > 1) await files.loadPriorOutputs([video.cropsPrefix('original')]);
        const rejected: Record<string, number> = {};
        const reject = (reason: string, n = 1) => void (rejected[reason] = (rejected[reason] ?? 0) + n);
        let framesCropped = 0;
        // 1. Candidate crops, cut in memory and scored (occlusion, blur, dHash) in the same bounded jobs, so the
        // CPU-heavy decodes run concurrently; each finished frame counts as progress (liveness.ts).
        type Candidate = ScoredCrop & { jpeg: Buffer; region: Region; trackBBox: [number, number, number, number] };
        const candidates: Candidate[] = [];
        const filters = { minBlurVariance, maxOcclusion, dedupMaxDistance };
        await forEachBounded(detections.frames, IMAGE_CONCURRENCY, async (f) => {
          const boxes = f.detections.map((d) => d.bbox);
          let frame: RgbFrame | undefined;
          for (const [i, d] of f.detections.entries()) {
            const region = padAndClamp(d.bbox, padding, f.width, f.height);
            if (!region) {
              reject('offFrame');
              continue;
            }
            if (region.height < minHeight) {
              reject('tooSmall');
              continue;
            }
            frame ??= await files.readFrame(video.frame(f.frame_id));
            const jpeg = await cropJpeg(frame, region, input.options.jpegQuality);
            const score = await scoreCrop({ bbox: d.bbox, othersInFrame: boxes.filter((_, j) => j !== i), jpeg }, filters);
            candidates.push({ key: `${d.track_id}/${f.frame_id}`, trackId: d.track_id, frameId: f.frame_id, score, jpeg, region, trackBBox: d.bbox });
          }
          heartbeat({ framesCropped: ++framesCropped, frames: detections.frames.length });
        });
        // 2. Quality filters (deterministic: per track in frame order, over the scores).
        const quality = selectCrops(candidates, filters);
        for (const r of quality.rejected) reject(r.reason);
        const byKey = new Map(candidates.map((c) => [c.key, c]));
        const perTrack = groupBy(
          quality.kept.map((key) => byKey.get(key)!),
          (c) => c.trackId,
        );
        // 3. Optional cap, numbering, upload.
        const entries: CropEntry[] = [];
        const jobs: Promise<void>[] = [];
        let written = 0;
        for (const trackId of [...perTrack.keys()].sort((a, b) => a - b)) {
          let list = perTrack.get(trackId)!.sort((a, b) => a.frameId - b.frameId);
          if (maxPerTrack && list.length > maxPerTrack) {
            const step = list.length / maxPerTrack;
            const keep = new Set(Array.from({ length: maxPerTrack }, (_, i) => Math.floor(i * step)));
            reject('overTrackCap', list.length - maxPerTrack);
            list = list.filter((_, i) => keep.has(i));
          }
          list.forEach((c, n) => {
            const object = video.crop('original', trackId, n);
            const r = c.region;
            entries.push({ track_id: trackId, n, frame_id: c.frameId, bbox: c.trackBBox, region: [r.left, r.top, r.left + r.width, r.top + r.height], object });
            // Uploads are bounded by the store's own concurrency, not by the image-processing limit.
            jobs.push(files.write(object, c.jpeg, 'image/jpeg').then(() => heartbeat({ cropsWritten: ++written, uploadsSkipped: files.io.uploadsSkipped })));
          });
        }
        await Promise.all(jobs);
        await files.writeJson(video.cropIndex, { videoGuid: input.videoGuid, rejected, crops: entries } satisfies CropIndex);
        const tracks = new Set(entries.map((e) => e.track_id)).size;
        return {
          result: { crops: entries.length, tracks, rejected, index: video.cropIndex },
          details: { crops: entries, filters: { minHeight, minBlurVariance, maxOcclusion, dedupMaxDistance, maxPerTrack: maxPerTrack ?? null } },
        };
      });
    },

    /**
     * Step 7: remove the background of every crop, filling it with `background.fill` (JPEG has no alpha).
     * Modes: `grass` keys out the pitch colour learned in step 4 with slightly feathered (soft) edges;
     * `segmentation` uses the u2netp person-segmentation model's soft mask; `both` the per-pixel minimum of
     * the two; `none` removes nothing. Without a pitch, `grass` becomes `none` and `both` becomes
     * `segmentation` (`decideBackground`, src/dataset/background.ts). Writes
     * `crops/modified/track_{id}/crop_{n}.jpg`, or nothing when nothing is removed: the dataset is then made
     * from `crops/original/` (no byte-identical second copy of every crop). The result records the decision
     * (`mode`, `requestedMode`, `removed`, `reason`) as the manifest and the report do.
     *
     * Resumable: every {@link BACKGROUND_CHUNK} crops, their records (index, size, MD5) go to GCS as a
     * checkpoint chunk referenced from the heartbeat details; a retried attempt skips recorded crops whose
     * objects still match and makes only the rest.
     */
    async removeCropBackground(input: StepInput): Promise<BackgroundResult> {
      return runStep(deps, 'removeCropBackground', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        const { fill } = input.options.background;
        const decision = backgroundOf(input);
        const crops = await readCropIndex(files, video);
        const recorded = { requestedMode: decision.requestedMode, removed: decision.removed, ...(decision.reason ? { reason: decision.reason } : {}) };
        // Nothing to remove: no second copy of every crop is stored; steps 8 and 9 read the originals.
        if (!decision.removed) return { result: { mode: decision.mode, crops: crops.length }, details: { ...recorded, meanRemovedFraction: 0, resumedCrops: 0 } };
        const effective = decision.mode;
        const pitch = effective === 'grass' || effective === 'both' ? input.grass : undefined;
        const segmenter = effective === 'segmentation' || effective === 'both' ? await deps.getSegmenter() : undefined;
        const limit = pLimit(IMAGE_CONCURRENCY);
        let done = 0;
        const removed = new Array<number>(crops.length).fill(0);
        // Resume: crops an earlier attempt recorded (checkpoint chunks) and whose object in GCS still has
        // the recorded size and MD5 are not made again.
        const previous = previousHeartbeat<BackgroundHeartbeat>()?.checkpoint;
        const skip = await verifiedBackgroundOutputs(files, layout, input.videoGuid, previous, crops, removed);
        const records: BackgroundRecord[] = [];
        // New chunks extend a checkpoint that still holds; otherwise they start a new one.
        let checkpoint = skip.size > 0 ? previous : undefined;
        let saving: Promise<void> = Promise.resolve();
        await Promise.all(
          crops.map((c, i) =>
            skip.has(i)
              ? Promise.resolve()
              : limit(async () => {
                  const original = await files.read(c.object);
                  const grass = effective === 'grass' || effective === 'both' ? await grassAlpha(original, pitch!, GRASS_FEATHER_SIGMA) : undefined;
                  const seg = segmenter ? await segmenter.mask(original) : undefined;
                  const alpha = grass && seg ? intersectMasks(seg, grass) : (seg ?? grass)!;
                  removed[i] = alpha.alpha.reduce((s, a) => s + (255 - a), 0) / (255 * alpha.alpha.length);
                  return applyMask(original, alpha.alpha, fill, input.options.jpegQuality);
                })
                  // The upload runs outside the image-processing limit (the store bounds requests in flight).
                  .then(async (out) => {
                    const name = video.crop('modified', c.track_id, c.n);
                    await files.write(name, out, 'image/jpeg');
                    records.push({ i, size: out.length, md5: md5Base64(out), removed: removed[i] });
                    // Every BACKGROUND_CHUNK crops, the records go to GCS as a checkpoint chunk (one write at a time).
                    if (records.length >= BACKGROUND_CHUNK) {
                      const batch = records.splice(0);
                      saving = saving.then(async () => {
                        const k = checkpoint?.chunks.length ?? 0;
                        const ref = await writeChunk(files.store, layout.checkpoint(input.videoGuid, 'background', k), batch);
                        checkpoint = { chunks: [...(checkpoint?.chunks ?? []), ref] };
                      });
                      await saving;
                    }
                  })
                  .then(() => heartbeat({ cropsDone: ++done, skipped: skip.size, checkpoint } satisfies BackgroundHeartbeat)),
          ),
        );
        await saving;
        if (checkpoint) await files.store.deletePrefix(layout.checkpointPrefix(input.videoGuid));
        return {
          result: { mode: effective, crops: crops.length },
          details: {
            ...recorded,
            meanRemovedFraction: crops.length ? Math.round((removed.reduce((a, b) => a + b, 0) / crops.length) * 1000) / 1000 : 0,
            resumedCrops: skip.size,
          },
        };
      });
    },

    /**
     * Step 8: make `augment.count` deterministic augmented copies of every training crop (the split is
     * planned here exactly as step 9 will apply it, so validation crops are never augmented). Copies stay in
     * this worker's run cache (step 9 uploads them into the dataset); step 9 regenerates them bit-identically
     * when it runs elsewhere or the cache is off. A retry on the same worker reuses the copies an earlier
     * attempt left in the cache.
     */
    async augmentCrops(input: StepInput): Promise<AugmentResult> {
      return runStep(deps, 'augmentCrops', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        const crops = await readCropIndex(files, video);
        const plan = await planFor(files, video, input, crops);
        const train = crops.filter((c) => plan.assignments.get(cropKey(c.track_id, c.n)) === 'train');
        const planned = train.length * input.options.augment.count;
        // With the cache off nothing would keep the copies for step 9, which makes them anyway: plan only.
        if (!files.cache.enabled) return { result: { augmented: planned, sources: train.length }, details: { generatedHere: false } };
        const limit = pLimit(IMAGE_CONCURRENCY);
        const retry = activityAttempt() > 1;
        let made = 0;
        await Promise.all(
          train.flatMap((c) =>
            Array.from({ length: input.options.augment.count }, (_, k) =>
              limit(async () => {
                await augmentedCopy(files, video, input, c, k, retry);
                heartbeat({ augmented: ++made });
              }),
            ),
          ),
        );
        return { result: { augmented: made, sources: train.length }, details: { generatedHere: true } };
      });
    },

    /**
     * Step 9: ImageFolder dataset `datasets/{train,val}/track_{id}/`: background-removed crops split by time
     * inside each track, augmented copies in train only, and `datasets/manifest.json` written last (a
     * dataset without a manifest is incomplete).
     *
     * The manifest is deleted first, so a dataset being (re)written never looks complete. Images already
     * stored with the same bytes (by an earlier attempt) are not uploaded or copied again, and objects of the
     * dataset folder that this plan does not write are deleted before the manifest is written.
     */
    async createTrainingAndValidationSets(input: StepInput): Promise<SplitResult> {
      return runStep(deps, 'createTrainingAndValidationSets', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        // A retry must never leave an old manifest next to half-rewritten images.
        await files.store.delete([video.manifest]);
        const background = backgroundOf(input);
        const sources = background.removed ? video.cropsPrefix('modified') : video.cropsPrefix('original');
        const prior = await files.loadPriorOutputs(activityAttempt() > 1 ? [video.datasetPrefix, sources] : [video.datasetPrefix]);
        const crops = await readCropIndex(files, video);
        const plan = await planFor(files, video, input, crops);
        const images: ManifestImage[] = [];
        const tracks: Record<string, { train: number; val: number; gap: number }> = {};
        const limit = pLimit(IMAGE_CONCURRENCY);
        const jobs: Promise<void>[] = [];
        for (const c of crops) {
          const assignment = plan.assignments.get(cropKey(c.track_id, c.n)) ?? 'train';
          const t = (tracks[c.track_id] ??= { train: 0, val: 0, gap: 0 });
          if (assignment === 'gap') {
            t.gap++;
            continue;
          }
          const split: Split = assignment;
          const source = sourceCrop(video, c, background);
          const base = { split, track_id: c.track_id, frame_id: c.frame_id, bbox: c.bbox, source_crop: source, original_crop: c.object };
          const name = video.datasetImage(split, c.track_id, `crop_${c.n}.jpg`);
          images.push({ path: name, ...base, augmentation: null });
          t[split]++;
          // The image is the source crop itself: a server-side copy, no bytes transferred.
          jobs.push(files.copy(source, name));
          if (split !== 'train') continue;
          for (let k = 0; k < input.options.augment.count; k++) {
            const augName = video.datasetImage(split, c.track_id, `crop_${c.n}_aug${k}.jpg`);
            const aug = planAugmentation(augmentSeed(input), augmentKey(input, c), k, input.options.augment);
            images.push({ path: augName, ...base, augmentation: aug });
            t.train++;
            jobs.push(limit(() => augmentedCopy(files, video, input, c, k)).then((buf) => files.write(augName, buf, 'image/jpeg')));
          }
        }
        let written = 0;
        await Promise.all(jobs.map((j) => j.then(() => heartbeat({ imagesWritten: ++written, uploadsSkipped: files.io.uploadsSkipped }))));
        const train = images.filter((i) => i.split === 'train').length;
        const val = images.length - train;
        await files.write(video.report, await buildReport(files, video, input, background, crops, tracks, plan, { train, val }), 'text/html; charset=utf-8');
        // Leftovers of an earlier dataset in this folder that this plan does not contain.
        const planned = new Set([...images.map((i) => i.path), video.report, video.manifest]);
        await files.store.delete([...prior.keys()].filter((n) => n.startsWith(video.datasetPrefix) && !planned.has(n)));
        await files.writeJson(video.manifest, {
          tenantId: input.tenantId,
          runGuid: input.runGuid,
          videoGuid: input.videoGuid,
          layout: 'ImageFolder',
          splitMethod: 'per-track contiguous time blocks: the latest valFraction of each track is val; train crops within gapFrames before it are left out',
          gapFrames: plan.gapFrames,
          gapCrops: plan.gapCrops,
          options: { split: input.options.split, augment: input.options.augment },
          background: { ...background, fill: input.options.background.fill },
          counts: { train, val, tracks },
          trainOnlyTracks: plan.trainOnlyTracks,
          images,
        } satisfies Manifest);
        return { result: { train, val, trainOnlyTracks: plan.trainOnlyTracks, manifest: video.manifest }, details: { report: video.report, gapCrops: plan.gapCrops } };
      });
    },
  };
}

/** Crops per track shown in the report, and tracks at most. */
const REPORT_SAMPLES_PER_TRACK = 6;
const REPORT_MAX_TRACKS = 300;

/** Gathers the report's figures (steps 5, 6 and this step) and a few crops per track, and renders it. */
async function buildReport(
  files: StepFiles,
  video: VideoLayout,
  input: StepInput,
  background: BackgroundDecision,
  crops: CropEntry[],
  tracks: Record<string, { train: number; val: number; gap: number }>,
  plan: SplitPlan,
  counts: { train: number; val: number },
): Promise<string> {
  const detections = await files.readJson(video.detections, detectionsFileSchema);
  const dropped: Record<string, number> = {};
  for (const f of detections.frames) for (const d of f.dropped ?? []) dropped[d.reason] = (dropped[d.reason] ?? 0) + 1;
  const { rejected } = await files.readJson(video.cropIndex, cropIndexSchema);
  const byTrack = groupBy(crops, (c) => c.track_id);
  const reportTracks: ReportTrack[] = [];
  for (const trackId of [...byTrack.keys()].sort((a, b) => a - b).slice(0, REPORT_MAX_TRACKS)) {
    const list = byTrack.get(trackId)!.sort((a, b) => a.frame_id - b.frame_id);
    const step = Math.max(1, list.length / REPORT_SAMPLES_PER_TRACK);
    const picks = Array.from({ length: Math.min(REPORT_SAMPLES_PER_TRACK, list.length) }, (_, i) => list[Math.floor(i * step)]);
    const samples = await Promise.all(
      picks.map(async (c) => ({ frameId: c.frame_id, original: await files.read(c.object), modified: background.removed ? await files.read(sourceCrop(video, c, background)) : undefined })),
    );
    const t = tracks[trackId] ?? { train: 0, val: 0, gap: 0 };
    reportTracks.push({ trackId, train: t.train, val: t.val, gap: t.gap, samples });
  }
  return renderReport({
    tenantId: input.tenantId,
    runGuid: input.runGuid,
    videoGuid: input.videoGuid,
    source: input.source,
    counts: {
      frames: detections.frames.length,
      detections: detections.frames.reduce((s, f) => s + f.detections.length, 0),
      tracks: byTrack.size,
      crops: crops.length,
      train: counts.train,
      val: counts.val,
      gap: plan.gapCrops,
    },
    rejected: rejected ?? {},
    dropped,
    background: { text: describeBackground(background), removed: background.removed },
    trainOnlyTracks: plan.trainOnlyTracks,
    tracks: reportTracks,
  });
}

/** The background treatment of the video of `input` (one rule for steps 7, 8 and 9: `decideBackground`). */
function backgroundOf(input: StepInput): BackgroundDecision {
  return decideBackground(input.options.background.mode, input.grass?.pitchFound ?? false);
}

/**
 * The crop a dataset image (and its augmented copies) is made from: the background-removed crop, or the
 * original when nothing is removed (step 7 then stores no copy).
 */
function sourceCrop(video: VideoLayout, c: CropEntry, background: BackgroundDecision): string {
  return background.removed ? video.crop('modified', c.track_id, c.n) : c.object;
}

/**
 * The crop's identity in augmentation seeds: video GUID, track id and crop number, not its storage path, so
 * the same run GUID (or seed) gives the same augmentations under any tenant or bucket.
 */
function augmentKey(input: StepInput, c: CropEntry): string {
  return `${input.videoGuid}/${cropKey(c.track_id, c.n)}`;
}

/** Seed of the run's augmentations: `options.augment.seed`, else the run GUID. */
function augmentSeed(input: StepInput): string {
  return input.options.augment.seed ?? input.runGuid;
}

/**
 * Augmented copy `k` of crop `c`: from this worker's run cache when step 8 ran here, else regenerated
 * (deterministically identical) from the crop's source ({@link sourceCrop}). Step 8, which makes them, passes
 * `lookup = false` (nothing to find yet; no cache miss counted).
 */
async function augmentedCopy(files: StepFiles, video: VideoLayout, input: StepInput, c: CropEntry, k: number, lookup = true): Promise<Buffer> {
  const artifact = `augmented/track_${c.track_id}/crop_${c.n}_aug${k}.jpg`;
  const cached = lookup ? files.getLocal<Buffer>(artifact, (b) => b.length) : undefined;
  if (cached) return cached;
  const aug: Augmentation = planAugmentation(augmentSeed(input), augmentKey(input, c), k, input.options.augment);
  const out = await applyAugmentation(await files.read(sourceCrop(video, c, backgroundOf(input))), aug, input.options.background.fill, input.options.jpegQuality);
  files.setLocal(artifact, out, out.length);
  return out;
}

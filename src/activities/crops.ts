/**
 * Steps 6 and 7: `extractCrops` (CPU queue) and `removeCropBackground` (GPU queue); docs/ARCHITECTURE.md
 * "The nine steps". Also what steps 8 and 9 (./dataset.ts) share with them: the crop index and the source
 * crop of a dataset image.
 */
import { z } from 'zod';
import { applyMask, decideBackground, grassAlpha, intersectMasks, type BackgroundDecision } from '../dataset/background';
import { assertPlannedBatch, framesOfBatch, inBatch, placeBackgroundRecords, type ClassBatch } from '../dataset/batches';
import { cropJpeg, padAndClamp, type Region } from '../dataset/crops';
import { scoreCrop, selectCrops, type ScoredCrop } from '../dataset/quality';
import { backgroundBatchFileSchema, cropBatchFileSchema, cropIndexSchema, detectionsFileSchema, type CropBatchFile, type CropEntry, type CropIndex, type DetectionsFile } from '../storage/artifacts';
import { readChunks, writeChunk, type ChunkRef } from '../storage/checkpoints';
import type { RunLayout, VideoLayout } from '../storage/layout';
import { groupBy } from '../util/group';
import { forEachInWindow } from '../util/window';
import { md5Base64 } from '../util/hash';
import type { BackgroundResult, BatchedInput, CropsResult, StepInput } from '../workflows/types';
import type { ActivityDeps } from './deps';
import { IMAGE_JOB_WINDOW, imageSlot } from './imageWork';
import { runStep, type StepFiles } from './runStep';
import { activityAttempt, heartbeat, previousHeartbeat } from './temporal';

/** Gaussian sigma (pixels) that feathers the grass key's edge, so players do not get jagged outlines. */
const GRASS_FEATHER_SIGMA = 0.8;

/**
 * Crop uploads of one {@link cutCrops} call unsettled at once: four times the store's requests in flight (8,
 * src/storage/gcs.ts), as step 3's frame uploads (src/activities/ingest.ts), so the store always has work
 * queued while a failed attempt has few uploads to wait for.
 */
const CROP_UPLOAD_WINDOW = 32;

/** The crop index of a video (step 6), validated. */
export async function readCropIndex(files: StepFiles, video: VideoLayout): Promise<CropEntry[]> {
  return (await files.readJson(video.cropIndex, cropIndexSchema)).crops;
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

/** Creates steps 6 and 7 over `deps`. */
export function createCropActivities(deps: ActivityDeps) {
  return {
    /**
     * Step 6: one crop per tracked detection from the full-resolution frame, padded and clamped to the
     * frame, then quality filters with their reasons recorded: too short (`tooSmall`), nothing inside the
     * frame (`offFrame`), heavily overlapped by another player's box (`occluded`), blurred (`blur`, variance
     * of the Laplacian), near-duplicate of the previous kept crop of the track (`duplicate`, dHash), and the
     * optional per-track cap (`overTrackCap`). Kept crops of a track are numbered from 0 in time order.
     * Writes `crops/original/track_{id}/crop_{n}.jpg` ({@link cutCrops}) and the crop index. With
     * `input.batches`, class batches cut the crops already (`cropBatch`, ./batches.ts): the step merges their
     * parts into the crop index ({@link mergedCropParts}).
     *
     * On a retry the crops are cut again (deterministic), and only those not already stored with the same
     * bytes by an earlier attempt are uploaded.
     */
    async extractCrops(input: BatchedInput): Promise<CropsResult> {
      return runStep(deps, 'extractCrops', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        const { minHeight, maxPerTrack, minBlurVariance, maxOcclusion, dedupMaxDistance } = input.options.crops;
        // Class batches cut their crops already (cropBatch, ./batches.ts): merge their parts, in track order.
        const cut = input.batches ? await mergedCropParts(files, layout, input.videoGuid, input.batches) : await cutCrops(files, video, input, (await files.readJson(video.detections, detectionsFileSchema)).frames);
        const { entries, rejected } = cut;
        await files.writeJson(video.cropIndex, { videoGuid: input.videoGuid, rejected, crops: entries } satisfies CropIndex);
        const tracks = new Set(entries.map((e) => e.track_id)).size;
        return {
          result: { crops: entries.length, tracks, rejected, index: video.cropIndex },
          // The crop index itself is stored once, at `index`; a step result stays a small summary (SPEC section 4).
          details: { filters: { minHeight, minBlurVariance, maxOcclusion, dedupMaxDistance, maxPerTrack: maxPerTrack ?? null }, ...(input.batches ? { batches: input.batches.length } : {}) },
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
     * With `input.batches`, class batches removed the backgrounds already (`backgroundBatch`, ./batches.ts); the
     * step gathers their records ({@link mergedBackgroundParts}) for its result.
     *
     * Resumable: every {@link BACKGROUND_CHUNK} crops, their records (index, size, MD5) go to GCS as a
     * checkpoint chunk referenced from the heartbeat details; a retried attempt skips recorded crops whose
     * objects still match and makes only the rest.
     */
    async removeCropBackground(input: BatchedInput): Promise<BackgroundResult> {
      return runStep(deps, 'removeCropBackground', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        const decision = backgroundOf(input);
        const crops = await readCropIndex(files, video);
        const recorded = { requestedMode: decision.requestedMode, removed: decision.removed, ...(decision.reason ? { reason: decision.reason } : {}) };
        // Nothing to remove: no second copy of every crop is stored; steps 8 and 9 read the originals.
        if (!decision.removed) return { result: { mode: decision.mode, crops: crops.length }, details: { ...recorded, meanRemovedFraction: 0, resumedCrops: 0 } };
        const effective = decision.mode;
        const mean = (removed: number[]) => (crops.length ? Math.round((removed.reduce((a, b) => a + b, 0) / crops.length) * 1000) / 1000 : 0);
        // Class batches removed the backgrounds already (backgroundBatch, ./batches.ts): gather their records.
        if (input.batches) {
          const removed = await mergedBackgroundParts(files, layout, input.videoGuid, input.batches, crops);
          return { result: { mode: effective, crops: crops.length }, details: { ...recorded, meanRemovedFraction: mean(removed), resumedCrops: 0, batches: input.batches.length } };
        }
        const remove = await backgroundRemover(deps, input, decision);
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
        const todo = crops.flatMap((c, i) => (skip.has(i) ? [] : [{ c, i }]));
        // A bounded window of crops at a time, each treated in one of the process's image slots (./imageWork.ts).
        await forEachInWindow(todo, IMAGE_JOB_WINDOW, async ({ c, i }) => {
          const r = await remove(await files.read(c.object));
          removed[i] = r.removed;
          const name = video.crop('modified', c.track_id, c.n);
          await files.write(name, r.jpeg, 'image/jpeg');
          records.push({ i, size: r.jpeg.length, md5: md5Base64(r.jpeg), removed: r.removed });
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
          heartbeat({ cropsDone: ++done, skipped: skip.size, checkpoint } satisfies BackgroundHeartbeat);
        });
        await saving;
        if (checkpoint) await files.store.deletePrefix(layout.checkpointPrefix(input.videoGuid));
        return { result: { mode: effective, crops: crops.length }, details: { ...recorded, meanRemovedFraction: mean(removed), resumedCrops: skip.size } };
      });
    },
  };
}

/** Crops cut from tracked boxes: index entries (ascending track id, then crop number) and rejections by reason. */
export interface CutCrops {
  entries: CropEntry[];
  /** Rejected boxes per reason, keys in alphabetical order (the same bytes whether cut in one piece or in batches). */
  rejected: Record<string, number>;
}

/**
 * Step 6's cutting, for every track of `frames` or only the tracks of `batch`: one crop per tracked box
 * from the full-resolution frame, padded and clamped to the frame, then the quality filters with their
 * reasons (docs on `extractCrops`); kept crops of a track numbered from 0 in time order and uploaded to
 * `crops/original/track_{id}/crop_{n}.jpg`. Every filter looks at one track (or at the frame's other boxes,
 * all of which each of `frames` holds), so cutting by batches gives the crops of cutting in one piece. On a
 * retry only crops not already stored with the same bytes are uploaded.
 * @param frames sampled frames with their tracked boxes: `detections.json`'s, or a batch's part of them
 *   (`framesOfBatch`, src/dataset/batches.ts)
 */
export async function cutCrops(files: StepFiles, video: VideoLayout, input: StepInput, frames: readonly DetectionsFile['frames'][number][], batch?: ClassBatch): Promise<CutCrops> {
  const { padding, minHeight, maxPerTrack, minBlurVariance, maxOcclusion, dedupMaxDistance } = input.options.crops;
  if (activityAttempt() > 1) await files.loadPriorOutputs([video.cropsPrefix('original')]);
  const mine = (trackId: number) => !batch || inBatch(batch, trackId);
  const todo = batch ? framesOfBatch(frames, batch) : frames.filter((f) => f.detections.length > 0);
  const rejected: Record<string, number> = {};
  const reject = (reason: string, n = 1) => void (rejected[reason] = (rejected[reason] ?? 0) + n);
  let framesCropped = 0;
  // 1. Candidate crops, cut in memory and scored (occlusion, blur, dHash) in the same bounded jobs, so the
  // CPU-heavy decodes run concurrently; each finished frame counts as progress (liveness.ts).
  type Candidate = ScoredCrop & { jpeg: Buffer; region: Region; trackBBox: [number, number, number, number] };
  const candidates: Candidate[] = [];
  const filters = { minBlurVariance, maxOcclusion, dedupMaxDistance };
  const cutFrame = async (f: DetectionsFile['frames'][number]) => {
    const boxes = f.detections.map((d) => d.bbox);
    const cuts: { i: number; d: (typeof f.detections)[number]; region: Region }[] = [];
    for (const [i, d] of f.detections.entries()) {
      if (!mine(d.track_id)) continue;
      const region = padAndClamp(d.bbox, padding, f.width, f.height);
      if (!region) {
        reject('offFrame');
        continue;
      }
      if (region.height < minHeight) {
        reject('tooSmall');
        continue;
      }
      cuts.push({ i, d, region });
    }
    if (cuts.length > 0) {
      // The frame's JPEG is read (downloaded on a cache miss) outside the image slot, so a slot is never held
      // waiting for the network; its decode, cuts and scores run in one slot (./imageWork.ts).
      const frameJpeg = await files.read(video.frame(f.frame_id));
      await imageSlot(async () => {
        const frame = await files.decodeFrame(frameJpeg);
        for (const { i, d, region } of cuts) {
          const jpeg = await cropJpeg(frame, region, input.options.jpegQuality);
          const score = await scoreCrop({ bbox: d.bbox, othersInFrame: boxes.filter((_, j) => j !== i), jpeg }, filters);
          candidates.push({ key: `${d.track_id}/${f.frame_id}`, trackId: d.track_id, frameId: f.frame_id, score, jpeg, region, trackBBox: d.bbox });
        }
      });
    }
    heartbeat({ framesCropped: ++framesCropped, frames: todo.length });
  };
  // A window of frames at a time; on a failure (or a cancel, thrown by heartbeat) the frames already started
  // finish before the attempt fails.
  await forEachInWindow(todo, IMAGE_JOB_WINDOW, cutFrame);
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
  const uploads: { object: string; jpeg: Buffer }[] = [];
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
      uploads.push({ object, jpeg: c.jpeg });
    });
  }
  // Uploads through a window (not the image slots: no image work), so none still runs once the attempt failed.
  await forEachInWindow(uploads, CROP_UPLOAD_WINDOW, (u) => files.write(u.object, u.jpeg, 'image/jpeg'), (written) => heartbeat({ cropsWritten: written, uploadsSkipped: files.io.uploadsSkipped }));
  return { entries, rejected: sortedCounts(rejected) };
}

/**
 * The crops of a video cut by class batches: each batch's part (`intermediate/crops/{videoGuid}/batch_{k}.json`,
 * written by `cropBatch`) in batch order, so entries stay in ascending track order; rejections summed.
 * @throws PipelineError(InvalidInput) when a part is not the batch the workflow planned.
 */
async function mergedCropParts(files: StepFiles, layout: RunLayout, videoGuid: string, batches: ClassBatch[]): Promise<CutCrops> {
  const entries: CropEntry[] = [];
  const rejected: Record<string, number> = {};
  for (const b of batches) {
    const part = await readCropPart(files, layout, videoGuid, b);
    entries.push(...part.crops);
    for (const [reason, n] of Object.entries(part.rejected)) rejected[reason] = (rejected[reason] ?? 0) + n;
  }
  return { entries, rejected: sortedCounts(rejected) };
}

/**
 * Class batch `batch`'s part of a video's crop index (`intermediate/crops/{videoGuid}/batch_{k}.json`, written by
 * `cropBatch`): its entries in the order the merged index holds them, and its rejections.
 * @throws PipelineError(InvalidInput) when the stored part is not the batch the workflow planned
 */
export async function readCropPart(files: StepFiles, layout: RunLayout, videoGuid: string, batch: ClassBatch): Promise<CropBatchFile> {
  const part = await files.readJson(layout.cropBatch(videoGuid, batch.index), cropBatchFileSchema);
  assertPlannedBatch(`crop batch ${batch.index}`, part.batch, batch);
  return part;
}

/** `counts` with its keys in alphabetical order. */
function sortedCounts(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Step 7's treatment of one crop for `decision` (a mode that removes something): the grass key learned in step
 * 4 with feathered edges, u2netp's soft person mask, or the per-pixel minimum of both; the background filled
 * with `background.fill`.
 * @returns a function from the original crop's JPEG to the treated JPEG and the removed share of its pixels; each
 *   call runs in one of the process's image slots (`imageSlot`, ./imageWork.ts), so a caller must not hold one.
 */
export async function backgroundRemover(deps: ActivityDeps, input: StepInput, decision: BackgroundDecision): Promise<(original: Buffer) => Promise<{ jpeg: Buffer; removed: number }>> {
  const mode = decision.mode;
  const pitch = mode === 'grass' || mode === 'both' ? input.grass : undefined;
  const segmenter = mode === 'segmentation' || mode === 'both' ? await deps.getSegmenter() : undefined;
  // One of the process's image slots per crop (./imageWork.ts): callers must not hold one already.
  return (original) => imageSlot(async () => {
    const grass = pitch ? await grassAlpha(original, pitch, GRASS_FEATHER_SIGMA) : undefined;
    const seg = segmenter ? await segmenter.mask(original) : undefined;
    const alpha = grass && seg ? intersectMasks(seg, grass) : (seg ?? grass)!;
    const removed = alpha.alpha.reduce((s, a) => s + (255 - a), 0) / (255 * alpha.alpha.length);
    return { jpeg: await applyMask(original, alpha.alpha, input.options.background.fill, input.options.jpegQuality), removed };
  });
}

/**
 * The removed shares of every crop of a video whose backgrounds class batches removed: each batch's part
 * (`intermediate/background/{videoGuid}/batch_{k}.json`, written by `backgroundBatch`) placed by crop index
 * (`placeBackgroundRecords`, src/dataset/batches.ts).
 * @throws PipelineError(InvalidInput) when the parts do not cover every crop of the index once.
 */
async function mergedBackgroundParts(files: StepFiles, layout: RunLayout, videoGuid: string, batches: ClassBatch[], crops: CropEntry[]): Promise<number[]> {
  const parts = [];
  for (const b of batches) parts.push(await files.readJson(layout.backgroundBatch(videoGuid, b.index), backgroundBatchFileSchema));
  return placeBackgroundRecords(crops, parts, videoGuid);
}

/** The background treatment of the video of `input` (one rule for steps 7, 8 and 9: `decideBackground`). */
export function backgroundOf(input: StepInput): BackgroundDecision {
  return decideBackground(input.options.background.mode, input.grass?.pitchFound ?? false);
}

/**
 * The crop a dataset image (and its augmented copies) is made from: the background-removed crop, or the
 * original when nothing is removed (step 7 then stores no copy).
 */
export function sourceCrop(video: VideoLayout, c: CropEntry, background: BackgroundDecision): string {
  return background.removed ? video.crop('modified', c.track_id, c.n) : c.object;
}

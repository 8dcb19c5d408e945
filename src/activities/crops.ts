/**
 * Steps 6 and 7: `extractCrops` (CPU queue) and `removeCropBackground` (GPU queue); docs/ARCHITECTURE.md
 * "The nine steps". Also what steps 8 and 9 (./dataset.ts) share with them: the crop index and the source
 * crop of a dataset image.
 */
import pLimit from 'p-limit';
import { z } from 'zod';
import { applyMask, decideBackground, grassAlpha, intersectMasks, type BackgroundDecision } from '../dataset/background';
import { planClassBatches } from '../dataset/batches';
import { cropJpeg, padAndClamp, type Region } from '../dataset/crops';
import { scoreCrop, selectCrops, type ScoredCrop } from '../dataset/quality';
import { cropIndexSchema, detectionsFileSchema, type CropEntry, type CropIndex } from '../storage/artifacts';
import { readChunks, writeChunk, type ChunkRef } from '../storage/checkpoints';
import type { RunLayout, VideoLayout } from '../storage/layout';
import { groupBy } from '../util/group';
import { DEFAULT_OPTIONS } from '../validation';
import { md5Base64 } from '../util/hash';
import type { RgbFrame } from '../vision/image/rgb';
import type { BackgroundResult, CropsResult, StepInput } from '../workflows/types';
import type { ActivityDeps } from './deps';
import { forEachBounded } from './liveness';
import { runStep, type StepFiles } from './runStep';
import { activityAttempt, heartbeat, previousHeartbeat } from './temporal';

/** Gaussian sigma (pixels) that feathers the grass key's edge, so players do not get jagged outlines. */
const GRASS_FEATHER_SIGMA = 0.8;

/**
 * Images processed at once by sharp: about its thread-pool size (many parallel sharp pipelines grow memory;
 * `forEachBounded` in src/activities/liveness.ts).
 */
export const IMAGE_CONCURRENCY = 4;

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
     * Writes `crops/original/track_{id}/crop_{n}.jpg` and the crop index, and returns the video's class
     * batches (`options.batches`, `planClassBatches` in src/dataset/batches.ts).
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
        const perTrackCrops = new Map<number, number>();
        for (const e of entries) perTrackCrops.set(e.track_id, (perTrackCrops.get(e.track_id) ?? 0) + 1);
        const batches = planClassBatches(perTrackCrops, (input.options.batches ?? DEFAULT_OPTIONS.batches).crops);
        return {
          result: { crops: entries.length, tracks: perTrackCrops.size, rejected, index: video.cropIndex, batches },
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
  };
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

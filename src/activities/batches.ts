/**
 * Steps 6, 7 and 8 of a video with several class batches (docs/ARCHITECTURE.md "Class batches"), one batch
 * of classes per activity on any worker of the step's kind: `cropBatch` (CPU) cuts the batch's crops and stores
 * its part of the crop index, which step 6 (`extractCrops`, ./crops.ts) merges; `backgroundBatch` (GPU) removes
 * the backgrounds of the batch's crops, whose records step 7 (`removeCropBackground`) gathers; `augmentBatch`
 * (CPU) makes the batch's augmented copies as intermediate artifacts, which step 8 (`augmentCrops`,
 * ./dataset.ts) counts and step 9 copies into the dataset.
 */
import { assertPlannedBatch, classBatchesOf, framesOfBatch, type ClassBatch } from '../dataset/batches';
import { detectionsBatchFileSchema, detectionsFileSchema, type BackgroundBatchFile, type CropBatchFile, type DetectionsBatchFile, type DetectionsFile } from '../storage/artifacts';
import type { BackgroundBatchResult, BatchInput, BatchResult, CropBatchResult, StepResultBase } from '../workflows/types';
import { backgroundOf, backgroundRemover, cutCrops, readCropPart } from './crops';
import { copyJobs, makeAugmentedCopy, trainCrops } from './dataset';
import type { ActivityDeps } from './deps';
import { isNotFound } from '../storage/gcs';
import type { RunLayout } from '../storage/layout';
import { NOT_READ_AGAIN } from '../storage/runFiles';
import { forEachInWindow } from '../util/window';
import type { StepName } from '../workflows/steps';
import { IMAGE_JOB_WINDOW } from './imageWork';
import { runStep, type StepFiles, type StepOutput } from './runStep';
import { activityAttempt, heartbeat } from './temporal';

/** Runs `body` as class batch `input.batch` of step `name` (`runStep` with the part `batches.{index}`). */
function batchPart<R extends object>(deps: ActivityDeps, name: StepName, input: BatchInput, body: (files: StepFiles, layout: RunLayout) => Promise<StepOutput<R>>) {
  return runStep(deps, name, input, body, { group: 'batches', index: input.batch.index });
}

/**
 * Writes step 5's `detections.json` and, for a video of more than one class batch, each batch's part of it
 * (`intermediate/detections/{videoGuid}/batch_{k}.json`: the frames holding a box of the batch, each whole;
 * `framesOfBatch`, src/dataset/batches.ts), so that a `cropBatch` reads the frames it cuts from rather than the
 * whole video's, which grow with its length. The parts are written first.
 * @param maxBoxes `options.batches.boxes`
 * @returns the video's class batches (`classBatchesOf`)
 */
export async function writeDetections(files: StepFiles, layout: RunLayout, videoGuid: string, file: DetectionsFile, maxBoxes: number): Promise<ClassBatch[]> {
  const batches = classBatchesOf(file.frames, maxBoxes);
  if (batches.length > 1) {
    for (const batch of batches) {
      await files.writeJson(layout.detectionsBatch(videoGuid, batch.index), { videoGuid, batch, frames: framesOfBatch(file.frames, batch) } satisfies DetectionsBatchFile);
    }
  }
  await files.writeJson(layout.video(videoGuid).detections, file);
  return batches;
}

/**
 * The frames class batch `batch` cuts its crops from: its part of `detections.json` written by step 5
 * ({@link writeDetections}); for a run whose step 5 ran before parts existed (the store answers 404), the whole
 * `detections.json` (`read: 'whole'`), from which `cutCrops` keeps the same frames.
 * @throws PipelineError(InvalidInput) when the stored part is not the batch the workflow planned
 */
async function batchFrames(files: StepFiles, layout: RunLayout, videoGuid: string, batch: ClassBatch): Promise<{ frames: DetectionsFile['frames']; read: 'part' | 'whole' }> {
  let part: DetectionsBatchFile;
  try {
    part = await files.readJson(layout.detectionsBatch(videoGuid, batch.index), detectionsBatchFileSchema);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    return { frames: (await files.readJson(layout.video(videoGuid).detections, detectionsFileSchema)).frames, read: 'whole' };
  }
  assertPlannedBatch(`detections of class batch ${batch.index}`, part.batch, batch);
  return { frames: part.frames, read: 'part' };
}

/** Creates `cropBatch`, `backgroundBatch` and `augmentBatch` over `deps`. */
export function createBatchActivities(deps: ActivityDeps) {
  return {
    /**
     * Part of step 6: the crops of the classes of one batch (`input.batch`, track ids `from`..`to`), cut and
     * filtered exactly as step 6 cuts a whole video's (`cutCrops`, ./crops.ts) and uploaded to
     * `crops/original/track_{id}/crop_{n}.jpg`; the batch's entries and rejections go to
     * `intermediate/crops/{videoGuid}/batch_{index}.json`. Its result goes under `batches.{index}` of step 6's
     * result.
     */
    async cropBatch(input: BatchInput): Promise<CropBatchResult> {
      const batch = input.batch;
      return batchPart(deps, 'extractCrops', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        const { frames, read } = await batchFrames(files, layout, input.videoGuid, batch);
        const cut = await cutCrops(files, video, input, frames, batch);
        const object = layout.cropBatch(input.videoGuid, batch.index);
        await files.writeJson(object, { videoGuid: input.videoGuid, batch, rejected: cut.rejected, crops: cut.entries } satisfies CropBatchFile);
        return { result: { batch, crops: cut.entries.length, object }, details: { rejected: cut.rejected, detectionsRead: read } };
      });
    },

    /**
     * Part of step 7: the background of every crop of the classes of one batch removed exactly as step 7
     * removes a whole video's (`backgroundRemover`, ./crops.ts), uploaded to
     * `crops/modified/track_{id}/crop_{n}.jpg`; the removed share of each crop goes to
     * `intermediate/background/{videoGuid}/batch_{index}.json`, by the crop's place in the batch's part of the crop
     * index (`readCropPart`, ./crops.ts: the batch reads that part, not the whole index). Nothing when the video's
     * mode removes nothing.
     * Its result goes under `batches.{index}` of step 7's result. Runs on the GPU queue (u2netp).
     */
    async backgroundBatch(input: BatchInput): Promise<BackgroundBatchResult> {
      const batch = input.batch;
      return batchPart(deps, 'removeCropBackground', input, async (files, layout): Promise<StepOutput<Omit<BackgroundBatchResult, keyof StepResultBase>>> => {
        const video = layout.video(input.videoGuid);
        const decision = backgroundOf(input);
        // Only this batch's part of the crop index (written by its cropBatch), numbered by place in the part.
        const mine = (await readCropPart(files, layout, input.videoGuid, batch)).crops.map((c, i) => ({ c, i }));
        // Nothing to remove (step 7 stores nothing then): no part either.
        if (!decision.removed) return { result: { batch, crops: mine.length, object: null }, details: { mode: decision.mode } };
        if (activityAttempt() > 1) await files.loadPriorOutputs([video.cropsPrefix('modified')]);
        const remove = await backgroundRemover(deps, input, decision);
        const records: BackgroundBatchFile['crops'] = [];
        // A bounded window of crops at a time, each treated in one of the process's image slots (./imageWork.ts);
        // the upload follows outside the slot (the store bounds requests in flight).
        await forEachInWindow(mine, IMAGE_JOB_WINDOW, async ({ c, i }) => {
          const r = await remove(await files.read(c.object));
          await files.write(video.crop('modified', c.track_id, c.n), r.jpeg, 'image/jpeg');
          records.push({ i, removed: r.removed });
          heartbeat({ cropsDone: records.length, uploadsSkipped: files.io.uploadsSkipped });
        });
        const object = layout.backgroundBatch(input.videoGuid, batch.index);
        records.sort((a, b) => a.i - b.i);
        await files.writeJson(object, { videoGuid: input.videoGuid, batch, indexing: 'part', crops: records } satisfies BackgroundBatchFile);
        return { result: { batch, crops: mine.length, object }, details: { mode: decision.mode } };
      });
    },

    /**
     * Part of step 8: the `augment.count` augmented copies of every train crop of the classes of one batch
     * (`input.batch`, track ids `from`..`to`), made exactly as step 8 makes them for a whole video
     * (`makeAugmentedCopy`, ./dataset.ts), written to
     * `intermediate/augmented/{videoGuid}/track_{id}/crop_{n}_aug{k}.jpg`. It reads the batch's own part of the
     * crop index (`readCropPart`, ./crops.ts), not the whole index. Its result goes under `batches.{index}` of
     * step 8's result. A retry uploads only copies not already stored with the same bytes.
     */
    async augmentBatch(input: BatchInput): Promise<BatchResult> {
      const batch = input.batch;
      return batchPart(deps, 'augmentCrops', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        // Only this batch's part of the crop index (written by its cropBatch): the whole index would be parsed
        // by every batch running at once, and it grows with the video.
        const train = await trainCrops(files, video, input, (await readCropPart(files, layout, input.videoGuid, batch)).crops);
        if (activityAttempt() > 1) await files.loadPriorOutputs([layout.augmentedPrefix(input.videoGuid)]);
        // A bounded window of copies at a time, each made in one of the process's image slots (makeAugmentedCopy)
        // and uploaded outside it (the store bounds requests in flight).
        const made = await forEachInWindow(
          copyJobs(train, input),
          IMAGE_JOB_WINDOW,
          async ({ c, k }) => files.write(layout.augmented(input.videoGuid, c.track_id, c.n, k), await makeAugmentedCopy(files, video, input, c, k), 'image/jpeg', NOT_READ_AGAIN),
          (n) => heartbeat({ augmented: n, uploadsSkipped: files.io.uploadsSkipped }),
        );
        return { result: { batch, augmented: made, sources: train.length }, details: { uploadsSkipped: files.io.uploadsSkipped } };
      });
    },
  };
}

/**
 * Step 8 of a video with several class batches (docs/ARCHITECTURE.md "Class batches"): `augmentBatch` makes
 * the augmented copies of one batch of classes on any CPU worker and stores them as intermediate artifacts;
 * step 8 (`augmentCrops`, ./dataset.ts) then counts them and step 9 copies them into the dataset.
 */
import pLimit from 'p-limit';
import { inBatch } from '../dataset/batches';
import type { BatchInput, BatchResult } from '../workflows/types';
import { IMAGE_CONCURRENCY } from './crops';
import { augmentedCopies, makeAugmentedCopy, trainCrops } from './dataset';
import type { ActivityDeps } from './deps';
import { runStep } from './runStep';
import { activityAttempt, heartbeat } from './temporal';

/** Creates `augmentBatch` over `deps`. */
export function createBatchActivities(deps: ActivityDeps) {
  return {
    /**
     * Part of step 8: the `augment.count` augmented copies of every train crop of the classes of one batch
     * (`input.batch`, track ids `from`..`to`), made exactly as step 8 makes them for a whole video
     * (`makeAugmentedCopy`, ./dataset.ts), written to
     * `intermediate/augmented/{videoGuid}/track_{id}/crop_{n}_aug{k}.jpg`. Its result goes under
     * `batches.{index}` of step 8's result. A retry uploads only copies not already stored with the same bytes.
     */
    async augmentBatch(input: BatchInput): Promise<BatchResult> {
      const batch = input.batch;
      return runStep(
        deps,
        'augmentCrops',
        input,
        async (files, layout) => {
          const video = layout.video(input.videoGuid);
          const train = (await trainCrops(files, video, input)).filter((c) => inBatch(batch, c.track_id));
          if (activityAttempt() > 1) await files.loadPriorOutputs([layout.augmentedPrefix(input.videoGuid)]);
          const limit = pLimit(IMAGE_CONCURRENCY);
          let made = 0;
          await Promise.all(
            train.flatMap((c) =>
              Array.from({ length: augmentedCopies(input) }, (_, k) =>
                limit(() => makeAugmentedCopy(files, video, input, c, k))
                  // The upload runs outside the image-processing limit (the store bounds requests in flight).
                  .then((buf) => files.write(layout.augmented(input.videoGuid, c.track_id, c.n, k), buf, 'image/jpeg'))
                  .then(() => heartbeat({ augmented: ++made, uploadsSkipped: files.io.uploadsSkipped })),
              ),
            ),
          );
          return { result: { batch, augmented: made, sources: train.length }, details: { uploadsSkipped: files.io.uploadsSkipped } };
        },
        { group: 'batches', index: batch.index },
      );
    },
  };
}

/**
 * The image work of a worker process (sharp decodes, crops, augmentations and encodes, background masks):
 * one bound for the whole process, however many activities run at once.
 *
 * Why one bound and not one per activity: a worker runs up to `MAX_CONCURRENT_ACTIVITIES` activities at once
 * (src/config.ts; 4 by default), and a long video has enough class batches (docs/ARCHITECTURE.md "Class
 * batches") to fill them all. With a limit per activity, four batches ran four times the image pipelines of
 * one, each holding its decoded frame or crop, so a worker's memory grew with the number of batches running,
 * which grows with the video's length. The CPU does not go faster with many more pipelines than sharp has
 * threads (libuv's pool: 4 by default, https://sharp.pixelplumbing.com/api-utility#concurrency).
 *
 * Each activity feeds the slots through its own bounded window of jobs (`forEachInWindow`,
 * src/util/window.ts; {@link IMAGE_JOB_WINDOW}), never all its images at once. The slots are first come,
 * first served (`p-limit`), so activities that run together share them in turn and none waits behind all of
 * another's images (which would leave it without progress long enough to be taken for stalled:
 * src/activities/liveness.ts).
 *
 * A job given to {@link imageSlot} must not wait for another slot (it would deadlock once every slot waits),
 * and its input is read before it takes the slot: a download on a cache miss would hold the slot idle.
 */
import pLimit from 'p-limit';

/**
 * Image jobs that run at once in one worker process: twice sharp's thread pool (libuv's 4 threads), so the pool
 * has work queued while the event loop hands a job's pixels from one sharp pipeline to the next, and few
 * enough that the decoded images held stay a constant few MiB (many parallel sharp pipelines grow memory:
 * docs/ARCHITECTURE.md "Pitfalls"). With 4, four class batches of vtest.avi looped 8 times augmented about
 * 10-25 % slower than with a limit of 4 per activity (README "Scaling one long video").
 */
export const IMAGE_CONCURRENCY = 8;

/**
 * Image jobs one activity has unsettled at once, from waiting for a slot to the end of the upload of their
 * output: twice the slots, so the slots and the store's requests (8 per store, src/storage/gcs.ts) have work
 * queued while the outputs waiting for upload stay a constant few.
 */
export const IMAGE_JOB_WINDOW = 2 * IMAGE_CONCURRENCY;

const slots = pLimit(IMAGE_CONCURRENCY);

/**
 * Runs `job` in one of the process's {@link IMAGE_CONCURRENCY} image slots, first come, first served.
 * @returns what `job` returns; rejects as it rejects
 */
export function imageSlot<T>(job: () => Promise<T>): Promise<T> {
  return slots(job);
}

/** Image jobs running, and waiting for a slot, in this process (figures and tests). */
export function imageSlotUse(): { active: number; pending: number } {
  return { active: slots.activeCount, pending: slots.pendingCount };
}

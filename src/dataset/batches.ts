/**
 * Class batches: a video's classes (tracks) cut into consecutive groups of about equal work, so the per-image
 * steps of a long video fan out over workers and no single activity holds a whole match's crops
 * (docs/ARCHITECTURE.md "Class batches").
 */

/** One batch of classes: the tracks with ids `from`..`to` (both included) and the crops they hold. */
export interface ClassBatch {
  /** 0-based position of the batch. */
  index: number;
  /** First and last track id of the batch, both included. */
  from: number;
  to: number;
  /** Tracks (classes) in the batch. */
  tracks: number;
  /** Crops of those tracks (step 6's crop index). */
  crops: number;
}

/**
 * Cuts tracks, in ascending id order, into consecutive batches: a batch closes once it holds at least
 * `maxCrops` crops, so every batch but the last holds `maxCrops` or more, and never splits a track (a class
 * is made whole by one activity). Deterministic: the same counts give the same batches.
 * @param cropsPerTrack crops per track id (tracks with no crops are left out).
 * @param maxCrops crops after which a batch closes, >= 1.
 * @returns the batches in order; empty when there are no crops.
 * @throws RangeError when `maxCrops` is not a positive integer or a count is not a non-negative integer.
 */
export function planClassBatches(cropsPerTrack: ReadonlyMap<number, number>, maxCrops: number): ClassBatch[] {
  if (!Number.isSafeInteger(maxCrops) || maxCrops < 1) throw new RangeError(`maxCrops must be a positive integer, got ${maxCrops}`);
  const batches: ClassBatch[] = [];
  let open: ClassBatch | undefined;
  for (const id of [...cropsPerTrack.keys()].sort((a, b) => a - b)) {
    const n = cropsPerTrack.get(id)!;
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`crops of track ${id} must be a non-negative integer, got ${n}`);
    if (n === 0) continue;
    open ??= { index: batches.length, from: id, to: id, tracks: 0, crops: 0 };
    open.to = id;
    open.tracks++;
    open.crops += n;
    if (open.crops >= maxCrops) {
      batches.push(open);
      open = undefined;
    }
  }
  if (open) batches.push(open);
  return batches;
}

/** Whether track `trackId` belongs to `batch`. */
export function inBatch(batch: Pick<ClassBatch, 'from' | 'to'>, trackId: number): boolean {
  return trackId >= batch.from && trackId <= batch.to;
}

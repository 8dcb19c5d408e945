/**
 * Class batches: a video's classes (tracks) cut into consecutive groups of about equal work (tracked boxes),
 * so the per-image steps of a long video fan out over workers and no single activity holds a whole match's
 * crops (docs/ARCHITECTURE.md "Class batches").
 */

import { invalidInput } from '../errors';

/** One batch of classes: the tracks with ids `from`..`to` (both included) and the tracked boxes they hold. */
export interface ClassBatch {
  /** 0-based position of the batch. */
  index: number;
  /** First and last track id of the batch, both included. */
  from: number;
  to: number;
  /** Tracks (classes) in the batch. */
  tracks: number;
  /** Tracked boxes of those tracks (`detections.json`): the crops step 6 may cut of them. */
  boxes: number;
}

/**
 * Cuts tracks, in ascending id order, into consecutive batches: a batch closes once it holds at least
 * `maxBoxes` boxes, so every batch but the last holds `maxBoxes` or more, and never splits a track (a class
 * is made whole by one activity). Deterministic: the same counts give the same batches.
 * @param boxesPerTrack tracked boxes per track id (tracks with none are left out).
 * @param maxBoxes boxes after which a batch closes, >= 1.
 * @returns the batches in order; empty when there are no boxes.
 * @throws RangeError when `maxBoxes` is not a positive integer or a count is not a non-negative integer.
 */
export function planClassBatches(boxesPerTrack: ReadonlyMap<number, number>, maxBoxes: number): ClassBatch[] {
  if (!Number.isSafeInteger(maxBoxes) || maxBoxes < 1) throw new RangeError(`maxBoxes must be a positive integer, got ${maxBoxes}`);
  const batches: ClassBatch[] = [];
  let open: ClassBatch | undefined;
  for (const id of [...boxesPerTrack.keys()].sort((a, b) => a - b)) {
    const n = boxesPerTrack.get(id)!;
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`boxes of track ${id} must be a non-negative integer, got ${n}`);
    if (n === 0) continue;
    open ??= { index: batches.length, from: id, to: id, tracks: 0, boxes: 0 };
    open.to = id;
    open.tracks++;
    open.boxes += n;
    if (open.boxes >= maxBoxes) {
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

/**
 * The class batches of tracked frames: boxes counted per `track_id` over `frames`, cut by
 * {@link planClassBatches}.
 * @param frames sampled frames with their tracked boxes (`detections.json`'s `frames`).
 * @param maxBoxes boxes after which a batch closes (`options.batches.boxes`).
 */
export function classBatchesOf(frames: readonly { detections: readonly { track_id: number }[] }[], maxBoxes: number): ClassBatch[] {
  const perTrack = new Map<number, number>();
  for (const f of frames) for (const d of f.detections) perTrack.set(d.track_id, (perTrack.get(d.track_id) ?? 0) + 1);
  return planClassBatches(perTrack, maxBoxes);
}

/**
 * Checks that a stored part of a class batch (a batch's frames, crops) is of the batch the workflow planned.
 * @param what the part, for the error (e.g. `crop batch 3`).
 * @throws PipelineError(InvalidInput) naming `what` and both track ranges when its first or last track differs
 */
export function assertPlannedBatch(what: string, stored: Pick<ClassBatch, 'from' | 'to'>, planned: Pick<ClassBatch, 'from' | 'to'>): void {
  if (stored.from !== planned.from || stored.to !== planned.to) throw invalidInput(what, `holds tracks ${stored.from}-${stored.to}, not ${planned.from}-${planned.to}`);
}

/**
 * The frames class batch `batch` cuts its crops from: those of `frames` holding at least one box of the batch's
 * tracks, in their order, each whole (its other boxes count for occlusion: `scoreCrop`, src/dataset/quality.ts).
 * Crops cut from these frames are those cut from all of `frames` for the batch's tracks.
 * @param frames sampled frames with their tracked boxes (`detections.json`'s `frames`).
 * @returns the same frame objects (not copies).
 */
export function framesOfBatch<F extends { detections: readonly { track_id: number }[] }>(frames: readonly F[], batch: Pick<ClassBatch, 'from' | 'to'>): F[] {
  return frames.filter((f) => f.detections.some((d) => inBatch(batch, d.track_id)));
}

/** One class batch's background records (`intermediate/background/{guid}/batch_{k}.json`, src/storage/artifacts.ts). */
export interface BackgroundPart {
  batch: Pick<ClassBatch, 'index' | 'from' | 'to'>;
  /** `'part'`: `i` is the crop's place in its batch's crop part; absent (older runs): its place in the crop index. */
  indexing?: 'part';
  crops: readonly { i: number; removed: number }[];
}

/**
 * The removed share of every crop of a video's crop index, gathered from its class batches' background records.
 * A batch's crops are consecutive in the crop index, from its first one on (the index is its batches' crop parts
 * in batch order), so a record numbered in its part is at that first crop's index plus `i`.
 * @param crops the crop index's entries (track and object name), in ascending track order.
 * @param parts every batch's records.
 * @param videoGuid the video, for the errors.
 * @returns removed shares in [0, 1] by crop index.
 * @throws PipelineError(InvalidInput) naming the batch when a record is not one of its own crops or is given twice,
 *   or naming the video and the crop's object when no batch treated it.
 */
export function placeBackgroundRecords(crops: readonly { track_id: number; object: string }[], parts: readonly BackgroundPart[], videoGuid: string): number[] {
  const removed = new Array<number | undefined>(crops.length).fill(undefined);
  for (const part of parts) {
    const b = part.batch;
    const first = crops.findIndex((c) => inBatch(b, c.track_id));
    const base = part.indexing !== 'part' ? 0 : first >= 0 ? first : crops.length;
    for (const r of part.crops) {
      const i = base + r.i;
      if (i >= crops.length || removed[i] !== undefined || !inBatch(b, crops[i].track_id)) throw invalidInput(`background batch ${b.index}`, `records crop ${r.i}, which is not one of its own`);
      removed[i] = r.removed;
    }
  }
  const missing = removed.findIndex((r) => r === undefined);
  if (missing >= 0) throw invalidInput(`background batches of video ${videoGuid}`, `leave crop ${missing} (${crops[missing].object}) untreated`);
  return removed as number[];
}

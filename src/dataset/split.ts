/**
 * The train/val split plan of a video's crops (steps 8 and 9): per-track contiguous time blocks with a gap.
 * Pure.
 */
import { groupBy } from '../util/group';
import { cropKey } from './crops';

/** One crop as the split sees it. */
export interface CropRef {
  trackId: number;
  n: number;
  frameId: number;
}

/** Where a crop goes: a split, or nowhere because it lies in the gap before a track's validation block. */
export type SplitAssignment = 'train' | 'val' | 'gap';

/** Split decision for every crop plus the tracks that were too short to split. */
export interface SplitPlan {
  assignments: Map<string, SplitAssignment>;
  trainOnlyTracks: number[];
  /** Crops left out of the dataset because they lie in a gap. */
  gapCrops: number;
}

/** Options of {@link planSplit}. */
export interface SplitOptions {
  /** Share (0-1) of each track's crops, the latest in time, that form its validation block. */
  valFraction: number;
  /** Tracks with fewer crops go to train only. */
  minCropsToSplit: number;
  /** Train crops whose frame_id is less than this many source frames before the first validation crop are left out. */
  gapFrames: number;
}

/**
 * Plans the train/val split inside each track by contiguous time blocks, never frame by frame, so
 * near-identical neighbouring frames cannot leak across the split: a track's crops sorted by `frameId`, the
 * last `ceil(valFraction × count)` form the validation block; train crops closer than `gapFrames` source
 * frames to the block's first frame are left out (`gap`). Tracks with fewer than `minCropsToSplit` crops, or
 * that would have no train crop left, go to train only. Deterministic: the same crops give the same plan.
 */
export function planSplit(crops: CropRef[], opts: SplitOptions): SplitPlan {
  const byTrack = groupBy(crops, (c) => c.trackId);
  const assignments = new Map<string, SplitAssignment>();
  const trainOnlyTracks: number[] = [];
  let gapCrops = 0;
  for (const [trackId, list] of [...byTrack.entries()].sort((a, b) => a[0] - b[0])) {
    list.sort((a, b) => a.frameId - b.frameId || a.n - b.n);
    const nVal = list.length >= opts.minCropsToSplit && opts.valFraction > 0 ? Math.ceil(opts.valFraction * list.length) : 0;
    const valStart = nVal > 0 ? list[list.length - nVal].frameId : Infinity;
    const isGap = (c: CropRef, i: number) => i < list.length - nVal && c.frameId > valStart - opts.gapFrames;
    const trainLeft = list.filter((c, i) => i < list.length - nVal && !isGap(c, i)).length;
    if (nVal === 0 || trainLeft === 0) {
      trainOnlyTracks.push(trackId);
      for (const c of list) assignments.set(cropKey(c.trackId, c.n), 'train');
      continue;
    }
    list.forEach((c, i) => {
      const a: SplitAssignment = i >= list.length - nVal ? 'val' : isGap(c, i) ? 'gap' : 'train';
      if (a === 'gap') gapCrops++;
      assignments.set(cropKey(c.trackId, c.n), a);
    });
  }
  return { assignments, trainOnlyTracks, gapCrops };
}

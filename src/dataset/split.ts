/**
 * The train/val split plan of a video's crops (steps 8 and 9): per-track contiguous time blocks with a gap,
 * and the dataset's one class list. Pure.
 */
import { groupBy } from '../util/group';
import { cropKey } from './crops';

/** One crop as the split sees it. */
export interface CropRef {
  trackId: number;
  n: number;
  frameId: number;
}

/**
 * Where a crop goes: a split; nowhere because it lies in the gap before its track's val or test block
 * (`gap`); or nowhere because its whole track is left out of the dataset (`excluded`, see {@link ExcludedTrack}).
 */
export type SplitAssignment = 'train' | 'val' | 'test' | 'gap' | 'excluded';

/**
 * Why a track is not a class of the dataset:
 * - `too-few-crops`: fewer crops than `minCropsPerClass`;
 * - `unsplittable`: it cannot have a crop in every split (fewer crops than `minCropsToSplit`, or the gaps
 *   before its val and test blocks would leave a split empty), and `unsplittable` is `exclude`.
 */
export type ExcludeReason = 'too-few-crops' | 'unsplittable';

/** A track left out of the dataset, with its crop count and the reason. */
export interface ExcludedTrack {
  trackId: number;
  crops: number;
  reason: ExcludeReason;
}

/** Split decision for every crop, the dataset's classes, and the tracks left out or kept in train only. */
export interface SplitPlan {
  assignments: Map<string, SplitAssignment>;
  /**
   * The dataset's classes in class-index order: the track ids whose crops are in the dataset, ordered as
   * their folder names `track_{id}` sort ({@link classOrder}), which is the order in which torchvision
   * `ImageFolder`, Ultralytics and Hugging Face `imagefolder` number folder classes.
   */
  classes: number[];
  /** Tracks kept in train only (only with `unsplittable: 'train'`, or when `valFraction` and `testFraction` are 0). */
  trainOnlyTracks: number[];
  /** Tracks left out of the dataset, by track id. */
  excludedTracks: ExcludedTrack[];
  /** Crops left out of the dataset because they lie in a gap. */
  gapCrops: number;
}

/** The held-out splits, latest first: a track's test block is its latest stretch, its val block the one before. */
const HELD_OUT = ['test', 'val'] as const;

/** Options of {@link planSplit} (the pipeline's `split` options; src/validation.ts). */
export interface SplitOptions {
  /** Share (0-1) of each track's crops, the latest in time (before any test block), that form its validation block. 0: no val split. */
  valFraction: number;
  /** Share (0-1) of each track's crops, the latest in time, that form its test block. Default 0: no test split. */
  testFraction?: number;
  /** Tracks with fewer crops cannot be split (see `unsplittable`). */
  minCropsToSplit: number;
  /** Crops whose frame_id is less than this many source frames before the first crop of a val or test block (and not in it) are left out. */
  gapFrames: number;
  /** Tracks with fewer crops are left out of the dataset (`too-few-crops`). Default 1 (none). */
  minCropsPerClass?: number;
  /**
   * What happens to a track that cannot be split: `exclude` (default) leaves it out, so every class has
   * images in every split; `train` keeps it in train only, so val lacks its folder.
   */
  unsplittable?: 'exclude' | 'train';
}

/** Folder name of a class: `track_{id}` (SPEC section 4, `datasets/{split}/track_{id}/`). */
export function className(trackId: number): string {
  return `track_${trackId}`;
}

/**
 * Track ids in class-index order: sorted by folder name {@link className} in code-point order, as
 * Python's `sorted()` orders them in torchvision `ImageFolder.find_classes` (so `track_10` comes before
 * `track_2`). Index i of the result is class index i in every loader that numbers folders that way.
 */
export function classOrder(trackIds: Iterable<number>): number[] {
  return [...new Set(trackIds)].sort((a, b) => byCodePoint(className(a), className(b)));
}

/** Comparator of class names in code-point order, the order of Python's `sorted()` on ASCII names. */
export function byCodePoint(x: string, y: string): number {
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Plans the train/val(/test) split inside each track by contiguous time blocks, never frame by frame, so
 * near-identical neighbouring frames cannot leak across the split: a track's crops sorted by `frameId`, the
 * last `ceil(testFraction × count)` form the test block, the `ceil(valFraction × count)` before it the
 * validation block; crops closer than `gapFrames` source frames before a block's first frame are left out
 * (`gap`); the rest is train.
 *
 * One class list for every split: tracks with fewer than `minCropsPerClass` crops are left out, and so are
 * tracks that cannot be split (fewer than `minCropsToSplit` crops, or a split left empty by the gaps)
 * unless `unsplittable` is `train`. With `valFraction` and `testFraction` 0 there is no held-out split and
 * every track is train only. Deterministic: the same crops give the same plan.
 */
export function planSplit(crops: CropRef[], opts: SplitOptions): SplitPlan {
  const byTrack = groupBy(crops, (c) => c.trackId);
  const assignments = new Map<string, SplitAssignment>();
  const trainOnlyTracks: number[] = [];
  const excludedTracks: ExcludedTrack[] = [];
  const kept: number[] = [];
  const minCrops = opts.minCropsPerClass ?? 1;
  let gapCrops = 0;
  const assignAll = (list: CropRef[], a: SplitAssignment) => list.forEach((c) => assignments.set(cropKey(c.trackId, c.n), a));
  for (const [trackId, list] of [...byTrack.entries()].sort((a, b) => a[0] - b[0])) {
    list.sort((a, b) => a.frameId - b.frameId || a.n - b.n);
    if (list.length < minCrops) {
      excludedTracks.push({ trackId, crops: list.length, reason: 'too-few-crops' });
      assignAll(list, 'excluded');
      continue;
    }
    const fractions = { test: opts.testFraction ?? 0, val: opts.valFraction };
    const heldOut = HELD_OUT.filter((b) => fractions[b] > 0);
    const split: SplitAssignment[] = list.map(() => 'train');
    // Blocks from the latest back: each takes its share of the track's crops, then the gap before it.
    let end = list.length;
    let splittable = heldOut.length > 0 && list.length >= opts.minCropsToSplit;
    for (const block of splittable ? heldOut : []) {
      const start = end - Math.ceil(fractions[block] * list.length);
      if (start <= 0) {
        splittable = false;
        break;
      }
      for (let i = start; i < end; i++) split[i] = block;
      let j = start - 1;
      while (j >= 0 && list[j].frameId > list[start].frameId - opts.gapFrames) split[j--] = 'gap';
      end = j + 1;
    }
    if (!splittable || end === 0) {
      if (heldOut.length > 0 && (opts.unsplittable ?? 'exclude') === 'exclude') {
        excludedTracks.push({ trackId, crops: list.length, reason: 'unsplittable' });
        assignAll(list, 'excluded');
        continue;
      }
      trainOnlyTracks.push(trackId);
      kept.push(trackId);
      assignAll(list, 'train');
      continue;
    }
    kept.push(trackId);
    list.forEach((c, i) => {
      if (split[i] === 'gap') gapCrops++;
      assignments.set(cropKey(c.trackId, c.n), split[i]);
    });
  }
  return { assignments, classes: classOrder(kept), trainOnlyTracks, excludedTracks, gapCrops };
}

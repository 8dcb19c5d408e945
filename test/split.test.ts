/** The leak-free train/val split plan: contiguous time blocks per track with a gap, and one class list for every split. */
import { describe, expect, it } from 'vitest';
import { cropKey } from '../src/dataset/crops';
import { className, classOrder, planSplit, type CropRef } from '../src/dataset/split';

/** A track of `count` crops sampled every `step` frames from `start`. */
const track = (trackId: number, count: number, start = 0, step = 2): CropRef[] =>
  Array.from({ length: count }, (_, n) => ({ trackId, n, frameId: start + n * step }));

describe('planSplit', () => {
  const opts = { valFraction: 0.2, minCropsToSplit: 5, gapFrames: 10 };

  it('puts the latest block of each track in val and leaves a gap before it', () => {
    const crops = track(0, 50);
    const plan = planSplit(crops, opts);
    const by = (a: string) => crops.filter((c) => plan.assignments.get(cropKey(c.trackId, c.n)) === a);
    const val = by('val');
    const train = by('train');
    const gap = by('gap');
    expect(val).toHaveLength(10); // ceil(0.2 * 50)
    expect(val.map((c) => c.n)).toEqual(Array.from({ length: 10 }, (_, i) => 40 + i));
    const valStart = Math.min(...val.map((c) => c.frameId));
    expect(Math.max(...train.map((c) => c.frameId))).toBeLessThanOrEqual(valStart - opts.gapFrames);
    expect(gap.length).toBeGreaterThan(0);
    expect(plan.gapCrops).toBe(gap.length);
    expect(train.length + val.length + gap.length).toBe(50);
  });

  it('decides each track from its own crops: planning a subset of whole tracks gives those crops the same assignments', () => {
    // Class batches plan their own tracks only (augmentBatch, src/activities/batches.ts) and must agree with
    // step 9's plan of the whole video, with and without a test block, with short and unsplittable tracks.
    const crops = [...track(0, 50), ...track(1, 3, 7), ...track(2, 12, 100, 5), ...track(3, 6, 40, 4), ...track(4, 30, 5, 3)];
    for (const o of [opts, { ...opts, testFraction: 0.1, minCropsPerClass: 4 }, { ...opts, unsplittable: 'train' as const }]) {
      const whole = planSplit(crops, o);
      for (const ids of [[0, 1], [2], [3, 4], [1, 3]]) {
        const part = planSplit(crops.filter((c) => ids.includes(c.trackId)), o);
        for (const c of crops.filter((x) => ids.includes(x.trackId))) expect(part.assignments.get(cropKey(c.trackId, c.n))).toBe(whole.assignments.get(cropKey(c.trackId, c.n)));
      }
    }
  });

  it('never splits frame by frame: val is one contiguous run of a track', () => {
    const crops = [...track(0, 30, 0, 3), ...track(1, 12, 100, 5)];
    const plan = planSplit(crops, opts);
    for (const id of [0, 1]) {
      const seq = crops.filter((c) => c.trackId === id).sort((a, b) => a.frameId - b.frameId).map((c) => plan.assignments.get(cropKey(c.trackId, c.n)));
      const firstVal = seq.indexOf('val');
      expect(firstVal).toBeGreaterThan(0);
      expect(seq.slice(firstVal).every((a) => a === 'val')).toBe(true);
      expect(seq.slice(0, firstVal).includes('val')).toBe(false);
    }
  });

  it('leaves short tracks, and tracks the gap would empty, out of the dataset by default and says why', () => {
    const crops = [...track(0, 4), ...track(1, 6, 0, 1), ...track(2, 40)];
    const plan = planSplit(crops, { valFraction: 0.2, minCropsToSplit: 5, gapFrames: 20 });
    expect(plan.excludedTracks).toEqual([
      { trackId: 0, crops: 4, reason: 'unsplittable' },
      { trackId: 1, crops: 6, reason: 'unsplittable' },
    ]);
    expect(plan.trainOnlyTracks).toEqual([]);
    expect(plan.classes).toEqual([2]);
    for (const c of crops.filter((x) => x.trackId < 2)) expect(plan.assignments.get(cropKey(c.trackId, c.n))).toBe('excluded');
  });

  it('keeps tracks that cannot be split in train only with unsplittable: train', () => {
    const crops = [...track(0, 4), ...track(1, 6, 0, 1), ...track(2, 40)];
    const plan = planSplit(crops, { valFraction: 0.2, minCropsToSplit: 5, gapFrames: 20, unsplittable: 'train' });
    expect(plan.trainOnlyTracks).toEqual([0, 1]);
    expect(plan.excludedTracks).toEqual([]);
    expect(plan.classes).toEqual([0, 1, 2]);
    for (const c of crops.filter((x) => x.trackId < 2)) expect(plan.assignments.get(cropKey(c.trackId, c.n))).toBe('train');
  });

  it('leaves out tracks under minCropsPerClass, even when they could be kept in train only', () => {
    const crops = [...track(0, 2), ...track(1, 3), ...track(2, 40)];
    const plan = planSplit(crops, { valFraction: 0.2, minCropsToSplit: 5, gapFrames: 10, unsplittable: 'train', minCropsPerClass: 3 });
    expect(plan.excludedTracks).toEqual([{ trackId: 0, crops: 2, reason: 'too-few-crops' }]);
    expect(plan.trainOnlyTracks).toEqual([1]);
    expect(plan.classes).toEqual([1, 2]);
  });

  it('with valFraction 0 has no val split: every track is a train-only class, none left out', () => {
    const crops = [...track(0, 2), ...track(1, 30)];
    const plan = planSplit(crops, { ...opts, valFraction: 0 });
    expect(plan.excludedTracks).toEqual([]);
    expect(plan.trainOnlyTracks).toEqual([0, 1]);
    expect([...plan.assignments.values()].every((a) => a === 'train')).toBe(true);
  });

  it('gives every class of the default plan crops in both train and val', () => {
    // Tracks of 1 to 40 crops at irregular steps: whatever survives has both splits.
    const crops = Array.from({ length: 40 }, (_, id) => track(id, id + 1, id * 7, 1 + (id % 4))).flat();
    const plan = planSplit(crops, { valFraction: 0.2, minCropsToSplit: 5, gapFrames: 6 });
    expect(plan.classes.length).toBeGreaterThan(0);
    expect(plan.classes.length + plan.excludedTracks.length).toBe(40);
    for (const id of plan.classes) {
      const splits = new Set(crops.filter((c) => c.trackId === id).map((c) => plan.assignments.get(cropKey(c.trackId, c.n))));
      expect(splits.has('train') && splits.has('val')).toBe(true);
    }
  });

  it('takes a test block as the latest stretch, val before it, each with the gap before it', () => {
    const crops = track(0, 50); // frames 0, 2, ..., 98
    const plan = planSplit(crops, { ...opts, testFraction: 0.1 });
    const of = (n: number) => plan.assignments.get(cropKey(0, n));
    const ns = (a: string) => crops.filter((c) => of(c.n) === a).map((c) => c.n);
    // test: ceil(0.1 * 50) = 5 latest (frames 90-98); gap: frames > 90 - 10 (n 41-44);
    // val: ceil(0.2 * 50) = 10 before that (n 31-40, frames 62-80); gap: frames > 62 - 10 (n 27-30).
    expect(ns('test')).toEqual([45, 46, 47, 48, 49]);
    expect(ns('val')).toEqual([31, 32, 33, 34, 35, 36, 37, 38, 39, 40]);
    expect(ns('gap')).toEqual([27, 28, 29, 30, 41, 42, 43, 44]);
    expect(ns('train')).toEqual(Array.from({ length: 27 }, (_, i) => i));
    expect(plan.gapCrops).toBe(8);
    expect(plan.classes).toEqual([0]);
  });

  it('leaves out a track the gaps of val and test would leave without train crops', () => {
    // 6 crops 2 frames apart: test n 5, gap n 1-4 (frames > 10 - 10), val would need crops before n 1.
    const plan = planSplit([...track(0, 6), ...track(1, 50)], { ...opts, testFraction: 0.1 });
    expect(plan.excludedTracks).toEqual([{ trackId: 0, crops: 6, reason: 'unsplittable' }]);
    expect(plan.classes).toEqual([1]);
  });

  it('orders classes as the loaders sort folder names (track_10 before track_2)', () => {
    expect(classOrder([2, 10, 1, 0, 21, 3])).toEqual([0, 1, 10, 2, 21, 3]);
    // The order Python's sorted() gives the folder names, which ImageFolder uses for class_to_idx.
    const names = classOrder([2, 10, 1, 0, 21, 3]).map(className);
    expect(names).toEqual([...names].sort());
    const crops = [...track(2, 20), ...track(10, 20), ...track(1, 20)];
    expect(planSplit(crops, opts).classes).toEqual([1, 10, 2]);
  });

  it('is deterministic and independent of input order', () => {
    const crops = [...track(0, 25), ...track(3, 17, 7, 4)];
    const a = planSplit(crops, opts);
    const b = planSplit([...crops].reverse(), opts);
    expect([...b.assignments.entries()].sort()).toEqual([...a.assignments.entries()].sort());
  });
});

/** The leak-free train/val split plan: contiguous time blocks per track with a gap, train-only short tracks. */
import { describe, expect, it } from 'vitest';
import { cropKey } from '../src/dataset/crops';
import { planSplit, type CropRef } from '../src/dataset/split';

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

  it('sends short tracks, and tracks the gap would empty, to train only and reports them', () => {
    const crops = [...track(0, 4), ...track(1, 6, 0, 1), ...track(2, 40)];
    const plan = planSplit(crops, { valFraction: 0.2, minCropsToSplit: 5, gapFrames: 20 });
    expect(plan.trainOnlyTracks).toEqual([0, 1]);
    for (const c of crops.filter((x) => x.trackId < 2)) expect(plan.assignments.get(cropKey(c.trackId, c.n))).toBe('train');
  });

  it('is deterministic and independent of input order', () => {
    const crops = [...track(0, 25), ...track(3, 17, 7, 4)];
    const a = planSplit(crops, opts);
    const b = planSplit([...crops].reverse(), opts);
    expect([...b.assignments.entries()].sort()).toEqual([...a.assignments.entries()].sort());
  });
});

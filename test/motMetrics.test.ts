/**
 * The CLEAR-MOT accumulator and identity measures (src/vision/tracking/motMetrics.ts) against published
 * worked examples of py-motmetrics (github.com/cheind/py-motmetrics, MIT licence) and small cases computed
 * by hand.
 */
import { describe, expect, it } from 'vitest';
import { MotAccumulator, maxMatchMinCost } from '../src/vision/tracking/motMetrics';

const NaN_ = Number.NaN;

/**
 * py-motmetrics README.md, "Usage" → "Populating the accumulator" and "Computing metrics": three frames,
 * objects 1 and 2, hypotheses 1, 2, 3, with the distances given there. The README prints (motchallenge
 * metrics, `full` = all frames, `part` = `acc.events.loc[0:1]`):
 *
 *          IDF1   IDP   IDR  Rcll  Prcn GT MT PT ML FP FN IDs  FM  MOTA  MOTP
 *     full 83.3% 83.3% 83.3% 83.3% 83.3%  2  1  1  0  1  1   1   1 50.0% 0.340
 *     part 75.0% 75.0% 75.0% 75.0% 75.0%  2  1  1  0  1  1   0   0 50.0% 0.167
 *
 * and the events MATCH(1,1) MATCH(2,2) FP(3) / MATCH(1,1) MISS(2) / MATCH(1,1) SWITCH(2,3).
 */
function readmeExample(): MotAccumulator {
  const acc = new MotAccumulator();
  acc.update([1, 2], [1, 2, 3], [
    [0.1, NaN_, 0.3],
    [0.5, 0.2, 0.3],
  ]);
  acc.update([1, 2], [1], [[0.2], [0.4]]);
  acc.update([1, 2], [1, 3], [
    [0.6, 0.2],
    [0.1, 0.6],
  ]);
  return acc;
}

describe('MotAccumulator: py-motmetrics README example', () => {
  it('produces the documented events', () => {
    const frames = readmeExample().frames();
    expect(frames[0]).toEqual([
      { type: 'MATCH', oid: 1, hid: 1, distance: 0.1 },
      { type: 'MATCH', oid: 2, hid: 2, distance: 0.2 },
      { type: 'FP', hid: 3 },
    ]);
    expect(frames[1]).toEqual([{ type: 'MATCH', oid: 1, hid: 1, distance: 0.2 }, { type: 'MISS', oid: 2 }]);
    // Object 1 keeps hypothesis 1 although (1, 3) would cost less: history first.
    expect(frames[2]).toEqual([
      { type: 'MATCH', oid: 1, hid: 1, distance: 0.6 },
      { type: 'SWITCH', oid: 2, hid: 3, distance: 0.6 },
    ]);
  });

  it('reproduces the documented summary of all frames ("full")', () => {
    const s = readmeExample().summary();
    expect(s.numFrames).toBe(3);
    expect(s.idf1).toBeCloseTo(5 / 6, 10); // 83.3 %
    expect(s.idp).toBeCloseTo(5 / 6, 10);
    expect(s.idr).toBeCloseTo(5 / 6, 10);
    expect(s.recall).toBeCloseTo(5 / 6, 10);
    expect(s.precision).toBeCloseTo(5 / 6, 10);
    expect([s.numUniqueObjects, s.mostlyTracked, s.partiallyTracked, s.mostlyLost]).toEqual([2, 1, 1, 0]);
    expect([s.numFalsePositives, s.numMisses, s.numSwitches, s.numFragmentations]).toEqual([1, 1, 1, 1]);
    expect(s.mota).toBeCloseTo(0.5, 10);
    expect(s.motp).toBeCloseTo(0.34, 10);
    expect(s.idAssignment).toEqual(new Map([[1, 1], [2, 3]]));
  });

  it('reproduces the documented summary of frames 0-1 ("part")', () => {
    const s = readmeExample().summary(0, 2);
    expect(s.numFrames).toBe(2);
    expect(s.idf1).toBeCloseTo(0.75, 10);
    expect(s.idp).toBeCloseTo(0.75, 10);
    expect(s.idr).toBeCloseTo(0.75, 10);
    expect(s.recall).toBeCloseTo(0.75, 10);
    expect(s.precision).toBeCloseTo(0.75, 10);
    expect([s.numUniqueObjects, s.mostlyTracked, s.partiallyTracked, s.mostlyLost]).toEqual([2, 1, 1, 0]);
    expect([s.numFalsePositives, s.numMisses, s.numSwitches, s.numFragmentations]).toEqual([1, 1, 0, 0]);
    expect(s.mota).toBeCloseTo(0.5, 10);
    expect(s.motp).toBeCloseTo(0.5 / 3, 10); // 0.167
  });
});

describe('MotAccumulator: py-motmetrics motmetrics/tests/test_metrics.py', () => {
  it('test_mota_motp: all-FP, all-miss, match, switch, history preferred over a cheaper pairing, empty', () => {
    const acc = new MotAccumulator();
    acc.update([], [1, 2], []);
    acc.update([1, 2], [], [[], []]);
    acc.update([1, 2], [1, 2], [
      [1, 0.5],
      [0.3, 1],
    ]);
    acc.update([1, 2], [1, 2], [
      [0.2, NaN_],
      [NaN_, 0.1],
    ]);
    acc.update([1, 2], [1, 2], [
      [5, 1],
      [1, 5],
    ]);
    acc.update([], [], []);
    const s = acc.summary();
    expect(s.numMatches).toBe(4);
    expect(s.numFalsePositives).toBe(2);
    expect(s.numMisses).toBe(2);
    expect(s.numSwitches).toBe(2);
    expect(s.numDetections).toBe(6);
    expect(s.numObjects).toBe(8);
    expect(s.numPredictions).toBe(8);
    expect(s.mota).toBeCloseTo(1 - (2 + 2 + 2) / 8, 10);
    expect(s.motp).toBeCloseTo(11.1 / 6, 10);
    expect(s.numFrames).toBe(6);
  });

  it('test_ids: switches when an object moves to another (or a new) hypothesis, not when a hypothesis moves to a new object', () => {
    const acc = new MotAccumulator();
    acc.update([], [], []);
    acc.update([1, 2], [1, 2], [
      [1, 0],
      [0, 1],
    ]);
    acc.update([1, 2], [1, 2], [
      [0.4, NaN_],
      [NaN_, 0.4],
    ]);
    acc.update([1, 2], [1, 2], [
      [0, 1],
      [1, 0],
    ]);
    acc.update([1, 2], [2, 3], [
      [1, 0],
      [0.4, 0.7],
    ]);
    acc.update([1, 3], [2, 3], [
      [1, 0],
      [0.4, 0.7],
    ]);
    acc.update([], [], []);
    const s = acc.summary();
    expect(s.numMatches).toBe(7);
    expect(s.numFalsePositives).toBe(0);
    expect(s.numMisses).toBe(0);
    expect(s.numSwitches).toBe(3);
    expect(s.numDetections).toBe(10);
    expect(s.numObjects).toBe(10);
    expect(s.numPredictions).toBe(10);
    expect(s.mota).toBeCloseTo(1 - 3 / 10, 10);
    expect(s.motp).toBeCloseTo(1.6 / 10, 10);
    expect(s.numFrames).toBe(7);
  });

  it('test_correct_average (figure 3 of the CLEAR MOT paper): MOTA 0.2', () => {
    const acc = new MotAccumulator();
    for (let i = 0; i < 4; i++) acc.update([1, 2, 3, 4], [], [[], [], [], []]);
    for (let i = 0; i < 4; i++) acc.update([4], [4], [[0]]);
    expect(acc.summary().mota).toBeCloseTo(0.2, 10);
  });

  it('test_assignment_metrics_with_empty_groundtruth / _predictions: identity counts', () => {
    const fp = new MotAccumulator();
    for (let i = 0; i < 4; i++) fp.update([], [1, 2, 3, 4], []);
    const a = fp.summary();
    expect([a.numMatches, a.numFalsePositives, a.numMisses, a.idtp, a.idfp, a.idfn, a.numFrames]).toEqual([0, 16, 0, 0, 16, 0, 4]);
    const fn = new MotAccumulator();
    for (let i = 0; i < 4; i++) fn.update([1, 2, 3, 4], [], [[], [], [], []]);
    const b = fn.summary();
    expect([b.numMatches, b.numFalsePositives, b.numMisses, b.idtp, b.idfp, b.idfn, b.numFrames]).toEqual([0, 0, 16, 0, 0, 16, 4]);
    expect(Number.isNaN(new MotAccumulator().summary().mota)).toBe(true);
  });
});

describe('MotAccumulator: cases computed by hand', () => {
  it('IDF1 takes the global assignment, not the per-frame one', () => {
    // Object 1 is covered by hypothesis 10 for 3 frames, then by 11 for 1 frame; object 2 by 11 for 2 frames.
    // Best one-to-one: 1→10 (3) and 2→11 (2): IDTP 5 of 6 objects and 6 predictions.
    const acc = new MotAccumulator();
    acc.update([1], [10], [[0.1]]);
    acc.update([1], [10], [[0.1]]);
    acc.update([1], [10], [[0.1]]);
    acc.update([1, 2], [11, 12], [
      [0.1, NaN_],
      [NaN_, NaN_],
    ]);
    acc.update([2], [11], [[0.1]]);
    acc.update([2], [11], [[0.1]]);
    const s = acc.summary();
    // Frames: 3 matches, then 1 switch (1: 10 → 11) + 1 miss + 1 FP, then 2: first match to 11 (not a switch).
    expect([s.numMatches, s.numSwitches, s.numMisses, s.numFalsePositives]).toEqual([5, 1, 1, 1]);
    expect([s.numObjects, s.numPredictions, s.idtp, s.idfn, s.idfp]).toEqual([7, 7, 5, 2, 2]);
    expect(s.idf1).toBeCloseTo(10 / 14, 10);
    expect(s.mota).toBeCloseTo(1 - 3 / 7, 10);
    expect(s.idAssignment).toEqual(new Map([[1, 10], [2, 11]]));
    // Object 2 is missed in the frame where it first appears, then tracked: no fragmentation (before first track).
    expect(s.numFragmentations).toBe(0);
  });

  it('maxMatchMinCost pairs as many as possible before minimising cost', () => {
    // One cheap pair (0,0)=0 would leave row 1 and column 1 unmatched; two dearer pairs are preferred.
    expect(maxMatchMinCost([
      [0, 0.5],
      [0.5, NaN_],
    ])).toEqual([[0, 1], [1, 0]]);
    expect(maxMatchMinCost([[NaN_, NaN_]])).toEqual([]);
    expect(maxMatchMinCost([])).toEqual([]);
    expect(maxMatchMinCost([[0.3], [0.1], [0.2]])).toEqual([[1, 0]]);
  });

  it('rejects repeated ids and a matrix of the wrong shape', () => {
    const acc = new MotAccumulator();
    expect(() => acc.update([1, 1], [], [[], []])).toThrow(/repeated object id/);
    expect(() => acc.update([1], [2, 2], [[0, 0]])).toThrow(/repeated hypothesis id/);
    expect(() => acc.update([1], [2], [[0, 0]])).toThrow(/not 1 x 1/);
  });
});

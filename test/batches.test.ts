/** Class batches: consecutive tracks cut by crop count, never splitting a track. */
import { describe, expect, it } from 'vitest';
import { inBatch, planClassBatches } from '../src/dataset/batches';

describe('planClassBatches', () => {
  it('closes a batch once it reaches maxCrops, in ascending track id order', () => {
    // Tracks 7, 2, 3, 9 with 4, 3, 5, 1 crops; batches close at >= 6 crops.
    const batches = planClassBatches(new Map([[7, 4], [2, 3], [3, 5], [9, 1]]), 6);
    expect(batches).toEqual([
      { index: 0, from: 2, to: 3, tracks: 2, crops: 8 },
      { index: 1, from: 7, to: 9, tracks: 2, crops: 5 },
    ]);
  });

  it('keeps a track larger than maxCrops whole, in a batch of its own', () => {
    const batches = planClassBatches(new Map([[0, 1], [1, 50], [2, 2]]), 10);
    expect(batches.map((b) => [b.from, b.to, b.crops])).toEqual([[0, 1, 51], [2, 2, 2]]);
  });

  it('gives one batch when every crop fits, none without crops, and skips empty tracks', () => {
    expect(planClassBatches(new Map([[0, 3], [1, 0], [4, 2]]), 100)).toEqual([{ index: 0, from: 0, to: 4, tracks: 2, crops: 5 }]);
    expect(planClassBatches(new Map(), 5)).toEqual([]);
  });

  it('covers every track with crops exactly once', () => {
    const counts = new Map(Array.from({ length: 40 }, (_, i) => [i * 3, (i * 7) % 11] as [number, number]));
    const batches = planClassBatches(counts, 17);
    for (const [id, n] of counts) expect(batches.filter((b) => inBatch(b, id)).length).toBe(n > 0 ? 1 : batches.some((b) => inBatch(b, id)) ? 1 : 0);
    expect(batches.reduce((s, b) => s + b.crops, 0)).toBe([...counts.values()].reduce((a, b) => a + b, 0));
    expect(batches.slice(0, -1).every((b) => b.crops >= 17)).toBe(true);
  });

  it('rejects a non-positive batch size and negative counts', () => {
    expect(() => planClassBatches(new Map([[0, 1]]), 0)).toThrow(RangeError);
    expect(() => planClassBatches(new Map([[0, -1]]), 5)).toThrow(/track 0/);
  });
});

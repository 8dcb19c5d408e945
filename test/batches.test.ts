/** Class batches: consecutive tracks cut by box count, never splitting a track. */
import { describe, expect, it } from 'vitest';
import { assertPlannedBatch, classBatchesOf, framesOfBatch, inBatch, placeBackgroundRecords, planClassBatches } from '../src/dataset/batches';

describe('planClassBatches', () => {
  it('closes a batch once it reaches maxBoxes, in ascending track id order', () => {
    // Tracks 7, 2, 3, 9 with 4, 3, 5, 1 boxes; batches close at >= 6 boxes.
    const batches = planClassBatches(new Map([[7, 4], [2, 3], [3, 5], [9, 1]]), 6);
    expect(batches).toEqual([
      { index: 0, from: 2, to: 3, tracks: 2, boxes: 8 },
      { index: 1, from: 7, to: 9, tracks: 2, boxes: 5 },
    ]);
  });

  it('keeps a track larger than maxBoxes whole, in a batch of its own', () => {
    const batches = planClassBatches(new Map([[0, 1], [1, 50], [2, 2]]), 10);
    expect(batches.map((b) => [b.from, b.to, b.boxes])).toEqual([[0, 1, 51], [2, 2, 2]]);
  });

  it('gives one batch when every box fits, none without boxes, and skips empty tracks', () => {
    expect(planClassBatches(new Map([[0, 3], [1, 0], [4, 2]]), 100)).toEqual([{ index: 0, from: 0, to: 4, tracks: 2, boxes: 5 }]);
    expect(planClassBatches(new Map(), 5)).toEqual([]);
  });

  it('covers every track with boxes exactly once', () => {
    const counts = new Map(Array.from({ length: 40 }, (_, i) => [i * 3, (i * 7) % 11] as [number, number]));
    const batches = planClassBatches(counts, 17);
    for (const [id, n] of counts) expect(batches.filter((b) => inBatch(b, id)).length).toBe(n > 0 ? 1 : batches.some((b) => inBatch(b, id)) ? 1 : 0);
    expect(batches.reduce((s, b) => s + b.boxes, 0)).toBe([...counts.values()].reduce((a, b) => a + b, 0));
    expect(batches.slice(0, -1).every((b) => b.boxes >= 17)).toBe(true);
  });

  it('counts the tracked boxes of frames per track', () => {
    const frames = [{ detections: [{ track_id: 1 }, { track_id: 0 }] }, { detections: [{ track_id: 1 }] }, { detections: [] }, { detections: [{ track_id: 5 }] }];
    expect(classBatchesOf(frames, 2)).toEqual([
      { index: 0, from: 0, to: 1, tracks: 2, boxes: 3 },
      { index: 1, from: 5, to: 5, tracks: 1, boxes: 1 },
    ]);
  });

  it('rejects a non-positive batch size and negative counts', () => {
    expect(() => planClassBatches(new Map([[0, 1]]), 0)).toThrow(RangeError);
    expect(() => planClassBatches(new Map([[0, -1]]), 5)).toThrow(/track 0/);
  });
});

describe('framesOfBatch', () => {
  // Frames 0-3: tracks {1, 4}, {4}, none, {2, 7}.
  const frames = [
    { frame_id: 0, detections: [{ track_id: 1 }, { track_id: 4 }] },
    { frame_id: 2, detections: [{ track_id: 4 }] },
    { frame_id: 4, detections: [] },
    { frame_id: 6, detections: [{ track_id: 2 }, { track_id: 7 }] },
  ];

  it('keeps the frames holding a box of the batch, whole (boxes of other batches too), in order', () => {
    expect(framesOfBatch(frames, { from: 0, to: 2 }).map((f) => f.frame_id)).toEqual([0, 6]);
    expect(framesOfBatch(frames, { from: 0, to: 2 })[0]).toBe(frames[0]);
    expect(framesOfBatch(frames, { from: 3, to: 5 }).map((f) => f.frame_id)).toEqual([0, 2]);
    expect(framesOfBatch(frames, { from: 8, to: 9 })).toEqual([]);
  });

  it('gives every box of every batch once its frame is kept: the batches\' boxes are all the boxes', () => {
    const batches = classBatchesOf(frames, 2);
    expect(batches.length).toBeGreaterThan(1);
    const mine = batches.flatMap((b) => framesOfBatch(frames, b).flatMap((f) => f.detections.filter((d) => inBatch(b, d.track_id)).map((d) => `${f.frame_id}/${d.track_id}`)));
    const all = frames.flatMap((f) => f.detections.map((d) => `${f.frame_id}/${d.track_id}`));
    expect(mine.sort()).toEqual(all.sort());
  });
});

describe('placeBackgroundRecords', () => {
  // Crop index: tracks 0, 0, 1 (batch 0: tracks 0-1), 3, 3, 3 (batch 1: tracks 2-3, track 2 has no crop), 5 (batch 2).
  const crops = [0, 0, 1, 3, 3, 3, 5].map((track_id, i) => ({ track_id, object: `crop_${i}.jpg` }));
  const b0 = { index: 0, from: 0, to: 1 };
  const b1 = { index: 1, from: 2, to: 3 };
  const b2 = { index: 2, from: 4, to: 5 };
  const part = (batch: typeof b0, shares: number[], indexing?: 'part') => ({ batch, ...(indexing ? { indexing } : {}), crops: shares.map((removed, i) => ({ i, removed })) });

  it('places records numbered in their batch part at the batch\'s first crop of the index', () => {
    const parts = [part(b1, [0.4, 0.5, 0.6], 'part'), part(b0, [0.1, 0.2, 0.3], 'part'), part(b2, [0.7], 'part')];
    expect(placeBackgroundRecords(crops, parts, 'v1')).toEqual([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
  });

  it('reads records of older runs as numbered in the crop index', () => {
    const old = { batch: b1, crops: [3, 4, 5].map((i) => ({ i, removed: i / 10 })) };
    expect(placeBackgroundRecords(crops, [part(b0, [0, 0.1, 0.2], 'part'), old, part(b2, [0.6], 'part')], 'v1')).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
  });

  it('names the batch of a record outside its own crops, or given twice, and a crop no batch treated', () => {
    expect(() => placeBackgroundRecords(crops, [part(b0, [0, 0, 0, 0], 'part')], 'v1')).toThrow(/background batch 0.*records crop 3/);
    expect(() => placeBackgroundRecords(crops, [part(b2, [0, 0], 'part')], 'v1')).toThrow(/background batch 2.*records crop 1/);
    expect(() => placeBackgroundRecords(crops, [part(b0, [0, 0, 0], 'part'), part(b0, [0], 'part')], 'v1')).toThrow(/records crop 0/);
    expect(() => placeBackgroundRecords(crops, [part(b0, [0, 0, 0], 'part'), part(b2, [0], 'part')], 'v1')).toThrow(/video v1.*leave crop 3 \(crop_3\.jpg\)/);
    // A batch none of whose tracks kept a crop has no records, and no place.
    expect(() => placeBackgroundRecords(crops, [part({ index: 3, from: 6, to: 9 }, [0], 'part')], 'v1')).toThrow(/background batch 3/);
  });
});

describe('assertPlannedBatch', () => {
  it('accepts a part of the planned batch and names a part of another one', () => {
    expect(() => assertPlannedBatch('crop batch 1', { from: 3, to: 7 }, { from: 3, to: 7 })).not.toThrow();
    expect(() => assertPlannedBatch('crop batch 1', { from: 3, to: 8 }, { from: 3, to: 7 })).toThrow(/crop batch 1.*holds tracks 3-8, not 3-7/);
    expect(() => assertPlannedBatch('detections of class batch 2', { from: 2, to: 7 }, { from: 3, to: 7 })).toThrow(/detections of class batch 2.*holds tracks 2-7, not 3-7/);
  });
});

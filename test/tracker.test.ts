/** Tests of the baseline greedy IoU tracker (test/helpers/iouTracker.ts; the pipeline uses ByteTrack). */
import { describe, expect, it } from 'vitest';
import type { Detection } from '../src/vision/detection/geometry';
import { IouTracker } from './helpers/iouTracker';

const box = (x: number, y: number, w = 40, h = 100, score = 0.9, classId = 0): Detection => ({ bbox: [x, y, x + w, y + h], score, classId });

describe('IouTracker', () => {
  it('numbers tracks from 0 in order of first appearance, afresh for each tracker', () => {
    for (let run = 0; run < 2; run++) {
      const t = new IouTracker();
      expect(t.update(0, [box(0, 0), box(200, 0), box(400, 0)]).map((d) => d.trackId)).toEqual([0, 1, 2]);
      expect(t.update(1, [box(600, 0)])[0].trackId).toBe(3);
      expect(t.trackCount).toBe(4);
    }
  });

  it('keeps the ids of two boxes moving in parallel, whatever the detection order', () => {
    const t = new IouTracker();
    const first = t.update(0, [box(100, 50), box(300, 50)]);
    expect(first.map((d) => d.trackId)).toEqual([0, 1]);
    for (let f = 1; f <= 20; f++) {
      const a = box(100 + 5 * f, 50 + 2 * f);
      const b = box(300 + 5 * f, 50 + 2 * f);
      const out = t.update(f, f % 2 ? [b, a] : [a, b]);
      const idOf = (d: Detection) => out.find((o) => o.bbox === d.bbox)!.trackId;
      expect([idOf(a), idOf(b)]).toEqual([0, 1]);
    }
    expect(t.trackCount).toBe(2);
  });

  it('keeps the id of a box missing for fewer than maxAge updates, and not after maxAge', () => {
    const t = new IouTracker({ maxAge: 5 });
    expect(t.update(0, [box(100, 100)])[0].trackId).toBe(0);
    for (let f = 1; f <= 4; f++) expect(t.update(f, [])).toEqual([]); // missing in 4 updates (< 5)
    expect(t.update(5, [box(102, 100)])[0].trackId).toBe(0);

    for (let f = 6; f <= 10; f++) t.update(f, []); // missing in 5 updates (= maxAge): forgotten
    expect(t.update(11, [box(102, 100)])[0].trackId).toBe(1);
  });

  it('counts age in update calls, not frame ids (frame stride)', () => {
    const t = new IouTracker({ maxAge: 2 });
    t.update(0, [box(0, 0)]);
    t.update(100, []);
    expect(t.update(200, [box(0, 0)])[0].trackId).toBe(0);
  });

  it('starts a new track below the IoU threshold and for a different class', () => {
    const t = new IouTracker({ iouThreshold: 0.5 });
    t.update(0, [box(0, 0)]);
    // shifted by 20 of 40 px: IoU = 20*100 / (2*4000 - 2000) = 1/3 < 0.5
    expect(t.update(1, [box(20, 0)])[0].trackId).toBe(1);
    expect(t.update(2, [box(20, 0, 40, 100, 0.9, 32)])[0].trackId).toBe(2);
  });

  it('matches each track at most once, the best overlap first', () => {
    const t = new IouTracker();
    t.update(0, [box(0, 0)]);
    const out = t.update(1, [box(15, 0), box(2, 0)]);
    expect(out.map((d) => d.trackId)).toEqual([1, 0]);
  });

  it('rejects frame ids that do not increase and bad options', () => {
    const t = new IouTracker();
    t.update(5, []);
    expect(() => t.update(5, [])).toThrow(RangeError);
    expect(() => new IouTracker({ maxAge: 0 })).toThrow(RangeError);
    expect(() => new IouTracker({ iouThreshold: 0 })).toThrow(RangeError);
  });
});

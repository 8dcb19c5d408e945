/**
 * Tests of the ByteTrack tracker (src/vision/tracking/bytetrack.ts): pure synthetic sequences, no models, no stack.
 * Boxes are person-shaped (40 x 100 px unless said otherwise); one update call per sampled frame.
 */
import { describe, expect, it } from 'vitest';
import { linearAssignment } from '../src/vision/tracking/assignment';
import { ByteTracker, type TrackedDetection } from '../src/vision/tracking/bytetrack';
import { KalmanBoxFilter, bboxToXyah, xyahToBbox } from '../src/vision/tracking/kalman';
import type { BBox, Detection } from '../src/vision/detection/geometry';
import { IouTracker } from './helpers/iouTracker';

/** A detection centred at (cx, cy). */
const det = (cx: number, cy: number, score = 0.9, w = 40, h = 100, classId = 0): Detection => ({
  bbox: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2],
  score,
  classId,
});

/** Track id given to `d` in `out` (matched by identity of the bbox values), or undefined when not returned. */
const idOf = (out: TrackedDetection[], d: Detection): number | undefined =>
  out.find((o) => o.bbox.every((v, i) => v === d.bbox[i]) && o.score === d.score)?.trackId;

describe('KalmanBoxFilter', () => {
  it('matches the DeepSORT/ByteTrack reference kalman_filter.py (numpy + scipy) on a short sequence', () => {
    // Expected values printed by the reference KalmanFilter (deep_sort/kalman_filter.py, as copied into
    // ByteTrack's yolox/tracker/kalman_filter.py) run in Python for: initiate z0, predict, update z1,
    // predict, predict, update z2, predict.
    const kf = new KalmanBoxFilter();
    let s = kf.initiate([100, 200, 0.4, 100]);
    s = kf.predict(s);
    s = kf.update(s, [105, 201, 0.41, 102]);
    s = kf.predict(kf.predict(s));
    s = kf.update(s, [118, 199, 0.39, 101]);
    s = kf.predict(s);
    const mean = [121.01003691336297, 198.8176976563876, 0.39980761824900224, 101.14690165600456, 4.246793147671798, -0.425598652001009, -4.88494844161431e-10, -0.01970342473982356];
    mean.forEach((v, i) => expect(s.mean[i]).toBeCloseTo(v, 9));
    const diag = [76.91097855769732, 76.91097855769732, 0.0004809911413140142, 76.91097855769732, 13.654192872087783, 13.654192872087783, 4.999999646171306e-10, 13.654192872087783];
    diag.forEach((v, i) => expect(s.covariance[i * 8 + i] / v).toBeCloseTo(1, 9));
    expect(s.covariance[0 * 8 + 4]).toBeCloseTo(20.54310996819133, 9); // cov(cx, vx)
    expect(s.covariance[4 * 8 + 0]).toBeCloseTo(20.543109968191324, 9);
    expect(s.covariance[0 * 8 + 1]).toBe(0);
  });

  it('converts boxes to [cx, cy, a, h] and back', () => {
    const b: BBox = [10, 20, 50, 120];
    expect(bboxToXyah(b)).toEqual([30, 70, 0.4, 100]);
    xyahToBbox(bboxToXyah(b)).forEach((v, i) => expect(v).toBeCloseTo(b[i], 12));
  });
});

describe('linearAssignment', () => {
  it('finds the minimum total cost where greedy would not', () => {
    // Greedy takes (0,0)=0.1 then (1,1)=0.75: total 0.85; optimal (0,1)+(1,0) = 0.2 + 0.3 = 0.5.
    const r = linearAssignment([[0.1, 0.2], [0.3, 0.75]], 2, 0.8);
    expect(r.matches).toEqual([[0, 1], [1, 0]]);
    expect(r.unmatchedRows).toEqual([]);
    expect(r.unmatchedCols).toEqual([]);
  });

  it('leaves pairs above the cost limit unmatched and handles empty and rectangular inputs', () => {
    const r = linearAssignment([[0.9, 0.3, 0.95]], 3, 0.5);
    expect(r.matches).toEqual([[0, 1]]);
    expect(r.unmatchedCols).toEqual([0, 2]);
    expect(linearAssignment([[0.6]], 1, 0.5).matches).toEqual([]);
    expect(linearAssignment([], 2, 0.5)).toEqual({ matches: [], unmatchedRows: [], unmatchedCols: [0, 1] });
    expect(linearAssignment([[], []], 0, 0.5)).toEqual({ matches: [], unmatchedRows: [0, 1], unmatchedCols: [] });
  });
});

describe('ByteTracker', () => {
  it('continues identically from a JSON round trip of its snapshot (checkpoint and restore)', () => {
    // Three walkers, one leaving and one arriving, low-score frames, frame gaps: 60 sampled frames.
    const frameAt = (t: number): Detection[] => [
      det(100 + 7 * t, 200, t % 9 === 4 ? 0.3 : 0.9),
      ...(t < 30 ? [det(600 - 5 * t, 220, 0.85)] : []),
      ...(t > 20 ? [det(300, 100 + 4 * t, 0.8)] : []),
    ];
    const opts = { frameGap: 2, trackBuffer: 5 };
    const whole = new ByteTracker(opts);
    const expected = Array.from({ length: 60 }, (_, t) => whole.update(2 * t, frameAt(t)));
    let part = new ByteTracker(opts);
    const got: TrackedDetection[][] = [];
    for (let t = 0; t < 60; t++) {
      if (t === 27) part = ByteTracker.restore(opts, JSON.parse(JSON.stringify(part.snapshot())));
      got.push(part.update(2 * t, frameAt(t)));
    }
    expect(got).toEqual(expected);
    expect(part.confirmedTrackCount).toBe(whole.confirmedTrackCount);
    expect(() => ByteTracker.restore(opts, { ...part.snapshot(), version: 2 as never })).toThrow(RangeError);
  });

  it('1. keeps ids 0 and 1 for two boxes moving in parallel, in either detection order', () => {
    const t = new ByteTracker();
    for (let f = 0; f < 50; f++) {
      const a = det(100 + 5 * f, 200 + 2 * f);
      const b = det(200 + 5 * f, 200 + 2 * f);
      const out = t.update(f, f % 2 ? [b, a] : [a, b]);
      expect([idOf(out, a), idOf(out, b)]).toEqual([0, 1]);
    }
    expect(t.confirmedTrackCount).toBe(2);
    expect(t.removedOrLostCount).toBe(0);
  });

  it('returns the detection box and score (not the Kalman estimate), in input order', () => {
    const t = new ByteTracker();
    t.update(0, [det(100, 200), det(300, 200)]);
    const a = det(104, 201, 0.8);
    const b = det(303, 199, 0.3); // low score: matched in the second association
    const out = t.update(1, [a, b]);
    expect(out).toEqual([
      { ...a, trackId: 0 },
      { ...b, trackId: 1 },
    ]);
  });

  it('2. keeps both ids through a crossing where the occluded walker is detected with a low score', () => {
    // A walks right, B walks left, 12 px per update each; B is a little lower and larger. Their boxes
    // overlap in updates 36..39; while they overlap B is partly hidden behind A and its score is 0.3 (a
    // low box, used only by the second association). Right after they pass, each detection is nearer to
    // the OTHER walker's last box, so only the Kalman velocity keeps the ids: the interim IoU tracker,
    // which matches against last boxes, swaps them on this very sequence.
    const t = new ByteTracker();
    const iouT = new IouTracker();
    const ids = { A: new Set<number | undefined>(), B: new Set<number | undefined>() };
    const iouIds = { A: new Set<number>(), B: new Set<number>() };
    let overlapFrames = 0;
    for (let f = 0; f <= 75; f++) {
      const a = det(12 * f, 300, 0.9, 40, 100);
      const overlap = Math.abs(12 * f - (900 - 12 * f)) < 42;
      if (overlap) overlapFrames++;
      const b = det(900 - 12 * f, 310, overlap ? 0.3 : 0.85, 44, 110);
      const out = t.update(f, f % 2 ? [b, a] : [a, b]);
      ids.A.add(idOf(out, a));
      ids.B.add(idOf(out, b));
      const iouOut = iouT.update(f, [a, b]);
      iouIds.A.add(iouOut[0].trackId);
      iouIds.B.add(iouOut[1].trackId);
    }
    expect(overlapFrames).toBe(4);
    // Every detection of each walker is returned (no undefined), with one id per walker over all updates.
    expect([...ids.A]).toEqual([0]);
    expect([...ids.B]).toEqual([1]);
    expect(t.confirmedTrackCount).toBe(2);
    expect(iouIds.A.size + iouIds.B.size).toBeGreaterThan(2); // the interim tracker does swap
  });

  it('2b. keeps both ids when the occluded walker is not detected at all for 3 updates mid-crossing', () => {
    const t = new ByteTracker();
    const ids = { A: new Set<number | undefined>(), B: new Set<number | undefined>() };
    for (let f = 0; f <= 75; f++) {
      const a = det(12 * f, 300, 0.9, 40, 100);
      const b = det(900 - 12 * f, 310, 0.85, 44, 110);
      const hidden = f >= 37 && f <= 39;
      const out = t.update(f, hidden ? [a] : [a, b]);
      ids.A.add(idOf(out, a));
      if (!hidden) ids.B.add(idOf(out, b));
      if (hidden) expect(t.removedOrLostCount).toBe(1);
    }
    expect([...ids.A]).toEqual([0]);
    expect([...ids.B]).toEqual([1]);
    expect(t.confirmedTrackCount).toBe(2);
  });

  it('3. re-finds a walker hidden for 10 updates at the extrapolated position, with the same id', () => {
    const t = new ByteTracker(); // trackBuffer 30
    const still = det(900, 300);
    for (let f = 0; f < 70; f++) {
      const p = det(100 + 6 * f, 300);
      const hidden = f >= 30 && f < 40;
      const out = t.update(f, hidden ? [still] : [p, still]);
      expect(idOf(out, still)).toBe(1);
      if (hidden) {
        expect(idOf(out, p)).toBeUndefined();
        expect(t.trackInfo().find((i) => i.trackId === 0)?.state).toBe('lost');
      } else {
        expect(idOf(out, p)).toBe(0);
      }
    }
    expect(t.confirmedTrackCount).toBe(2);
  });

  it('3b. gives a new id to a walker hidden for 40 updates (> trackBuffer 30)', () => {
    const t = new ByteTracker();
    const still = det(900, 300);
    for (let f = 0; f < 90; f++) {
      const p = det(100 + 6 * f, 300);
      const hidden = f >= 30 && f < 70;
      const out = t.update(f, hidden ? [still] : [p, still]);
      expect(idOf(out, still)).toBe(1);
      if (f < 30) expect(idOf(out, p)).toBe(0);
      else if (f < 70) expect(idOf(out, p)).toBeUndefined();
      else if (f === 70) expect(idOf(out, p)).toBeUndefined(); // tentative: not yet a track
      else expect(idOf(out, p)).toBe(2);
      // The lost track is kept while unmatched for <= 30 updates (last matched at f = 29).
      if (f === 59) expect(t.trackInfo().map((i) => i.trackId)).toEqual([0, 1]);
      if (f === 60) expect(t.trackInfo().map((i) => i.trackId)).toEqual([1]);
    }
    expect(t.confirmedTrackCount).toBe(3);
    expect(t.removedOrLostCount).toBe(1);
  });

  it('4. never makes tracks from low-score boxes, nor ids from one-frame false positives', () => {
    const t = new ByteTracker();
    for (let f = 0; f < 20; f++) {
      // low (0.3) and high-but-below-newTrackThreshold (0.55) boxes, steady for 20 updates
      expect(t.update(f, [det(100 + f, 300, 0.3), det(400, 300, 0.55)])).toEqual([]);
    }
    expect(t.confirmedTrackCount).toBe(0);

    const u = new ByteTracker();
    const p = (f: number) => det(100 + 5 * f, 300);
    expect(idOf(u.update(0, [p(0)]), p(0))).toBe(0);
    for (let f = 1; f < 30; f++) {
      const ds = [p(f)];
      if (f === 5) ds.push(det(600, 300, 0.95)); // false positive, one frame
      if (f === 10) ds.push(det(700, 200, 0.99), det(200, 500, 0.99)); // two more, one frame
      if (f >= 20) ds.push(det(800, 400)); // a real newcomer from frame 20
      const out = u.update(f, ds);
      expect(out.map((o) => o.trackId)).toEqual(f >= 21 ? [0, 1] : [0]);
    }
    expect(u.confirmedTrackCount).toBe(2); // compact: 0 and 1, no id spent on the false positives
  });

  it('4b. confirms at once whatever is detected in the first update (the reference rule for frame 1)', () => {
    const t = new ByteTracker();
    expect(t.update(0, [det(100, 300), det(600, 300, 0.95)]).map((o) => o.trackId)).toEqual([0, 1]);
    // the second was a one-frame false positive: it is lost then removed, but its id stays spent
    for (let f = 1; f <= 40; f++) expect(t.update(f, [det(100, 300)]).map((o) => o.trackId)).toEqual([0]);
    expect(t.confirmedTrackCount).toBe(2);
    expect(t.trackInfo().map((i) => i.trackId)).toEqual([0]);
  });

  it('confirms after minHits consecutive matches; a miss before that deletes the tentative track', () => {
    const t = new ByteTracker({ minHits: 3 });
    t.update(0, [det(100, 300)]); // first update: confirmed at once -> 0
    const n = (f: number) => det(500 + 2 * f, 300);
    expect(t.update(1, [det(100, 300), n(1)]).map((o) => o.trackId)).toEqual([0]); // hit 1
    expect(t.update(2, [det(100, 300), n(2)]).map((o) => o.trackId)).toEqual([0]); // hit 2
    expect(t.update(3, [det(100, 300)]).map((o) => o.trackId)).toEqual([0]); // miss: deleted
    expect(t.update(4, [det(100, 300), n(4)]).map((o) => o.trackId)).toEqual([0]); // new tentative, hit 1
    expect(t.update(5, [det(100, 300), n(5)]).map((o) => o.trackId)).toEqual([0]); // hit 2
    expect(t.update(6, [det(100, 300), n(6)]).map((o) => o.trackId)).toEqual([0, 1]); // hit 3: confirmed
    expect(t.confirmedTrackCount).toBe(2);
  });

  it('5. starts every new tracker at id 0', () => {
    const first = new ByteTracker();
    for (let f = 0; f < 5; f++) first.update(f, [det(100, 300), det(300, 300), det(500, 300)]);
    expect(first.confirmedTrackCount).toBe(3);
    const second = new ByteTracker();
    expect(second.confirmedTrackCount).toBe(0);
    expect(second.update(0, [det(700, 300)]).map((o) => o.trackId)).toEqual([0]);
  });

  it('6. keeps the id of a box moving 1.5 box widths per update once its velocity is established', () => {
    // Consecutive boxes 60 px apart on a 40 px wide box do not overlap at all (IoU 0), so the association
    // works only through the Kalman prediction. The velocity has to be learnt first: the box accelerates
    // by 1.5 px/update^2 to 60 px/update (40 updates), then cruises at 60 px/update for 60 updates.
    const run = (accel: number | undefined) => {
      const t = new ByteTracker();
      const iouT = new IouTracker();
      let x = 0;
      let v = accel === undefined ? 60 : 0;
      const ids = new Set<number | undefined>();
      const iouIds = new Set<number>();
      for (let f = 0; f < 100; f++) {
        const d = det(x, 300);
        ids.add(idOf(t.update(f, [d]), d));
        iouIds.add(iouT.update(f, [d])[0].trackId);
        if (accel !== undefined) v = Math.min(60, v + accel);
        x += v;
      }
      return { ids: [...ids], iouIds: iouIds.size, info: t.trackInfo() };
    };
    const ramp = run(1.5);
    expect(ramp.ids).toEqual([0]); // every detection returned with id 0
    expect(ramp.info[0].velocity[0]).toBeCloseTo(60, 0);
    expect(ramp.iouIds).toBeGreaterThan(50); // the interim IoU tracker starts a new track almost every update

    // What does NOT hold: from a standing start at 60 px/update the Kalman velocity starts at 0, the first
    // prediction has IoU 0 with the next box, and a tentative track is deleted on its first miss, so the
    // object is never tracked after the first update (and no new id is ever confirmed either).
    const jump = run(undefined);
    expect(jump.ids.sort()).toEqual([0, undefined]);
    expect(jump.info).toEqual([]);
  });

  it('counts steps by frameGap, so a missing sampled frame does not break a fast track', () => {
    const t = new ByteTracker({ frameGap: 5 });
    let x = 0;
    let v = 0;
    for (let i = 0; i < 60; i++) {
      v = Math.min(40, v + 1);
      x += v;
      if (i === 50) continue; // frame 250 was not decoded: the next call jumps by 10 frames (2 steps)
      const d = det(x, 300);
      expect(idOf(t.update(i * 5, [d]), d)).toBe(0);
    }
    expect(Math.abs(t.trackInfo()[0].velocity[0] - 40)).toBeLessThan(2); // pixels per step, not per source frame

    // Without frameGap the same gap counts as one step: the prediction falls one box width short and the
    // track is lost at the gap.
    const u = new ByteTracker();
    x = 0;
    v = 0;
    const ids = new Set<number | undefined>();
    for (let i = 0; i < 60; i++) {
      v = Math.min(40, v + 1);
      x += v;
      if (i === 50) continue;
      const d = det(x, 300);
      ids.add(idOf(u.update(i * 5, [d]), d));
    }
    expect(ids.has(undefined)).toBe(true);
  });

  it('rejects bad options, non-increasing frame ids and non-finite boxes; ignores empty boxes', () => {
    expect(() => new ByteTracker({ matchThreshold: 0 })).toThrow(RangeError);
    expect(() => new ByteTracker({ lowThreshold: 0.6, highThreshold: 0.5 })).toThrow(RangeError);
    expect(() => new ByteTracker({ minHits: 0 })).toThrow(RangeError);
    expect(() => new ByteTracker({ trackBuffer: 1.5 })).toThrow(RangeError);
    expect(() => new ByteTracker({ frameGap: 0 })).toThrow(RangeError);
    const t = new ByteTracker();
    t.update(3, []);
    expect(() => t.update(3, [])).toThrow(RangeError);
    expect(() => t.update(4, [{ bbox: [0, 0, Number.NaN, 10], score: 0.9, classId: 0 }])).toThrow(RangeError);
    expect(t.update(5, [{ bbox: [10, 10, 10, 50], score: 0.9, classId: 0 }])).toEqual([]);
  });

  it('keeps classes apart by default', () => {
    const t = new ByteTracker();
    t.update(0, [det(100, 300, 0.9, 40, 100, 0)]);
    const out = t.update(1, [det(101, 300, 0.9, 40, 100, 32)]);
    expect(out).toEqual([]); // class 32 does not continue the class-0 track; it is a new tentative track
  });

  it('keeps 25 jittering walkers on exactly 25 tracks over 1000 updates', () => {
    // (Speed is measured by `npm run bench:detect`, not asserted here.)
    // 5 x 5 grid of walkers, each with its own constant velocity and +-1 px deterministic jitter.
    const t = new ByteTracker();
    let seed = 1;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
    const walkers = Array.from({ length: 25 }, (_, i) => ({ x: 100 + (i % 5) * 150, y: 100 + Math.floor(i / 5) * 160, vx: ((i % 3) - 1) * 0.5, vy: ((i % 4) - 1.5) * 0.3 }));
    const frames = Array.from({ length: 1100 }, (_, f) => walkers.map((w) => det(w.x + w.vx * f + rnd(), w.y + w.vy * f + rnd(), 0.5 + 0.45 * Math.abs(rnd()))));
    for (let f = 0; f < 100; f++) t.update(f, frames[f]);
    let returned = 0;
    for (let f = 100; f < 1100; f++) returned += t.update(f, frames[f]).length;
    expect(t.confirmedTrackCount).toBe(25);
    expect(returned).toBeGreaterThan(24_000);
  });
});

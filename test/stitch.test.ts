/**
 * Segments and stitching (src/vision/tracking/stitch.ts): the segment plan covers every frame once outside
 * the overlaps, and per-segment tracks are joined into video-wide ids on the shared frames, one-to-one, in a
 * deterministic order. Synthetic tracks, so each case states exactly which people are where.
 */
import { describe, expect, it } from 'vitest';
import type { BBox } from '../src/vision/detection/geometry';
import { segmentsOf } from '../src/activities/ingest';
import { DEFAULT_OPTIONS } from '../src/validation';
import { planSegments, stitchSegments, type StitchFrame } from '../src/vision/tracking/stitch';

/** Frames `from..to` (step `stride`) with boxes of `people`: local track id → box at frame f. */
function segment(from: number, to: number, people: Record<number, (f: number) => BBox | undefined>, stride = 1): StitchFrame[] {
  const out: StitchFrame[] = [];
  for (let f = from; f <= to; f += stride) {
    const detections = Object.entries(people)
      .map(([id, at]) => ({ track_id: Number(id), bbox: at(f)! }))
      .filter((d) => d.bbox);
    out.push({ frame_id: f, detections });
  }
  return out;
}
const walker = (x0: number, vx: number) => (f: number): BBox => [x0 + vx * f, 100, x0 + vx * f + 40, 200];
const idsAt = (frames: StitchFrame[], f: number) => frames.find((x) => x.frame_id === f)!.detections.map((d) => [d.bbox[0], d.track_id]);

describe('planSegments', () => {
  it('covers every frame, neighbours share exactly the overlap, no tail inside an overlap', () => {
    const s = planSegments(1000, 300, 20);
    expect(s.map((x) => [x.from, x.to])).toEqual([
      [0, 319],
      [300, 619],
      [600, 919],
      [900, 999],
    ]);
    // 910 frames: the last segment [600, 909] already reaches the end; no [900, 909] piece.
    expect(planSegments(910, 300, 20).map((x) => [x.from, x.to])).toEqual([
      [0, 319],
      [300, 619],
      [600, 909],
    ]);
    expect(planSegments(100, 300, 20)).toEqual([{ index: 0, from: 0, to: 99 }]);
  });
  it('rejects lengths it cannot plan', () => {
    expect(() => planSegments(0, 10, 1)).toThrow(RangeError);
    expect(() => planSegments(100, 10, 10)).toThrow(/overlapFrames/);
  });
});

describe('stitchSegments', () => {
  it('continues each person across a boundary, whatever the later segment called them', () => {
    // Two walkers; the second segment's tracker numbered them the other way round.
    const a = segment(0, 59, { 7: walker(0, 2), 9: walker(400, -1) }, 2);
    const b = segment(50, 119, { 1: walker(400, -1), 2: walker(0, 2) }, 2);
    const r = stitchSegments([a, b]);
    expect(r.cuts).toEqual([0, 54]);
    expect(r.links.map((l) => [l.localTrackId, l.trackId])).toEqual([
      [2, 0],
      [1, 1],
    ]);
    // Each segment's own ids and the video-wide ids they became.
    expect(r.ids.map((m) => [...m].sort((x, y) => x[0] - y[0]))).toEqual([
      [
        [7, 0],
        [9, 1],
      ],
      [
        [1, 1],
        [2, 0],
      ],
    ]);
    // One id per walker from the first frame to the last; frame ids are the source's.
    const first = idsAt(r.frames, 0);
    const last = idsAt(r.frames, 118);
    expect(new Map(first.map(([, id]) => [id, true])).size).toBe(2);
    // At frame 118 the first walker is at x = 236, the second at x = 282.
    expect(last.find(([x]) => x === 236)![1]).toBe(first.find(([x]) => x === 0)![1]);
    expect(last.find(([x]) => x === 282)![1]).toBe(first.find(([x]) => x === 400)![1]);
    expect(r.frames.map((f) => f.frame_id)).toEqual(Array.from({ length: 60 }, (_, i) => 2 * i));
  });

  it('does not join tracks that are apart in the overlap, and new people get new ids', () => {
    const a = segment(0, 59, { 1: walker(0, 2) });
    // In segment 2 someone else appears far away; walker 1 has left by frame 50 in this tracking.
    const b = segment(50, 99, { 4: (f) => (f >= 50 ? [600, 100, 640, 200] : undefined) });
    const r = stitchSegments([a, b]);
    expect(r.links).toEqual([]);
    const ids = new Set(r.frames.flatMap((f) => f.detections.map((d) => d.track_id)));
    expect([...ids].sort()).toEqual([0, 1]);
    // Segment 1's map holds only its own track.
    expect([...r.ids[1].keys()]).toEqual([4]);
  });

  it('numbers the output ids without gaps when an earlier segment’s track appears only after the cut', () => {
    // Segment 0 sees a passer-by (local 6) only in frames 56-59, after the cut at 55; segment 1 does not.
    const a = segment(0, 59, { 1: walker(0, 2), 6: (f) => (f >= 56 ? [600, 100, 640, 200] : undefined) });
    const b = segment(50, 99, { 3: walker(100, 2) });
    const r = stitchSegments([a, b]);
    expect(r.cuts).toEqual([0, 55]);
    const ids = [...new Set(r.frames.flatMap((f) => f.detections.map((d) => d.track_id)))].sort((x, y) => x - y);
    expect(ids).toEqual([0, 1]);
    expect(r.ids[0].has(6)).toBe(false);
    expect([...r.ids[0].values(), ...r.ids[1].values()].sort()).toEqual([0, 1]);
  });

  it('needs minFrames shared boxes and the score over every frame either track is seen', () => {
    // The later track overlaps the earlier one in only 1 of 10 shared frames: score 0.1, no join.
    const a = segment(0, 19, { 1: walker(0, 0) });
    const b = segment(10, 29, { 1: (f) => (f === 10 || f >= 20 ? [0, 100, 40, 200] : [300, 100, 340, 200]) });
    expect(stitchSegments([a, b]).links).toEqual([]);
    // Seen together on every shared frame: joined with score 1.
    const c = segment(10, 29, { 5: walker(0, 0) });
    expect(stitchSegments([a, c]).links).toEqual([{ segment: 1, trackId: 0, localTrackId: 5, score: 1, frames: 10 }]);
  });

  it('is deterministic and drops segment-local tracklet ids', () => {
    const withTracklets = (f: StitchFrame[]) => f.map((x) => ({ ...x, detections: x.detections.map((d) => ({ ...d, tracklet_id: d.track_id + 100 })) }));
    const segs = [withTracklets(segment(0, 39, { 3: walker(0, 1) })), withTracklets(segment(30, 69, { 8: walker(0, 1) })), withTracklets(segment(60, 99, { 2: walker(0, 1) }))];
    const r1 = stitchSegments(segs);
    const r2 = stitchSegments(segs.map((s) => s.map((f) => ({ ...f }))));
    expect(r1).toEqual(r2);
    expect(new Set(r1.frames.flatMap((f) => f.detections.map((d) => d.track_id)))).toEqual(new Set([0]));
    expect(r1.frames.every((f) => f.detections.every((d) => !('tracklet_id' in d)))).toBe(true);
    expect(r1.frames.length).toBe(100);
  });

  it('rejects segments out of time order', () => {
    expect(() => stitchSegments([segment(50, 60, {}), segment(0, 10, {})])).toThrow(RangeError);
  });
});

describe('segmentsOf (step 3 plans the segments of options.segments)', () => {
  it('plans nothing extra for a video within one segment, and minutes-long segments with their overlap for a long one', () => {
    // vtest.avi: 795 frames at 10 fps (79.5 s), within the default 180 s.
    expect(segmentsOf(795, 10, DEFAULT_OPTIONS.segments)).toEqual([{ index: 0, from: 0, to: 794 }]);
    // Ten minutes at 10 fps: 1800-frame segments, each 20 frames (2 s) into the next.
    expect(segmentsOf(6000, 10, DEFAULT_OPTIONS.segments).map((s) => [s.from, s.to])).toEqual([
      [0, 1819],
      [1800, 3619],
      [3600, 5419],
      [5400, 5999],
    ]);
    // An unknown frame rate counts as 25 fps; an overlap as long as the segment is cut to one frame less.
    expect(segmentsOf(100, 0, { seconds: 2, overlapSeconds: 1 }).map((s) => [s.from, s.to])).toEqual([
      [0, 74],
      [50, 99],
    ]);
    expect(segmentsOf(10, 1, { seconds: 2, overlapSeconds: 5 }).map((s) => [s.from, s.to])).toEqual([
      [0, 2],
      [2, 4],
      [4, 6],
      [6, 8],
      [8, 9],
    ]);
  });
});

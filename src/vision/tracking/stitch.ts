/**
 * Time segments of a video and the stitching of tracks tracked per segment into video-wide track ids: the
 * building blocks for tracking one long video on several workers (each segment tracked on its own, with a
 * short overlap with its neighbour). Step 5 uses them for a video longer than one segment
 * (src/activities/segments.ts); they are measured against whole-video tracking by
 * `npm run eval:identity -- --segment-seconds S` (README "Identity evaluation").
 *
 * Stitching follows the usual overlap-association practice of offline and chunked multi-object tracking
 * (associate the tracks of two windows on the frames they share by box IoU, one-to-one by minimum cost;
 * e.g. the sliding-window association of Bewley et al., "Simple Online and Realtime Tracking", ICIP 2016,
 * applied between windows instead of between frames).
 */
import { iou, type BBox } from '../detection/geometry';
import { linearAssignment } from './assignment';

/** A sampled frame of one segment's tracking: `frame_id` a true source index, `track_id` local to the segment. */
export interface StitchFrame {
  frame_id: number;
  detections: { track_id: number; bbox: BBox }[];
}

/** A time segment in source frame indices, both ends included. */
export interface SegmentRange {
  /** 0-based position of the segment in the video. */
  index: number;
  from: number;
  to: number;
}

/**
 * Splits the source frames `0 .. frameCount - 1` into segments of `segmentFrames` frames, each extended by
 * `overlapFrames` frames into its successor (so neighbours share those frames). Segment k starts at
 * `k * segmentFrames`. A last piece that would lie wholly inside the previous segment's overlap is not made.
 * @param frameCount frames of the video (from the probe), > 0
 * @param segmentFrames segment length in source frames, > 0
 * @param overlapFrames overlap in source frames, >= 0 and < segmentFrames
 * @returns segments in time order; one segment `[0, frameCount - 1]` when the video is not longer than one
 * @throws RangeError for lengths outside those bounds
 */
export function planSegments(frameCount: number, segmentFrames: number, overlapFrames: number): SegmentRange[] {
  if (!Number.isInteger(frameCount) || frameCount <= 0) throw new RangeError(`frameCount ${frameCount}: must be a positive integer`);
  if (!Number.isInteger(segmentFrames) || segmentFrames <= 0) throw new RangeError(`segmentFrames ${segmentFrames}: must be a positive integer`);
  if (!Number.isInteger(overlapFrames) || overlapFrames < 0 || overlapFrames >= segmentFrames) {
    throw new RangeError(`overlapFrames ${overlapFrames}: must be an integer from 0 to segmentFrames - 1`);
  }
  const out: SegmentRange[] = [];
  for (let from = 0; from < frameCount; from += segmentFrames) {
    const prev = out[out.length - 1];
    if (prev && prev.to >= frameCount - 1) break;
    out.push({ index: out.length, from, to: Math.min(frameCount - 1, from + segmentFrames + overlapFrames - 1) });
  }
  return out;
}

/** Options of {@link stitchSegments}. */
export interface StitchOptions {
  /**
   * Least overlap score for two tracks to be one person: the sum of their boxes' IoU over the shared frames
   * where both have a box, divided by the shared frames where either has one (so a track seen in only part
   * of the overlap scores less). 0.5 is the IoU at which CLEAR-MOT counts a box as a match.
   */
  minScore: number;
  /** Least shared frames where both tracks have a box. */
  minFrames: number;
}

/** Defaults of {@link StitchOptions}. */
export const DEFAULT_STITCH: StitchOptions = { minScore: 0.5, minFrames: 2 };

/** One boundary's association: the earlier segment's track (video-wide id) continued by a later segment's track. */
export interface StitchLink {
  /** Index of the later segment (the boundary between `segment - 1` and `segment`). */
  segment: number;
  trackId: number;
  /** The later segment's own track id. */
  localTrackId: number;
  score: number;
  frames: number;
}

/** Result of {@link stitchSegments}. */
export interface StitchResult<F extends StitchFrame> {
  /**
   * One entry per sampled frame of the video, ascending `frame_id`, with video-wide `track_id`s. Frames of
   * an overlap before its cut come from the earlier segment, from the cut on from the later one.
   */
  frames: F[];
  /** Every association made, by boundary, then video-wide id. */
  links: StitchLink[];
  /** Frame id from which each later segment's frames are taken, by segment index (segment 0: its first). */
  cuts: number[];
  /**
   * Per segment, by index: the video-wide id of each of its own track ids that reached the output (tracks whose
   * boxes all lie before the segment's cut are not in it).
   */
  ids: ReadonlyMap<number, number>[];
}

/**
 * Stitches per-segment tracking into one video-wide tracking. At each boundary the later segment's tracks
 * are associated one-to-one with the earlier segment's on the frames both segments sampled (minimum-cost
 * assignment of `1 - score`, {@link linearAssignment}; pairs below `minScore` or `minFrames` are not
 * joined). An associated track continues the earlier track's id; any other gets a new one. The cut is the
 * middle shared frame, so each side keeps the half of the overlap nearer its own centre, where its tracker
 * has the most context. The video-wide ids are then numbered 0, 1, … (as a tracker numbers them) in the
 * order of each track's first box in the output (ties by id), so no id is missing.
 *
 * Deterministic: the result depends only on the segments' contents, not on the order they were made in.
 * Fields of a frame or box other than `track_id` are kept as the segment wrote them, except `tracklet_id`,
 * which is local to a segment and is removed.
 * @param segments per segment, in time order, its frames ascending by `frame_id`; neighbours may share
 *   frames (the overlap), and a later segment must not start before an earlier one
 * @throws RangeError when segments are out of order
 */
export function stitchSegments<F extends StitchFrame>(segments: readonly (readonly F[])[], options: StitchOptions = DEFAULT_STITCH): StitchResult<F> {
  const frames: F[] = [];
  const links: StitchLink[] = [];
  const cuts: number[] = [];
  const idMaps: ReadonlyMap<number, number>[] = [];
  let nextId = 0;
  // Video-wide id of each local track of the previous segment (only tracks it outputs or hands on).
  let prevIds = new Map<number, number>();
  let prev: readonly F[] = [];
  for (const [s, seg] of segments.entries()) {
    if (seg.length === 0) {
      cuts.push(Number.NaN);
      idMaps.push(new Map());
      continue;
    }
    const prevLast = prev.length ? prev[prev.length - 1].frame_id : -1;
    if (prev.length && seg[0].frame_id < prev[0].frame_id) throw new RangeError(`segment ${s} starts at frame ${seg[0].frame_id}, before segment ${s - 1}`);
    const prevById = new Map(prev.map((f) => [f.frame_id, f]));
    const shared = seg.filter((f) => f.frame_id <= prevLast && prevById.has(f.frame_id)).map((f) => f.frame_id);
    const cut = shared.length ? shared[Math.floor(shared.length / 2)] : Math.max(seg[0].frame_id, prevLast + 1);
    cuts.push(cut);
    const ids = new Map<number, number>();
    if (shared.length) {
      const found: StitchLink[] = [];
      for (const l of associate(prevById, seg, shared, options)) {
        // Every track of `prev` has an id: `prev` is the earlier segment's output, numbered below.
        const trackId = prevIds.get(l.prevLocal)!;
        ids.set(l.local, trackId);
        found.push({ segment: s, trackId, localTrackId: l.local, score: l.score, frames: l.frames });
      }
      links.push(...found.sort((x, y) => x.trackId - y.trackId));
    }
    // The earlier segment's frames before the cut (all after what is already out: `prev` starts at its own
    // cut), then this one's from the cut.
    for (const f of prev) if (f.frame_id < cut) frames.push(relabel(f, prevIds));
    const mine = seg.filter((f) => f.frame_id >= cut);
    const order = firstBoxes(mine);
    for (const local of order) if (!ids.has(local)) ids.set(local, nextId++);
    // Only tracks with a box from the cut on are output.
    for (const local of ids.keys()) if (!order.includes(local)) ids.delete(local);
    idMaps.push(ids);
    // Tracks that the next boundary may continue: this segment's output tracks.
    prevIds = ids;
    prev = mine;
  }
  for (const f of prev) frames.push(relabel(f, prevIds));
  // Number the ids that reached the output without gaps (a track of an earlier segment seen only after the
  // next cut has an id but no box), and drop associations whose later track did not reach it.
  const compact = new Map(firstBoxes(frames).map((id, i) => [id, i]));
  return {
    frames: frames.map((f) => relabel(f, compact)),
    links: links.filter((l) => idMaps[l.segment].has(l.localTrackId)).map((l) => ({ ...l, trackId: compact.get(l.trackId)! })),
    cuts,
    ids: idMaps.map((m) => new Map([...m].filter(([, id]) => compact.has(id)).map(([local, id]) => [local, compact.get(id)!]))),
  };
}

/** Local track ids in the order of their first box (frame order, then local id). */
function firstBoxes(frames: readonly StitchFrame[]): number[] {
  const seen = new Set<number>();
  const out: number[] = [];
  for (const f of frames) {
    for (const id of f.detections.map((d) => d.track_id).sort((a, b) => a - b)) {
      if (!seen.has(id)) {
        seen.add(id);
        out.push(id);
      }
    }
  }
  return out;
}

/** `f` with `track_id` mapped by `ids` and `tracklet_id` removed. */
function relabel<F extends StitchFrame>(f: F, ids: ReadonlyMap<number, number>): F {
  return {
    ...f,
    detections: f.detections.map((d) => {
      const { tracklet_id: _local, ...rest } = d as typeof d & { tracklet_id?: number };
      const trackId = ids.get(d.track_id);
      if (trackId === undefined) throw new Error(`stitch: no video-wide id for local track ${d.track_id} at frame ${f.frame_id}`);
      return { ...rest, track_id: trackId };
    }),
  };
}

/** One-to-one association of the earlier segment's tracks with the later one's on the shared frames. */
function associate(
  prevById: ReadonlyMap<number, StitchFrame>,
  seg: readonly StitchFrame[],
  shared: readonly number[],
  o: StitchOptions,
): { prevLocal: number; local: number; score: number; frames: number }[] {
  const segById = new Map(seg.map((f) => [f.frame_id, f]));
  const sum = new Map<string, { iou: number; both: number }>();
  // Shared frames where each earlier (rows) and later (columns) track has a box.
  const seenPrev = new Map<number, number>();
  const seenNext = new Map<number, number>();
  for (const id of shared) {
    const a = prevById.get(id)!.detections;
    const b = segById.get(id)!.detections;
    for (const d of a) seenPrev.set(d.track_id, (seenPrev.get(d.track_id) ?? 0) + 1);
    for (const d of b) seenNext.set(d.track_id, (seenNext.get(d.track_id) ?? 0) + 1);
    for (const p of a) {
      for (const n of b) {
        const key = `${p.track_id}:${n.track_id}`;
        const e = sum.get(key) ?? { iou: 0, both: 0 };
        e.iou += iou(p.bbox, n.bbox);
        e.both++;
        sum.set(key, e);
      }
    }
  }
  const R = [...seenPrev.keys()].sort((a, b) => a - b);
  const C = [...seenNext.keys()].sort((a, b) => a - b);
  // Frames where either has a box = |a| + |b| - |both|.
  const scoreOf = (p: number, n: number) => {
    const e = sum.get(`${p}:${n}`);
    if (!e || e.both < o.minFrames) return 0;
    return e.iou / (seenPrev.get(p)! + seenNext.get(n)! - e.both);
  };
  const cost = R.map((p) => Float64Array.from(C, (n) => 1 - scoreOf(p, n)));
  const { matches } = linearAssignment(cost, C.length, 1 - o.minScore);
  return matches.map(([r, c]) => ({ prevLocal: R[r], local: C[c], score: Math.round(scoreOf(R[r], C[c]) * 1000) / 1000, frames: sum.get(`${R[r]}:${C[c]}`)!.both }));
}

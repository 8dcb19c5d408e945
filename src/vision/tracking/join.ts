/**
 * Join fragments: after a video is tracked, a tracklet that ends is joined to one that starts shortly after,
 * near the position the first one's Kalman filter predicts, with a similar colour appearance, into one class
 * — only when the evidence is strong and unambiguous, since a wrong join (two people in one class) is worse
 * than a missed one (one person in two classes).
 *
 * A pair (A ends, B starts) is a candidate when B starts 1 to `maxGapFrames` source frames after A's last
 * box, B's first box centre is within `maxDistance` box heights of A's Kalman prediction at B's first frame
 * (the constant-velocity filter of ./kalman.ts run over A's boxes), and B's height is within `maxDistance`
 * (relative) of the predicted height, and (when the frame size is given) at least {@link MIN_INSIDE_SHARE} of
 * that predicted box lies inside the frame. A person predicted out of the picture has left the view: motion
 * says nothing about who comes back, and a person entering at the same edge is often someone else (on the
 * vtest.avi ground truth, a walker leaving at the right edge was joined to another entering there 16 frames
 * later). Re-identification after an exit is not a join. A candidate's cost is the appearance distance
 * (./appearance.ts, Bhattacharyya, between A's last and B's first boxes) plus `positionWeight` x the
 * position distance. A and B are joined
 * when the appearance distance is at most `maxAppearance` and B is A's cheapest candidate and A is B's, each
 * by at least `margin` over the second cheapest (mutual best with a margin, the "ratio test" idea of Lowe,
 * IJCV 2004, on costs). This is the tracklet-linking step of offline trackers (e.g. TrackletNet, Wang et al. 2019,
 * arXiv:1811.07258), kept conservative.
 */
import type { BBox } from '../detection/geometry';
import type { RgbFrame } from '../image/rgb';
import { appearanceDistance, type Appearance } from './appearance';
import { assignmentJoins } from './joinAssignment';
import { bboxToXyah, KalmanBoxFilter, xyahToBbox } from './kalman';

/** One tracklet's boxes in time order (`frameId` = source frame index, strictly increasing). */
export interface TrackletBoxes {
  trackletId: number;
  boxes: { frameId: number; bbox: BBox }[];
}

/** Options of the joins. */
export interface JoinOptions {
  /** Longest gap from A's last box to B's first, source frames. */
  maxGapFrames: number;
  /** Source frames per Kalman step (the sampling stride). */
  frameGap: number;
  /** Position gate, in predicted box heights (centre) and relative height change. Default {@link DEFAULT_MAX_DISTANCE}. */
  maxDistance?: number;
  /** Largest appearance distance of a join (Bhattacharyya, 0-1). Default 0.3. */
  maxAppearance?: number;
  /** Cost margin by which the chosen pair must beat the second candidate both ways. Default 0.1. */
  margin?: number;
  /** Weight of the position distance in the cost. Default 0.1. */
  positionWeight?: number;
  /**
   * How the margin is tested: `mutual-best` (each pair against every other candidate of either tracklet) or
   * `assignment` (against every whole assignment that gives one of its tracklets another partner,
   * ./joinAssignment.ts). Default `mutual-best`.
   */
  decision?: 'mutual-best' | 'assignment';
  /** Frame size in pixels; when given, a candidate whose predicted box lies mostly outside it is refused (file header). */
  frameSize?: { width: number; height: number };
  /**
   * Frame ids where a new shot begins (`lastShotChange` of ./tracklets.ts): no join spans one, i.e. none with
   * A's last box before such a frame and B's first box at or after it. Default none.
   */
  shotChanges?: readonly number[];
}

/** A candidate pair: A (`from`) ends, B (`to`) starts; distances as defined in the file header. */
export interface JoinCandidate {
  from: number;
  to: number;
  gapFrames: number;
  /** Centre distance to the prediction, in predicted box heights. */
  position: number;
}

/** A join that was made. */
export interface TrackletJoin extends JoinCandidate {
  appearance: number;
}

/** Default position gate of {@link JoinOptions}, box heights: `tracker.joins.maxDistance` of src/optionGroups.ts, where the measurement is. */
export const DEFAULT_MAX_DISTANCE = 2;

/**
 * Smallest share of A's predicted box area inside the frame for a candidate (file header): below half, most
 * of the person is predicted out of the picture. Our own constant.
 */
export const MIN_INSIDE_SHARE = 0.5;

/** Share (0-1) of the area of `b` inside a `width` x `height` frame; 0 for an empty box. */
export function insideShare(b: BBox, width: number, height: number): number {
  const area = Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
  if (area === 0) return 0;
  const w = Math.max(0, Math.min(b[2], width) - Math.max(b[0], 0));
  const h = Math.max(0, Math.min(b[3], height) - Math.max(b[1], 0));
  return (w * h) / area;
}

/** A's box predicted by its Kalman filter at `frameId` (after its last box). */
export function predictAt(t: TrackletBoxes, frameId: number, frameGap: number): BBox {
  const kf = new KalmanBoxFilter();
  let s = kf.initiate(bboxToXyah(t.boxes[0].bbox));
  let last = t.boxes[0].frameId;
  const steps = (to: number) => Math.max(1, Math.round((to - last) / frameGap));
  for (const b of t.boxes.slice(1)) {
    for (let k = steps(b.frameId); k > 0; k--) s = kf.predict(s);
    s = kf.update(s, bboxToXyah(b.bbox));
    last = b.frameId;
  }
  for (let k = steps(frameId); k > 0; k--) s = kf.predict(s);
  return xyahToBbox(s.mean);
}

/**
 * Candidate pairs that pass the gap and position gates (appearance not yet looked at), so that a caller
 * computes appearances only for the tracklets involved.
 * @throws RangeError when maxGapFrames or frameGap is not positive
 */
export function joinCandidates(tracklets: readonly TrackletBoxes[], opts: JoinOptions): JoinCandidate[] {
  if (!(opts.maxGapFrames > 0) || !(opts.frameGap > 0)) throw new RangeError('maxGapFrames and frameGap must be positive');
  const maxDist = opts.maxDistance ?? DEFAULT_MAX_DISTANCE;
  const usable = tracklets.filter((t) => t.boxes.length > 0);
  const out: JoinCandidate[] = [];
  for (const a of usable) {
    const end = a.boxes[a.boxes.length - 1].frameId;
    for (const b of usable) {
      const start = b.boxes[0].frameId;
      const gap = start - end;
      if (b === a || gap < 1 || gap > opts.maxGapFrames) continue;
      if (opts.shotChanges?.some((f) => f > end && f <= start)) continue;
      const p = predictAt(a, start, opts.frameGap);
      const q = b.boxes[0].bbox;
      const ph = p[3] - p[1];
      const position = Math.hypot((q[0] + q[2] - p[0] - p[2]) / 2, (q[1] + q[3] - p[1] - p[3]) / 2) / ph;
      if (position > maxDist || Math.abs((q[3] - q[1]) / ph - 1) > maxDist) continue;
      if (opts.frameSize && insideShare(p, opts.frameSize.width, opts.frameSize.height) < MIN_INSIDE_SHARE) continue;
      out.push({ from: a.trackletId, to: b.trackletId, gapFrames: gap, position });
    }
  }
  return out;
}

/**
 * The joins among `candidates`: mutual best with a margin (file header), or with `decision: 'assignment'`
 * the two-way comparison of ./joinAssignment.ts.
 * @param appearance the appearance at a tracklet's end (`end`) and start (`start`), by tracklet id; a pair
 *   whose appearances cannot be compared is not joined
 * @returns joins sorted by `from`
 */
export function decideJoins(candidates: readonly JoinCandidate[], appearance: ReadonlyMap<number, { start: Appearance | null; end: Appearance | null }>, opts: JoinOptions): TrackletJoin[] {
  const margin = opts.margin ?? 0.1;
  const maxApp = opts.maxAppearance ?? 0.3;
  const w = opts.positionWeight ?? 0.1;
  const scored = candidates.map((c) => {
    const ea = appearance.get(c.from)?.end;
    const sb = appearance.get(c.to)?.start;
    const app = ea && sb ? appearanceDistance(ea, sb) : undefined;
    return { ...c, appearance: app ?? 1, cost: (app ?? 1) + w * c.position, known: app !== undefined };
  });
  if (opts.decision === 'assignment') {
    const gated = scored.filter((c) => c.known && c.appearance <= maxApp);
    // Every gated pair costs at most maxApp + w * maxDistance (the position gate of joinCandidates).
    const noJoinCost = maxApp + w * (opts.maxDistance ?? DEFAULT_MAX_DISTANCE) + 1e-6;
    return assignmentJoins(gated, { noJoinCost, margin })
      .map(({ from, to, gapFrames, position, appearance: a }) => ({ from, to, gapFrames, position, appearance: a }))
      .sort((a, b) => a.from - b.from);
  }
  const clearlyBest = (c: (typeof scored)[number], key: 'from' | 'to') => {
    const rivals = scored.filter((x) => x !== c && x[key] === c[key]);
    return rivals.every((x) => x.cost >= c.cost + margin);
  };
  return scored
    .filter((c) => c.known && c.appearance <= maxApp && clearlyBest(c, 'from') && clearlyBest(c, 'to'))
    .map(({ from, to, gapFrames, position, appearance: a }) => ({ from, to, gapFrames, position, appearance: a }))
    .sort((a, b) => a.from - b.from);
}

/**
 * Classes from joins: each chain of joined tracklets is one class; classes are numbered 0, 1, 2, ... in
 * order of the chain's first tracklet id (tracklet ids are in order of first appearance).
 * @param trackletIds every tracklet id
 * @returns class id by tracklet id
 */
export function classesOf(trackletIds: readonly number[], joins: readonly { from: number; to: number }[]): Map<number, number> {
  const prev = new Map(joins.map((j) => [j.to, j.from]));
  const root = (id: number): number => {
    let r = id;
    while (prev.has(r)) r = prev.get(r)!;
    return r;
  };
  const roots = [...new Set(trackletIds.map(root))].sort((a, b) => a - b);
  const classOfRoot = new Map(roots.map((r, i) => [r, i]));
  return new Map(trackletIds.map((id) => [id, classOfRoot.get(root(id))!]));
}

/** Boxes averaged at each end of a tracklet for its join appearance. */
export const JOIN_APPEARANCE_BOXES = 5;

/**
 * Mean appearance (region histograms averaged, still normalised) of the first and of the last up to
 * {@link JOIN_APPEARANCE_BOXES} boxes of each tracklet in `ids`, reading frames through `readFrame`
 * (each frame once).
 * @param appearanceOf the appearance of one box on its frame (./appearance.ts `extractAppearance` with the pitch keyed out)
 */
export async function endAppearances(
  tracklets: readonly TrackletBoxes[],
  ids: ReadonlySet<number>,
  readFrame: (frameId: number) => Promise<RgbFrame>,
  appearanceOf: (frame: RgbFrame, bbox: BBox) => Appearance,
): Promise<Map<number, { start: Appearance | null; end: Appearance | null }>> {
  const wanted = new Map<number, { trackletId: number; end: 'start' | 'end'; bbox: BBox }[]>();
  for (const t of tracklets) {
    if (!ids.has(t.trackletId)) continue;
    const add = (b: { frameId: number; bbox: BBox }, end: 'start' | 'end') => {
      if (!wanted.has(b.frameId)) wanted.set(b.frameId, []);
      wanted.get(b.frameId)!.push({ trackletId: t.trackletId, end, bbox: b.bbox });
    };
    t.boxes.slice(0, JOIN_APPEARANCE_BOXES).forEach((b) => add(b, 'start'));
    t.boxes.slice(-JOIN_APPEARANCE_BOXES).forEach((b) => add(b, 'end'));
  }
  const acc = new Map<string, Appearance[]>();
  for (const frameId of [...wanted.keys()].sort((a, b) => a - b)) {
    const frame = await readFrame(frameId);
    for (const w of wanted.get(frameId)!) {
      const k = `${w.trackletId}:${w.end}`;
      if (!acc.has(k)) acc.set(k, []);
      acc.get(k)!.push(appearanceOf(frame, w.bbox));
    }
  }
  const out = new Map<number, { start: Appearance | null; end: Appearance | null }>();
  for (const id of ids) out.set(id, { start: meanAppearance(acc.get(`${id}:start`) ?? []), end: meanAppearance(acc.get(`${id}:end`) ?? []) });
  return out;
}

/** Mean of appearances per region over those that have it; null when none has either region. */
export function meanAppearance(list: readonly Appearance[]): Appearance | null {
  const mean = (hs: (Float32Array | null)[]) => {
    const have = hs.filter((h): h is Float32Array => h !== null);
    if (!have.length) return null;
    const m = new Float32Array(have[0].length);
    for (const h of have) for (let i = 0; i < m.length; i++) m[i] += h[i] / have.length;
    return m;
  };
  const a = { upper: mean(list.map((x) => x.upper)), lower: mean(list.map((x) => x.lower)) };
  return a.upper || a.lower ? a : null;
}

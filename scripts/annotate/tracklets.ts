/**
 * Annotation tooling, step 2 (pure): cuts the detector's boxes into very short, conservative tracklets that a
 * person then checks and labels by looking. A box continues a tracklet into the next sampled frame only when
 * the link is unambiguous:
 * - the second box overlaps the tracklet's predicted box ({@link predict}: constant velocity from its last two
 *   boxes) with IoU >= `linkIou`;
 * - each is the other's only candidate: no other box of the next frame has IoU >= `candidateIou` with the
 *   first's prediction, and no other box of the first frame has a prediction with IoU >= `candidateIou` with
 *   the second;
 * - neither box overlaps another box of its own frame with IoU > `crowdIou` (two people side by side or
 *   crossing, or a duplicate box, always cut).
 * Everything else starts a new tracklet. IoU is src/vision/detection/geometry.ts `iou`.
 */
import { iou, type BBox } from '../../src/vision/detection/geometry';
import type { AnnotBox, AnnotFrame } from './boxes';

/** Thresholds of {@link buildTracklets}. */
export interface TrackletOptions {
  /** Boxes below this detector score are not annotated (dropped before linking). */
  minScore: number;
  linkIou: number;
  /** IoU needed for a tracklet's first link, made without a velocity (the box itself as prediction). */
  firstLinkIou: number;
  candidateIou: number;
  crowdIou: number;
}

/**
 * Defaults: minScore 0.25 is the Ultralytics default confidence. The IoU thresholds were chosen on vtest.avi
 * (stride 2): between consecutive samples of one ByteTrack track of the reference run, the raw IoU is below
 * 0.3 for ~5 % of links and the constant-velocity predicted IoU below 0.4 for ~3 %, so most true links pass
 * while a neighbour (candidateIou 0.2, crowdIou 0.2) still cuts.
 */
export const DEFAULT_TRACKLET_OPTIONS: TrackletOptions = { minScore: 0.25, linkIou: 0.4, firstLinkIou: 0.3, candidateIou: 0.2, crowdIou: 0.2 };

/** One box of a tracklet: the frame and the box's index in that frame's detector output. */
export interface TrackletBox extends AnnotBox {
  frameId: number;
}

/** A run of boxes of consecutive sampled frames believed to be one person. */
export interface Tracklet {
  /** Tracklet number, 1-based, in order of first frame then x. */
  id: number;
  boxes: TrackletBox[];
}

/**
 * Where the last box of `run` is expected in the next sampled frame: shifted by the displacement between
 * its last two boxes (constant velocity), or where it is when the run has one box.
 */
export function predict(run: readonly TrackletBox[]): BBox {
  const last = run[run.length - 1].bbox;
  if (run.length < 2) return last;
  const before = run[run.length - 2].bbox;
  const dx = (last[0] + last[2] - before[0] - before[2]) / 2;
  const dy = (last[1] + last[3] - before[1] - before[3]) / 2;
  return [last[0] + dx, last[1] + dy, last[2] + dx, last[3] + dy];
}

/** True when `box` overlaps another box of `frameBoxes` with IoU > `crowdIou`. */
function crowded(box: AnnotBox, frameBoxes: readonly AnnotBox[], crowdIou: number): boolean {
  return frameBoxes.some((o) => o.index !== box.index && iou(o.bbox, box.bbox) > crowdIou);
}

/**
 * Builds conservative tracklets (module comment) over `frames`, which must be the consecutive sampled
 * frames in increasing frame id.
 * @returns every kept box in exactly one tracklet, tracklets numbered from 1
 * @throws Error when frame ids are not strictly increasing
 */
export function buildTracklets(frames: readonly AnnotFrame[], opts: TrackletOptions = DEFAULT_TRACKLET_OPTIONS): Tracklet[] {
  const open = new Map<number, TrackletBox[]>(); // box index in the previous frame -> its tracklet
  const all: TrackletBox[][] = [];
  let prev: AnnotBox[] = [];
  let prevId = -Infinity;
  for (const f of frames) {
    if (f.frameId <= prevId) throw new Error(`frame ids must increase: ${f.frameId} after ${prevId}`);
    const cur = f.boxes.filter((b) => b.score >= opts.minScore);
    const next = new Map<number, TrackletBox[]>();
    const predicted = new Map(prev.map((a) => [a.index, predict(open.get(a.index)!)]));
    for (const b of cur) {
      const tb: TrackletBox = { ...b, frameId: f.frameId };
      const cands = prev.filter((a) => iou(predicted.get(a.index)!, b.bbox) >= opts.candidateIou);
      let run: TrackletBox[] | undefined;
      if (cands.length === 1) {
        const a = cands[0];
        const pa = predicted.get(a.index)!;
        const back = cur.filter((c) => iou(pa, c.bbox) >= opts.candidateIou);
        const need = open.get(a.index)!.length < 2 ? opts.firstLinkIou : opts.linkIou;
        if (back.length === 1 && iou(pa, b.bbox) >= need && !crowded(a, prev, opts.crowdIou) && !crowded(b, cur, opts.crowdIou)) {
          run = open.get(a.index);
        }
      }
      if (!run) {
        run = [];
        all.push(run);
      }
      run.push(tb);
      next.set(b.index, run);
    }
    open.clear();
    for (const [k, v] of next) open.set(k, v);
    prev = cur;
    prevId = f.frameId;
  }
  all.sort((p, q) => p[0].frameId - q[0].frameId || p[0].bbox[0] - q[0].bbox[0]);
  return all.map((boxes, i) => ({ id: i + 1, boxes }));
}

/**
 * {@link buildTracklets} over each run of consecutive sampled frames of `frames` (a run ends where the next
 * frame id is more than `stride` further on, e.g. around frames left out of the annotation such as a
 * camera dissolve), so no tracklet crosses a gap. Tracklets are numbered from 1 over all runs, by first frame
 * then x.
 */
export function buildTrackletsInRuns(frames: readonly AnnotFrame[], stride: number, opts: TrackletOptions = DEFAULT_TRACKLET_OPTIONS): Tracklet[] {
  const runs: AnnotFrame[][] = [];
  for (const f of frames) {
    const run = runs[runs.length - 1];
    if (run && f.frameId - run[run.length - 1].frameId <= stride) run.push(f);
    else runs.push([f]);
  }
  const all = runs.flatMap((r) => buildTracklets(r, opts).map((t) => t.boxes));
  all.sort((p, q) => p[0].frameId - q[0].frameId || p[0].bbox[0] - q[0].bbox[0]);
  return all.map((boxes, i) => ({ id: i + 1, boxes }));
}

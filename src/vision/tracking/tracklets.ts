/**
 * Cut rather than mix: a layer over {@link ByteTracker} that hands out TRACKLET ids and ends a tracklet (a
 * new one starts, with a new id) whenever continuing it is ambiguous, so that one tracklet never holds two
 * people. ByteTrack keeps its own motion state; only the ids it returns are relabelled. Fragments are joined
 * again afterwards, when the evidence is strong (./join.ts).
 *
 * A matched box of a track is ambiguous, and its tracklet is cut, when (reasons as recorded):
 * - `overlap`: the box overlaps another detection of the frame with IoU > `overlapIou` (two people in one
 *   place: which is which is a guess);
 * - `cost-margin`: another feasible candidate is within `costMargin` of the match's cost 1 - IoU (another
 *   detection for the track's predicted box, or another track's predicted box for the detection); this is
 *   the assignment's own measure of doubt, the margin between the best and second-best cost;
 * - `occlusion`: the track is re-found after being lost while its predicted box lay under another track's
 *   box (IoU > `overlapIou`): the box that re-appears may be either person;
 * - `motion`: the box's centre is more than `motionJump` box heights from the Kalman prediction, or its
 *   height differs from the predicted height by more than that fraction (a box jumping to a neighbour or
 *   swallowing two people);
 * - `appearance`: the colour appearance (./appearance.ts) is further than `appearanceJump` (Bhattacharyya
 *   distance) from the tracklet's running model, once the model has `minModelObservations` observations,
 *   and another person could have taken the box's place: another detection of the frame, or another track's
 *   predicted box, has its centre within `appearanceRadius` box heights of the box's centre. An identity
 *   switch needs a second person in that place; a lone player whose colours drift (a small shirt in front
 *   of a board of another colour, a change of light) keeps the tracklet, since motion alone already says
 *   which box is his;
 * - `shot-change`: the whole picture changed (a cut or a dissolve between two shots, ./shotChange.ts): every
 *   tracklet ends there, since the person in the same place after a shot change is someone else. The boxes
 *   of a frame where a shot change is reported belong to no tracklet, as in an ambiguity: inside a dissolve
 *   the frame shows two pictures superimposed, so its crops are ghosts of two people (on the soccer test
 *   clip a 4-frame dissolve made 44 one-crop classes), and after a cut it is only the first frame of the new
 *   shot. The new tracklets start on the next frame without a shot change.
 * While a track is in an `overlap` / `cost-margin` ambiguity its boxes are left out of every tracklet (they
 * are not returned, like a tentative track's), and the first clean match after it starts a new tracklet, so
 * the people on either side of a crossing are in different tracklets and no tracklet holds the crossing.
 *
 * The principle (end a track rather than risk an identity switch) is that of "tracklet" generation in
 * offline trackers, e.g. Wang et al., "Exploit the Connectivity: Multi-Object Tracking with TrackletNet",
 * ACM MM 2019 (arXiv:1811.07258), which builds conservative tracklets and splits them where appearance
 * changes, then links them. The thresholds' defaults are set on vtest.avi (see the README options table).
 */
import { iou, type BBox, type Detection } from '../detection/geometry';
import type { RgbFrame } from '../image/rgb';
import type { PitchColour } from '../pitch/model';
import {
  appearanceDistance,
  appearanceFromJson,
  appearanceToJson,
  extractAppearance,
  updateAppearanceModel,
  type Appearance,
  type AppearanceJson,
} from './appearance';
import { frameSignature, ShotChangeDetector, type ShotChangeOptions, type ShotChangeState } from './shotChange';
import { ByteTracker, type ByteTrackerOptions, type ByteTrackerState, type TrackedDetection } from './bytetrack';

/** Why a tracklet was cut. */
export type CutReason = 'overlap' | 'cost-margin' | 'occlusion' | 'motion' | 'appearance' | 'shot-change';
/** Reasons that open an ambiguous stretch, whose boxes are left out of every tracklet. */
export const AMBIGUITY_REASONS: readonly CutReason[] = ['overlap', 'cost-margin'];

/**
 * One cut: at `frameId` the tracklet `oldTrackletId` ended, and `newTrackletId` continues the same ByteTrack
 * track (after the ambiguous stretch, for `overlap` and `cost-margin`; it is reported when it starts).
 */
export interface TrackletCut {
  frameId: number;
  reason: CutReason;
  oldTrackletId: number;
  newTrackletId: number;
}

/** Options of the cuts; every threshold has its meaning in the file header. */
export interface CutOptions {
  /** False: no cuts at all (tracklets are ByteTrack's tracks). Default true. */
  enabled?: boolean;
  /** IoU above which two boxes are one ambiguous place (overlap, occlusion). Default 0.4 (`tracker.cuts.overlapIou` of src/optionGroups.ts, where the measurement is). */
  overlapIou?: number;
  /** Second-best feasible cost within this of the match's 1 - IoU cost: ambiguous. Default 0.1. */
  costMargin?: number;
  /** Centre jump in box heights, or relative height change, above which motion is implausible. Default 0.5. */
  motionJump?: number;
  /** Bhattacharyya distance from the running model above which the appearance jumped. Default 0.4 (on vtest.avi the 99th percentile of a track's frames is 0.43, and switches to another person measured 0.44-0.81). */
  appearanceJump?: number;
  /**
   * An appearance jump cuts only when another detection or another track's predicted box has its centre
   * within this many box heights of the box's centre (file header). Default 1: on both identity ground
   * truths (`npm run eval:identity`) 1 and 2 keep class purity as with every jump cutting, while 0.5 let two
   * identity switches through on vtest.avi; Infinity: every jump cuts.
   */
  appearanceRadius?: number;
  /** Observations in the running model before appearance cuts apply. Default 3. */
  minModelObservations?: number;
  /** EMA momentum of the running appearance model (./appearance.ts). Default 0.9. */
  emaMomentum?: number;
  /** Pitch colour keyed out of appearances; null when the video has no pitch. */
  pitch?: PitchColour | null;
  /** Shot-change thresholds (./shotChange.ts: `cutDistance` 0.3, `gradualDistance` 0.12); a `cutDistance` of 1 never fires. */
  shotChange?: ShotChangeOptions;
}

interface TrackState {
  trackletId: number;
  /** Set while the track is in an ambiguous stretch: where and why it began. */
  pending: { frameId: number; reason: CutReason } | null;
  occluded: boolean;
  lastFrameId: number;
  model: Appearance | null;
  observations: number;
}

/** Serialised {@link TrackletTracker} state (for checkpoints). */
export interface TrackletTrackerState {
  version: 1;
  byte: ByteTrackerState;
  nextId: number;
  prevFrameId: number | null;
  tracks: { trackId: number; trackletId: number; pending: { frameId: number; reason: CutReason } | null; occluded: boolean; lastFrameId: number; model: AppearanceJson | null; observations: number }[];
  /** The shot-change detector (absent in states written before it existed: it starts afresh). */
  shot?: ShotChangeState;
}

/**
 * ByteTrack with tracklet cuts. Use one per video. {@link update} returns the same detections as
 * `ByteTracker.update`, with `trackId` the TRACKLET id (compact, 0, 1, 2, ... in order of first appearance),
 * and {@link lastCuts} the cuts of that update.
 */
export class TrackletTracker {
  private readonly byte: ByteTracker;
  private readonly o: Required<Omit<CutOptions, 'pitch' | 'shotChange'>> & { pitch: PitchColour | null };
  private shot: ShotChangeDetector;
  private shotChanged = false;
  private readonly lowThreshold: number;
  private readonly matchThreshold: number;
  private tracks = new Map<number, TrackState>();
  private nextId = 0;
  private prevFrameId: number | null = null;
  private cuts: TrackletCut[] = [];

  /** @throws RangeError for invalid ByteTrack options (see {@link ByteTracker}) or a cut threshold out of range */
  constructor(
    byteOpts: ByteTrackerOptions,
    cutOpts: CutOptions = {},
  ) {
    this.byte = new ByteTracker(byteOpts);
    this.lowThreshold = byteOpts.lowThreshold ?? 0.1;
    this.matchThreshold = byteOpts.matchThreshold ?? 0.8;
    this.o = {
      enabled: cutOpts.enabled ?? true,
      overlapIou: cutOpts.overlapIou ?? 0.4,
      costMargin: cutOpts.costMargin ?? 0.1,
      motionJump: cutOpts.motionJump ?? 0.5,
      appearanceJump: cutOpts.appearanceJump ?? 0.4,
      appearanceRadius: cutOpts.appearanceRadius ?? 1,
      minModelObservations: cutOpts.minModelObservations ?? 3,
      emaMomentum: cutOpts.emaMomentum ?? 0.9,
      pitch: cutOpts.pitch ?? null,
    };
    this.shot = new ShotChangeDetector(cutOpts.shotChange);
    for (const k of ['overlapIou', 'costMargin', 'appearanceJump', 'emaMomentum'] as const) {
      if (!(this.o[k] >= 0 && this.o[k] <= 1)) throw new RangeError(`${k} must be in [0, 1], got ${this.o[k]}`);
    }
    if (!(this.o.appearanceRadius >= 0)) throw new RangeError(`appearanceRadius must be >= 0, got ${this.o.appearanceRadius}`);
    if (!(this.o.motionJump > 0)) throw new RangeError(`motionJump must be > 0, got ${this.o.motionJump}`);
  }

  /** Tracklet ids handed out so far (0 .. count - 1). */
  get trackletCount(): number {
    return this.nextId;
  }

  /** Whether the latest {@link update}'s frame begins a new shot (./shotChange.ts; false without cuts or pixels). */
  get lastShotChange(): boolean {
    return this.shotChanged;
  }

  /** The cuts made by the latest {@link update}. */
  get lastCuts(): readonly TrackletCut[] {
    return this.cuts;
  }

  /** The whole state as JSON-safe data; restore with {@link TrackletTracker.restore} and the same options. */
  snapshot(): TrackletTrackerState {
    return {
      version: 1,
      byte: this.byte.snapshot(),
      nextId: this.nextId,
      prevFrameId: this.prevFrameId,
      tracks: [...this.tracks].map(([trackId, s]) => ({ trackId, ...s, model: s.model && appearanceToJson(s.model) })),
      shot: this.shot.snapshot(),
    };
  }

  /**
   * A tracker continuing from `state`.
   * @throws RangeError for a state of another version or a malformed one
   */
  static restore(byteOpts: ByteTrackerOptions, cutOpts: CutOptions, state: TrackletTrackerState): TrackletTracker {
    if (state.version !== 1) throw new RangeError(`unknown TrackletTracker state version ${String(state.version)}`);
    const t = new TrackletTracker(byteOpts, cutOpts);
    (t as unknown as { byte: ByteTracker }).byte = ByteTracker.restore(byteOpts, state.byte);
    t.nextId = state.nextId;
    t.prevFrameId = state.prevFrameId;
    t.tracks = new Map(state.tracks.map(({ trackId, model, ...s }) => [trackId, { ...s, model: model && appearanceFromJson(model) }]));
    if (state.shot) t.shot = ShotChangeDetector.restore(cutOpts.shotChange ?? {}, state.shot);
    return t;
  }

  /**
   * Tracks one sampled frame (see `ByteTracker.update`) and cuts tracklets where continuing is ambiguous.
   * @param frame the frame's pixels, for appearance; without it no appearance cut is made
   * @returns the detections of confirmed tracks, in input order, `trackId` = tracklet id
   * @throws RangeError as `ByteTracker.update`
   */
  update(frameId: number, dets: readonly Detection[], frame?: RgbFrame): TrackedDetection[] {
    const out = this.byte.update(frameId, dets);
    const preds = this.byte.lastPredictions;
    const others = dets.filter((d) => d.score > this.lowThreshold && d.bbox[2] > d.bbox[0] && d.bbox[3] > d.bbox[1]);
    this.cuts = [];
    this.shotChanged = this.o.enabled && !!frame && this.shot.push(frameSignature(frame));
    if (this.shotChanged) {
      // Every tracklet ends here: lost tracks get the cut when they are re-found (or never, if they are not).
      for (const st of this.tracks.values()) st.pending = { frameId, reason: 'shot-change' };
    }
    const seen = new Set<number>();
    const result = out.map((d) => {
      seen.add(d.trackId);
      let st = this.tracks.get(d.trackId);
      const isNew = !st;
      if (!st) {
        st = { trackletId: this.nextId++, pending: null, occluded: false, lastFrameId: frameId, model: null, observations: 0 };
        this.tracks.set(d.trackId, st);
      }
      // A shot-change frame's boxes belong to no tracklet (file header); a track seen before it has its cut
      // pending from the loop above and gets it on its next box. The track was seen here, as in an ambiguity.
      if (this.shotChanged) {
        st.occluded = false;
        st.lastFrameId = frameId;
        return undefined;
      }
      const obs = frame ? extractAppearance(frame, d.bbox, { pitch: this.o.pitch }) : null;
      const reason = this.o.enabled && !isNew ? this.reasonFor(d, st, preds, others, obs) : undefined;
      const ambiguousNow = reason !== undefined && AMBIGUITY_REASONS.includes(reason);
      st.occluded = false;
      st.lastFrameId = frameId;
      if (ambiguousNow) {
        // Left out of every tracklet; the cut is recorded when the track leaves the ambiguity.
        st.pending ??= { frameId, reason };
        return undefined;
      }
      const cut = st.pending ?? (reason ? { frameId, reason } : undefined);
      if (cut) {
        const next = this.nextId++;
        this.cuts.push({ ...cut, oldTrackletId: st.trackletId, newTrackletId: next });
        st.trackletId = next;
        st.model = null;
        st.observations = 0;
        st.pending = null;
      }
      if (obs) st.model = updateAppearanceModel(st.model, obs, this.o.emaMomentum);
      st.observations++;
      return { ...d, trackId: st.trackletId };
    }).filter((d): d is TrackedDetection => d !== undefined);
    // Lost tracks: remember when their predicted box lies under another track's box (an occlusion).
    for (const [id, pred] of preds) {
      const st = this.tracks.get(id);
      if (!st || seen.has(id)) continue;
      if (out.some((d) => iou(pred, d.bbox) > this.o.overlapIou)) st.occluded = true;
    }
    for (const id of [...this.tracks.keys()]) if (!preds.has(id) && !seen.has(id)) this.tracks.delete(id);
    this.prevFrameId = frameId;
    return result;
  }

  /** Whether another detection or another track's predicted box lies within `appearanceRadius` of `d` (file header). */
  private someoneNear(d: TrackedDetection, preds: ReadonlyMap<number, BBox>, others: readonly Detection[]): boolean {
    const r = this.o.appearanceRadius;
    if (r === Infinity) return true;
    if (others.some((x) => !sameBox(x.bbox, d.bbox) && centreDistance(d.bbox, x.bbox) <= r)) return true;
    for (const [id, p] of preds) if (id !== d.trackId && centreDistance(d.bbox, p) <= r) return true;
    return false;
  }

  private reasonFor(d: TrackedDetection, st: TrackState, preds: ReadonlyMap<number, BBox>, others: readonly Detection[], obs: Appearance | null): CutReason | undefined {
    const o = this.o;
    if (others.some((x) => x.bbox !== d.bbox && !sameBox(x.bbox, d.bbox) && iou(x.bbox, d.bbox) > o.overlapIou)) return 'overlap';
    const pred = preds.get(d.trackId);
    if (pred) {
      const cost = 1 - iou(pred, d.bbox);
      let alt = Infinity;
      for (const x of others) if (!sameBox(x.bbox, d.bbox)) alt = Math.min(alt, 1 - iou(pred, x.bbox));
      for (const [id, p] of preds) if (id !== d.trackId) alt = Math.min(alt, 1 - iou(p, d.bbox));
      if (alt <= this.matchThreshold && alt - cost < o.costMargin) return 'cost-margin';
    }
    const wasLost = this.prevFrameId !== null && st.lastFrameId < this.prevFrameId;
    if (wasLost && st.occluded) return 'occlusion';
    if (pred) {
      const ph = pred[3] - pred[1];
      const dx = (d.bbox[0] + d.bbox[2] - pred[0] - pred[2]) / 2;
      const dy = (d.bbox[1] + d.bbox[3] - pred[1] - pred[3]) / 2;
      const dh = (d.bbox[3] - d.bbox[1]) / ph;
      if (Math.hypot(dx, dy) > o.motionJump * ph || Math.abs(dh - 1) > o.motionJump) return 'motion';
    }
    if (obs && st.model && st.observations >= o.minModelObservations && this.someoneNear(d, preds, others)) {
      const dist = appearanceDistance(obs, st.model);
      if (dist !== undefined && dist > o.appearanceJump) return 'appearance';
    }
    return undefined;
  }
}

/** Centre distance of two boxes in heights of `a`. */
function centreDistance(a: Readonly<BBox>, b: Readonly<BBox>): number {
  return Math.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2) / Math.max(1e-6, a[3] - a[1]);
}

function sameBox(a: Readonly<BBox>, b: Readonly<BBox>): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}

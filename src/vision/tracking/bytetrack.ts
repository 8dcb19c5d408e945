/**
 * ByteTrack multi-object tracker: links per-frame detections into tracks with a Kalman motion model and a
 * two-stage IoU association that also uses low-score boxes.
 *
 * Sources:
 * - Zhang et al., "ByteTrack: Multi-Object Tracking by Associating Every Detection Box", ECCV 2022,
 *   arXiv:2110.06864 (Algorithm 1 "BYTE"), and its reference implementation (github.com/ifzhang/ByteTrack,
 *   `yolox/tracker/byte_tracker.py`, `matching.py`, `kalman_filter.py`). Reference defaults used here:
 *   `track_thresh` 0.5 (high-score threshold), low threshold 0.1, `match_thresh` 0.8 (first-stage cost
 *   limit, cost = 1 - IoU), second-stage cost limit 0.5, unconfirmed-track cost limit 0.7, new-track
 *   threshold `det_thresh = track_thresh + 0.1`, `track_buffer` 30 frames, duplicate removal at IoU > 0.85.
 * - The Kalman filter is the constant-velocity box filter of SORT (Bewley et al., ICIP 2016,
 *   arXiv:1602.00763) as written in DeepSORT (Wojke et al., ICIP 2017, arXiv:1703.07402,
 *   `deep_sort/kalman_filter.py`), which ByteTrack copies unchanged: state [cx, cy, a, h, vx, vy, va, vh]
 *   with a = w / h, noise standard deviations proportional to the box height h with
 *   `std_weight_position` 1/20 and `std_weight_velocity` 1/160.
 *
 * Units: boxes are `[x1, y1, x2, y2]` in source pixels. Time is counted in STEPS: one step per call of
 * {@link ByteTracker.update} (or per `frameGap` source frames when that option is set). The pipeline
 * samples every s-th source frame and calls `update` once per sampled frame, so velocities are pixels per
 * update call (= per s source frames) and `trackBuffer` is a number of update calls (= `trackBuffer * s`
 * source frames). The reference counts source frames (`buffer_size = int(frame_rate / 30 * track_buffer)`
 * = 1 s of video with its defaults); the same span here is `round(fps / s)` update calls for a video at
 * `fps` frames per second sampled every s-th frame, so pass `trackBuffer` accordingly.
 * The process noise is per step as in the reference, so at large strides the motion model is
 * overconfident: keep the stride small enough that a player moves less than about a box width per step.
 */
import { iou, type BBox, type Detection } from '../detection/geometry';
import { linearAssignment } from './assignment';
import { bboxToXyah, KalmanBoxFilter, xyahToBbox, type KalmanState } from './kalman';

/** A detection with the id of the confirmed track it was assigned to. */
export type TrackedDetection = Detection & {
  /** Compact track id: 0, 1, 2, ... in order of confirmation within one tracker (one video). */
  trackId: number;
};

/** Options of {@link ByteTracker}; defaults are the ByteTrack reference's (see the file header). */
export interface ByteTrackerOptions {
  /** Detections with score > this are "high" (first association, may start tracks). Reference `track_thresh` 0.5. */
  highThreshold?: number;
  /** Detections with lowThreshold < score <= highThreshold are "low" (second association only); lower ones are ignored. Reference 0.1. */
  lowThreshold?: number;
  /** An unmatched high detection starts a tentative track when score >= this. Reference `det_thresh = track_thresh + 0.1` = 0.6. */
  newTrackThreshold?: number;
  /** First association (high detections vs confirmed and lost tracks): cost limit on 1 - IoU. Reference `match_thresh` 0.8. */
  matchThreshold?: number;
  /** Second association (low detections vs still-tracked tracks): cost limit on 1 - IoU. Reference 0.5. */
  secondMatchThreshold?: number;
  /** Third association (remaining high detections vs tentative tracks): cost limit on 1 - IoU. Reference 0.7. */
  unconfirmedMatchThreshold?: number;
  /**
   * A lost track is removed at the end of the first update in which more than this many steps (update
   * calls, see `frameGap`) have passed since its last match; association runs before removal, as in the
   * reference, so it can still be re-found in that update (at most trackBuffer + 1 steps after its last
   * match). Reference `track_buffer` 30 frames (at 30 fps); with a sampling stride s one step is s source
   * frames. Integer >= 0 (0: a track lost in one update is removed in the same update).
   */
  trackBuffer?: number;
  /**
   * A tentative track is confirmed (and gets an id) on its `minHits`-th consecutive matched update; a miss
   * before that deletes it. Reference: 2 (born unconfirmed, confirmed on the next frame's match), except
   * for tracks born in the tracker's very first update, which are confirmed at once. Integer >= 1.
   */
  minHits?: number;
  /**
   * Expected increase of `frameId` between consecutive calls (the sampling stride, in source frames). When
   * set, a call whose frameId advanced by g counts as max(1, round(g / frameGap)) steps (the Kalman filter
   * predicts that many times and lost tracks age that many steps), so a sampled frame that is missing does
   * not distort the motion model. When absent every call is exactly one step.
   */
  frameGap?: number;
  /**
   * Score fusion of the reference for non-MOT20 data (`matching.fuse_score`): first and third stage cost =
   * 1 - IoU * score instead of 1 - IoU. Default false: plain 1 - IoU, the similarity of the paper's
   * Algorithm 1 (the reference turns fusion on for MOT17 and off for MOT20).
   */
  fuseScore?: boolean;
  /** When true (default), a detection is only associated with tracks of its own class. The reference is single-class. */
  classAware?: boolean;
}

/** Lifecycle state of a track (reference `TrackState` plus ByteTrack's `is_activated` flag). */
export type TrackState = 'tentative' | 'tracked' | 'lost';

/** A snapshot of one confirmed track, for debugging and drawing. */
export interface TrackInfo {
  trackId: number;
  state: Exclude<TrackState, 'tentative'>;
  /** Kalman estimate of the box `[x1, y1, x2, y2]`, pixels (after this update; predicted for lost tracks). */
  bbox: BBox;
  /** Estimated centre velocity [vx, vy], pixels per step. */
  velocity: [number, number];
  /** Steps since the track was last matched (0 when matched in the latest update). */
  stepsSinceUpdate: number;
}

interface Track {
  /** Compact id, set at confirmation. */
  id: number | undefined;
  state: TrackState;
  kf: KalmanState;
  classId: number;
  /** Consecutive matched updates (birth counts as 1). */
  hits: number;
  /** Step of birth and of the last match (reference `start_frame`, `end_frame`). */
  startStep: number;
  lastStep: number;
}

/** Serialised {@link ByteTracker} state ({@link ByteTracker.snapshot}); Kalman mean 8 and covariance 8x8 values. */
export interface ByteTrackerState {
  version: 1;
  nextId: number;
  updates: number;
  step: number;
  lastFrameId: number | null;
  tracks: { id: number | null; state: TrackState; mean: number[]; covariance: number[]; classId: number; hits: number; startStep: number; lastStep: number }[];
}

const FORBIDDEN = 1e6;
/** Reference `remove_duplicate_stracks`: a tracked and a lost track with 1 - IoU < 0.15 are duplicates. */
const DUPLICATE_IOU_DISTANCE = 0.15;

/**
 * ByteTrack (Zhang et al., ECCV 2022, arXiv:2110.06864) over {@link Detection}s. Use one instance per video:
 * track ids start at 0 in every instance.
 *
 * Each {@link update} (reference `BYTETracker.update`):
 * 1. detections are split into high (score > highThreshold) and low (lowThreshold < score <= highThreshold);
 *    boxes with non-positive width or height are ignored;
 * 2. every track is predicted one step (per step, see `frameGap`) by the {@link KalmanBoxFilter}; lost tracks
 *    have their height velocity zeroed first, as in the reference `multi_predict`;
 * 3. first association: high detections vs confirmed tracks (tracked and lost), cost 1 - IoU(predicted box,
 *    detection), {@link linearAssignment} with limit `matchThreshold`; matched lost tracks are re-found;
 * 4. second association: low detections vs the still unmatched tracks that were tracked (not lost), limit
 *    `secondMatchThreshold`; tracked tracks still unmatched become lost;
 * 5. third association: remaining high detections vs tentative tracks, limit `unconfirmedMatchThreshold`;
 *    a tentative track is confirmed on its `minHits`-th consecutive match and deleted on its first miss;
 * 6. remaining high detections with score >= newTrackThreshold start tentative tracks (confirmed at once in
 *    the tracker's first update, as the reference does for frame 1, or when minHits is 1);
 * 7. lost tracks unmatched for more than `trackBuffer` steps are removed; a tracked track and a lost track
 *    overlapping with IoU > 0.85 are duplicates and the one with the shorter life is dropped (reference
 *    `remove_duplicate_stracks`; on a tie the tracked one);
 * 8. tracks confirmed in this update get ids, in order of their detection's index.
 *
 * Matched tracks are corrected by the Kalman update with the detection box. A detection is returned only
 * when it was matched to a confirmed track; detections that were unmatched, below the thresholds, or that
 * belong to a tentative track are "not yet a track" and are not returned.
 */
export class ByteTracker {
  private readonly high: number;
  private readonly low: number;
  private readonly newThresh: number;
  private readonly match1: number;
  private readonly match2: number;
  private readonly match3: number;
  private readonly buffer: number;
  private readonly minHits: number;
  private readonly frameGap: number | undefined;
  private readonly fuseScore: boolean;
  private readonly classAware: boolean;
  private readonly kf = new KalmanBoxFilter();
  private tracks: Track[] = [];
  private nextId = 0;
  private updates = 0;
  private step = 0;
  private lastFrameId = -Infinity;
  private predicted = new Map<number, BBox>();

  /**
   * @throws RangeError when a threshold is outside [0, 1] (cost limits: (0, 1]), lowThreshold >
   *   highThreshold, trackBuffer is not an integer >= 0, minHits is not an integer >= 1, or frameGap is not
   *   a positive finite number
   */
  constructor(opts: ByteTrackerOptions = {}) {
    this.high = opts.highThreshold ?? 0.5;
    this.low = opts.lowThreshold ?? 0.1;
    this.newThresh = opts.newTrackThreshold ?? this.high + 0.1;
    this.match1 = opts.matchThreshold ?? 0.8;
    this.match2 = opts.secondMatchThreshold ?? 0.5;
    this.match3 = opts.unconfirmedMatchThreshold ?? 0.7;
    this.buffer = opts.trackBuffer ?? 30;
    this.minHits = opts.minHits ?? 2;
    this.frameGap = opts.frameGap;
    this.fuseScore = opts.fuseScore ?? false;
    this.classAware = opts.classAware ?? true;
    const inUnit = (name: string, v: number, open = false) => {
      if (!(open ? v > 0 && v <= 1 : v >= 0 && v <= 1)) throw new RangeError(`${name} must be in ${open ? '(0, 1]' : '[0, 1]'}, got ${v}`);
    };
    inUnit('highThreshold', this.high);
    inUnit('lowThreshold', this.low);
    inUnit('newTrackThreshold', this.newThresh);
    inUnit('matchThreshold', this.match1, true);
    inUnit('secondMatchThreshold', this.match2, true);
    inUnit('unconfirmedMatchThreshold', this.match3, true);
    if (this.low > this.high) throw new RangeError(`lowThreshold ${this.low} is above highThreshold ${this.high}`);
    if (!Number.isInteger(this.buffer) || this.buffer < 0) throw new RangeError(`trackBuffer must be an integer >= 0, got ${this.buffer}`);
    if (!Number.isInteger(this.minHits) || this.minHits < 1) throw new RangeError(`minHits must be an integer >= 1, got ${this.minHits}`);
    if (this.frameGap !== undefined && !(Number.isFinite(this.frameGap) && this.frameGap > 0)) {
      throw new RangeError(`frameGap must be a positive number, got ${this.frameGap}`);
    }
  }

  /** Number of track ids handed out so far (ids are 0 .. confirmedTrackCount - 1). Tentative tracks are not counted. */
  get confirmedTrackCount(): number {
    return this.nextId;
  }

  /** Confirmed tracks that are not currently tracked: lost (kept for re-identification) or removed. */
  get removedOrLostCount(): number {
    return this.nextId - this.tracks.filter((t) => t.state === 'tracked' && t.id !== undefined).length;
  }

  /**
   * The tracker's whole state as plain JSON-safe data (numbers and arrays; a JSON round trip keeps every
   * double exactly), so a retried step can continue from a checkpoint with identical results
   * ({@link ByteTracker.restore}). The options are not included: restore with the same options.
   */
  snapshot(): ByteTrackerState {
    return {
      version: 1,
      nextId: this.nextId,
      updates: this.updates,
      step: this.step,
      lastFrameId: Number.isFinite(this.lastFrameId) ? this.lastFrameId : null,
      tracks: this.tracks.map((t) => ({
        id: t.id ?? null,
        state: t.state,
        mean: Array.from(t.kf.mean),
        covariance: Array.from(t.kf.covariance),
        classId: t.classId,
        hits: t.hits,
        startStep: t.startStep,
        lastStep: t.lastStep,
      })),
    };
  }

  /**
   * A tracker with `opts` continuing from `state` (from {@link snapshot} of a tracker with the same options).
   * @throws RangeError for a state of another version or with malformed Kalman arrays
   */
  static restore(opts: ByteTrackerOptions, state: ByteTrackerState): ByteTracker {
    if (state.version !== 1) throw new RangeError(`unknown ByteTracker state version ${String(state.version)}`);
    const t = new ByteTracker(opts);
    t.nextId = state.nextId;
    t.updates = state.updates;
    t.step = state.step;
    t.lastFrameId = state.lastFrameId ?? -Infinity;
    t.tracks = state.tracks.map((x) => {
      if (x.mean.length !== 8 || x.covariance.length !== 64) throw new RangeError('malformed Kalman state in ByteTracker state');
      return {
        id: x.id ?? undefined,
        state: x.state,
        kf: { mean: Float64Array.from(x.mean), covariance: Float64Array.from(x.covariance) },
        classId: x.classId,
        hits: x.hits,
        startStep: x.startStep,
        lastStep: x.lastStep,
      };
    });
    return t;
  }

  /** Predicted box `[x1, y1, x2, y2]` of every confirmed track (tracked or lost) in the latest update, before its correction, by id. */
  get lastPredictions(): ReadonlyMap<number, BBox> {
    return this.predicted;
  }

  /** Snapshot of the confirmed tracks still held (tracked and lost), by id. */
  trackInfo(): TrackInfo[] {
    return this.tracks
      .filter((t): t is Track & { id: number; state: 'tracked' | 'lost' } => t.id !== undefined && t.state !== 'tentative')
      .map((t) => ({
        trackId: t.id,
        state: t.state,
        bbox: xyahToBbox(t.kf.mean),
        velocity: [t.kf.mean[4], t.kf.mean[5]] as [number, number],
        stepsSinceUpdate: this.step - t.lastStep,
      }))
      .sort((a, b) => a.trackId - b.trackId);
  }

  /**
   * Tracks one sampled frame.
   *
   * @param frameId index of the frame in the source video; must increase from call to call
   * @param dets the frame's detections (bbox `[x1, y1, x2, y2]` in source pixels, score in 0..1); not modified
   * @returns the detections matched to confirmed tracks, in input order, each a copy of the detection (its
   *   own bbox and score, not the Kalman estimate) with `trackId`
   * @throws RangeError when `frameId` does not increase or a detection has a non-finite bbox or score
   */
  update(frameId: number, dets: readonly Detection[]): TrackedDetection[] {
    if (!(frameId > this.lastFrameId)) throw new RangeError(`frame_id ${frameId} does not follow ${this.lastFrameId}`);
    for (const d of dets) {
      if (!d.bbox.every(Number.isFinite) || !Number.isFinite(d.score)) {
        throw new RangeError(`detection with non-finite bbox or score in frame ${frameId}: [${d.bbox.join(', ')}] ${d.score}`);
      }
    }
    const steps = this.frameGap !== undefined && this.updates > 0 ? Math.max(1, Math.round((frameId - this.lastFrameId) / this.frameGap)) : 1;
    const firstUpdate = this.updates === 0;
    this.lastFrameId = frameId;
    this.updates++;
    this.step += steps;
    const now = this.step;

    // 1. Split detections.
    const valid = (d: Detection) => d.bbox[2] > d.bbox[0] && d.bbox[3] > d.bbox[1];
    const highIdx: number[] = [];
    const lowIdx: number[] = [];
    dets.forEach((d, i) => {
      if (!valid(d)) return;
      if (d.score > this.high) highIdx.push(i);
      else if (d.score > this.low) lowIdx.push(i);
    });
    const meas = dets.map((d) => (valid(d) ? bboxToXyah(d.bbox) : undefined));

    // 2. Predict.
    for (const t of this.tracks) {
      for (let k = 0; k < steps; k++) {
        if (t.state === 'lost') {
          const mean = t.kf.mean.slice();
          mean[7] = 0;
          t.kf = this.kf.predict({ mean, covariance: t.kf.covariance });
        } else {
          t.kf = this.kf.predict(t.kf);
        }
      }
    }

    this.predicted = new Map(this.tracks.filter((t) => t.id !== undefined).map((t) => [t.id!, xyahToBbox(t.kf.mean)]));
    const trackOfDet = new Map<number, Track>();
    const confirmedNow: Track[] = [];
    const assoc = (ts: Track[], detIdx: number[], thresh: number, fuse: boolean) => {
      const boxes = ts.map((t) => xyahToBbox(t.kf.mean));
      const cost = ts.map((t, r) =>
        detIdx.map((di) => {
          const d = dets[di];
          if (this.classAware && d.classId !== t.classId) return FORBIDDEN;
          const v = iou(boxes[r], d.bbox);
          if (v <= 0) return FORBIDDEN;
          return 1 - (fuse ? v * d.score : v);
        }),
      );
      return linearAssignment(cost, detIdx.length, thresh);
    };
    const correct = (t: Track, di: number) => {
      t.kf = this.kf.update(t.kf, meas[di]!);
      t.lastStep = now;
      trackOfDet.set(di, t);
    };

    // 3. First association.
    const pool = this.tracks.filter((t) => t.state !== 'tentative');
    const unconfirmed = this.tracks.filter((t) => t.state === 'tentative');
    const a1 = assoc(pool, highIdx, this.match1, this.fuseScore);
    for (const [r, c] of a1.matches) {
      correct(pool[r], highIdx[c]);
      pool[r].state = 'tracked';
    }
    const highLeft = a1.unmatchedCols.map((c) => highIdx[c]);

    // 4. Second association.
    const rTracked = a1.unmatchedRows.map((r) => pool[r]).filter((t) => t.state === 'tracked');
    const a2 = assoc(rTracked, lowIdx, this.match2, false);
    for (const [r, c] of a2.matches) correct(rTracked[r], lowIdx[c]);
    for (const r of a2.unmatchedRows) rTracked[r].state = 'lost';

    // 5. Tentative tracks.
    const a3 = assoc(unconfirmed, highLeft, this.match3, this.fuseScore);
    const dead = new Set<Track>();
    for (const [r, c] of a3.matches) {
      const t = unconfirmed[r];
      correct(t, highLeft[c]);
      t.hits++;
      if (t.hits >= this.minHits) {
        t.state = 'tracked';
        confirmedNow.push(t);
      }
    }
    for (const r of a3.unmatchedRows) dead.add(unconfirmed[r]);

    // 6. New tracks.
    const born: Track[] = [];
    for (const c of a3.unmatchedCols) {
      const di = highLeft[c];
      if (dets[di].score < this.newThresh) continue;
      const t: Track = {
        id: undefined,
        state: 'tentative',
        kf: this.kf.initiate(meas[di]!),
        classId: dets[di].classId,
        hits: 1,
        startStep: now,
        lastStep: now,
      };
      trackOfDet.set(di, t);
      if (firstUpdate || this.minHits <= 1) {
        t.state = 'tracked';
        confirmedNow.push(t);
      }
      born.push(t);
    }

    // 7. Remove expired lost tracks and duplicates.
    for (const t of this.tracks) {
      if (t.state === 'lost' && now - t.lastStep > this.buffer) dead.add(t);
    }
    let alive = [...this.tracks.filter((t) => !dead.has(t)), ...born];
    const active = alive.filter((t) => t.state !== 'lost');
    const lost = alive.filter((t) => t.state === 'lost');
    if (active.length && lost.length) {
      const lostBoxes = lost.map((t) => xyahToBbox(t.kf.mean));
      for (const p of active) {
        const pb = xyahToBbox(p.kf.mean);
        for (let q = 0; q < lost.length; q++) {
          if (dead.has(lost[q]) || 1 - iou(pb, lostBoxes[q]) >= DUPLICATE_IOU_DISTANCE) continue;
          const lifeP = p.lastStep - p.startStep;
          const lifeQ = lost[q].lastStep - lost[q].startStep;
          if (lifeP > lifeQ) dead.add(lost[q]);
          else dead.add(p);
        }
      }
      alive = alive.filter((t) => !dead.has(t));
    }
    this.tracks = alive;

    // 8. Ids for tracks confirmed now, in order of their detection's index.
    const detOfTrack = new Map<Track, number>();
    for (const [di, t] of trackOfDet) detOfTrack.set(t, di);
    confirmedNow
      .filter((t) => !dead.has(t))
      .sort((a, b) => detOfTrack.get(a)! - detOfTrack.get(b)!)
      .forEach((t) => {
        t.id = this.nextId++;
      });

    const out: TrackedDetection[] = [];
    dets.forEach((d, di) => {
      const t = trackOfDet.get(di);
      if (t && t.id !== undefined && !dead.has(t)) out.push({ ...d, bbox: [...d.bbox] as BBox, trackId: t.id });
    });
    return out;
  }
}

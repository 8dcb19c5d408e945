/**
 * Greedy IoU tracker: links per-frame detections into tracks by box overlap alone.
 *
 * BASELINE ONLY, kept with the tests: the pipeline tracks with ByteTrack (src/vision/tracking/bytetrack.ts).
 * This tracker has no motion model (a track is matched by its last box), no use of low-score detections and
 * no re-identification, so fast motion, crossings and occlusions longer than `maxAge` updates break or swap
 * tracks; the tests keep it to show, on the same sequences, what ByteTrack's Kalman motion and two-stage
 * association fix.
 *
 * Use one tracker per video; track ids restart at 0.
 */
import { iou, type BBox, type Detection } from '../../src/vision/detection/geometry';
import type { TrackedDetection } from '../../src/vision/tracking/bytetrack';

export type { TrackedDetection };

/** Options of {@link IouTracker}. */
export interface IouTrackerOptions {
  /** Minimum IoU between a track's last box and a detection for them to match (default 0.3). */
  iouThreshold?: number;
  /**
   * A track can still be matched when it was last seen at most `maxAge` updates ago, i.e. after missing
   * fewer than `maxAge` consecutive updates (default 30). Units: calls to {@link IouTracker.update}, not
   * source frames, so with a frame stride the time span is `maxAge * stride` frames.
   */
  maxAge?: number;
  /** When true (default) a detection only matches a track of the same class. */
  classAware?: boolean;
}

interface Track {
  id: number;
  bbox: BBox;
  classId: number;
  /** Index of the update call that last matched this track. */
  lastUpdate: number;
  lastFrameId: number;
}

/**
 * Greedy IoU tracker (baseline; the pipeline uses ByteTrack).
 *
 * Each {@link update}: all (track, detection) pairs with IoU >= `iouThreshold` (same class when
 * `classAware`) among tracks last seen within `maxAge` updates are sorted by descending IoU (ties: older
 * track first, then detection order) and matched greedily, each track and detection at most once. A matched
 * track takes the detection's box. Unmatched detections start new tracks, numbered in detection order.
 * Tracks older than `maxAge` are forgotten.
 */
export class IouTracker {
  private readonly iouThreshold: number;
  private readonly maxAge: number;
  private readonly classAware: boolean;
  private tracks: Track[] = [];
  private nextId = 0;
  private updates = 0;
  private lastFrameId = -Infinity;

  /** @throws RangeError when `iouThreshold` is outside (0, 1] or `maxAge` is not a positive integer */
  constructor(opts: IouTrackerOptions = {}) {
    this.iouThreshold = opts.iouThreshold ?? 0.3;
    this.maxAge = opts.maxAge ?? 30;
    this.classAware = opts.classAware ?? true;
    if (!(this.iouThreshold > 0 && this.iouThreshold <= 1)) throw new RangeError(`iouThreshold must be in (0, 1], got ${this.iouThreshold}`);
    if (!Number.isInteger(this.maxAge) || this.maxAge < 1) throw new RangeError(`maxAge must be a positive integer, got ${this.maxAge}`);
  }

  /** Number of track ids handed out so far (ids are 0 .. trackCount - 1). */
  get trackCount(): number {
    return this.nextId;
  }

  /**
   * Assigns a track id to each detection of one frame.
   *
   * @param frameId index of the frame in the source video; must increase from call to call
   * @param dets the frame's detections (bbox [x1, y1, x2, y2] in source pixels); not modified
   * @returns the detections in the same order, each with its `trackId`
   * @throws RangeError when `frameId` does not increase
   */
  update(frameId: number, dets: readonly Detection[]): TrackedDetection[] {
    if (!(frameId > this.lastFrameId)) throw new RangeError(`frame_id ${frameId} does not follow ${this.lastFrameId}`);
    this.lastFrameId = frameId;
    const now = ++this.updates;
    this.tracks = this.tracks.filter((t) => now - t.lastUpdate <= this.maxAge);

    const pairs: { t: number; d: number; iou: number }[] = [];
    for (let t = 0; t < this.tracks.length; t++) {
      for (let d = 0; d < dets.length; d++) {
        if (this.classAware && this.tracks[t].classId !== dets[d].classId) continue;
        const v = iou(this.tracks[t].bbox, dets[d].bbox);
        if (v >= this.iouThreshold) pairs.push({ t, d, iou: v });
      }
    }
    pairs.sort((a, b) => b.iou - a.iou || this.tracks[a.t].id - this.tracks[b.t].id || a.d - b.d);

    const trackOf = new Array<number>(dets.length).fill(-1);
    const usedTrack = new Set<number>();
    for (const p of pairs) {
      if (usedTrack.has(p.t) || trackOf[p.d] !== -1) continue;
      usedTrack.add(p.t);
      trackOf[p.d] = p.t;
    }

    return dets.map((det, d) => {
      let track: Track;
      if (trackOf[d] === -1) {
        track = { id: this.nextId++, bbox: [...det.bbox], classId: det.classId, lastUpdate: now, lastFrameId: frameId };
        this.tracks.push(track);
      } else {
        track = this.tracks[trackOf[d]];
        track.bbox = [...det.bbox];
        track.lastUpdate = now;
        track.lastFrameId = frameId;
      }
      return { ...det, trackId: track.id };
    });
  }
}

/**
 * Step 5 on one sampled frame: decode → detect (full frame plus tiles when players are small) → pitch mask
 * and feet-on-pitch filter → tracker update (ByteTrack, with tracklet cuts when enabled: the appearance of
 * each tracked box is taken from the frame's pixels). The activity and the benchmark (`bench/detect.ts`) both
 * call {@link detectAndTrackFrame}, so the benchmark measures exactly what the pipeline runs.
 */
import type { Detector } from './detection/detector';
import type { Detection } from './detection/geometry';
import { detectTiledWithStats, type TiledDetectOptions, type TiledDetectStats } from './detection/tiling';
import { decodeImage, type RgbFrame } from './image/rgb';
import { filterOnPitch } from './pitch/feet';
import { computePitchMask } from './pitch/mask';
import type { PictureArea, PitchColour, PitchParams } from './pitch/model';
import type { TrackedDetection } from './tracking/bytetrack';
import type { TrackletCut } from './tracking/tracklets';

/**
 * The tracker of step 5: `ByteTracker` (./tracking/bytetrack.ts) or, with tracklet cuts, `TrackletTracker`
 * (./tracking/tracklets.ts), which also looks at the frame's pixels and reports its cuts.
 */
export interface FrameTracker {
  update(frameId: number, dets: readonly Detection[], frame: RgbFrame): TrackedDetection[];
  /** Cuts of the latest update (TrackletTracker only). */
  readonly lastCuts?: readonly TrackletCut[];
}

/** Per-frame options of {@link detectAndTrackFrame}. */
export interface FrameDetectOptions {
  detect: TiledDetectOptions;
  /**
   * Pitch colour model of the video when a pitch was found, with its mask parameters and the picture area
   * inside black bars (step 4); null keeps every detection.
   */
  pitch: { colour: PitchColour; params?: Partial<PitchParams>; picture?: PictureArea } | null;
}

/** Where the time of one frame went, milliseconds (wall clock, `performance.now`). */
export interface FrameTimings {
  decodeMs: number;
  /** Model time only (sum over full-frame and tile passes). */
  inferenceMs: number;
  /** The whole detection call (letterbox, inference, decode, NMS, tiling, merging). */
  detectMs: number;
  pitchMs: number;
  trackMs: number;
  totalMs: number;
}

/** Result of one frame. */
export interface FrameResult {
  width: number;
  height: number;
  /** Detections that belong to confirmed tracks (bbox [x1, y1, x2, y2] in frame pixels). */
  tracked: TrackedDetection[];
  /** Detections dropped before tracking, with the reason. */
  dropped: { det: Detection; reason: string }[];
  /** Detections passed to the tracker but not (yet) part of a confirmed track. */
  untracked: number;
  /** Tracklets cut in this frame (empty without cuts). */
  cuts: TrackletCut[];
  detectStats: TiledDetectStats;
  timings: FrameTimings;
}

/**
 * Runs step 5 on one frame and advances `tracker`.
 * @param input the sampled frame as stored (`selected_frames/frame_{id}.jpg`), or its decoded pixels
 *   (from the run cache; then `timings.decodeMs` is ~0)
 * @param frameId true source frame index (strictly increasing between calls on one tracker)
 * @throws what the detector throws (model errors, malformed frames)
 */
export async function detectAndTrackFrame(
  detector: Detector,
  tracker: FrameTracker,
  input: Buffer | RgbFrame,
  frameId: number,
  opts: FrameDetectOptions,
): Promise<FrameResult> {
  const t0 = performance.now();
  const frame = Buffer.isBuffer(input) ? await decodeImage(input) : input;
  const t1 = performance.now();
  const { detections, stats } = await detectTiledWithStats(detector, frame, opts.detect);
  const t2 = performance.now();
  const mask = opts.pitch ? await computePitchMask(frame, opts.pitch.colour, opts.pitch.params, opts.pitch.picture) : null;
  const { kept, dropped } = filterOnPitch(detections, mask);
  const t3 = performance.now();
  const tracked = tracker.update(frameId, kept, frame);
  const t4 = performance.now();
  return {
    width: frame.width,
    height: frame.height,
    tracked,
    dropped,
    untracked: kept.length - tracked.length,
    cuts: [...(tracker.lastCuts ?? [])],
    detectStats: stats,
    timings: { decodeMs: t1 - t0, inferenceMs: stats.inferenceMs, detectMs: t2 - t1, pitchMs: t3 - t2, trackMs: t4 - t3, totalMs: t4 - t0 },
  };
}

/** One frame of step 5 as `detections.json` stores it (src/storage/artifacts.ts `frameDetectionsSchema`). */
export interface FrameRecord {
  frame_id: number;
  width: number;
  height: number;
  tiled: boolean;
  /** Tracked boxes: bbox [x1, y1, x2, y2] in frame pixels rounded to 0.01, score rounded to 0.0001. */
  detections: { track_id: number; bbox: [number, number, number, number]; score: number; class: number }[];
  /** Boxes dropped before tracking, rounded the same way, with the filter's reason. */
  dropped: { bbox: [number, number, number, number]; score: number; reason: string }[];
}

const round2 = (x: number) => Math.round(x * 100) / 100;
const round4 = (x: number) => Math.round(x * 10000) / 10000;

/**
 * The stored record of frame `frameId` from its {@link FrameResult}: step 5 (src/activities/detect.ts) and the
 * identity evaluation's replay (scripts/identity/replay.ts) both write frames through it, so the two agree
 * byte for byte.
 */
export function frameRecord(frameId: number, r: FrameResult): FrameRecord {
  return {
    frame_id: frameId,
    width: r.width,
    height: r.height,
    tiled: r.detectStats.tiled,
    detections: r.tracked.map((d) => ({ track_id: d.trackId, bbox: d.bbox.map(round2) as [number, number, number, number], score: round4(d.score), class: d.classId })),
    dropped: r.dropped.map((d) => ({ bbox: d.det.bbox.map(round2) as [number, number, number, number], score: round4(d.det.score), reason: d.reason })),
  };
}

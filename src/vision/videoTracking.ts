/**
 * Step 5 over one video, without storage or Temporal: per sampled frame, detection and tracklet tracking
 * (`detectAndTrackFrame`, ./players.ts) and the kit colour of each tracked box (./teams/kit.ts); at the end,
 * fragment joins (./tracking/join.ts) and team and role per joined class (./teams/cluster.ts).
 *
 * `detectPlayers` (src/activities/detect.ts, with checkpoints and storage around it) and the identity
 * evaluation's replay (scripts/identity/replay.ts, `npm run eval:identity`) both run this code, so what the
 * evaluation measures is what the pipeline writes. The frames it returns have the shape of `detections.json`'s
 * `frames` (src/storage/artifacts.ts `frameDetectionsSchema`), and {@link finishVideo} returns its
 * `tracklets` and `teams` blocks.
 */
import type { PipelineOptions } from '../validation';
import type { Detector } from './detection/detector';
import type { BBox } from './detection/geometry';
import { decodeImage, type RgbFrame } from './image/rgb';
import type { PitchModel } from './pitch/model';
import { detectAndTrackFrame, frameRecord, type FrameDetectOptions, type FrameResult } from './players';
import { assignTeams, type TeamsResult } from './teams/cluster';
import { boxKit, classKitInputs } from './teams/kit';
import type { Lab } from './teams/lab';
import { extractAppearance } from './tracking/appearance';
import type { ByteTrackerOptions } from './tracking/bytetrack';
import { classesOf, decideJoins, endAppearances, joinCandidates, type JoinOptions, type TrackletBoxes, type TrackletJoin } from './tracking/join';
import { TrackletTracker, type CutOptions, type TrackletTrackerState } from './tracking/tracklets';

/** The option groups step 5 reads (src/validation.ts; defaults applied). */
export type VideoTrackingOptions = Pick<PipelineOptions, 'frameStride' | 'detector' | 'tracker' | 'teams'>;

/** One tracked box as stored: `track_id` the class (the tracklet id until {@link finishVideo} joins). */
export interface TrackedBox {
  track_id: number;
  tracklet_id?: number;
  bbox: [number, number, number, number];
  score: number;
  class: number;
  /** Kit colour, CIELAB (`boxKit`, ./teams/kit.ts), rounded to 0.1; absent without one. */
  kit?: [number, number, number];
}

/** A tracklet cut as stored (`old_tracklet_id` ended at `frame_id`, `new_tracklet_id` continues). */
export interface StoredCut {
  frame_id: number;
  reason: string;
  old_tracklet_id: number;
  new_tracklet_id: number;
}

/** One sampled frame as stored in `detections.json` (and in step 5's checkpoint chunks, with `cuts`). */
export interface TrackedFrame {
  frame_id: number;
  width: number;
  height: number;
  tiled?: boolean;
  detections: TrackedBox[];
  dropped?: { bbox: [number, number, number, number]; score: number; reason: string }[];
  /** Cuts of this frame; moved to {@link TrackletRecord}.cuts by {@link VideoTracking.finish}. */
  cuts?: StoredCut[];
  /** True when a new shot begins at this frame (a cut or dissolve, src/vision/tracking/shotChange.ts); absent otherwise. */
  shot_change?: true;
}

/** The `tracklets` block of `detections.json`. */
export interface TrackletRecord {
  count: number;
  cuts: StoredCut[];
  joins: { from: number; to: number; track_id: number; gap_frames: number; position: number; appearance: number }[];
}

/** The `teams` block of `detections.json`: {@link TeamsResult} with ids as stored (`track_id`). */
export type StoredTeams = Omit<TeamsResult, 'classes'> & { classes: (Omit<TeamsResult['classes'][number], 'trackId'> & { track_id: number })[] };

const round1 = (x: number) => Math.round(x * 10) / 10;
const round4 = (x: number) => Math.round(x * 10000) / 10000;

/**
 * One video's step-5 state: the tracker and the per-frame options derived from the pipeline options, the
 * video's fps and its pitch model (step 4). Use one per video; frames in ascending `frameId`.
 */
export class VideoTracking {
  /** ByteTrack's buffer in tracker updates (sampled frames): `bufferSeconds` x fps / `frameStride`. */
  readonly trackBuffer: number;
  readonly trackerOptions: ByteTrackerOptions;
  readonly cutOptions: CutOptions;
  readonly frameOptions: FrameDetectOptions;
  private readonly tracker: TrackletTracker;
  private readonly kitPitch: PitchModel | null;

  /**
   * @param video.fps frames per second of the source (0 or unknown: 25)
   * @param video.grass step 4's pitch model; without a pitch nothing is keyed out and no kit colours are taken
   * @param state a tracker snapshot ({@link snapshot}) to continue from (a resumed attempt)
   * @throws RangeError for tracker options out of range (`TrackletTracker`)
   */
  constructor(
    readonly opts: VideoTrackingOptions,
    video: { fps: number; grass: PitchModel | null | undefined },
    state?: TrackletTrackerState,
  ) {
    const fps = video.fps || 25;
    this.trackBuffer = Math.max(1, Math.round((opts.tracker.bufferSeconds * fps) / opts.frameStride));
    const { bufferSeconds: _seconds, cuts, joins: _joins, ...byte } = opts.tracker;
    this.trackerOptions = { ...byte, trackBuffer: this.trackBuffer, frameGap: opts.frameStride };
    const pitch = video.grass?.pitchFound ? video.grass : null;
    this.cutOptions = cutOptionsOf(cuts, pitch);
    this.kitPitch = opts.teams.enabled ? pitch : null;
    this.frameOptions = {
      detect: {
        confThreshold: opts.detector.confThreshold,
        iouThreshold: opts.detector.iouThreshold,
        classes: opts.detector.classes,
        tiles: opts.detector.tiles,
        tileSize: opts.detector.tileSize,
        overlap: opts.detector.tileOverlap,
      },
      pitch: pitch ? { colour: pitch, params: pitch.pitch?.params, picture: pitch.pitch?.picture } : null,
    };
    this.tracker = state ? TrackletTracker.restore(this.trackerOptions, this.cutOptions, state) : new TrackletTracker(this.trackerOptions, this.cutOptions);
  }

  /**
   * Step 5 on one sampled frame: detect, filter, track, take kit colours.
   * @param input the frame as stored (JPEG) or decoded
   * @returns the stored frame entry (`track_id` = tracklet id; cuts of this frame in `cuts`) and the raw
   *   result (timings, drop reasons, tiling)
   * @throws what the detector or the decoder throws
   */
  async track(detector: Detector, input: Buffer | RgbFrame, frameId: number): Promise<{ frame: TrackedFrame; result: FrameResult }> {
    const image = Buffer.isBuffer(input) ? await decodeImage(input) : input;
    const r = await detectAndTrackFrame(detector, this.tracker, image, frameId, this.frameOptions);
    const rec = frameRecord(frameId, r);
    const frame: TrackedFrame = {
      ...rec,
      detections: rec.detections.map((d, i) => ({ ...d, ...this.kitOf(image, r.tracked[i].bbox) })),
      ...(this.tracker.lastShotChange ? { shot_change: true as const } : {}),
      ...(r.cuts.length ? { cuts: r.cuts.map((c) => ({ frame_id: c.frameId, reason: c.reason, old_tracklet_id: c.oldTrackletId, new_tracklet_id: c.newTrackletId })) } : {}),
    };
    return { frame, result: r };
  }

  /**
   * The stored frame of boxes given from outside (corrected tracks, src/dataset/exports.ts `tracksFromMot`):
   * no detection and no tracking; kit colours are taken as {@link track} takes them. `class` is the first of
   * `detector.classes` (0, person, by default).
   * @param input the frame as stored (JPEG) or decoded
   * @param boxes the frame's boxes, `bbox` `[x1, y1, x2, y2]` in source pixels
   * @throws what the decoder throws
   */
  async importedFrame(input: Buffer | RgbFrame, frameId: number, boxes: readonly { track_id: number; bbox: [number, number, number, number]; score: number }[]): Promise<TrackedFrame> {
    const image = Buffer.isBuffer(input) ? await decodeImage(input) : input;
    const cls = this.opts.detector.classes[0];
    return { frame_id: frameId, width: image.width, height: image.height, detections: boxes.map((b) => ({ track_id: b.track_id, bbox: b.bbox, score: b.score, class: cls, ...this.kitOf(image, b.bbox) })) };
  }

  /** The kit colour of a box as stored (CIELAB rounded to 0.1), when teams are on and the video has a pitch. */
  private kitOf(image: RgbFrame, bbox: BBox): { kit?: [number, number, number] } {
    const kit = this.kitPitch && boxKit(image, bbox, this.kitPitch);
    return kit ? { kit: kit.lab.map(round1) as [number, number, number] } : {};
  }

  /** The tracker's state after the latest frame, for a checkpoint. */
  snapshot(): TrackletTrackerState {
    return this.tracker.snapshot();
  }

  /**
   * End of step 5: {@link joinFragments} with the video's join options, then {@link videoTeams} on the joined
   * classes.
   * @param frames every frame {@link track} returned, in order
   * @param readFrame a sampled frame's pixels (read again only at the ends of join candidates)
   */
  async finish(frames: TrackedFrame[], video: { fps: number; grass: PitchModel | null | undefined }, readFrame: (frameId: number) => Promise<RgbFrame>): Promise<{ frames: TrackedFrame[]; tracklets: TrackletRecord; teams?: StoredTeams }> {
    const j = this.opts.tracker.joins;
    const pitch = video.grass?.pitchFound ? video.grass : null;
    const joined = await joinFragments(frames, {
      enabled: j.enabled,
      join: { ...j, maxGapFrames: Math.max(1, Math.round(j.maxGapSeconds * (video.fps || 25))), frameGap: this.opts.frameStride },
      readFrame,
      appearanceOf: (frame, bbox) => extractAppearance(frame, bbox, { pitch }),
    });
    const teams = this.opts.teams.enabled ? videoTeams(joined.frames, !!video.grass?.pitchFound, this.opts.teams) : undefined;
    return { ...joined, ...(teams ? { teams } : {}) };
  }
}

/**
 * The `TrackletTracker` cut options (./tracking/tracklets.ts) of the pipeline's `tracker.cuts` options.
 * @param pitch the pitch colour keyed out of appearances; null without a pitch
 */
export function cutOptionsOf(cuts: PipelineOptions['tracker']['cuts'], pitch: PitchModel | null): CutOptions {
  const { shotCutDistance, shotGradualDistance, ...rest } = cuts;
  return { ...rest, pitch, shotChange: { cutDistance: shotCutDistance, gradualDistance: shotGradualDistance } };
}

/**
 * Team and role per class of a video (`assignTeams` of ./teams/cluster.ts over `classKitInputs` of the
 * frames' kit colours), ids as stored.
 * @param frames frames with their final classes (after joins)
 */
export function videoTeams(frames: readonly { frame_id: number; detections: readonly { track_id: number; kit?: Lab | null }[] }[], pitchFound: boolean, params: PipelineOptions['teams']): StoredTeams {
  const t = assignTeams(classKitInputs(frames), pitchFound, params);
  return { ...t, classes: t.classes.map(({ trackId, ...c }) => ({ track_id: trackId, ...c })) };
}

/**
 * Joins tracklet fragments (./tracking/join.ts; never across a frame marked `shot_change`) and relabels the frames' boxes: `track_id` becomes the class
 * (joined tracklets share one), `tracklet_id` keeps the tracklet; per-frame cuts move to the returned
 * `tracklets.cuts`. Reads only the frames at the ends of candidate tracklets.
 * @param frames the step's frames with `track_id` = tracklet id (as the tracker wrote them)
 */
export async function joinFragments(
  frames: readonly TrackedFrame[],
  o: {
    enabled: boolean;
    join: JoinOptions;
    readFrame: (frameId: number) => Promise<RgbFrame>;
    appearanceOf: Parameters<typeof endAppearances>[3];
  },
): Promise<{ frames: TrackedFrame[]; tracklets: TrackletRecord }> {
  const cuts = frames.flatMap((f) => f.cuts ?? []).sort((a, b) => a.frame_id - b.frame_id || a.new_tracklet_id - b.new_tracklet_id);
  const byId = new Map<number, TrackletBoxes>();
  for (const f of frames) {
    for (const d of f.detections) {
      if (!byId.has(d.track_id)) byId.set(d.track_id, { trackletId: d.track_id, boxes: [] });
      byId.get(d.track_id)!.boxes.push({ frameId: f.frame_id, bbox: d.bbox });
    }
  }
  const tracklets = [...byId.values()];
  let joins: TrackletJoin[] = [];
  if (o.enabled) {
    // No join across a shot change.
    const shotChanges = frames.filter((f) => f.shot_change).map((f) => f.frame_id);
    // No join of a person predicted out of the picture (left the view) to one who enters.
    const frameSize = frames.length ? { width: frames[0].width, height: frames[0].height } : undefined;
    const candidates = joinCandidates(tracklets, { ...o.join, shotChanges, frameSize });
    const ids = new Set(candidates.flatMap((c) => [c.from, c.to]));
    joins = decideJoins(candidates, await endAppearances(tracklets, ids, o.readFrame, o.appearanceOf), o.join);
  }
  const classOf = classesOf([...byId.keys()], joins);
  return {
    frames: frames.map(({ cuts: _cuts, ...f }) => ({ ...f, detections: f.detections.map((d) => ({ ...d, track_id: classOf.get(d.track_id)!, tracklet_id: d.track_id })) })),
    tracklets: {
      count: byId.size,
      cuts,
      joins: joins.map((j) => ({ from: j.from, to: j.to, track_id: classOf.get(j.from)!, gap_frames: j.gapFrames, position: round4(j.position), appearance: round4(j.appearance) })),
    },
  };
}

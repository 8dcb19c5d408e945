/**
 * Step 5's detection and tracking over a run of sampled frames, shared by `detectPlayers` (./detect.ts, a
 * whole video) and `detectSegment` (./segments.ts, one time segment): the frame loop with read-ahead and
 * heartbeats, and its checkpoint chunks (docs/ARCHITECTURE.md "Resuming a step").
 */
import { badMedia } from '../errors';
import { frameDetectionsSchema, type DetectorModel, type FrameDetections } from '../storage/artifacts';
import { readChunks, writeChunk, type ChunkRef } from '../storage/checkpoints';
import { RunLayout, type VideoLayout } from '../storage/layout';
import { DEFAULT_OPTIONS } from '../validation';
import type { TrackletTrackerState } from '../vision/tracking/tracklets';
import { VideoTracking } from '../vision/videoTracking';
import type { StepInput } from '../workflows/types';
import type { ActivityDeps } from './deps';
import { FRAME_IDS_ARTIFACT } from './ingest';
import type { StepFiles } from './runStep';
import { heartbeat, previousHeartbeat } from './temporal';

/**
 * Frame ids of a video's sampled frames, ascending: from the run cache when step 3 ran on this worker, else
 * from the listing of `selected_frames/` (one GCS list request; works on any worker).
 * @throws BadMedia when step 3 produced no frames.
 */
export async function listFrameIds(files: StepFiles, video: VideoLayout): Promise<number[]> {
  const cached = files.getLocal<number[]>(FRAME_IDS_ARTIFACT, (ids) => ids.length * 8);
  if (cached) return cached;
  const objects = await files.store.list(video.framesPrefix);
  const ids = objects
    .map((o) => video.frameIdOf(o.name))
    .filter((x): x is number => x !== undefined)
    .sort((a, b) => a - b);
  if (ids.length === 0) throw badMedia(video.videoGuid, 'no sampled frames found (step 3 wrote none)');
  return ids;
}

/** Sampled frames per checkpoint chunk of step 5 (about 5 s of CPU inference untiled, 35 s tiled). */
export const DETECT_CHUNK_FRAMES = 50;

/** What step 5 keeps about its progress besides the chunks: tracker state and counters after the last chunk. */
interface DetectProgressState {
  tracker: TrackletTrackerState;
  count: number;
  tiledFrames: number;
  dropReasons: Record<string, number>;
}

/**
 * A step-5 checkpoint as carried in heartbeat details: the chunks written so far (object, size, sha256,
 * frames) and the state after the last one. Kept small: the frames themselves are in the chunks.
 */
export interface DetectCheckpointRef extends DetectProgressState {
  framesDone: number;
  chunks: ChunkRef[];
}

/** Step 5's heartbeat details. */
export interface DetectHeartbeat {
  framesDone: number;
  detections: number;
  checkpoint?: DetectCheckpointRef;
}

/**
 * Writes the frames since the last chunk as chunk `k` (`chunkObject(k)`, e.g.
 * `intermediate/checkpoints/{videoGuid}/detect_{k}.json`)
 * and returns the new checkpoint reference.
 */
async function saveDetectChunk(files: StepFiles, chunkObject: (k: number) => string, prev: DetectCheckpointRef | undefined, frames: FrameDetections[], state: DetectProgressState): Promise<DetectCheckpointRef> {
  const start = prev?.framesDone ?? 0;
  const chunks = prev?.chunks ?? [];
  const ref = await writeChunk(files.store, chunkObject(chunks.length), frames.slice(start));
  return { ...state, framesDone: frames.length, chunks: [...chunks, ref] };
}

/**
 * The frames of a checkpoint, verified ({@link readChunks}) and continuing the sampled frame ids in order;
 * undefined (start over) when there is no checkpoint or it fails verification.
 */
async function loadDetectCheckpoint(files: StepFiles, ref: DetectCheckpointRef | undefined, ids: number[]): Promise<{ frames: FrameDetections[]; framesDone: number; state: DetectCheckpointRef } | undefined> {
  const frames = await readChunks(files.store, ref?.chunks, frameDetectionsSchema);
  // A checkpoint of an older worker holds a bare ByteTrack state (no `byte`): start over.
  if (!ref || !frames || !ref.tracker?.byte || frames.length !== ref.framesDone || frames.some((f, i) => f.frame_id !== ids[i])) return undefined;
  return { frames, framesDone: frames.length, state: ref };
}

/** What {@link trackSampledFrames} returns: the tracked frames (tracklet ids, cuts per frame) and the counters. */
export interface TrackedRange {
  /** The detector that ran, as `detections.json` and the segment files record it. */
  model: DetectorModel;
  tracking: VideoTracking;
  frames: FrameDetections[];
  /** Tracked boxes. */
  count: number;
  tiledFrames: number;
  dropReasons: Record<string, number>;
  /** onnxruntime `session.run` time of this attempt, ms. */
  inferenceMs: number;
  /** Frames restored from a checkpoint of an earlier attempt. */
  resumedFromFrame: number;
  /** The last checkpoint written (undefined when none was). */
  saved: DetectCheckpointRef | undefined;
}

/**
 * Step 5's detection and tracking of the sampled frames `ids` (ascending) of a video of `fps` frames per
 * second with a fresh tracker: per frame
 * detect, filter, track and take kit colours (`VideoTracking.track`), reading the next frame ahead. Every
 * {@link DETECT_CHUNK_FRAMES} frames the new frames go to `chunkObject(k)` as a checkpoint chunk and the
 * heartbeat carries the chunk list with the tracker state, so a retried attempt resumes after the last chunk
 * (docs/ARCHITECTURE.md "Resuming a step") with an identical result. Heartbeats once per frame.
 * @throws what the detector, the decoder or the store throw
 */
export async function trackSampledFrames(deps: ActivityDeps, files: StepFiles, input: StepInput, opts: StepOptions, ids: number[], fps: number, chunkObject: (k: number) => string): Promise<TrackedRange> {
  const video = new RunLayout(input.tenantId, input.runGuid).video(input.videoGuid);
  const detector = await deps.getDetector(opts.detector.model);
  const videoInfo = { fps, grass: input.grass };
  let tracking = new VideoTracking(opts, videoInfo);
  let frames: FrameDetections[] = [];
  let dropReasons: Record<string, number> = {};
  let count = 0;
  let tiledFrames = 0;
  // Resume from the last checkpoint of an earlier attempt (Temporal keeps the last heartbeat's details).
  const checkpoint = await loadDetectCheckpoint(files, previousHeartbeat<DetectHeartbeat>()?.checkpoint, ids);
  const resumedFromFrame = checkpoint?.framesDone ?? 0;
  if (checkpoint) {
    frames = checkpoint.frames;
    tracking = new VideoTracking(opts, videoInfo, checkpoint.state.tracker);
    ({ count, tiledFrames } = checkpoint.state);
    dropReasons = { ...checkpoint.state.dropReasons };
  }
  let saved: DetectCheckpointRef | undefined = checkpoint?.state;
  // Model time of this attempt (onnxruntime `session.run` only, every pass of every frame it detected):
  // the figure the end-to-end wall time is compared with (bench/scale.ts).
  let inferenceMs = 0;
  // The next frame is read and decoded (sharp, on libuv's thread pool) while this frame's model runs on
  // the event loop, so the JPEG decode of each read (RunFiles.readFrame) overlaps inference.
  const todo = ids.slice(frames.length);
  const readAhead = (i: number) => {
    if (i >= todo.length) return undefined;
    const p = files.readFrame(video.frame(todo[i]));
    p.catch(() => undefined); // awaited below; a read left behind by an early exit must not go unhandled
    return p;
  };
  let next = readAhead(0);
  for (const [i, frameId] of todo.entries()) {
    const image = await next!;
    next = readAhead(i + 1);
    const { frame, result: r } = await tracking.track(detector, image, frameId);
    for (const d of r.dropped) dropReasons[d.reason] = (dropReasons[d.reason] ?? 0) + 1;
    if (r.detectStats.tiled) tiledFrames++;
    inferenceMs += r.timings.inferenceMs;
    frames.push(frame);
    count += r.tracked.length;
    // Every DETECT_CHUNK_FRAMES frames: the new frames go to GCS as a chunk, and the heartbeat carries the
    // chunk list with the tracker state after the chunk's last frame (a checkpoint a retry resumes from).
    const sinceSaved = frames.length - (saved?.framesDone ?? 0);
    if (sinceSaved >= DETECT_CHUNK_FRAMES && frames.length < ids.length) {
      saved = await saveDetectChunk(files, chunkObject, saved, frames, { tracker: tracking.snapshot(), count, tiledFrames, dropReasons: { ...dropReasons } });
    }
    // Inference blocks the event loop for each pass; heartbeat (and notice cancellation) per frame.
    heartbeat({ framesDone: frames.length, detections: count, checkpoint: saved } satisfies DetectHeartbeat);
  }
  const model = { name: detector.modelName, sha256: detector.modelSha256, executionProvider: detector.executionProvider, inputSize: detector.inputSize };
  return { model, tracking, frames, count, tiledFrames, dropReasons, inferenceMs, resumedFromFrame, saved };
}

/** Step 5's options, with the option groups older runs lack filled by the defaults. */
export type StepOptions = ConstructorParameters<typeof VideoTracking>[0] & Pick<StepInput['options'], 'frameStride'>;

/** Step 5's options of `options`, with the option groups older runs lack filled by the defaults. */
export function detectOptionsOf(options: StepInput['options']): StepOptions {
  return {
    ...options,
    tracker: { ...DEFAULT_OPTIONS.tracker, ...options.tracker },
    teams: options.teams ?? DEFAULT_OPTIONS.teams,
  };
}

/**
 * Steps 4 and 5: `initializeGrassMask` (CPU queue) and `detectPlayers` (GPU queue); docs/ARCHITECTURE.md
 * "The nine steps".
 */
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { tracksFromMot } from '../dataset/exports';
import { badMedia, invalidInput } from '../errors';
import { sha256 } from '../util/hash';
import { frameDetectionsSchema, metadataFileSchema, type DetectionsFile, type FrameDetections, type TeamsFile } from '../storage/artifacts';
import { readChunks, writeChunk, type ChunkRef } from '../storage/checkpoints';
import type { RunLayout, VideoLayout } from '../storage/layout';
import { DEFAULT_OPTIONS } from '../validation';
import type { RgbFrame } from '../vision/image/rgb';
import { fitPitchModel } from '../vision/pitch/fit';
import type { TrackletTrackerState } from '../vision/tracking/tracklets';
import { VideoTracking, videoTeams } from '../vision/videoTracking';
import type { DetectResult, GrassResult, StepInput, StepResultBase } from '../workflows/types';
import type { ActivityDeps } from './deps';
import { fetchSource, FRAME_IDS_ARTIFACT } from './ingest';
import { runStep, type StepFiles, type StepOutput } from './runStep';
import { heartbeat, previousHeartbeat } from './temporal';

/** Frames sampled for the pitch colour model (evenly spaced over the video). */
export const GRASS_SAMPLE_FRAMES = 16;

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
 * Writes the frames since the last chunk as chunk `k` (`intermediate/checkpoints/{videoGuid}/detect_{k}.json`)
 * and returns the new checkpoint reference.
 */
async function saveDetectChunk(files: StepFiles, layout: RunLayout, videoGuid: string, prev: DetectCheckpointRef | undefined, frames: FrameDetections[], state: DetectProgressState): Promise<DetectCheckpointRef> {
  const start = prev?.framesDone ?? 0;
  const chunks = prev?.chunks ?? [];
  const ref = await writeChunk(files.store, layout.checkpoint(videoGuid, 'detect', chunks.length), frames.slice(start));
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

/** Creates steps 4 and 5 over `deps`. */
export function createDetectActivities(deps: ActivityDeps) {
  return {
    /**
     * Step 4: fit the pitch colour model to up to {@link GRASS_SAMPLE_FRAMES} evenly spaced sampled frames.
     * "No pitch" is a result (`grass.pitchFound = false`), not an error.
     */
    async initializeGrassMask(input: StepInput): Promise<GrassResult> {
      return runStep(deps, 'initializeGrassMask', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        const ids = await listFrameIds(files, video);
        const step = Math.max(1, Math.floor(ids.length / GRASS_SAMPLE_FRAMES));
        const sample = ids.filter((_, i) => i % step === 0).slice(0, GRASS_SAMPLE_FRAMES);
        const images: RgbFrame[] = [];
        for (const id of sample) {
          images.push(await files.readFrame(video.frame(id)));
          heartbeat({ framesRead: images.length });
        }
        const grass = await fitPitchModel(images, input.options.grassMask);
        return { result: { grass, framesSampled: sample.length }, details: { params: input.options.grassMask, sampledFrameIds: sample } };
      });
    },

    /**
     * Step 5: run the detector on every sampled frame and link detections into tracks with a fresh tracker
     * per video (track ids from 0); write `detections.json`.
     *
     * Resumable: every {@link DETECT_CHUNK_FRAMES} frames the new frames' results go to GCS as a checkpoint
     * chunk and the heartbeat details carry the chunk list (size, sha256) with the tracker state. A retried
     * attempt (after a crash, a lost worker or a transient fault) verifies the chunks, restores the tracker
     * and continues after the last chunk; the result is identical to an uninterrupted run. The chunks are
     * deleted once `detections.json` is written.
     */
    async detectPlayers(input: StepInput): Promise<DetectResult> {
      return runStep(deps, 'detectPlayers', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        // Runs started before an option group existed carry none (or an older one): the defaults fill it.
        const opts = {
          ...input.options,
          tracker: { ...DEFAULT_OPTIONS.tracker, ...input.options.tracker },
          teams: input.options.teams ?? DEFAULT_OPTIONS.teams,
        };
        if (input.tracks) return importTracks(deps, files, video, input, input.tracks, opts);
        const detector = await deps.getDetector(opts.detector.model);
        const ids = await listFrameIds(files, video);
        const meta = await files.readJson(video.metadata, metadataFileSchema);
        const videoInfo = { fps: meta.fps, grass: input.grass };
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
            saved = await saveDetectChunk(files, layout, input.videoGuid, saved, frames, { tracker: tracking.snapshot(), count, tiledFrames, dropReasons: { ...dropReasons } });
          }
          // Inference blocks the event loop for each pass; heartbeat (and notice cancellation) per frame.
          heartbeat({ framesDone: frames.length, detections: count, checkpoint: saved } satisfies DetectHeartbeat);
        }
        // Fragment joins, then team and role per (joined) class.
        const { frames: joined, tracklets, teams } = await tracking.finish(frames, videoInfo, (id) => files.readFrame(video.frame(id)));
        frames = joined;
        const tracks = new Set(frames.flatMap((f) => f.detections.map((d) => d.track_id))).size;
        const file: DetectionsFile = {
          model: { name: detector.modelName, sha256: detector.modelSha256, executionProvider: detector.executionProvider, inputSize: detector.inputSize },
          ...detectionsSettings(opts, tracking, input),
          frames,
          tracklets,
          ...(teams ? { teams } : {}),
          tracks: { origin: 'tracker' },
        };
        await files.writeJson(video.detections, file);
        if (saved) await files.store.deletePrefix(layout.checkpointPrefix(input.videoGuid));
        return {
          result: {
            frames: frames.length,
            detections: count,
            tracks,
            tracklets: tracklets.count,
            cuts: tracklets.cuts.length,
            joins: tracklets.joins.length,
            model: detector.modelName,
            modelSha256: detector.modelSha256,
            object: video.detections,
          },
          details: {
            dropped: dropReasons,
            tiledFrames,
            trackBuffer: tracking.trackBuffer,
            pitchFilter: tracking.frameOptions.pitch !== null,
            resumedFromFrame,
            inferenceMs: Math.round(inferenceMs),
            teams: teams && teamCounts(teams),
          },
        };
      });
    },
  };
}

/** The settings `detections.json` records: detector thresholds, tracker options, the pitch model, the stride. */
function detectionsSettings(opts: StepOptions, tracking: VideoTracking, input: StepInput): Pick<DetectionsFile, 'thresholds' | 'tracker' | 'grass' | 'frameStride'> {
  return {
    thresholds: {
      confidence: opts.detector.confThreshold,
      iou: opts.detector.iouThreshold,
      classes: opts.detector.classes,
      tiles: opts.detector.tiles,
      tileSize: opts.detector.tileSize,
      tileOverlap: opts.detector.tileOverlap,
    },
    tracker: { type: 'bytetrack', ...opts.tracker, trackBuffer: tracking.trackBuffer },
    grass: input.grass ?? null,
    frameStride: opts.frameStride,
  };
}

/** Step 5's options, with the option groups older runs lack filled by the defaults. */
type StepOptions = ConstructorParameters<typeof VideoTracking>[0] & Pick<StepInput['options'], 'frameStride'>;

/** Largest corrected-tracks file step 5 reads (a MOT line is about 50 bytes: a million boxes). */
export const MAX_TRACKS_BYTES = 64 * 1024 * 1024;

/**
 * Step 5 with corrected tracks given (`input.tracks`, MOT Challenge form): the file is fetched under the same
 * source policy as videos (src/activities/ingest.ts `fetchSource`), read onto the sampled frames
 * (src/dataset/exports.ts `tracksFromMot`), kit colours and teams are taken as for tracked boxes, and
 * `detections.json` records the file (`tracks`: source, sha256, boxes). No detector runs and no tracklets
 * are cut or joined: the tracks are the classes.
 * @throws PipelineError(InvalidInput) naming `tracks` for a source the policy refuses, a file over
 *   {@link MAX_TRACKS_BYTES}, a malformed line (`tracks:line`) or no box on a sampled frame; BadMedia for a
 *   missing file
 */
async function importTracks(
  deps: ActivityDeps,
  files: StepFiles,
  video: VideoLayout,
  input: StepInput,
  tracks: string,
  opts: StepOptions,
): Promise<StepOutput<Omit<DetectResult, keyof StepResultBase>>> {
  await mkdir(files.scratchDir, { recursive: true });
  const tmpDir = await mkdtemp(path.join(files.scratchDir, 'tracks-'));
  let text: string;
  try {
    const local = await fetchSource(files, tracks, input.tenantId, tmpDir, deps.sourcePolicy);
    const { size } = await stat(local);
    if (size > MAX_TRACKS_BYTES) throw invalidInput(tracks, `is ${size} bytes, over the limit of ${MAX_TRACKS_BYTES} bytes for corrected tracks (MAX_TRACKS_BYTES)`);
    text = await readFile(local, 'utf8');
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
  const ids = await listFrameIds(files, video);
  const imported = tracksFromMot(text, tracks, ids);
  const meta = await files.readJson(video.metadata, metadataFileSchema);
  const videoInfo = { fps: meta.fps, grass: input.grass };
  const tracking = new VideoTracking(opts, videoInfo);
  const frames: FrameDetections[] = [];
  for (const frameId of ids) {
    frames.push(await tracking.importedFrame(await files.readFrame(video.frame(frameId)), frameId, imported.frames.get(frameId)!));
    heartbeat({ framesDone: frames.length, detections: frames.reduce((s, f) => s + f.detections.length, 0) });
  }
  const teams = opts.teams.enabled ? videoTeams(frames, !!input.grass?.pitchFound, opts.teams) : undefined;
  const origin = { origin: 'imported' as const, source: tracks, sha256: sha256(text), boxes: imported.boxes, boxesNotSampled: imported.notSampled };
  const file: DetectionsFile = {
    model: { name: 'none', sha256: '', executionProvider: 'none', inputSize: 0 },
    ...detectionsSettings(opts, tracking, input),
    frames,
    tracklets: { count: imported.tracks, cuts: [], joins: [] },
    ...(teams ? { teams } : {}),
    tracks: origin,
  };
  await files.writeJson(video.detections, file);
  return {
    result: { frames: frames.length, detections: imported.boxes, tracks: imported.tracks, tracklets: imported.tracks, cuts: 0, joins: 0, model: 'none', modelSha256: '', object: video.detections },
    details: { tracks: origin, teams: teams && teamCounts(teams) },
  };
}

/** Status, reason and classes per team and role, for the step result's details. */
function teamCounts(t: TeamsFile): { status: string; reason: string; classes: Record<string, number> } {
  const classes: Record<string, number> = {};
  for (const c of t.classes) {
    const key = `${c.team ?? '-'}/${c.role ?? '-'}`;
    classes[key] = (classes[key] ?? 0) + 1;
  }
  return { status: t.status, reason: t.reason, classes };
}

/**
 * Steps 4 and 5: `initializeGrassMask` (CPU queue) and `detectPlayers` (GPU queue); docs/ARCHITECTURE.md
 * "The nine steps". Step 5's frame loop is in ./detectFrames.ts, its segments in ./segments.ts.
 */
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { tracksFromMot } from '../dataset/exports';
import { invalidInput } from '../errors';
import { sha256 } from '../util/hash';
import { DEFAULT_OPTIONS } from '../validation';
import { metadataFileSchema, type DetectionsFile, type DetectorModel, type FrameDetections, type TeamsFile } from '../storage/artifacts';
import type { RunLayout } from '../storage/layout';
import type { RgbFrame } from '../vision/image/rgb';
import { fitPitchModel } from '../vision/pitch/fit';
import { VideoTracking, videoTeams } from '../vision/videoTracking';
import type { DetectInput, DetectResult, GrassResult, StepInput, StepResultBase } from '../workflows/types';
import { writeDetections } from './batches';
import type { ActivityDeps } from './deps';
import { detectOptionsOf, listFrameIds, trackSampledFrames, type StepOptions } from './detectFrames';
import { fetchSource } from './ingest';
import { runStep, type StepFiles, type StepOutput } from './runStep';
import { stitchedSegments } from './segments';
import { heartbeat } from './temporal';

/** Frames sampled for the pitch colour model (evenly spaced over the video). */
export const GRASS_SAMPLE_FRAMES = 16;

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
     * per video (track ids from 0); then fragment joins, team and role per class; write `detections.json`.
     *
     * With `input.segments` (a video longer than one segment), the segments were detected and tracked by
     * `detectSegment` (./segments.ts) already: step 5 stitches their tracking on the overlaps
     * (`stitchedSegments`) instead of running the detector, and goes on as for one piece.
     *
     * Resumable: every {@link DETECT_CHUNK_FRAMES} frames the new frames' results go to GCS as a checkpoint
     * chunk and the heartbeat details carry the chunk list (size, sha256) with the tracker state. A retried
     * attempt (after a crash, a lost worker or a transient fault) verifies the chunks, restores the tracker
     * and continues after the last chunk; the result is identical to an uninterrupted run. The chunks are
     * deleted once `detections.json` is written.
     */
    async detectPlayers(input: DetectInput): Promise<DetectResult> {
      return runStep(deps, 'detectPlayers', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        // Runs started before an option group existed carry none (or an older one): the defaults fill it.
        const opts = detectOptionsOf(input.options);
        if (input.tracks) return importTracks(deps, files, layout, input, input.tracks, opts);
        const meta = await files.readJson(video.metadata, metadataFileSchema);
        const videoInfo = { fps: meta.fps, grass: input.grass };
        let tracked: { model: DetectorModel; frames: FrameDetections[]; count: number; tiledFrames: number; dropReasons: Record<string, number>; inferenceMs: number };
        let extra: Record<string, unknown>;
        let tracking: VideoTracking;
        if (input.segments && input.segments.length > 1) {
          const st = await stitchedSegments(files, layout, input.videoGuid, input.segments);
          tracked = st;
          tracking = new VideoTracking(opts, videoInfo);
          // `stitch`, not `segments`: the step's entry keeps its segments' own results under `segments` (runStep).
          extra = { stitch: { segments: input.segments.length, cuts: st.cuts, links: st.links.length, cutsDropped: st.cutsDropped } };
        } else {
          const ids = await listFrameIds(files, video);
          const t = await trackSampledFrames(deps, files, input, opts, ids, meta.fps, (k) => layout.checkpoint(input.videoGuid, 'detect', k));
          tracked = t;
          tracking = t.tracking;
          extra = { resumedFromFrame: t.resumedFromFrame };
          if (t.saved) await files.store.deletePrefix(layout.checkpointPrefix(input.videoGuid));
        }
        const { model, count, tiledFrames, dropReasons, inferenceMs } = tracked;
        // Fragment joins, then team and role per (joined) class.
        const { frames, tracklets, teams } = await tracking.finish(tracked.frames, videoInfo, (id) => files.readFrame(video.frame(id)));
        const tracks = new Set(frames.flatMap((f) => f.detections.map((d) => d.track_id))).size;
        const file: DetectionsFile = {
          model,
          ...detectionsSettings(opts, tracking, input),
          frames,
          tracklets,
          ...(teams ? { teams } : {}),
          tracks: { origin: 'tracker' },
        };
        const classBatches = await writeDetections(files, layout, input.videoGuid, file, batchBoxes(input));
        return {
          result: {
            frames: frames.length,
            detections: count,
            tracks,
            tracklets: tracklets.count,
            cuts: tracklets.cuts.length,
            joins: tracklets.joins.length,
            model: model.name,
            modelSha256: model.sha256,
            object: video.detections,
            classBatches,
          },
          details: {
            dropped: dropReasons,
            tiledFrames,
            trackBuffer: tracking.trackBuffer,
            pitchFilter: tracking.frameOptions.pitch !== null,
            ...extra,
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
  layout: RunLayout,
  input: StepInput,
  tracks: string,
  opts: StepOptions,
): Promise<StepOutput<Omit<DetectResult, keyof StepResultBase>>> {
  const video = layout.video(input.videoGuid);
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
  const classBatches = await writeDetections(files, layout, input.videoGuid, file, batchBoxes(input));
  return {
    result: { frames: frames.length, detections: imported.boxes, tracks: imported.tracks, tracklets: imported.tracks, cuts: 0, joins: 0, model: 'none', modelSha256: '', object: video.detections, classBatches },
    details: { tracks: origin, teams: teams && teamCounts(teams) },
  };
}

/** `options.batches.boxes` of a run (runs started before the option existed: the default). */
function batchBoxes(input: StepInput): number {
  return (input.options.batches ?? DEFAULT_OPTIONS.batches).boxes;
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

/**
 * Steps 4 and 5: `initializeGrassMask` (CPU queue) and `detectPlayers` (GPU queue).
 */
import sharp from 'sharp';
import { badMedia } from '../errors';
import type { VideoLayout } from '../storage/layout';
import { fitGrassModel } from '../vision/grass';
import { IouTracker } from '../vision/tracker';
import type { DetectResult, GrassResult, StepInput } from '../workflows/types';
import { heartbeat, runStep, type ActivityDeps, type RunFiles } from './context';

/** Frames sampled for the pitch colour model (evenly spaced over the video). */
export const GRASS_SAMPLE_FRAMES = 16;

/**
 * Frame ids of a video's sampled frames, ascending, from the listing of `selected_frames/` (one GCS list
 * request; works on any worker). @throws BadMedia when step 3 produced no frames.
 */
export async function listFrameIds(files: RunFiles, video: VideoLayout): Promise<number[]> {
  const objects = await files.store.list(video.framesPrefix);
  const ids = objects
    .map((o) => /frame_(\d+)\.jpg$/.exec(o.name)?.[1])
    .filter((x): x is string => x !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  if (ids.length === 0) throw badMedia(video.videoGuid, 'no sampled frames found (step 3 wrote none)');
  return ids;
}

/** One frame's entry of `detections.json`. */
export interface FrameDetections {
  frame_id: number;
  width: number;
  height: number;
  detections: { track_id: number; bbox: [number, number, number, number]; score: number; class: number }[];
}

/** Layout of `detections.json` (SPEC section 5). */
export interface DetectionsFile {
  model: { name: string; sha256: string; executionProvider: string; inputSize: number };
  thresholds: { confidence: number; iou: number; classes: number[] };
  tracker: { type: 'iou'; iouThreshold: number; maxAge: number };
  grass: StepInput['grass'] | null;
  frameStride: number;
  frames: FrameDetections[];
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
        const images: Buffer[] = [];
        for (const id of sample) {
          images.push(await files.read(video.frame(id)));
          heartbeat({ framesRead: images.length });
        }
        const grass = await fitGrassModel(images, input.options.grassMask);
        return { result: { grass, framesSampled: sample.length }, details: { params: input.options.grassMask, sampledFrameIds: sample } };
      });
    },

    /**
     * Step 5: run the detector on every sampled frame and link detections into tracks with a fresh tracker
     * per video (track ids from 0); write `detections.json`.
     */
    async detectPlayers(input: StepInput): Promise<DetectResult> {
      return runStep(deps, 'detectPlayers', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        const opts = input.options;
        const detector = await deps.getDetector(opts.detector.model);
        const tracker = new IouTracker({ iouThreshold: opts.tracker.iouThreshold, maxAge: Math.max(1, opts.tracker.maxAge) });
        const ids = await listFrameIds(files, video);
        const frames: FrameDetections[] = [];
        let count = 0;
        for (const frameId of ids) {
          const jpeg = await files.read(video.frame(frameId));
          const { data, info } = await sharp(jpeg).removeAlpha().raw().toBuffer({ resolveWithObject: true });
          const dets = await detector.detect(
            { rgb: data, width: info.width, height: info.height },
            { confThreshold: opts.detector.confThreshold, iouThreshold: opts.detector.iouThreshold, classes: opts.detector.classes },
          );
          const tracked = tracker.update(frameId, dets);
          frames.push({
            frame_id: frameId,
            width: info.width,
            height: info.height,
            detections: tracked.map((d) => ({
              track_id: d.trackId,
              bbox: d.bbox.map((x) => Math.round(x * 100) / 100) as [number, number, number, number],
              score: Math.round(d.score * 10000) / 10000,
              class: d.classId,
            })),
          });
          count += tracked.length;
          heartbeat({ framesDone: frames.length, detections: count });
        }
        const tracks = new Set(frames.flatMap((f) => f.detections.map((d) => d.track_id))).size;
        const file: DetectionsFile = {
          model: { name: detector.modelName, sha256: detector.modelSha256, executionProvider: detector.executionProvider, inputSize: detector.inputSize },
          thresholds: { confidence: opts.detector.confThreshold, iou: opts.detector.iouThreshold, classes: opts.detector.classes },
          tracker: { type: 'iou', iouThreshold: opts.tracker.iouThreshold, maxAge: opts.tracker.maxAge },
          grass: input.grass ?? null,
          frameStride: opts.frameStride,
          frames,
        };
        await files.writeJson(video.detections, file);
        return {
          result: { frames: frames.length, detections: count, tracks, model: detector.modelName, modelSha256: detector.modelSha256, object: video.detections },
        };
      });
    },
  };
}

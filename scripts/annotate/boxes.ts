/**
 * Annotation tooling, step 1: the detector's person boxes on the pipeline's sampled frames, cached under
 * `.data/annotate/<video>/` (git-ignored) so the later steps (tracklets, contact sheets, ground truth)
 * never run the model again.
 *
 * The frames are made exactly as the pipeline makes them: `extractFrames` with the default stride
 * (src/vision/media/frames.ts), each frame stored as a JPEG of quality 90 (`encodeJpeg`, the pipeline's
 * `selected_frames/frame_{id}.jpg`) and decoded back (`decodeImage`) before detection, as step 5 does
 * (src/activities/detect.ts). Detection uses step 5's default options (src/validation.ts `optionsSchema`):
 * yolov8n, confidence 0.1, NMS IoU 0.45, persons only, tiles `auto` (640 px, 20 % overlap).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createDetector } from '../../src/vision/detection/detector';
import type { BBox } from '../../src/vision/detection/geometry';
import { detectTiledWithStats } from '../../src/vision/detection/tiling';
import { extractFrames } from '../../src/vision/media/frames';
import { decodeImage, encodeJpeg } from '../../src/vision/image/rgb';

/** One detector box of a sampled frame. */
export interface AnnotBox {
  /** Index of the box within its frame (by descending score, as the detector returns them). */
  index: number;
  /** [x1, y1, x2, y2], source-frame pixels, rounded to 0.01. */
  bbox: BBox;
  /** Detector class score, 0..1. */
  score: number;
}

/** The detector's boxes on one sampled frame. */
export interface AnnotFrame {
  /** The pipeline's frame_id: 0-based index of the frame among all decoded frames. */
  frameId: number;
  width: number;
  height: number;
  boxes: AnnotBox[];
}

/** Contents of `.data/annotate/<video>/boxes.json`. */
export interface BoxesFile {
  video: string;
  source: string;
  stride: number;
  detector: { model: string; sha256: string; confThreshold: number; iouThreshold: number; tiles: string };
  frames: AnnotFrame[];
}

/** Folder of one video's cached annotation data. */
export function annotDir(video: string): string {
  return path.resolve('.data/annotate', video);
}

/** Path of the cached JPEG of a sampled frame. */
export function framePath(video: string, frameId: number): string {
  return path.join(annotDir(video), 'frames', `frame_${String(frameId).padStart(6, '0')}.jpg`);
}

/**
 * Samples `source` with `stride`, caches each frame as JPEG q90 and runs the detector on it.
 * @param maxFrames stop after this many sampled frames (default all)
 * @returns the boxes file, also written to `.data/annotate/<video>/boxes.json`
 * @throws what extractFrames / createDetector throw (bad media, missing model)
 */
export async function detectBoxes(video: string, source: string, stride: number, maxFrames?: number): Promise<BoxesFile> {
  const dir = annotDir(video);
  await mkdir(path.join(dir, 'frames'), { recursive: true });
  const detector = await createDetector({ modelPath: path.resolve('models/yolov8n.onnx'), intraOpNumThreads: 1 });
  const opts = { confThreshold: 0.1, iouThreshold: 0.45, classes: [0], tiles: 'auto' as const, tileSize: 640, overlap: 0.2 };
  const frames: AnnotFrame[] = [];
  const r2 = (x: number) => Math.round(x * 100) / 100;
  try {
    for await (const f of extractFrames(source, { stride, maxFrames })) {
      const jpeg = await encodeJpeg({ rgb: f.rgb, width: f.width, height: f.height }, 90);
      await writeFile(framePath(video, f.frameId), jpeg);
      const frame = await decodeImage(jpeg);
      const { detections } = await detectTiledWithStats(detector, frame, opts);
      frames.push({
        frameId: f.frameId,
        width: f.width,
        height: f.height,
        boxes: detections.map((d, index) => ({ index, bbox: d.bbox.map(r2) as BBox, score: Math.round(d.score * 10000) / 10000 })),
      });
      if (frames.length % 50 === 0) console.error(`${video}: ${frames.length} frames`);
    }
  } finally {
    await detector.release();
  }
  const file: BoxesFile = {
    video,
    source,
    stride,
    detector: { model: detector.modelName, sha256: detector.modelSha256, confThreshold: opts.confThreshold, iouThreshold: opts.iouThreshold, tiles: opts.tiles },
    frames,
  };
  await writeFile(path.join(dir, 'boxes.json'), JSON.stringify(file));
  return file;
}

/** Reads the cached boxes of `video`. @throws when `detect` has not been run for it */
export async function readBoxes(video: string): Promise<BoxesFile> {
  return JSON.parse(await readFile(path.join(annotDir(video), 'boxes.json'), 'utf8')) as BoxesFile;
}

/**
 * Tiled inference for small, far-away players (step 5).
 *
 * A 1280x720 broadcast frame is shrunk to 640x360 for one 640x640 YOLOv8 pass, so a 70 px tall player
 * becomes 35 px tall, below where a small model detects people reliably. Slicing the frame into overlapping
 * tiles, running the detector on each at (nearly) full resolution, and merging the results is the "slicing
 * aided hyper inference" scheme (Akyon, Altinuc & Temizel, "Slicing Aided Hyper Inference and Fine-tuning for
 * Small Object Detection", ICIP 2022, arXiv:2202.06934; the `sahi` library): full-frame pass + overlapping
 * slices, boxes shifted back to frame coordinates, merged with NMS.
 *
 * Our merge, per frame:
 *  1. the full-frame pass (always: it finds people larger than a tile);
 *  2. one pass per tile of {@link planTiles} (the RGB buffer is cropped in memory, nothing re-encoded);
 *  3. tile boxes touching an INNER tile edge (an edge that is not a frame edge) are dropped: they are people
 *     cut by the tile, and the neighbouring tile (overlap >= the person's size) or the full-frame pass holds
 *     them whole;
 *  4. class-aware NMS at the caller's IoU threshold (`nms` of `./geometry`);
 *  5. containment suppression: of two same-class boxes where the intersection covers >= `containThreshold`
 *     (default 0.8) of the SMALLER box, the smaller is dropped. NMS by IoU keeps e.g. a torso box inside a
 *     whole-body box (IoU ~0.5) because IoU is small when areas differ; intersection-over-smaller (as in
 *     sahi's "IOS" match metric) catches it.
 *
 * `tiles: 'auto'` (the default) tiles a frame when BOTH
 *  - the full-frame pass shrinks the frame: inputSize / max(width, height) <= 0.75, so tiles of inputSize
 *    source pixels are seen at >= 1.33x the full-frame resolution (vtest.avi 768x576: 0.83, not tiled;
 *    720p: 0.5, 1080p: 0.33); and
 *  - the people are small in the model input: the full-frame pass found none, or their median height
 *    x (inputSize / max side) is < 64 px (twice COCO's 32 px "small object" side, below which YOLO recall
 *    drops; a 720p broadcast player of 60-90 px is 30-45 px in the 640 input).
 * Both thresholds are our own choices, checked on the soccer clip (tiled) and vtest.avi/messi5.jpg (not).
 */
import { performance } from 'node:perf_hooks';
import type { RgbFrame } from '../image/rgb';
import type { DetectOptions, Detector } from './detector';
import { nms, type BBox, type Detection } from './geometry';
import { decodeYoloV8, unletterbox } from './yolo';

/** A rectangle of the frame, in source pixels: columns [x, x + width), rows [y, y + height). */
export interface Tile {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Options of {@link planTiles}. */
export interface TilePlanOptions {
  /** Tile side, source pixels (clamped to the frame); default {@link DEFAULT_TILE_SIZE}. */
  tileSize?: number;
  /** Minimum overlap of neighbouring tiles as a fraction of the tile side, 0 <= overlap < 1; default 0.2. */
  overlap?: number;
}

/** Default tile side: the detector's 640 input, so tiles are seen at 1:1 (no resize in the letterbox). */
export const DEFAULT_TILE_SIZE = 640;
/** Default minimum overlap fraction (sahi's default `overlap_height_ratio`/`overlap_width_ratio` is 0.2). */
export const DEFAULT_TILE_OVERLAP = 0.2;
/** `auto` tiles only when the full-frame pass scales the frame by at most this (see the module comment). */
export const AUTO_MAX_FULL_FRAME_SCALE = 0.75;
/** `auto` tiles when the median person height in model-input pixels is below this (module comment). */
export const AUTO_SMALL_PERSON_INPUT_PX = 64;
/** Default intersection-over-smaller-area threshold of the containment suppression. */
export const DEFAULT_CONTAIN_THRESHOLD = 0.8;

function axis(len: number, tile: number, overlap: number): number[] {
  const t = Math.min(tile, len);
  if (t >= len) return [0];
  const n = Math.ceil((len - t) / (t * (1 - overlap))) + 1;
  return Array.from({ length: n }, (_, i) => Math.round((i * (len - t)) / (n - 1)));
}

/**
 * Overlapping tiles covering every pixel of a `width x height` frame, in row-major order. Per axis:
 * n = ceil((len - T) / (T (1 - overlap))) + 1 tiles of side T = min(tileSize, len), spread evenly from 0 to
 * len - T, so neighbours overlap by >= overlap x T (more where the spread allows). 1280x720 at 640 / 0.2:
 * 3 x 2 tiles of 640x640 (offsets x 0/320/640, y 0/80); 768x576: 2 x 1 tiles of 640x576.
 *
 * @param width, height frame size, pixels (positive integers)
 * @returns tiles with integer x, y, width, height
 * @throws RangeError for a non-positive or non-integer size, tileSize < 1, or overlap outside [0, 1)
 */
export function planTiles(width: number, height: number, opts: TilePlanOptions = {}): Tile[] {
  const tileSize = opts.tileSize ?? DEFAULT_TILE_SIZE;
  const overlap = opts.overlap ?? DEFAULT_TILE_OVERLAP;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) throw new RangeError(`planTiles: invalid frame size ${width}x${height}`);
  if (!Number.isFinite(tileSize) || tileSize < 1) throw new RangeError(`planTiles: tileSize ${tileSize} must be >= 1`);
  if (!(overlap >= 0 && overlap < 1)) throw new RangeError(`planTiles: overlap ${overlap} must be in [0, 1)`);
  const ts = Math.round(tileSize);
  const xs = axis(width, ts, overlap);
  const ys = axis(height, ts, overlap);
  const tw = Math.min(ts, width);
  const th = Math.min(ts, height);
  return ys.flatMap((y) => xs.map((x) => ({ x, y, width: tw, height: th })));
}

/**
 * Copies a tile out of a frame (row by row from the RGB buffer, no decode/encode).
 * @throws RangeError when the tile is not inside the frame
 */
export function cropRgb(frame: RgbFrame, tile: Tile): RgbFrame {
  const { x, y, width, height } = tile;
  if (x < 0 || y < 0 || width <= 0 || height <= 0 || x + width > frame.width || y + height > frame.height) {
    throw new RangeError(`cropRgb: tile ${width}x${height}+${x}+${y} outside the ${frame.width}x${frame.height} frame`);
  }
  const rgb = Buffer.allocUnsafe(width * height * 3);
  const rowBytes = width * 3;
  for (let r = 0; r < height; r++) {
    const src = ((y + r) * frame.width + x) * 3;
    frame.rgb.copy(rgb, r * rowBytes, src, src + rowBytes);
  }
  return { rgb, width, height };
}

/**
 * Whether a box (in TILE pixels) touches an inner edge of the tile, i.e. an edge that is not also a frame
 * edge, within `margin` pixels. Such a box is probably a person cut by the tile.
 */
export function touchesInnerEdge(bbox: BBox, tile: Tile, frameWidth: number, frameHeight: number, margin: number): boolean {
  const [x1, y1, x2, y2] = bbox;
  if (tile.x > 0 && x1 <= margin) return true;
  if (tile.y > 0 && y1 <= margin) return true;
  if (tile.x + tile.width < frameWidth && x2 >= tile.width - margin) return true;
  if (tile.y + tile.height < frameHeight && y2 >= tile.height - margin) return true;
  return false;
}

/** Intersection area of two boxes divided by the smaller box's area (0 when either is empty). */
export function intersectionOverSmaller(a: BBox, b: BBox): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const areaA = (a[2] - a[0]) * (a[3] - a[1]);
  const areaB = (b[2] - b[0]) * (b[3] - b[1]);
  const small = Math.min(areaA, areaB);
  return small > 0 ? (iw * ih) / small : 0;
}

/**
 * Containment suppression only applies when the smaller box has at least this fraction of the larger's
 * area: a part of a person (torso, upper body: ~0.3-0.6 of the body box) is suppressed, but a distant
 * person seen inside a near person's box (messi5.jpg: spectators of ~2 % of the player's box area, inside
 * his outstretched-arms box) is not.
 */
export const DEFAULT_CONTAIN_MIN_AREA_RATIO = 0.2;

/**
 * Merges detections of overlapping passes: class-aware NMS at `iouThreshold`, then containment
 * suppression (module comment, step 5; `containThreshold` >= 1 disables it): a box is dropped when a larger
 * kept box of its class covers >= `containThreshold` of it and it has >= `minAreaRatio` of that box's area.
 * @returns merged detections by descending score
 */
export function mergeDetections(
  dets: readonly Detection[],
  iouThreshold: number,
  containThreshold = DEFAULT_CONTAIN_THRESHOLD,
  minAreaRatio = DEFAULT_CONTAIN_MIN_AREA_RATIO,
): Detection[] {
  const afterNms = nms(dets, iouThreshold, true);
  if (containThreshold >= 1) return afterNms;
  const area = (d: Detection) => (d.bbox[2] - d.bbox[0]) * (d.bbox[3] - d.bbox[1]);
  const bySize = [...afterNms].sort((p, q) => area(q) - area(p));
  const kept: Detection[] = [];
  for (const d of bySize) {
    const a = area(d);
    if (kept.some((k) => k.classId === d.classId && a >= minAreaRatio * area(k) && intersectionOverSmaller(k.bbox, d.bbox) >= containThreshold)) continue;
    kept.push(d);
  }
  return kept.sort((p, q) => q.score - p.score);
}

/** Options of {@link detectTiledWithStats}: the detector's options plus the tiling choices. */
export type TiledDetectOptions = DetectOptions &
  TilePlanOptions & {
    /** 'auto' (default): tile when players are small (module comment); 'on': always; 'off': full frame only. */
    tiles?: 'auto' | 'on' | 'off';
    /** See {@link mergeDetections}; default {@link DEFAULT_CONTAIN_THRESHOLD}. */
    containThreshold?: number;
    /** See {@link mergeDetections}; default {@link DEFAULT_CONTAIN_MIN_AREA_RATIO}. */
    containMinAreaRatio?: number;
    /** Inner-edge margin, tile pixels; default max(2, 1 % of the tile side). */
    edgeMargin?: number;
  };

/** What one {@link detectTiledWithStats} call did and where its time went (milliseconds, wall clock). */
export interface TiledDetectStats {
  /** Whether tiles were run. */
  tiled: boolean;
  /** Why (the auto rule's numbers, or the forced mode). */
  reason: string;
  /** Tiles run (0 when not tiled). */
  tiles: number;
  /** Detector calls (1 + tiles). */
  passes: number;
  /** Sums over the passes of the detector's own timings (`Detector.lastTimings`). */
  inferenceMs: number;
  preprocessMs: number;
  postprocessMs: number;
  /** Cropping tile buffers. */
  cropMs: number;
  /** Shifting, edge filtering and merging. */
  mergeMs: number;
  /** The whole call. Our overhead above the model = totalMs - inferenceMs. */
  totalMs: number;
  /** Boxes from the full-frame pass, from the tiles (after the edge filter), dropped at inner edges, final. */
  fullFrameBoxes: number;
  tileBoxes: number;
  droppedAtTileEdges: number;
  merged: number;
}

/**
 * The `auto` rule of the module comment.
 * @param fullFrame the full-frame pass's detections (source pixels)
 * @returns whether to tile and a short reason with the numbers
 */
export function autoTileDecision(fullFrame: readonly Detection[], width: number, height: number, inputSize: number): { tile: boolean; reason: string } {
  const scale = inputSize / Math.max(width, height);
  if (scale > AUTO_MAX_FULL_FRAME_SCALE) return { tile: false, reason: `full-frame scale ${scale.toFixed(2)} > ${AUTO_MAX_FULL_FRAME_SCALE}` };
  if (fullFrame.length === 0) return { tile: true, reason: `full-frame scale ${scale.toFixed(2)}, nobody found in the full frame` };
  const hs = fullFrame.map((d) => d.bbox[3] - d.bbox[1]).sort((a, b) => a - b);
  const med = hs.length % 2 ? hs[hs.length >> 1] : (hs[hs.length / 2 - 1] + hs[hs.length / 2]) / 2;
  const inInput = med * scale;
  return inInput < AUTO_SMALL_PERSON_INPUT_PX
    ? { tile: true, reason: `median height ${med.toFixed(0)} px = ${inInput.toFixed(0)} input px < ${AUTO_SMALL_PERSON_INPUT_PX}` }
    : { tile: false, reason: `median height ${med.toFixed(0)} px = ${inInput.toFixed(0)} input px >= ${AUTO_SMALL_PERSON_INPUT_PX}` };
}

/**
 * Detects with a full-frame pass and, when tiling applies, one pass per tile, merged (module comment).
 *
 * @param detector a loaded detector (its calls are queued, so `lastTimings` read after each await is that
 *   call's, as long as no other caller uses the same detector concurrently; the stats are then exact)
 * @param frame the whole frame, RGB
 * @param opts detector thresholds and classes, tiling mode, tile size/overlap, merge thresholds
 * @returns detections, bbox [x1, y1, x2, y2] in frame pixels, by descending score; and the stats
 * @throws what `Detector.detect` throws (malformed frame, released detector, model errors); RangeError
 *   from {@link planTiles} for invalid tile options
 */
export async function detectTiledWithStats(detector: Detector, frame: RgbFrame, opts: TiledDetectOptions): Promise<{ detections: Detection[]; stats: TiledDetectStats }> {
  const t0 = performance.now();
  const dopts: DetectOptions = { confThreshold: opts.confThreshold, iouThreshold: opts.iouThreshold, classes: opts.classes };
  const stats: TiledDetectStats = {
    tiled: false,
    reason: '',
    tiles: 0,
    passes: 0,
    inferenceMs: 0,
    preprocessMs: 0,
    postprocessMs: 0,
    cropMs: 0,
    mergeMs: 0,
    totalMs: 0,
    fullFrameBoxes: 0,
    tileBoxes: 0,
    droppedAtTileEdges: 0,
    merged: 0,
  };
  const account = () => {
    const t = detector.lastTimings;
    stats.passes++;
    stats.inferenceMs += t.inferenceMs;
    stats.preprocessMs += t.preprocessMs;
    stats.postprocessMs += t.postprocessMs;
  };
  const full = await detector.detect(frame, dopts);
  account();
  stats.fullFrameBoxes = full.length;
  const mode = opts.tiles ?? 'auto';
  const decision =
    mode === 'off' ? { tile: false, reason: 'tiles: off' } : mode === 'on' ? { tile: true, reason: 'tiles: on' } : autoTileDecision(full, frame.width, frame.height, detector.inputSize);
  stats.reason = decision.reason;
  if (!decision.tile) {
    stats.merged = full.length;
    stats.totalMs = performance.now() - t0;
    return { detections: full, stats };
  }
  const tiles = planTiles(frame.width, frame.height, { tileSize: opts.tileSize ?? detector.inputSize, overlap: opts.overlap });
  const all: Detection[] = [...full];
  // Tiles of exactly the model's input size need no resize: the detector converts the tile's pixels straight
  // into its input tensor (the same values `letterbox` computes for the crop).
  for (const tile of tiles) {
    if (tile.width === frame.width && tile.height === frame.height) continue; // the full-frame pass already is this tile
    let dets: Detection[];
    if (tile.width === detector.inputSize && tile.height === detector.inputSize) {
      const { output, dims, inferenceMs, preprocessMs } = await detector.inferRegion(frame, tile);
      const t2 = performance.now();
      const geometry = { scale: 1, padX: 0, padY: 0 };
      dets = unletterbox(nms(decodeYoloV8(output, dims, { confThreshold: dopts.confThreshold, classes: dopts.classes }), dopts.iouThreshold, true), geometry, tile.width, tile.height);
      stats.passes++;
      stats.inferenceMs += inferenceMs;
      stats.preprocessMs += preprocessMs;
      stats.postprocessMs += performance.now() - t2;
    } else {
      const tc = performance.now();
      const crop = cropRgb(frame, tile);
      stats.cropMs += performance.now() - tc;
      dets = await detector.detect(crop, dopts);
      account();
    }
    stats.tiles++;
    const tm = performance.now();
    const margin = opts.edgeMargin ?? Math.max(2, 0.01 * Math.max(tile.width, tile.height));
    for (const d of dets) {
      if (touchesInnerEdge(d.bbox, tile, frame.width, frame.height, margin)) {
        stats.droppedAtTileEdges++;
        continue;
      }
      const [x1, y1, x2, y2] = d.bbox;
      all.push({ ...d, bbox: [x1 + tile.x, y1 + tile.y, x2 + tile.x, y2 + tile.y] });
      stats.tileBoxes++;
    }
    stats.mergeMs += performance.now() - tm;
  }
  const tm = performance.now();
  const merged = mergeDetections(all, opts.iouThreshold, opts.containThreshold ?? DEFAULT_CONTAIN_THRESHOLD, opts.containMinAreaRatio ?? DEFAULT_CONTAIN_MIN_AREA_RATIO);
  stats.mergeMs += performance.now() - tm;
  stats.tiled = true;
  stats.merged = merged.length;
  stats.totalMs = performance.now() - t0;
  return { detections: merged, stats };
}


/**
 * Person detector: a YOLOv8 ONNX model run with onnxruntime-node.
 *
 * Pipeline per frame (source: Ultralytics YOLOv8 predict path, https://docs.ultralytics.com/modes/predict/,
 * `ultralytics/data/augment.py` LetterBox, `ultralytics/utils/ops.py` non_max_suppression and scale_boxes):
 *
 *   RGB frame (H x W x 3, uint8) --letterbox--> tensor 1x3xSxS float32 (RGB, 0..1, grey 114 padding)
 *   --model--> output 1x(4+nc)xN --decodeYoloV8--> boxes in letterbox pixels --nms--> --unletterbox-->
 *   {@link Detection}s with bbox [x1, y1, x2, y2] in source pixels.
 *
 * Everything except {@link createDetector} is pure (letterbox awaits only the first compilation of its
 * WebAssembly kernels), so it can be unit-tested without the model.
 *
 * onnxruntime-node notes (checked against onnxruntime-node 1.30 `dist/backend.js`):
 * - `InferenceSession.run` executes the model synchronously on the calling (main) thread inside a
 *   `setImmediate`; it is not run on a thread pool. Concurrent `run` calls are therefore already serialised
 *   by the event loop, but each call blocks the event loop for the whole inference. Callers that must
 *   heartbeat (Temporal activities) should yield between frames, or move detection to a worker thread.
 * - Passing `['cuda', 'cpu']` to `InferenceSession.create` fails outright when the CUDA provider library is
 *   not installed (it does not fall back), so {@link createDetector} tries the providers one by one.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';
import pino from 'pino';
import { ErrorType, PipelineError } from '../errors';
import { openSession, sessionQueue } from './onnx';
import { createPlanarWriter, type PixelRect, type PlanarWriter } from './planar';

/** Axis-aligned box `[x1, y1, x2, y2]` (top-left, bottom-right corners), in pixels; x2 >= x1, y2 >= y1. */
export type BBox = [number, number, number, number];

/** One detected object. */
export interface Detection {
  /** `[x1, y1, x2, y2]`; in source-image pixels once returned by {@link Detector.detect}. */
  bbox: BBox;
  /** Class confidence in 0..1 (YOLOv8 has no separate objectness; this is the best class score). */
  score: number;
  /** Index into the model's class list; for COCO models 0 = person. */
  classId: number;
}

/** An uncompressed frame: `rgb` holds `width * height * 3` bytes, row-major, interleaved R, G, B. */
export interface RgbFrame {
  rgb: Buffer;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
}

/** Result of {@link letterbox}: the model input and the geometry needed to map boxes back. */
export interface Letterboxed {
  /** Model input, shape 1x3xSxS, CHW planes in R, G, B order, values in 0..1 (padding 114/255). */
  tensor: Float32Array;
  /** Side S of the square input, in pixels. */
  size: number;
  /** Resize gain: letterbox pixels per source pixel (same on both axes). */
  scale: number;
  /** Left padding in letterbox pixels (columns of grey before the image). */
  padX: number;
  /** Top padding in letterbox pixels (rows of grey before the image). */
  padY: number;
}

/** Geometry of a letterbox, as needed by {@link unletterbox}. */
export type LetterboxGeometry = Pick<Letterboxed, 'scale' | 'padX' | 'padY'>;

/** Pad value used by Ultralytics LetterBox (`value=(114, 114, 114)` in `ultralytics/data/augment.py`). */
export const LETTERBOX_PAD_VALUE = 114;

/** Default model input side, pixels (YOLOv8 export default `imgsz=640`). */
export const DEFAULT_INPUT_SIZE = 640;

/** Ultralytics default confidence threshold for predict (`conf=0.25`, `ultralytics/cfg/default.yaml`). */
export const DEFAULT_CONF_THRESHOLD = 0.25;

/** Ultralytics default NMS IoU threshold for predict (`iou=0.7`, `ultralytics/cfg/default.yaml`). */
export const DEFAULT_IOU_THRESHOLD = 0.7;

/** Ultralytics default cap on detections kept per image after NMS (`max_det=300`). */
export const DEFAULT_MAX_DETECTIONS = 300;

/** COCO class id of "person". */
export const COCO_PERSON_CLASS_ID = 0;

/** Input name of an Ultralytics YOLOv8 ONNX export. */
export const YOLOV8_INPUT_NAME = 'images';

/** Output name of an Ultralytics YOLOv8 ONNX export (detection head, before NMS). */
export const YOLOV8_OUTPUT_NAME = 'output0';

/** Strides of the three YOLOv8 detection heads (P3, P4, P5); anchors N = sum over s of (S/s)^2. */
export const YOLOV8_STRIDES = [8, 16, 32] as const;

/** Number of anchor points of a YOLOv8 head for input side `size` (8400 for 640). */
export function yoloV8AnchorCount(size: number): number {
  return YOLOV8_STRIDES.reduce((n, s) => n + Math.ceil(size / s) ** 2, 0);
}

function checkFrame(rgb: Buffer, width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new PipelineError(ErrorType.Internal, 'frame', `invalid size ${width}x${height}`);
  }
  if (rgb.length !== width * height * 3) {
    throw new PipelineError(ErrorType.Internal, 'frame', `rgb buffer has ${rgb.length} bytes, expected ${width}x${height}x3 = ${width * height * 3}`);
  }
}

/**
 * Aspect-preserving resize and centred grey padding to a square, as Ultralytics `LetterBox(auto=False,
 * scaleup=True, center=True)` does for a fixed-shape ONNX model:
 * gain r = min(S/H, S/W); resized size (round(W*r), round(H*r)); padding split in two with
 * left = round(dw/2 - 0.1), top = round(dh/2 - 0.1) (the rest goes right/bottom); pad colour 114.
 *
 * The resize samples like Ultralytics' `cv2.resize(..., interpolation=cv2.INTER_LINEAR)` (2x2 neighbours, no
 * anti-aliasing), in float32 and straight into the tensor: {@link PlanarWriter.resize}.
 *
 * @param rgb source pixels, `width * height * 3` bytes, interleaved RGB
 * @param width source width, pixels
 * @param height source height, pixels
 * @param size side S of the square model input, pixels (default 640)
 * @param writer where the tensor is built (a {@link PlanarWriter}, reused between frames: a fresh 4.9 MB
 *   tensor per frame costs page faults); default a new one. The returned tensor is a view into its memory,
 *   valid until the writer's next use; every value is overwritten
 * @returns tensor 1x3xSxS float32 (CHW, RGB, 0..1), the gain and the left/top padding
 * @throws PipelineError(Internal) when the buffer length does not match `width * height * 3`
 */
export async function letterbox(rgb: Buffer, width: number, height: number, size = DEFAULT_INPUT_SIZE, writer?: PlanarWriter): Promise<Letterboxed> {
  checkFrame(rgb, width, height);
  const scale = Math.min(size / height, size / width);
  const newW = Math.min(size, Math.max(1, Math.round(width * scale)));
  const newH = Math.min(size, Math.max(1, Math.round(height * scale)));
  // Math.max(0, ...) turns Math.round(-0.1) = -0 into +0 when there is no padding on an axis.
  const padX = Math.max(0, Math.round((size - newW) / 2 - 0.1));
  const padY = Math.max(0, Math.round((size - newH) / 2 - 0.1));

  const w = writer ?? (await createPlanarWriter());
  const plane = size * size;
  const padded = w.tensor(size, size);
  const pad = LETTERBOX_PAD_VALUE / 255;
  // Padding only where the image is not (top/bottom bands, left/right strips); the image itself is resized
  // and converted by the SIMD kernels (src/vision/planar.ts).
  for (let c = 0; c < 3; c++) {
    const base = c * plane;
    padded.fill(pad, base, base + padY * size);
    padded.fill(pad, base + (padY + newH) * size, base + plane);
    if (newW < size) {
      for (let y = padY; y < padY + newH; y++) {
        padded.fill(pad, base + y * size, base + y * size + padX);
        padded.fill(pad, base + y * size + padX + newW, base + (y + 1) * size);
      }
    }
  }
  const tensor =
    newW === width && newH === height
      ? w.write(rgb, width, { x: 0, y: 0, width, height }, size, size, padX, padY)
      : w.resize(rgb, width, height, newW, newH, size, size, padX, padY);
  return { tensor, size, scale, padX, padY };
}

/**
 * Decodes a raw YOLOv8 detection head, layout [1, 4 + nc, N] (channel-major: value c of anchor i is at
 * `output[c * N + i]`): rows 0..3 are cx, cy, w, h in letterbox pixels, rows 4.. are per-class scores
 * (already sigmoid-ed, no objectness). Source: Ultralytics YOLOv8 ONNX export / `non_max_suppression`.
 *
 * As in Ultralytics (single-label mode), each anchor takes its best class (argmax over all classes), is kept
 * when that score is > `confThreshold`, and is then dropped unless its class is in `classes` (when given).
 * No NMS here; see {@link nms}.
 *
 * @param output the model output data, length (4 + nc) * N
 * @param dims the output tensor's dims, `[1, 4 + nc, N]`
 * @returns detections with bbox [x1, y1, x2, y2] in letterbox pixels, in anchor order
 * @throws PipelineError(ModelError, 'output0') when dims are not [1, 4 + nc, N] with nc >= 1 or the data
 *   length does not match
 */
export function decodeYoloV8(output: Float32Array, dims: readonly number[], opts: { confThreshold: number; classes?: number[] }): Detection[] {
  if (dims.length !== 3 || dims[0] !== 1 || dims[1] < 5 || dims[2] < 1) {
    throw new PipelineError(ErrorType.ModelError, YOLOV8_OUTPUT_NAME, `output dims [${dims.join(', ')}] are not [1, 4 + nc, N]`);
  }
  const rows = dims[1];
  const n = dims[2];
  if (output.length !== rows * n) {
    throw new PipelineError(ErrorType.ModelError, YOLOV8_OUTPUT_NAME, `output has ${output.length} values, dims [${dims.join(', ')}] need ${rows * n}`);
  }
  const allowed = opts.classes ? new Set(opts.classes) : undefined;
  // Pre-filter (same result, far fewer strided reads): an anchor can only be kept when one of the allowed
  // classes scores above the threshold, and each class row is contiguous in memory.
  let candidate: Uint8Array | undefined;
  if (allowed) {
    candidate = new Uint8Array(n);
    for (const c of allowed) {
      if (!(c >= 0 && c < rows - 4)) continue;
      const off = (c + 4) * n;
      for (let i = 0; i < n; i++) if (output[off + i] > opts.confThreshold) candidate[i] = 1;
    }
  }
  const dets: Detection[] = [];
  for (let i = 0; i < n; i++) {
    if (candidate && candidate[i] === 0) continue;
    let best = -Infinity;
    let cls = -1;
    for (let c = 4; c < rows; c++) {
      const s = output[c * n + i];
      if (s > best) {
        best = s;
        cls = c - 4;
      }
    }
    if (!(best > opts.confThreshold)) continue;
    if (allowed && !allowed.has(cls)) continue;
    const cx = output[i];
    const cy = output[n + i];
    const hw = output[2 * n + i] / 2;
    const hh = output[3 * n + i] / 2;
    dets.push({ bbox: [cx - hw, cy - hh, cx + hw, cy + hh], score: best, classId: cls });
  }
  return dets;
}

/**
 * Maps boxes from letterbox pixels back to source pixels and clamps them to the image, as Ultralytics
 * `scale_boxes` + `clip_boxes` do: x = (x' - padX) / scale, y = (y' - padY) / scale, then
 * x in [0, width], y in [0, height]. Boxes with zero width or height after clamping are dropped.
 *
 * @param dets detections in letterbox pixels (not modified)
 * @param geometry the {@link letterbox} result (or its scale/padX/padY)
 * @param width source width, pixels
 * @param height source height, pixels
 * @returns new detections in source pixels
 */
export function unletterbox(dets: readonly Detection[], geometry: LetterboxGeometry, width: number, height: number): Detection[] {
  const { scale, padX, padY } = geometry;
  const out: Detection[] = [];
  for (const d of dets) {
    const [a, b, c, e] = d.bbox;
    const x1 = clamp((a - padX) / scale, 0, width);
    const y1 = clamp((b - padY) / scale, 0, height);
    const x2 = clamp((c - padX) / scale, 0, width);
    const y2 = clamp((e - padY) / scale, 0, height);
    if (x2 <= x1 || y2 <= y1) continue;
    out.push({ ...d, bbox: [x1, y1, x2, y2] });
  }
  return out;
}

/**
 * Maps a box from source pixels into letterbox pixels (inverse of {@link unletterbox} without clamping):
 * x' = x * scale + padX, y' = y * scale + padY.
 */
export function toLetterbox(bbox: readonly number[], geometry: LetterboxGeometry): BBox {
  const { scale, padX, padY } = geometry;
  return [bbox[0] * scale + padX, bbox[1] * scale + padY, bbox[2] * scale + padX, bbox[3] * scale + padY];
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * Intersection over union of two boxes `[x1, y1, x2, y2]` (continuous coordinates, no +1, as in
 * torchvision `box_iou`). Returns 0 when the union is empty.
 */
export function iou(a: readonly number[], b: readonly number[]): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Greedy non-maximum suppression: visit detections by descending score (ties keep input order); keep one
 * unless it overlaps an already kept one with IoU > `iouThreshold` (strictly greater, as torchvision `nms`).
 * With `classAware` (the Ultralytics default, `agnostic=False`) only boxes of the same class suppress each
 * other. O(n^2) in the number of candidates.
 *
 * @param dets candidates (not modified)
 * @param iouThreshold IoU above which the lower-scored box is dropped; Ultralytics default 0.7
 * @param classAware suppress only within a class (default true)
 * @param maxDetections keep at most this many (Ultralytics `max_det`, default 300)
 * @returns kept detections, by descending score
 */
export function nms(dets: readonly Detection[], iouThreshold: number, classAware = true, maxDetections = DEFAULT_MAX_DETECTIONS): Detection[] {
  const order = dets.map((d, i) => ({ d, i })).sort((p, q) => q.d.score - p.d.score || p.i - q.i);
  const kept: Detection[] = [];
  for (const { d } of order) {
    if (kept.length >= maxDetections) break;
    let suppressed = false;
    for (const k of kept) {
      if (classAware && k.classId !== d.classId) continue;
      if (iou(k.bbox, d.bbox) > iouThreshold) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) kept.push(d);
  }
  return kept;
}

/** What {@link validateModelIO} found in a model that matches the YOLOv8 detection layout. */
export interface YoloV8ModelIO {
  inputName: string;
  outputName: string;
  /** Side S of the square input, pixels. */
  inputSize: number;
  /** Number of classes nc (80 for COCO). */
  numClasses: number;
  /** Anchors N, or undefined when the model declares it symbolically. */
  numAnchors: number | undefined;
}

/** Minimal shape of onnxruntime's `InferenceSession.ValueMetadata` used by {@link validateModelIO}. */
export interface ValueMetadataLike {
  name: string;
  isTensor: boolean;
  type?: string;
  shape?: ReadonlyArray<number | string>;
}

/**
 * Checks a model's declared inputs and outputs against the Ultralytics YOLOv8 ONNX detection export:
 * one float32 input `images` of shape [1, 3, S, S] and an output `output0` of shape [1, 4 + nc, N] with
 * nc >= 1 and, when S and N are both fixed, N = sum over strides 8, 16, 32 of (S/stride)^2 (8400 at 640).
 * Symbolic (dynamic) dims are accepted; a dynamic S takes `inputSize` (default 640).
 *
 * @param inputs the session's `inputMetadata`
 * @param outputs the session's `outputMetadata`
 * @param inputSize the expected S; when the model fixes S it must be equal
 * @returns the names and sizes to use
 * @throws PipelineError(ModelError, subject) with a reason naming the mismatch; `subject` defaults to 'model'
 */
export function validateModelIO(
  inputs: readonly ValueMetadataLike[],
  outputs: readonly ValueMetadataLike[],
  inputSize?: number,
  subject = 'model',
): YoloV8ModelIO {
  const fail = (reason: string): never => {
    throw new PipelineError(ErrorType.ModelError, subject, `${reason} (expected a YOLOv8 detection export: input '${YOLOV8_INPUT_NAME}' float32 [1, 3, S, S], output '${YOLOV8_OUTPUT_NAME}' float32 [1, 4 + nc, N])`);
  };
  const fmt = (m: ValueMetadataLike) => `'${m.name}' ${m.type ?? '?'} [${(m.shape ?? []).join(', ')}]`;
  if (inputs.length !== 1) fail(`model has ${inputs.length} inputs (${inputs.map(fmt).join('; ')})`);
  const input = inputs[0];
  if (input.name !== YOLOV8_INPUT_NAME) fail(`input is named '${input.name}'`);
  if (!input.isTensor || input.type !== 'float32') fail(`input ${fmt(input)} is not a float32 tensor`);
  const ishape = input.shape ?? [];
  const fixed = (d: number | string | undefined): d is number => typeof d === 'number';
  if (ishape.length !== 4) fail(`input ${fmt(input)} is not 4-D`);
  if (fixed(ishape[0]) && ishape[0] !== 1) fail(`input ${fmt(input)} has batch ${ishape[0]}, expected 1`);
  if (fixed(ishape[1]) && ishape[1] !== 3) fail(`input ${fmt(input)} has ${ishape[1]} channels, expected 3`);
  if (fixed(ishape[2]) && fixed(ishape[3]) && ishape[2] !== ishape[3]) fail(`input ${fmt(input)} is not square`);
  let size: number;
  if (fixed(ishape[2]) || fixed(ishape[3])) {
    size = (fixed(ishape[2]) ? ishape[2] : ishape[3]) as number;
    if (inputSize !== undefined && inputSize !== size) fail(`input ${fmt(input)} is fixed at ${size}x${size}, but input size ${inputSize} was requested`);
  } else {
    size = inputSize ?? DEFAULT_INPUT_SIZE;
  }
  if (size % 32 !== 0) fail(`input size ${size} is not a multiple of 32`);

  const output = outputs.find((o) => o.name === YOLOV8_OUTPUT_NAME);
  if (!output) return fail(`no output named '${YOLOV8_OUTPUT_NAME}' (outputs: ${outputs.map(fmt).join('; ') || 'none'})`);
  if (!output.isTensor || output.type !== 'float32') fail(`output ${fmt(output)} is not a float32 tensor`);
  const oshape = output.shape ?? [];
  if (oshape.length !== 3) fail(`output ${fmt(output)} is not 3-D [1, 4 + nc, N]`);
  if (fixed(oshape[0]) && oshape[0] !== 1) fail(`output ${fmt(output)} has batch ${oshape[0]}, expected 1`);
  if (!fixed(oshape[1]) || oshape[1] < 5) fail(`output ${fmt(output)} does not have a fixed 4 + nc >= 5 second dim`);
  const numAnchors = fixed(oshape[2]) ? oshape[2] : undefined;
  const expectAnchors = yoloV8AnchorCount(size);
  if (numAnchors !== undefined && fixed(ishape[2]) && numAnchors !== expectAnchors) {
    fail(`output ${fmt(output)} has ${numAnchors} anchors, input ${size} implies ${expectAnchors}`);
  }
  if (numAnchors !== undefined && numAnchors < (oshape[1] as number)) {
    fail(`output ${fmt(output)} looks transposed ([1, N, 4 + nc]); expected [1, 4 + nc, N]`);
  }
  return { inputName: input.name, outputName: output.name, inputSize: size, numClasses: (oshape[1] as number) - 4, numAnchors };
}

/** Per-call timings of the last {@link Detector.detect}, milliseconds (wall clock, `performance.now`). */
export interface DetectTimings {
  /** letterbox: bilinear resize + HWC uint8 -> CHW float32 (WebAssembly kernels). */
  preprocessMs: number;
  /** `session.run` only. */
  inferenceMs: number;
  /** decodeYoloV8 + nms + unletterbox. */
  postprocessMs: number;
}

/** Options of one {@link Detector.detect} call. */
export interface DetectOptions {
  /** Keep anchors whose best class score is > this; Ultralytics default 0.25. */
  confThreshold: number;
  /** NMS IoU threshold; Ultralytics default 0.7. */
  iouThreshold: number;
  /** Keep only these class ids (e.g. `[0]` for COCO persons); all classes when absent. */
  classes?: number[];
}

/** A loaded detection model. One per process; reuse it for every frame. */
export interface Detector {
  /** File name of the model, e.g. `yolov8n.onnx`. */
  modelName: string;
  /** Lower-case hex sha256 of the model file, for `.pipeline_info.json`. */
  modelSha256: string;
  /** Side S of the square model input, pixels. */
  inputSize: number;
  /** Number of classes the model predicts. */
  numClasses: number;
  /** The execution provider the session was created with (e.g. `cpu`, `cuda`). */
  executionProvider: string;
  /** Timings of the most recent completed `detect` call (zeros before the first). */
  readonly lastTimings: DetectTimings;
  /**
   * Detects objects in one frame.
   * @returns detections with bbox [x1, y1, x2, y2] in source pixels (clamped to the frame), by descending score
   * @throws PipelineError(Internal) for a malformed frame or a call after `release`;
   *   PipelineError(ModelError) when the model output has an unexpected shape
   */
  detect(frame: RgbFrame, opts: DetectOptions): Promise<Detection[]>;
  /**
   * Runs the model on a ready input tensor (1x3xSxS float32, see {@link letterbox}) and returns the raw
   * output 1x(4+nc)xN, for benchmarks comparing model time with whole-step time.
   */
  inferRaw(tensor: Float32Array): Promise<{ output: Float32Array; dims: number[]; inferenceMs: number }>;
  /**
   * Runs the model on the S x S rectangle `rect` of `frame` taken as it is (scale 1, no padding: the tiles
   * of tiled inference), converted into the detector's own input tensor inside its queue. The same values
   * as `letterbox(cropRgb(frame, rect))`.
   * @returns the raw output 1x(4+nc)xN, the inference time and the conversion time, ms
   * @throws PipelineError(Internal) when `rect` is not S x S or not inside the frame, or after `release`
   */
  inferRegion(frame: RgbFrame, rect: PixelRect): Promise<{ output: Float32Array; dims: number[]; inferenceMs: number; preprocessMs: number }>;
  /** Waits for queued calls, then releases the session. Idempotent. */
  release(): Promise<void>;
}

/** Minimal logger interface (pino-compatible). */
export interface DetectorLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Options of {@link createDetector}. */
export interface CreateDetectorOptions {
  /** Path of the YOLOv8 ONNX file. */
  modelPath: string;
  /** onnxruntime execution providers in preference order, e.g. `['cuda', 'cpu']`; default `['cpu']`. */
  executionProviders?: string[];
  /** onnxruntime intra-op thread count; default: onnxruntime's own (all cores). */
  intraOpNumThreads?: number;
  /** Square input side S; must equal the model's when the model fixes it. Default: the model's, else 640. */
  inputSize?: number;
  /** Where to log the chosen provider and fallbacks; default a pino logger named `detector`. */
  logger?: DetectorLogger;
}

/**
 * Loads a YOLOv8 ONNX model into ONE onnxruntime InferenceSession, to be reused for every frame
 * (SPEC section 10: creating and releasing sessions repeatedly leaks memory).
 *
 * Execution providers are tried in the given order, each attempt with the remaining list (so
 * `['cuda', 'cpu']` tries `['cuda', 'cpu']` then `['cpu']`); `cpu` is always the last resort. The provider
 * used is logged and exposed as {@link Detector.executionProvider}. Calls to `detect`/`inferRaw` are queued
 * and run one at a time (onnxruntime-node runs the model synchronously on the main thread anyway, so this
 * costs nothing and makes timings and `release` well defined).
 *
 * @throws PipelineError(ModelError, modelPath) when the file is missing or unreadable, cannot be loaded by
 *   onnxruntime with any provider, or its declared inputs/outputs do not match {@link validateModelIO}
 */
export async function createDetector(opts: CreateDetectorOptions): Promise<Detector> {
  const log = opts.logger ?? pino({ name: 'detector', level: process.env.LOG_LEVEL ?? 'info' });
  const opened = await openSession({ ...opts, logger: log });
  const { session, modelPath, modelSha256, executionProvider } = opened;

  let io: YoloV8ModelIO;
  try {
    io = validateModelIO(session.inputMetadata as readonly ValueMetadataLike[], session.outputMetadata as readonly ValueMetadataLike[], opts.inputSize, modelPath);
  } catch (err) {
    await session.release();
    throw err;
  }
  log.info(
    { model: path.basename(modelPath), sha256: modelSha256, executionProvider, inputSize: io.inputSize, numClasses: io.numClasses },
    `detector loaded on ${executionProvider}`,
  );

  const s = session;
  const size = io.inputSize;
  const queue = sessionQueue(opened, 'detector');
  const enqueue = queue.enqueue.bind(queue);
  let lastTimings: DetectTimings = { preprocessMs: 0, inferenceMs: 0, postprocessMs: 0 };
  let inputWriter: PlanarWriter | undefined;

  const run = async (tensor: Float32Array) => {
    if (tensor.length !== 3 * size * size) {
      throw new PipelineError(ErrorType.Internal, modelPath, `input tensor has ${tensor.length} values, expected 1x3x${size}x${size}`);
    }
    const t0 = performance.now();
    const out = await s.run({ [io.inputName]: new ort.Tensor('float32', tensor, [1, 3, size, size]) }, [io.outputName]);
    const inferenceMs = performance.now() - t0;
    const t = out[io.outputName];
    return { output: t.data as Float32Array, dims: [...t.dims], inferenceMs };
  };

  return {
    modelName: path.basename(modelPath),
    modelSha256,
    inputSize: size,
    numClasses: io.numClasses,
    executionProvider,
    get lastTimings() {
      return lastTimings;
    },
    detect(frame, dopts) {
      return enqueue(async () => {
        const t0 = performance.now();
        // One input tensor per detector, reused: calls are queued, so it is never in use twice.
        inputWriter ??= await createPlanarWriter();
        const lb = await letterbox(frame.rgb, frame.width, frame.height, size, inputWriter);
        const t1 = performance.now();
        const { output, dims, inferenceMs } = await run(lb.tensor);
        const t2 = performance.now();
        const raw = decodeYoloV8(output, dims, { confThreshold: dopts.confThreshold, classes: dopts.classes });
        const dets = unletterbox(nms(raw, dopts.iouThreshold, true), lb, frame.width, frame.height);
        lastTimings = { preprocessMs: t1 - t0, inferenceMs, postprocessMs: performance.now() - t2 };
        return dets;
      });
    },
    inferRaw(tensor) {
      return enqueue(() => run(tensor));
    },
    inferRegion(frame, rect) {
      return enqueue(async () => {
        if (rect.width !== size || rect.height !== size || rect.y + rect.height > frame.height) {
          throw new PipelineError(ErrorType.Internal, modelPath, `region ${rect.width}x${rect.height}+${rect.x}+${rect.y} is not a ${size}x${size} rectangle inside the ${frame.width}x${frame.height} frame`);
        }
        const t0 = performance.now();
        inputWriter ??= await createPlanarWriter();
        const tensor = inputWriter.write(frame.rgb, frame.width, rect, size, size, 0, 0);
        const preprocessMs = performance.now() - t0;
        return { ...(await run(tensor)), preprocessMs };
      });
    },
    release: () => queue.release(),
  };
}

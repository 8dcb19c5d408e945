/**
 * YOLOv8 pre- and post-processing, pure (letterbox awaits only the first compilation of its WebAssembly
 * kernels), so it can be unit-tested without the model. Pipeline per frame (source: Ultralytics YOLOv8
 * predict path, https://docs.ultralytics.com/modes/predict/, `ultralytics/data/augment.py` LetterBox,
 * `ultralytics/utils/ops.py` non_max_suppression and scale_boxes):
 *
 *   RGB frame (H x W x 3, uint8) --letterbox--> tensor 1x3xSxS float32 (RGB, 0..1, grey 114 padding)
 *   --model--> output 1x(4+nc)xN --decodeYoloV8--> boxes in letterbox pixels --nms--> --unletterbox-->
 *   {@link Detection}s with bbox [x1, y1, x2, y2] in source pixels.
 *
 * Also the check of a model's declared inputs and outputs against the YOLOv8 export ({@link validateModelIO}).
 */
import { ErrorType, PipelineError } from '../../errors';
import type { ValueMetadataLike } from '../onnx';
import type { BBox, Detection } from './geometry';
import { createPlanarWriter, type PlanarWriter } from './planar';

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
  // and converted by the SIMD kernels (src/vision/detection/planar.ts).
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

/**
 * Person detector: a YOLOv8 ONNX model run with onnxruntime-node, one session per process
 * ({@link createDetector}); pre- and post-processing in `./yolo`.
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
import { ErrorType, PipelineError } from '../../errors';
import type { RgbFrame } from '../image/rgb';
import { openSession, sessionQueue, type ValueMetadataLike } from '../onnx';
import { nms, type Detection } from './geometry';
import { createPlanarWriter, type PixelRect, type PlanarWriter } from './planar';
import { decodeYoloV8, letterbox, unletterbox, validateModelIO, type YoloV8ModelIO } from './yolo';

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
 * (docs/ARCHITECTURE.md "Pitfalls": creating and releasing sessions repeatedly leaks memory).
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

/**
 * Person/foreground segmentation of player crops for step 7 (`removeCropBackground`, modes `segmentation`
 * and `both`): the U^2-Net-p salient-object model (`u2netp.onnx`, README "Models") run with onnxruntime-node.
 * The masks are composited over the crop in src/dataset/background.ts.
 *
 * Model: U^2-Net, Qin et al., "U^2-Net: Going Deeper with Nested U-Structure for Salient Object Detection",
 * Pattern Recognition 106, 2020 (https://arxiv.org/abs/2005.09007); `u2netp` is the paper's small (4.7 MB)
 * variant. Input 1x3x320x320 float32, seven outputs 1x1x320x320 (the fused map d0 first, then side outputs
 * d1..d6), each already passed through a sigmoid.
 *
 * Pre/post-processing follows rembg's u2netp session (https://github.com/danielgatis/rembg,
 * `rembg/sessions/base.py` `BaseSession.normalize` and `rembg/sessions/u2netp.py` `U2netpSession.predict`):
 *   crop (H x W RGB uint8) --resize 320x320 (Lanczos, aspect NOT kept)--> / max(pixel values)
 *   --(x - mean) / std, ImageNet mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225]--> CHW 1x3x320x320
 *   --model--> output[0] 1x1x320x320 --min-max normalise to 0..1, x255, truncate to uint8--> resize back to
 *   W x H (Lanczos) --> alpha, W*H bytes, 0 = background, 255 = foreground.
 * rembg uses PIL's LANCZOS; here sharp's `lanczos3` (libvips), so values differ slightly, not the geometry.
 * (sharp turns a 1-channel raw image into sRGB when resizing or blurring, so masks take `extractChannel(0)`.)
 *
 * Crops are read as stored (no EXIF rotation; crops are written without EXIF), so a mask's pixels line up
 * with the pixels `applyMask` (src/dataset/background.ts) composites. Our crops are written by sharp without EXIF orientation anyway.
 */
import path from 'node:path';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { ErrorType, PipelineError } from '../../errors';
import { openSession, sessionQueue, type ValueMetadataLike } from '../onnx';

/** Side of the square u2netp input and output, pixels. */
export const U2NETP_INPUT_SIZE = 320;

/** ImageNet per-channel RGB mean (on 0..1 values), as used by rembg for u2netp. */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;

/** ImageNet per-channel RGB standard deviation (on 0..1 values), as used by rembg for u2netp. */
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/**
 * A soft mask over an image: `alpha[y * width + x]` in 0..255 (0 = background, 255 = foreground/kept).
 */
export interface SoftMask {
  /** Width, pixels. */
  width: number;
  /** Height, pixels. */
  height: number;
  /** `width * height` bytes, row-major. */
  alpha: Uint8Array;
}

/** A loaded u2netp session. One per process; reuse it for every crop. */
export interface Segmenter {
  /** File name of the model, e.g. `u2netp.onnx`. */
  modelName: string;
  /** Lower-case hex sha256 of the model file, for `.pipeline_info.json`. */
  modelSha256: string;
  /** The execution provider the session was created with (e.g. `cpu`, `cuda`). */
  executionProvider: string;
  /**
   * Foreground mask of one crop (see the module comment for the exact pre/post-processing).
   * @param crop an encoded image (JPEG in the pipeline; anything sharp decodes), W x H pixels
   * @returns a {@link SoftMask} of W x H
   * @throws PipelineError(Internal) after `release`, or when sharp cannot decode `crop`;
   *   PipelineError(ModelError) when the model's output is not 1x1x320x320
   */
  mask(crop: Buffer): Promise<SoftMask>;
  /** Waits for queued calls, then releases the session. Idempotent. */
  release(): Promise<void>;
}

/** Options of {@link createSegmenter}. */
export interface CreateSegmenterOptions {
  /** Path of `u2netp.onnx`. */
  modelPath: string;
  /** onnxruntime execution providers in preference order, e.g. `['cuda', 'cpu']`; default `['cpu']`. */
  executionProviders?: string[];
  /** onnxruntime intra-op thread count; default: onnxruntime's own (all cores). */
  intraOpNumThreads?: number;
}

/**
 * Checks a model's declared IO against u2netp: exactly one float32 input [1, 3, 320, 320] and a first output
 * float32 [1, 1, 320, 320] (symbolic dims are accepted where these numbers are expected).
 * @returns the input name and the first output's name
 * @throws PipelineError(ModelError, subject) naming the mismatch
 */
export function validateSegmenterIO(
  inputs: readonly ValueMetadataLike[],
  outputs: readonly ValueMetadataLike[],
  subject = 'model',
): { inputName: string; outputName: string } {
  const S = U2NETP_INPUT_SIZE;
  const fail = (reason: string): never => {
    throw new PipelineError(ErrorType.ModelError, subject, `${reason} (expected u2netp: input float32 [1, 3, ${S}, ${S}], first output float32 [1, 1, ${S}, ${S}])`);
  };
  const fmt = (m: ValueMetadataLike) => `'${m.name}' ${m.type ?? '?'} [${(m.shape ?? []).join(', ')}]`;
  const dimsOk = (shape: ReadonlyArray<number | string> | undefined, want: number[]) =>
    !!shape && shape.length === want.length && shape.every((d, i) => typeof d !== 'number' || d === want[i]);
  if (inputs.length !== 1) fail(`model has ${inputs.length} inputs (${inputs.map(fmt).join('; ')})`);
  const input = inputs[0];
  if (!input.isTensor || input.type !== 'float32') fail(`input ${fmt(input)} is not a float32 tensor`);
  if (!dimsOk(input.shape, [1, 3, S, S])) fail(`input ${fmt(input)} has the wrong shape`);
  if (outputs.length < 1) fail('model has no outputs');
  const output = outputs[0];
  if (!output.isTensor || output.type !== 'float32') fail(`first output ${fmt(output)} is not a float32 tensor`);
  if (!dimsOk(output.shape, [1, 1, S, S])) fail(`first output ${fmt(output)} has the wrong shape`);
  return { inputName: input.name, outputName: output.name };
}

/**
 * rembg's u2netp input: decodes `crop`, resizes it to 320x320 (Lanczos, no aspect preservation), divides by
 * the largest channel value of the resized image (max(·, 1e-6)), then applies ImageNet mean/std per channel.
 * @returns tensor data 1x3x320x320 float32, CHW planes R, G, B, and the crop's size in pixels
 * @throws PipelineError(Internal, 'crop') when sharp cannot decode `crop`
 */
export async function u2netpInput(crop: Buffer): Promise<{ tensor: Float32Array; width: number; height: number }> {
  const S = U2NETP_INPUT_SIZE;
  let rgb: Buffer;
  let width: number;
  let height: number;
  try {
    const img = sharp(crop);
    const meta = await img.metadata();
    width = meta.width ?? 0;
    height = meta.height ?? 0;
    rgb = await img.removeAlpha().toColourspace('srgb').resize(S, S, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
  } catch (err) {
    throw new PipelineError(ErrorType.Internal, 'crop', `cannot decode crop: ${(err as Error).message}`, { cause: err });
  }
  if (rgb.length !== S * S * 3 || width < 1 || height < 1) {
    throw new PipelineError(ErrorType.Internal, 'crop', `unexpected decode: ${width}x${height}, ${rgb.length} bytes at ${S}x${S}`);
  }
  let max = 0;
  for (let i = 0; i < rgb.length; i++) if (rgb[i] > max) max = rgb[i];
  // rembg: im_ary / max(np.max(im_ary), 1e-6), on 0..255 values; so a pixel equal to the max maps to 1.
  const div = Math.max(max, 1e-6);
  const plane = S * S;
  const tensor = new Float32Array(3 * plane);
  const lut = [0, 1, 2].map((c) => Float32Array.from({ length: 256 }, (_, v) => (v / div - IMAGENET_MEAN[c]) / IMAGENET_STD[c]));
  for (let p = 0, src = 0; p < plane; p++, src += 3) {
    tensor[p] = lut[0][rgb[src]];
    tensor[p + plane] = lut[1][rgb[src + 1]];
    tensor[p + 2 * plane] = lut[2][rgb[src + 2]];
  }
  return { tensor, width, height };
}

/**
 * rembg's u2netp post-processing: min-max normalises the 320x320 prediction to 0..1, scales to 0..255
 * (truncating, like numpy's `astype('uint8')`) and resizes it to `width x height` with Lanczos.
 * A constant prediction (max = min) gives an all-zero mask.
 * @param pred output[0] data, 320*320 float32 (row-major) @param width @param height target size, pixels
 * @returns {@link SoftMask} of `width x height`
 */
export async function u2netpMask(pred: Float32Array, width: number, height: number): Promise<SoftMask> {
  const S = U2NETP_INPUT_SIZE;
  let mi = Infinity;
  let ma = -Infinity;
  for (let i = 0; i < S * S; i++) {
    const v = pred[i];
    if (v < mi) mi = v;
    if (v > ma) ma = v;
  }
  const small = Buffer.alloc(S * S);
  const range = ma - mi;
  if (range > 0) for (let i = 0; i < S * S; i++) small[i] = Math.min(255, Math.floor(((pred[i] - mi) / range) * 255));
  const alpha =
    width === S && height === S
      ? small
      : await sharp(small, { raw: { width: S, height: S, channels: 1 } }).resize(width, height, { fit: 'fill', kernel: 'lanczos3' }).extractChannel(0).raw().toBuffer();
  if (alpha.length !== width * height) {
    throw new PipelineError(ErrorType.Internal, 'mask', `resized mask has ${alpha.length} bytes, expected ${width}x${height}`);
  }
  return { width, height, alpha: new Uint8Array(alpha.buffer, alpha.byteOffset, alpha.length) };
}

/**
 * Loads `u2netp.onnx` into ONE onnxruntime InferenceSession, to be reused for every crop (docs/ARCHITECTURE.md "Pitfalls":
 * creating and releasing sessions repeatedly leaks memory); same pattern as `createDetector` in src/vision/detection/detector.ts.
 * Execution providers are tried in order, each attempt with the remaining list; `cpu` is the last resort.
 * Calls to `mask` are queued and run one at a time.
 * @throws PipelineError(ModelError, modelPath) when the file is missing or unreadable, onnxruntime cannot
 *   load it with any provider, or its IO does not match {@link validateSegmenterIO}
 */
export async function createSegmenter(opts: CreateSegmenterOptions): Promise<Segmenter> {
  const opened = await openSession(opts);
  const { session, modelPath, modelSha256, executionProvider } = opened;
  let io: { inputName: string; outputName: string };
  try {
    io = validateSegmenterIO(session.inputMetadata as readonly ValueMetadataLike[], session.outputMetadata as readonly ValueMetadataLike[], modelPath);
  } catch (err) {
    await session.release();
    throw err;
  }

  const s = session;
  const S = U2NETP_INPUT_SIZE;
  const queue = sessionQueue(opened, 'segmenter');
  const enqueue = queue.enqueue.bind(queue);

  return {
    modelName: path.basename(modelPath),
    modelSha256,
    executionProvider,
    mask(crop) {
      return enqueue(async () => {
        const { tensor, width, height } = await u2netpInput(crop);
        const out = await s.run({ [io.inputName]: new ort.Tensor('float32', tensor, [1, 3, S, S]) }, [io.outputName]);
        const t = out[io.outputName];
        const dims = [...t.dims];
        if (dims.length !== 4 || dims[0] !== 1 || dims[1] !== 1 || dims[2] !== S || dims[3] !== S || t.type !== 'float32') {
          throw new PipelineError(ErrorType.ModelError, modelPath, `output ${t.type} [${dims.join(', ')}] is not float32 [1, 1, ${S}, ${S}]`);
        }
        return u2netpMask(t.data as Float32Array, width, height);
      });
    },
    release: () => queue.release(),
  };
}


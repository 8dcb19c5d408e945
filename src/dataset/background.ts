/**
 * Background removal of crops (step 7, `removeCropBackground`): which mode applies to a video
 * ({@link decideBackground}), and the soft masks (the pitch colour keyed out, the u2netp person mask of
 * src/vision/segmentation/u2netp.ts, or both) composited over a fill colour.
 */
import sharp from 'sharp';
import { ErrorType, PipelineError } from '../errors';
import type { PitchColour } from '../vision/pitch/model';
import { isGrassRgb } from '../vision/pitch/colour';
import type { SoftMask } from '../vision/segmentation/u2netp';

/** `options.background.mode`: what to remove from crops. */
export type BackgroundMode = 'grass' | 'segmentation' | 'both' | 'none';

/**
 * How a video's crops are treated by step 7, decided once from the requested mode and step 4's pitch
 * decision ({@link decideBackground}) and recorded the same way in step 7's result, the manifest
 * (`background`) and the report.
 */
export interface BackgroundDecision {
  /** `options.background.mode` as requested. */
  requestedMode: BackgroundMode;
  /** The mode applied. */
  mode: BackgroundMode;
  /**
   * Whether a background is removed (`mode` is not `none`). When not, step 7 writes nothing: there are no
   * `crops/modified/` objects (they would be byte-identical copies of `crops/original/`), and the dataset
   * images are made from the original crops (the manifest's `source_crop` names them).
   */
  removed: boolean;
  /** Why `mode` differs from `requestedMode`, when it does. */
  reason?: string;
}

/** Why the grass key cannot apply to a video without a pitch. */
export const NO_PITCH_REASON = 'no pitch found in step 4, so there is no grass colour to key out';

/**
 * The background treatment of a video: `grass` keys out the pitch colour of step 4, so without a pitch
 * `grass` becomes `none` and `both` becomes `segmentation`; other modes apply as requested.
 * Steps 7, 8 and 9 all call this with the same inputs (the options and the pitch model in their input), so
 * they agree; it is the only place the rule is written.
 * @param requested `options.background.mode`
 * @param pitchFound `pitchFound` of step 4's pitch model (false when there is none)
 */
export function decideBackground(requested: BackgroundMode, pitchFound: boolean): BackgroundDecision {
  const needsPitch = requested === 'grass' || requested === 'both';
  const mode: BackgroundMode = needsPitch && !pitchFound ? (requested === 'both' ? 'segmentation' : 'none') : requested;
  return { requestedMode: requested, mode, removed: mode !== 'none', ...(mode !== requested ? { reason: NO_PITCH_REASON } : {}) };
}

/** One line for people (the report, logs): `grass`, or e.g. `none (requested grass: no pitch found in step 4, ...)`. */
export function describeBackground(d: BackgroundDecision): string {
  return d.mode === d.requestedMode ? d.mode : `${d.mode} (requested ${d.requestedMode}: ${d.reason})`;
}

/**
 * Composites `crop` over a constant colour using `alpha` as a soft mask (JPEG has no alpha channel):
 * out = (alpha × crop + (255 − alpha) × fill) / 255 per channel, rounded.
 * @param crop encoded image, W x H @param alpha W*H bytes, 0..255 (255 keeps the crop pixel)
 * @param fill background RGB, 0..255 each @param quality JPEG quality 1..100
 * @returns a JPEG of W x H
 * @throws PipelineError(Internal, 'alpha') when `alpha.length !== W * H`
 */
export async function applyMask(crop: Buffer, alpha: Uint8Array, fill: [number, number, number], quality: number): Promise<Buffer> {
  const { data, info } = await sharp(crop).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const n = info.width * info.height;
  if (alpha.length !== n) {
    throw new PipelineError(ErrorType.Internal, 'alpha', `mask has ${alpha.length} values, crop is ${info.width}x${info.height} = ${n}`);
  }
  for (let p = 0, i = 0; p < n; p++, i += 3) {
    const a = alpha[p];
    if (a === 255) continue;
    const b = 255 - a;
    data[i] = Math.round((a * data[i] + b * fill[0]) / 255);
    data[i + 1] = Math.round((a * data[i + 1] + b * fill[1]) / 255);
    data[i + 2] = Math.round((a * data[i + 2] + b * fill[2]) / 255);
  }
  return sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } }).jpeg({ quality, mozjpeg: false }).toBuffer();
}

/**
 * Intersection of two soft masks of the same size (mode `both`): element-wise min, so the result is never
 * more opaque than either input.
 * @throws PipelineError(Internal, 'mask') when the sizes differ
 */
export function intersectMasks(a: SoftMask, b: SoftMask): SoftMask {
  if (a.width !== b.width || a.height !== b.height || a.alpha.length !== b.alpha.length) {
    throw new PipelineError(ErrorType.Internal, 'mask', `cannot intersect ${a.width}x${a.height} with ${b.width}x${b.height}`);
  }
  const alpha = new Uint8Array(a.alpha.length);
  for (let i = 0; i < alpha.length; i++) alpha[i] = a.alpha[i] < b.alpha[i] ? a.alpha[i] : b.alpha[i];
  return { width: a.width, height: a.height, alpha };
}

/**
 * Grass keying as a soft mask: 0 where a pixel lies in the pitch model's HSV window (`isGrassRgb` of
 * src/vision/pitch/colour.ts, step 4), 255 elsewhere, optionally feathered by a Gaussian blur of `featherSigma`
 * pixels (sharp/libvips `blur`, sigma >= 0.3; 0 or less = hard edges).
 * @param crop encoded image, W x H @param grass the pitch colour model from step 4
 * @returns {@link SoftMask} of W x H
 */
export async function grassAlpha(crop: Buffer, grass: PitchColour, featherSigma = 0): Promise<SoftMask> {
  const { data, info } = await sharp(crop).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const n = info.width * info.height;
  const hard = Buffer.alloc(n);
  for (let p = 0, i = 0; p < n; p++, i += 3) hard[p] = isGrassRgb(data[i], data[i + 1], data[i + 2], grass) ? 0 : 255;
  const out =
    featherSigma > 0
      ? await sharp(hard, { raw: { width: info.width, height: info.height, channels: 1 } }).blur(Math.max(0.3, featherSigma)).extractChannel(0).raw().toBuffer()
      : hard;
  return { width: info.width, height: info.height, alpha: new Uint8Array(out.buffer, out.byteOffset, out.length) };
}

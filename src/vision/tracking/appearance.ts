/**
 * Colour appearance of a person's box, with no model: HSV histograms of the upper body (shirt) and the lower
 * body (shorts, trousers), with the pitch colour keyed out when a pitch model exists, compared with the
 * Bhattacharyya distance; and a running appearance model per track (exponential moving average of the
 * histograms).
 *
 * Sources:
 * - Hue-saturation histograms compared with the Bhattacharyya distance for tracking: Comaniciu, Ramesh and
 *   Meer, "Kernel-Based Object Tracking", IEEE TPAMI 25(5), 2003 (colour histograms of the target, similarity
 *   by the Bhattacharyya coefficient rho = sum sqrt(p_i q_i), distance sqrt(1 - rho)); the same distance is
 *   OpenCV's `compareHist(..., HISTCMP_BHATTACHARYYA)` (docs.opencv.org, "Histogram Comparison" tutorial,
 *   which also uses H x S histograms).
 * - Separate achromatic bins: hue is undefined for black, grey and white pixels (Smith 1978 hexcone, see
 *   `rgbToHsv` in ../pitch/colour.ts), so pixels with low saturation or value go into value-only bins instead
 *   of a meaningless hue bin (as in Pérez et al., "Color-Based Probabilistic Tracking", ECCV 2002, which adds
 *   V-only bins for pixels with S or V below 0.1 / 0.2).
 * - Running model as an exponential moving average of appearance features: StrongSORT (Du et al.,
 *   arXiv:2202.13514, "EMA" with momentum 0.9: e_t = 0.9 e_{t-1} + 0.1 f_t).
 */
import type { BBox } from '../detection/geometry';
import type { RgbFrame } from '../image/rgb';
import { isGrassRgb } from '../pitch/colour';
import type { PitchColour } from '../pitch/model';

/** Hue bins (20 degrees each) x saturation bins of chromatic pixels. */
export const HUE_BINS = 18;
export const SAT_BINS = 3;
/** Value bins of achromatic pixels (saturation < {@link ACHROMATIC_SAT} or value < {@link ACHROMATIC_VAL}). */
export const VAL_BINS = 4;
/** Bins per region histogram. */
export const REGION_BINS = HUE_BINS * SAT_BINS + VAL_BINS;
/** Pixels below this saturation (0-1) are achromatic (Pérez et al. 2002 use 0.1; 0.2 suits compressed video). */
export const ACHROMATIC_SAT = 0.2;
/** Pixels below this value (0-1) are achromatic (Pérez et al. 2002 use 0.2). */
export const ACHROMATIC_VAL = 0.2;
/**
 * Body regions as fractions of the box height from its top: the upper body (below the head, to the hips)
 * and the lower body (hips to above the feet). From standing-person proportions: head about 1/8 of the
 * height, hips near the middle. Horizontally the central {@link CENTRE_WIDTH} of the box is used, which
 * keeps most of the torso and little background.
 */
export const UPPER_BODY: readonly [number, number] = [0.15, 0.5];
export const LOWER_BODY: readonly [number, number] = [0.5, 0.85];
export const CENTRE_WIDTH = 0.6;
/** At most this many samples per region side (the region is subsampled on a grid), so cost is bounded per box. */
export const MAX_SAMPLES_PER_SIDE = 24;
/** A region with fewer usable (non-pitch) samples than this has no histogram. */
export const MIN_REGION_SAMPLES = 12;

/** Colour appearance of one box: normalised histograms (each sums to 1) of the two body regions, or null when a region has too few usable pixels. */
export interface Appearance {
  upper: Float32Array | null;
  lower: Float32Array | null;
}

/** Options of {@link extractAppearance}. */
export interface AppearanceOptions {
  /** Pitch colour window; pixels inside it are keyed out (not counted). Null or absent: nothing keyed out. */
  pitch?: PitchColour | null;
}

function regionHistogram(frame: RgbFrame, x1: number, y1: number, x2: number, y2: number, pitch: PitchColour | null | undefined): Float32Array | null {
  const { rgb, width } = frame;
  const w = x2 - x1;
  const h = y2 - y1;
  if (w <= 0 || h <= 0) return null;
  const sx = Math.max(1, w / MAX_SAMPLES_PER_SIDE);
  const sy = Math.max(1, h / MAX_SAMPLES_PER_SIDE);
  const hist = new Float32Array(REGION_BINS);
  let n = 0;
  for (let fy = y1 + sy / 2; fy < y2; fy += sy) {
    const row = Math.floor(fy) * width;
    for (let fx = x1 + sx / 2; fx < x2; fx += sx) {
      const i = (row + Math.floor(fx)) * 3;
      const r = rgb[i];
      const g = rgb[i + 1];
      const b = rgb[i + 2];
      if (pitch && isGrassRgb(r, g, b, pitch)) continue;
      const max = r > g ? (r > b ? r : b) : g > b ? g : b;
      const min = r < g ? (r < b ? r : b) : g < b ? g : b;
      const v = max / 255;
      const s = max === 0 ? 0 : (max - min) / max;
      if (s < ACHROMATIC_SAT || v < ACHROMATIC_VAL) {
        hist[HUE_BINS * SAT_BINS + Math.min(VAL_BINS - 1, Math.floor(v * VAL_BINS))]++;
      } else {
        const d = max - min;
        let hue: number;
        if (max === r) hue = 60 * (((g - b) / d) % 6);
        else if (max === g) hue = 60 * ((b - r) / d + 2);
        else hue = 60 * ((r - g) / d + 4);
        if (hue < 0) hue += 360;
        const hb = Math.min(HUE_BINS - 1, Math.floor((hue / 360) * HUE_BINS));
        const sb = Math.min(SAT_BINS - 1, Math.floor(((s - ACHROMATIC_SAT) / (1 - ACHROMATIC_SAT)) * SAT_BINS));
        hist[hb * SAT_BINS + sb]++;
      }
      n++;
    }
  }
  if (n < MIN_REGION_SAMPLES) return null;
  for (let k = 0; k < REGION_BINS; k++) hist[k] /= n;
  return hist;
}

/**
 * Colour appearance of the person in `bbox` on `frame`: histograms of the upper and lower body regions
 * ({@link UPPER_BODY}, {@link LOWER_BODY}, central {@link CENTRE_WIDTH} of the width), each over at most
 * {@link MAX_SAMPLES_PER_SIDE}^2 grid samples, pitch-coloured pixels skipped. Cost: O(1) per box (at most
 * 2 x 576 samples).
 * @param bbox `[x1, y1, x2, y2]` in frame pixels; clamped to the frame
 * @returns the appearance; a region is null when fewer than {@link MIN_REGION_SAMPLES} usable samples fall in it
 *   (tiny or off-frame box, or a region all pitch)
 */
export function extractAppearance(frame: RgbFrame, bbox: Readonly<BBox>, opts: AppearanceOptions = {}): Appearance {
  const bw = bbox[2] - bbox[0];
  const bh = bbox[3] - bbox[1];
  const cx1 = Math.max(0, bbox[0] + (bw * (1 - CENTRE_WIDTH)) / 2);
  const cx2 = Math.min(frame.width, bbox[2] - (bw * (1 - CENTRE_WIDTH)) / 2);
  const region = ([a, b]: readonly [number, number]) =>
    regionHistogram(frame, cx1, Math.max(0, bbox[1] + a * bh), cx2, Math.min(frame.height, bbox[1] + b * bh), opts.pitch);
  return { upper: region(UPPER_BODY), lower: region(LOWER_BODY) };
}

/**
 * Bhattacharyya distance sqrt(1 - sum_i sqrt(p_i q_i)) of two normalised histograms (Comaniciu et al. 2003;
 * OpenCV `HISTCMP_BHATTACHARYYA`): 0 for identical histograms, 1 for disjoint ones.
 * @throws RangeError when the lengths differ
 */
export function bhattacharyya(p: ArrayLike<number>, q: ArrayLike<number>): number {
  if (p.length !== q.length) throw new RangeError(`histogram lengths differ: ${p.length} vs ${q.length}`);
  let bc = 0;
  for (let i = 0; i < p.length; i++) bc += Math.sqrt(p[i] * q[i]);
  return Math.sqrt(Math.max(0, 1 - bc));
}

/**
 * Distance of two appearances in [0, 1]: the mean Bhattacharyya distance over the body regions both have;
 * undefined when they share none (no evidence either way).
 */
export function appearanceDistance(a: Appearance, b: Appearance): number | undefined {
  let sum = 0;
  let n = 0;
  if (a.upper && b.upper) {
    sum += bhattacharyya(a.upper, b.upper);
    n++;
  }
  if (a.lower && b.lower) {
    sum += bhattacharyya(a.lower, b.lower);
    n++;
  }
  return n ? sum / n : undefined;
}

/** StrongSORT's EMA momentum: the weight of the running model when a new observation arrives. */
export const DEFAULT_EMA_MOMENTUM = 0.9;

function emaRegion(model: Float32Array | null, obs: Float32Array | null, momentum: number): Float32Array | null {
  if (!obs) return model ? model.slice() : null;
  if (!model) return obs.slice();
  const out = new Float32Array(model.length);
  for (let i = 0; i < model.length; i++) out[i] = momentum * model[i] + (1 - momentum) * obs[i];
  return out;
}

/**
 * A running appearance model: the exponential moving average m <- momentum * m + (1 - momentum) * f of the
 * region histograms (StrongSORT), per region; a region seen for the first time takes the observation.
 * Both stay normalised (a convex combination of normalised histograms). Returns a new object.
 * @param momentum in [0, 1); default {@link DEFAULT_EMA_MOMENTUM}
 */
export function updateAppearanceModel(model: Appearance | null, obs: Appearance, momentum = DEFAULT_EMA_MOMENTUM): Appearance {
  if (!model) return { upper: obs.upper?.slice() ?? null, lower: obs.lower?.slice() ?? null };
  return { upper: emaRegion(model.upper, obs.upper, momentum), lower: emaRegion(model.lower, obs.lower, momentum) };
}

/** JSON-safe form of an {@link Appearance} (for checkpoints): plain number arrays (float32 values, exact through JSON). */
export type AppearanceJson = { upper: number[] | null; lower: number[] | null };

/** Converts an appearance to {@link AppearanceJson}. */
export function appearanceToJson(a: Appearance): AppearanceJson {
  const r = (h: Float32Array | null) => (h ? Array.from(h) : null);
  return { upper: r(a.upper), lower: r(a.lower) };
}

/**
 * Reads an {@link AppearanceJson} back.
 * @throws RangeError when a histogram does not have {@link REGION_BINS} entries
 */
export function appearanceFromJson(j: AppearanceJson): Appearance {
  const r = (h: number[] | null) => {
    if (h && h.length !== REGION_BINS) throw new RangeError(`appearance histogram has ${h.length} bins, expected ${REGION_BINS}`);
    return h ? Float32Array.from(h) : null;
  };
  return { upper: r(j.upper), lower: r(j.lower) };
}

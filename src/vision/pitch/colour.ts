/**
 * Pitch colour model (step 4): finds the dominant green of sampled frames in HSV space.
 *
 * HSV conversion follows the standard hexcone model (Smith, "Color gamut transform pairs", SIGGRAPH 1978):
 * hue in degrees 0-360, saturation and value in 0-1.
 *
 * Fitting (`fitGrassColour`) follows the dominant-colour idea of Ekin, Tekalp & Mehrotra ("Automatic soccer
 * video analysis and summarization", IEEE Trans. Image Processing 12(7), 2003, and Ekin & Tekalp, "Robust
 * dominant color region detection ...", ICIP 2003): the field is the PEAK of the hue histogram of the
 * sampled frames, and the colour window is grown around that peak from the data instead of being fixed:
 *
 *  1. candidate pixels: saturation >= `satMin` and value >= `valMin` of {@link GrassParams} (loose floors
 *     that exclude grey/black pixels, whose hue is meaningless);
 *  2. a 2-degree hue histogram of the candidates over the whole circle, smoothed with a [1, 2, 3, 2, 1] / 9
 *     kernel; the peak is its highest LOCAL maximum (a bin no lower than either neighbour)
 *     whose bin centre lies in the search range `[hueMin, hueMax]` (the window grown in step 3 may reach a
 *     little past the range). A bin at the edge of the range that is only the flank of a hill whose top
 *     lies outside (a beige or wooden floor at 45-58 degrees whose tail crosses 60) is not a peak: the
 *     search range bounds where the PEAK of the dominant green lies, as Ekin et al. define the field colour
 *     by the peak of the histogram;
 *  3. the hue window grows left and right from the peak while the smoothed histogram stays >= 10 % of the
 *     peak, clamped to a half-width between 10 and 25 degrees (so mowing stripes and shadows, which shift the
 *     hue by a few degrees, stay inside; a second green such as a lawn beside a track does not pull the
 *     window away);
 *  4. saturation and value minimums are relative to the pixels inside the hue window: 0.4 x their median
 *     saturation and 0.3 x their median value, never below the floors. A shadow on grass keeps roughly its
 *     hue and saturation and loses value, so the value minimum is the loose one; white lines, white shirts,
 *     grey stands and the blue advertising boards fall out on saturation or hue.
 *
 * The 10 % / 10-25 degree / 0.4 / 0.3 constants are our own, chosen on the real images of the test suite
 * (fitted windows: soccer broadcast clip hue 73-93 deg around a peak at 83, median saturation 0.88, value
 * 0.56; messi5.jpg 79-99 deg, saturation 0.64; vtest.avi lawn 62-89 deg, saturation 0.68, value 0.39), and
 * are exported so a reader can see them.
 *
 * Where the grass IS (per-frame pitch mask, "no pitch" decision) lives in `./mask` and `./fit`.
 */
import sharp from 'sharp';
import type { PitchColour, PitchModel } from './model';

/**
 * Parameters of {@link fitGrassModel} (see `options.grassMask`).
 * `hueMin`/`hueMax` (degrees 0-360) bound where the dominant green's hue PEAK may lie; `satMin`/`valMin`
 * (0-1) are floors for candidate pixels and for the fitted minimums; `minPitchFraction` (0-1) is the
 * fraction of the frame below which there is no pitch (here: of green pixels; in `./fit`: of the pitch
 * region).
 */
export interface GrassParams {
  hueMin: number;
  hueMax: number;
  satMin: number;
  valMin: number;
  minPitchFraction: number;
}

/** Converts one RGB pixel (0-255 each) to `[h (deg 0-360), s (0-1), v (0-1)]` (Smith 1978 hexcone). */
export function rgbToHsv(r: number, g: number, b: number): [number, number, number] {
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const d = max - min;
  let h = 0;
  if (d > 0) {
    if (max === r) h = 60 * (((g - b) / d) % 6);
    else if (max === g) h = 60 * ((b - r) / d + 2);
    else h = 60 * ((r - g) / d + 4);
  }
  if (h < 0) h += 360;
  return [h, max === 0 ? 0 : d / max, max / 255];
}

/** Whether an HSV pixel lies inside the window of `model` (used to key grass out of crops). */
export function isGrass(h: number, s: number, v: number, model: PitchColour): boolean {
  return h >= model.hue.min && h <= model.hue.max && s >= model.sat.min && v >= model.val.min;
}

/**
 * Allocation-free per-pixel test for RGB bytes (0-255): same decision as `isGrass(...rgbToHsv(r, g, b), model)`
 * (hue window, saturation and value minimums). Used on every pixel of every mask, so it avoids the tuple.
 */
export function isGrassRgb(r: number, g: number, b: number, model: PitchColour): boolean {
  const max = r > g ? (r > b ? r : b) : g > b ? g : b;
  if (max < model.val.min * 255) return false;
  const min = r < g ? (r < b ? r : b) : g < b ? g : b;
  const d = max - min;
  if (d === 0 || d < model.sat.min * max) return false;
  let h: number;
  if (max === r) h = 60 * (((g - b) / d) % 6);
  else if (max === g) h = 60 * ((b - r) / d + 2);
  else h = 60 * ((r - g) / d + 4);
  if (h < 0) h += 360;
  return h >= model.hue.min && h <= model.hue.max;
}

/** Width frames are reduced to before counting pixels (speed; colour statistics barely change). */
export const GRASS_SAMPLE_WIDTH = 160;

/** Hue histogram bin width, degrees. */
export const HUE_BIN_DEG = 2;
/** The hue window grows from the peak while the smoothed histogram is >= this fraction of the peak. */
export const HUE_TAIL_FRACTION = 0.1;
/** Smallest half-width of the hue window, degrees (mowing stripes / shadows shift hue by a few degrees). */
export const HUE_HALF_WIDTH_MIN = 10;
/** Largest half-width of the hue window, degrees. */
export const HUE_HALF_WIDTH_MAX = 25;
/** Saturation minimum = this x median saturation of the pixels in the hue window (not below `satMin`). */
export const SAT_MIN_RELATIVE = 0.4;
/** Value minimum = this x median value of the pixels in the hue window (not below `valMin`). */
export const VAL_MIN_RELATIVE = 0.3;

/** HSV samples of candidate pixels (parallel arrays) plus the number of pixels looked at. */
export interface HsvSamples {
  /** Hue, degrees 0-360, one per candidate pixel. */
  h: Float32Array;
  /** Saturation 0-1. */
  s: Float32Array;
  /** Value 0-1. */
  v: Float32Array;
  /** Number of candidates stored in h/s/v (the arrays may be longer). */
  count: number;
  /** All pixels looked at, candidates or not (denominator of `greenFraction`). */
  total: number;
}

/**
 * Collects the HSV of every pixel of `rgb` whose saturation >= `params.satMin` and value >= `params.valMin`
 * (any hue: the histogram needs the neighbourhood of the search range too).
 * @param rgb interleaved pixels, `channels` bytes each (3 or 4; a 4th channel is ignored)
 * @param into samples to append to (grown as needed); a new set when absent
 */
export function collectHsvSamples(rgb: Uint8Array, channels: number, params: Pick<GrassParams, 'satMin' | 'valMin'>, into?: HsvSamples): HsvSamples {
  const n = Math.floor(rgb.length / channels);
  const acc = into ?? { h: new Float32Array(n), s: new Float32Array(n), v: new Float32Array(n), count: 0, total: 0 };
  if (acc.h.length < acc.count + n) {
    const grow = (a: Float32Array) => {
      const b = new Float32Array(Math.max(acc.count + n, a.length * 2));
      b.set(a.subarray(0, acc.count));
      return b;
    };
    acc.h = grow(acc.h);
    acc.s = grow(acc.s);
    acc.v = grow(acc.v);
  }
  for (let i = 0; i < n * channels; i += channels) {
    const [h, s, v] = rgbToHsv(rgb[i], rgb[i + 1], rgb[i + 2]);
    if (s < params.satMin || v < params.valMin) continue;
    acc.h[acc.count] = h;
    acc.s[acc.count] = s;
    acc.v[acc.count] = v;
    acc.count++;
  }
  acc.total += n;
  return acc;
}

function percentile(sorted: Float32Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * The hue histogram of step 2 of the module comment: `360 / HUE_BIN_DEG` bins over the whole circle (bin b
 * covers [b, b + 1) x HUE_BIN_DEG degrees), counts of `samples` smoothed with a [1, 2, 3, 2, 1] / 9 kernel
 * that wraps around 360 degrees.
 */
export function smoothedHueHistogram(samples: HsvSamples): Float64Array {
  const nb = Math.round(360 / HUE_BIN_DEG);
  const hist = new Float64Array(nb);
  for (let i = 0; i < samples.count; i++) hist[Math.min(nb - 1, Math.floor(samples.h[i] / HUE_BIN_DEG))]++;
  const kernel = [1, 2, 3, 2, 1];
  const smooth = new Float64Array(nb);
  for (let b = 0; b < nb; b++) {
    let acc = 0;
    for (let k = -2; k <= 2; k++) acc += kernel[k + 2] * hist[(b + k + nb) % nb];
    smooth[b] = acc / 9;
  }
  return smooth;
}

/**
 * The peak bin of step 2 of the module comment: the highest bin of `smooth` that is a local maximum (no
 * lower than either neighbour, wrapping around 360 degrees) with its centre in `[hueMin, hueMax]`;
 * -1 when there is none (no candidate pixel there, or the range holds only the flank of a hill whose top
 * lies outside it).
 */
export function huePeakBin(smooth: Float64Array, params: Pick<GrassParams, 'hueMin' | 'hueMax'>): number {
  const nb = smooth.length;
  let peak = -1;
  for (let b = 0; b < nb; b++) {
    const centre = (b + 0.5) * HUE_BIN_DEG;
    if (centre < params.hueMin || centre > params.hueMax || smooth[b] <= 0) continue;
    if (smooth[b] < smooth[(b - 1 + nb) % nb] || smooth[b] < smooth[(b + 1) % nb]) continue;
    if (peak < 0 || smooth[b] > smooth[peak]) peak = b;
  }
  return peak;
}

/** Centre (degrees) of the highest bin of a smoothed hue histogram, or -1 when it is empty (for messages). */
export function dominantHue(smooth: Float64Array): number {
  let best = -1;
  for (let b = 0; b < smooth.length; b++) if (smooth[b] > 0 && (best < 0 || smooth[b] > smooth[best])) best = b;
  return best < 0 ? -1 : (best + 0.5) * HUE_BIN_DEG;
}

/**
 * Fits the adaptive pitch colour window to HSV samples (algorithm in the module comment).
 *
 * @param samples candidates from {@link collectHsvSamples}
 * @param params search range and floors
 * @returns a colour-only {@link PitchModel} (no `pitch` evidence): `hue.min/max` = the fitted window (degrees), `hue.median` = the peak
 *   (centre of the peak bin), `sat.min`/`val.min` = fitted minimums, `*.median` = medians of the pixels in
 *   the window, `greenFraction` = share of ALL pixels inside the fitted window; `pitchFound` = greenFraction
 *   >= `minPitchFraction` (colour-only rule; `fitPitchModel` in `./fit` replaces it with a shape rule).
 *   With no peak in the search range ({@link huePeakBin}): the search range itself, zero medians,
 *   `pitchFound` false.
 */
export function fitGrassColour(samples: HsvSamples, params: GrassParams): PitchModel {
  const smooth = smoothedHueHistogram(samples);
  const nb = smooth.length;
  const peak = huePeakBin(smooth, params);
  if (peak < 0) {
    return {
      pitchFound: false,
      greenFraction: 0,
      hue: { min: params.hueMin, max: params.hueMax, median: 0 },
      sat: { min: params.satMin, median: 0 },
      val: { min: params.valMin, median: 0 },
    };
  }
  const floor = smooth[peak] * HUE_TAIL_FRACTION;
  const maxSteps = Math.round(HUE_HALF_WIDTH_MAX / HUE_BIN_DEG);
  let lo = peak;
  while (peak - lo < maxSteps && smooth[(lo - 1 + nb) % nb] >= floor) lo--;
  let hi = peak;
  while (hi - peak < maxSteps && smooth[(hi + 1) % nb] >= floor) hi++;
  const centre = (peak + 0.5) * HUE_BIN_DEG;
  const hueMin = Math.max(0, Math.min(lo * HUE_BIN_DEG, centre - HUE_HALF_WIDTH_MIN));
  const hueMax = Math.min(360, Math.max((hi + 1) * HUE_BIN_DEG, centre + HUE_HALF_WIDTH_MIN));

  const inS: number[] = [];
  const inV: number[] = [];
  for (let i = 0; i < samples.count; i++) {
    const h = samples.h[i];
    if (h >= hueMin && h <= hueMax) {
      inS.push(samples.s[i]);
      inV.push(samples.v[i]);
    }
  }
  const ss = Float32Array.from(inS).sort();
  const vs = Float32Array.from(inV).sort();
  const satMed = percentile(ss, 0.5);
  const valMed = percentile(vs, 0.5);
  const satMin = Math.max(params.satMin, SAT_MIN_RELATIVE * satMed);
  const valMin = Math.max(params.valMin, VAL_MIN_RELATIVE * valMed);
  let green = 0;
  for (let i = 0; i < samples.count; i++) {
    const h = samples.h[i];
    if (h >= hueMin && h <= hueMax && samples.s[i] >= satMin && samples.v[i] >= valMin) green++;
  }
  const greenFraction = samples.total ? green / samples.total : 0;
  return {
    pitchFound: greenFraction >= params.minPitchFraction,
    greenFraction: round3(greenFraction),
    hue: { min: round3(hueMin), max: round3(hueMax), median: round3(centre) },
    sat: { min: round3(satMin), median: round3(satMed) },
    val: { min: round3(valMin), median: round3(valMed) },
  };
}

/**
 * Scales frames to {@link GRASS_SAMPLE_WIDTH} px wide and collects their HSV candidates.
 * @param images encoded frames (JPEG/PNG) or decoded RGB24 frames (`{ rgb, width, height }`)
 * @param picture optional area of every frame to look at, [x1, y1, x2, y2] in (upright) frame pixels with x2
 *   and y2 exclusive, e.g. the picture inside baked-in black bars (`findPicture` in `./picture`); absent or
 *   the whole frame: all of it
 * @throws Error when `images` is empty or an image cannot be decoded (sharp's error)
 */
export async function sampleFramesHsv(
  images: (Buffer | { rgb: Buffer; width: number; height: number })[],
  params: Pick<GrassParams, 'satMin' | 'valMin'>,
  picture?: readonly [number, number, number, number],
): Promise<HsvSamples> {
  if (images.length === 0) throw new Error('fitGrassModel: no frames');
  let acc: HsvSamples | undefined;
  for (const img of images) {
    let src = Buffer.isBuffer(img) ? sharp(img) : sharp(img.rgb, { raw: { width: img.width, height: img.height, channels: 3 } });
    if (picture) {
      const [x1, y1, x2, y2] = picture;
      const { width, height } = Buffer.isBuffer(img) ? await frameSize(img) : img;
      // Only a real sub-area is cut out, so frames without bars are sampled exactly as before.
      if (x1 > 0 || y1 > 0 || x2 < width || y2 < height) {
        src = (Buffer.isBuffer(img) ? sharp(img).rotate() : src).extract({ left: x1, top: y1, width: x2 - x1, height: y2 - y1 });
      }
    }
    const { data, info } = await src.resize({ width: GRASS_SAMPLE_WIDTH, withoutEnlargement: true }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    acc = collectHsvSamples(data, info.channels, params, acc);
  }
  return acc!;
}

/** Upright size of an encoded image (EXIF orientation applied), pixels. */
async function frameSize(img: Buffer): Promise<{ width: number; height: number }> {
  const meta = await sharp(img).metadata();
  return { width: meta.autoOrient?.width ?? meta.width, height: meta.autoOrient?.height ?? meta.height };
}

/**
 * Fits the pitch colour model to JPEG/PNG frames (colour only, see {@link fitGrassColour}).
 * For the per-frame pitch region and the shape-based "no pitch" rule use `fitPitchModel` in `./fit`.
 * @param images encoded frames (any format sharp reads), at least one
 * @returns the model; `pitchFound` is false when fewer than `minPitchFraction` of pixels are in the window
 * @throws Error when `images` is empty or an image cannot be decoded
 */
export async function fitGrassModel(images: Buffer[], params: GrassParams): Promise<PitchModel> {
  return fitGrassColour(await sampleFramesHsv(images, params), params);
}

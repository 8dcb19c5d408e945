/**
 * Pitch colour model (step 4, first version): finds the dominant green of sampled frames in HSV space.
 *
 * HSV conversion follows the standard hexcone model (Smith, "Color gamut transform pairs", SIGGRAPH 1978):
 * hue in degrees 0-360, saturation and value in 0-1. A pixel is "green" when its hue lies in the configured
 * window and it is saturated and bright enough; the model records the fraction of green pixels and robust
 * (5th/95th percentile) bounds of the green pixels' hue, saturation and value, so later steps can key the
 * pitch out of crops. Per-frame masks with connected components come with issue 3.
 */
import sharp from 'sharp';
import type { GrassModel } from '../workflows/types';

/** Parameters of {@link fitGrassModel} (see `options.grassMask`). */
export interface GrassParams {
  hueMin: number;
  hueMax: number;
  satMin: number;
  valMin: number;
  minPitchFraction: number;
}

/** Converts one RGB pixel (0-255 each) to `[h (deg 0-360), s (0-1), v (0-1)]`. */
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
export function isGrass(h: number, s: number, v: number, model: Pick<GrassModel, 'hue' | 'sat' | 'val'>): boolean {
  return h >= model.hue.min && h <= model.hue.max && s >= model.sat.min && v >= model.val.min;
}

function percentile(sorted: Float32Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
}

/** Width frames are reduced to before counting pixels (speed; colour statistics barely change). */
export const GRASS_SAMPLE_WIDTH = 160;

/**
 * Fits the pitch colour model to JPEG/PNG frames.
 * @param images encoded frames (any format sharp reads), at least one
 * @returns the model; `pitchFound` is false when fewer than `minPitchFraction` of pixels are green
 * @throws Error when `images` is empty or an image cannot be decoded
 */
export async function fitGrassModel(images: Buffer[], params: GrassParams): Promise<GrassModel> {
  if (images.length === 0) throw new Error('fitGrassModel: no frames');
  const hues: number[] = [];
  const sats: number[] = [];
  const vals: number[] = [];
  let total = 0;
  for (const img of images) {
    const { data, info } = await sharp(img).resize({ width: GRASS_SAMPLE_WIDTH }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    for (let i = 0; i < data.length; i += info.channels) {
      const [h, s, v] = rgbToHsv(data[i], data[i + 1], data[i + 2]);
      total++;
      if (h >= params.hueMin && h <= params.hueMax && s >= params.satMin && v >= params.valMin) {
        hues.push(h);
        sats.push(s);
        vals.push(v);
      }
    }
  }
  const sort = (a: number[]) => Float32Array.from(a).sort();
  const hs = sort(hues);
  const ss = sort(sats);
  const vs = sort(vals);
  const greenFraction = total ? hues.length / total : 0;
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    pitchFound: greenFraction >= params.minPitchFraction,
    greenFraction: round(greenFraction),
    hue: { min: round(percentile(hs, 0.05)), max: round(percentile(hs, 0.95)), median: round(percentile(hs, 0.5)) },
    sat: { min: round(percentile(ss, 0.05)), median: round(percentile(ss, 0.5)) },
    val: { min: round(percentile(vs, 0.05)), median: round(percentile(vs, 0.5)) },
  };
}

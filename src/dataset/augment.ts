/**
 * Deterministic augmentation of training crops (step 8 plans and makes them, step 9 writes them): the
 * parameters of each copy are drawn from a seeded generator, so the same seed, crop and copy number give the
 * same bytes on any worker. Pure image work over sharp.
 */
import seedrandom from 'seedrandom';
import sharp from 'sharp';

/** Strengths of the augmentations (`options.augment`); 0 (or probability 0) switches one off. */
export interface AugmentParams {
  /** Probability of a horizontal flip. */
  flipProbability: number;
  /** Colour jitter: brightness and saturation factors drawn from [1 - j, 1 + j]. */
  colorJitter: number;
  /** Rotation drawn from [-r, r] degrees. */
  rotateDegrees: number;
  /** Zoom drawn from [1 - z, 1 + z] (the crop is scaled about its centre, output size kept). */
  scale: number;
  /** Probability of a Gaussian blur with sigma drawn from [0.5, 1.5] px. */
  blurProbability: number;
  /**
   * Probability of random erasing (Zhong et al., "Random Erasing Data Augmentation", AAAI 2020): one
   * rectangle of 2-20 % of the area, aspect 0.3-3.3, filled with the background fill colour.
   */
  erasingProbability: number;
}

/** The augmentation applied to one copy, recorded in the manifest (all parameters drawn, none implied). */
export interface Augmentation {
  seed: string;
  flip: boolean;
  /** sharp `modulate` factors. */
  brightness: number;
  saturation: number;
  /** Rotation in degrees. */
  rotate: number;
  /** Zoom factor about the centre. */
  scale: number;
  /** Gaussian blur sigma in pixels, or 0 for none. */
  blurSigma: number;
  /** Erased rectangle as fractions of width/height `[x, y, w, h]`, or null. */
  erase: [number, number, number, number] | null;
}

/**
 * Draws the augmentation of copy `k` of a crop from a PRNG seeded with `${seed}|${cropName}|${k}`
 * (`cropName`: any stable identity of the crop; the pipeline uses `{videoGuid}/{track}/{n}`)
 * (seedrandom's ARC4), so a retried activity produces the same parameters and bytes. Every draw is made
 * whatever the params, so switching one augmentation off does not change the others.
 */
export function planAugmentation(seed: string, cropName: string, k: number, p: AugmentParams): Augmentation {
  const s = `${seed}|${cropName}|${k}`;
  const rng = seedrandom(s);
  // `|| 0` turns -0 (a zero strength times a negative draw) into 0, so the manifest shows plain zeros.
  const round = (x: number) => Math.round(x * 1000) / 1000 || 0;
  const u = () => rng();
  const flip = u() < p.flipProbability;
  const brightness = round(1 + p.colorJitter * (2 * u() - 1));
  const saturation = round(1 + p.colorJitter * (2 * u() - 1));
  const rotate = round(p.rotateDegrees * (2 * u() - 1));
  const scale = round(1 + p.scale * (2 * u() - 1));
  const blur = u() < p.blurProbability;
  const blurSigma = round(0.5 + u());
  const erasing = u() < p.erasingProbability;
  const area = 0.02 + 0.18 * u();
  const aspect = Math.exp(Math.log(0.3) + (Math.log(3.3) - Math.log(0.3)) * u());
  const ew = Math.min(1, Math.sqrt(area * aspect));
  const eh = Math.min(1, Math.sqrt(area / aspect));
  const ex = (1 - ew) * u();
  const ey = (1 - eh) * u();
  return {
    seed: s,
    flip,
    brightness,
    saturation,
    rotate,
    scale,
    blurSigma: blur ? blurSigma : 0,
    erase: erasing ? [round(ex), round(ey), round(ew), round(eh)] : null,
  };
}

/**
 * The 2 x 2 matrix `[a, b, c, d]` (sharp `affine`, libvips `vips_affine`: x' = a x + b y, y' = c x + d y, in
 * pixels, y down) that rotates a `w` x `h` crop by `rotateDegrees` (clockwise on screen for a positive angle,
 * as sharp's `rotate`) and then scales the rotated image's bounding box to `round(w * scale)` x
 * `round(h * scale)`. This is the map of the earlier two-stage geometry (sharp `rotate` onto the enlarged
 * canvas, then `resize` with `fit: 'fill'` back to the crop's aspect) as a single resampling.
 * @param w crop width in pixels (>= 1)
 * @param h crop height in pixels (>= 1)
 * @param rotateDegrees rotation in degrees
 * @param scale zoom factor (> 0)
 */
export function zoomRotateMatrix(w: number, h: number, rotateDegrees: number, scale: number): [number, number, number, number] {
  const t = (rotateDegrees * Math.PI) / 180;
  const cos = Math.cos(t);
  const sin = Math.sin(t);
  // Bounding box of the rotated crop, then per-axis factors onto the zoomed size.
  const rw = Math.abs(w * cos) + Math.abs(h * sin);
  const rh = Math.abs(w * sin) + Math.abs(h * cos);
  const kx = Math.max(1, Math.round(w * scale)) / rw;
  const ky = Math.max(1, Math.round(h * scale)) / rh;
  return [kx * cos, -kx * sin, ky * sin, ky * cos];
}

/**
 * Applies {@link Augmentation} to a JPEG crop; the output keeps the input's size and is encoded once, as JPEG at
 * `quality`. Deterministic bytes for the same inputs and sharp/libvips build.
 *
 * Two sharp pipelines with raw pixels between them, so the only lossy step is the final encode:
 * 1. decode, mirror (`flip`), rotate and zoom as one bilinear affine resampling ({@link zoomRotateMatrix};
 *    uncovered corners take `fill`), then brightness and saturation (sharp `modulate`; sharp applies it after
 *    the affine, so the corners are modulated too);
 * 2. cut (zoom in) or pad with `fill` (zoom out) about the centre back to the crop's size, per axis; the blur;
 *    the erased rectangle in `fill`; the JPEG encode.
 * The split follows sharp's fixed operation order (https://sharp.pixelplumbing.com/api-operation#affine: the
 * affine comes after resizing, extraction and rotation), which allows no cut after the affine in one pipeline.
 * @param crop JPEG (or any sharp input) of the crop
 * @param fill RGB 0-255 of uncovered and erased pixels
 * @param quality JPEG quality 1-100
 * @throws sharp's error when `crop` cannot be decoded
 */
export async function applyAugmentation(crop: Buffer, aug: Augmentation, fill: [number, number, number], quality: number): Promise<Buffer> {
  const meta = await sharp(crop).metadata();
  const w = meta.width ?? 1;
  const h = meta.height ?? 1;
  const background = { r: fill[0], g: fill[1], b: fill[2] };
  let first = sharp(crop);
  if (aug.flip) first = first.flop();
  const { data, info } = await first
    .affine(zoomRotateMatrix(w, h, aug.rotate, aug.scale), { background, interpolator: sharp.interpolators.bilinear })
    .modulate({ brightness: aug.brightness, saturation: aug.saturation })
    .raw()
    .toBuffer({ resolveWithObject: true });
  let out = sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } });
  // Zoom about the centre: cut each axis that came out larger, pad each that came out smaller.
  const cw = Math.min(info.width, w);
  const ch = Math.min(info.height, h);
  if (cw < info.width || ch < info.height) out = out.extract({ left: Math.floor((info.width - cw) / 2), top: Math.floor((info.height - ch) / 2), width: cw, height: ch });
  const dx = w - cw;
  const dy = h - ch;
  if (dx > 0 || dy > 0) out = out.extend({ left: Math.floor(dx / 2), right: dx - Math.floor(dx / 2), top: Math.floor(dy / 2), bottom: dy - Math.floor(dy / 2), background });
  if (aug.blurSigma > 0) out = out.blur(Math.max(0.3, aug.blurSigma));
  if (aug.erase) {
    const [fx, fy, fw, fh] = aug.erase;
    const rw = Math.max(1, Math.round(fw * w));
    const rh = Math.max(1, Math.round(fh * h));
    out = out.composite([{ input: { create: { width: rw, height: rh, channels: 3, background } }, left: Math.min(w - rw, Math.round(fx * w)), top: Math.min(h - rh, Math.round(fy * h)) }]);
  }
  return out.jpeg({ quality, mozjpeg: false }).toBuffer();
}

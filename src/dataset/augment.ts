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

/** Applies {@link Augmentation} to a JPEG crop; output keeps the input size. Deterministic bytes. */
export async function applyAugmentation(crop: Buffer, aug: Augmentation, fill: [number, number, number], quality: number): Promise<Buffer> {
  const meta = await sharp(crop).metadata();
  const w = meta.width ?? 1;
  const h = meta.height ?? 1;
  const background = { r: fill[0], g: fill[1], b: fill[2] };
  let img = sharp(crop).modulate({ brightness: aug.brightness, saturation: aug.saturation });
  if (aug.flip) img = img.flop();
  const rotated = await img.rotate(aug.rotate, { background }).toBuffer();
  // Zoom about the centre: scale, then cut (zoom in) or pad (zoom out) back to w x h.
  const sw = Math.max(1, Math.round(w * aug.scale));
  const sh = Math.max(1, Math.round(h * aug.scale));
  let out = sharp(await sharp(rotated).resize(sw, sh, { fit: 'fill' }).toBuffer());
  if (aug.scale >= 1) {
    out = out.extract({ left: Math.floor((sw - w) / 2), top: Math.floor((sh - h) / 2), width: w, height: h });
  } else {
    const dx = w - sw;
    const dy = h - sh;
    out = out.extend({ left: Math.floor(dx / 2), right: dx - Math.floor(dx / 2), top: Math.floor(dy / 2), bottom: dy - Math.floor(dy / 2), background });
  }
  let buf = await out.toBuffer();
  if (aug.blurSigma > 0) buf = await sharp(buf).blur(Math.max(0.3, aug.blurSigma)).toBuffer();
  if (aug.erase) {
    const [fx, fy, fw, fh] = aug.erase;
    const rw = Math.max(1, Math.round(fw * w));
    const rh = Math.max(1, Math.round(fh * h));
    const patch = await sharp({ create: { width: rw, height: rh, channels: 3, background } }).png().toBuffer();
    buf = await sharp(buf).composite([{ input: patch, left: Math.min(w - rw, Math.round(fx * w)), top: Math.min(h - rh, Math.round(fy * h)) }]).toBuffer();
  }
  return sharp(buf).jpeg({ quality, mozjpeg: false }).toBuffer();
}

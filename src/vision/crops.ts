/**
 * Cropping players out of frames (step 6), deterministic augmentation (step 8) and the train/val split
 * plan (steps 8 and 9). Pure image work over sharp; no Temporal, no GCS. Background removal: `./segment`.
 */
import seedrandom from 'seedrandom';
import sharp from 'sharp';
import type { BBox } from './detector';
import { groupBy } from '../util/group';

/** Integer pixel rectangle inside an image: left, top, width, height (what sharp's `extract` takes). */
export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Pads `bbox` by `padding` × its width/height on each side and clamps it to the image, so boxes that spill
 * off the frame never fail (SPEC section 10: sharp's `extract` rejects out-of-bounds regions).
 * @param bbox `[x1, y1, x2, y2]` in pixels @param width @param height image size in pixels
 * @returns the region, or undefined when nothing of it lies inside the image
 */
export function padAndClamp(bbox: BBox, padding: number, width: number, height: number): Region | undefined {
  const [x1, y1, x2, y2] = bbox;
  const pw = (x2 - x1) * padding;
  const ph = (y2 - y1) * padding;
  const left = Math.max(0, Math.floor(x1 - pw));
  const top = Math.max(0, Math.floor(y1 - ph));
  const right = Math.min(width, Math.ceil(x2 + pw));
  const bottom = Math.min(height, Math.ceil(y2 + ph));
  if (right - left < 1 || bottom - top < 1) return undefined;
  return { left, top, width: right - left, height: bottom - top };
}

/**
 * Cuts `region` out of a frame and encodes it as JPEG.
 * @param frame an encoded frame (EXIF orientation is applied first, so regions refer to the upright
 *   image) or decoded RGB24 pixels `{ rgb, width, height }` (`rgb.length === width * height * 3`)
 * @param region pixels of the upright frame, inside it (see {@link padAndClamp})
 * @param quality JPEG quality 1-100
 * @throws sharp's Error for an undecodable frame or a region outside it
 */
export async function cropJpeg(frame: Buffer | { rgb: Buffer; width: number; height: number }, region: Region, quality: number): Promise<Buffer> {
  const src = Buffer.isBuffer(frame) ? sharp(frame).rotate() : sharp(frame.rgb, { raw: { width: frame.width, height: frame.height, channels: 3 } });
  return src.extract(region).jpeg({ quality, mozjpeg: false }).toBuffer();
}

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

/** One crop as the split sees it. */
export interface CropRef {
  trackId: number;
  n: number;
  frameId: number;
}

/** Where a crop goes: a split, or nowhere because it lies in the gap before a track's validation block. */
export type SplitAssignment = 'train' | 'val' | 'gap';

/** Split decision for every crop plus the tracks that were too short to split. */
export interface SplitPlan {
  assignments: Map<string, SplitAssignment>;
  trainOnlyTracks: number[];
  /** Crops left out of the dataset because they lie in a gap. */
  gapCrops: number;
}

/** Options of {@link planSplit}. */
export interface SplitOptions {
  /** Share (0-1) of each track's crops, the latest in time, that form its validation block. */
  valFraction: number;
  /** Tracks with fewer crops go to train only. */
  minCropsToSplit: number;
  /** Train crops whose frame_id is less than this many source frames before the first validation crop are left out. */
  gapFrames: number;
}

/** Key of a crop in {@link SplitPlan.assignments}. */
export const cropKey = (trackId: number, n: number): string => `${trackId}/${n}`;

/**
 * Plans the train/val split inside each track by contiguous time blocks, never frame by frame, so
 * near-identical neighbouring frames cannot leak across the split: a track's crops sorted by `frameId`, the
 * last `ceil(valFraction × count)` form the validation block; train crops closer than `gapFrames` source
 * frames to the block's first frame are left out (`gap`). Tracks with fewer than `minCropsToSplit` crops, or
 * that would have no train crop left, go to train only. Deterministic: the same crops give the same plan.
 */
export function planSplit(crops: CropRef[], opts: SplitOptions): SplitPlan {
  const byTrack = groupBy(crops, (c) => c.trackId);
  const assignments = new Map<string, SplitAssignment>();
  const trainOnlyTracks: number[] = [];
  let gapCrops = 0;
  for (const [trackId, list] of [...byTrack.entries()].sort((a, b) => a[0] - b[0])) {
    list.sort((a, b) => a.frameId - b.frameId || a.n - b.n);
    const nVal = list.length >= opts.minCropsToSplit && opts.valFraction > 0 ? Math.ceil(opts.valFraction * list.length) : 0;
    const valStart = nVal > 0 ? list[list.length - nVal].frameId : Infinity;
    const isGap = (c: CropRef, i: number) => i < list.length - nVal && c.frameId > valStart - opts.gapFrames;
    const trainLeft = list.filter((c, i) => i < list.length - nVal && !isGap(c, i)).length;
    if (nVal === 0 || trainLeft === 0) {
      trainOnlyTracks.push(trackId);
      for (const c of list) assignments.set(cropKey(c.trackId, c.n), 'train');
      continue;
    }
    list.forEach((c, i) => {
      const a: SplitAssignment = i >= list.length - nVal ? 'val' : isGap(c, i) ? 'gap' : 'train';
      if (a === 'gap') gapCrops++;
      assignments.set(cropKey(c.trackId, c.n), a);
    });
  }
  return { assignments, trainOnlyTracks, gapCrops };
}

/**
 * Cropping players out of frames (step 6, `extractCrops`): the padded, clamped region of a bbox and its
 * JPEG, and the key of a crop. Pure image work over sharp; no Temporal, no GCS.
 */
import sharp from 'sharp';
import type { BBox } from '../vision/detection/geometry';
import type { RgbFrame } from '../vision/image/rgb';

/** Integer pixel rectangle inside an image: left, top, width, height (what sharp's `extract` takes). */
export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Pads `bbox` by `padding` × its width/height on each side and clamps it to the image, so boxes that spill
 * off the frame never fail (docs/ARCHITECTURE.md "Pitfalls": sharp's `extract` rejects out-of-bounds regions).
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
export async function cropJpeg(frame: Buffer | RgbFrame, region: Region, quality: number): Promise<Buffer> {
  const src = Buffer.isBuffer(frame) ? sharp(frame).rotate() : sharp(frame.rgb, { raw: { width: frame.width, height: frame.height, channels: 3 } });
  return src.extract(region).jpeg({ quality, mozjpeg: false }).toBuffer();
}

/** Key of a crop of a video: `{track_id}/{n}` (the split's {@link SplitPlan} and augmentation seeds use it). */
export const cropKey = (trackId: number, n: number): string => `${trackId}/${n}`;

/** Crops on real images: off-frame boxes are clamped; augmentations are deterministic and do what they say. */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { applyAugmentation, planAugmentation, type AugmentParams, type Augmentation } from '../src/dataset/augment';
import { cropJpeg, padAndClamp } from '../src/dataset/crops';

const MESSI = '/usr/share/doc/opencv-doc/examples/data/messi5.jpg'; // 548 x 342
const ALL: AugmentParams = { flipProbability: 0.5, colorJitter: 0.2, rotateDegrees: 8, scale: 0.1, blurProbability: 0.2, erasingProbability: 0.3 };
const NONE: AugmentParams = { flipProbability: 0, colorJitter: 0, rotateDegrees: 0, scale: 0, blurProbability: 0, erasingProbability: 0 };

/** An augmentation that draws nothing: no flip, no colour change, no rotation, no zoom, no blur, no erasing. */
const IDENTITY: Augmentation = { seed: 'x', flip: false, brightness: 1, saturation: 1, rotate: 0, scale: 1, blurSigma: 0, erase: null };

/** A `w` x `h` black PNG with white rectangles `[left, top, width, height]`. */
function shapes(w: number, h: number, rects: [number, number, number, number][]): Promise<Buffer> {
  return sharp({ create: { width: w, height: h, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .composite(rects.map(([left, top, width, height]) => ({ input: { create: { width, height, channels: 3 as const, background: { r: 255, g: 255, b: 255 } } }, left, top })))
    .png()
    .toBuffer();
}

/** Grey-level statistics of the bright pixels (> 128) of an image: count and centroid, per image half. */
async function bright(img: Buffer): Promise<{ n: number; leftY: number; rightY: number; leftN: number; rightN: number }> {
  const { data, info } = await sharp(img).greyscale().raw().toBuffer({ resolveWithObject: true });
  let n = 0, leftN = 0, rightN = 0, leftY = 0, rightY = 0;
  for (let y = 0; y < info.height; y++) {
    for (let x = 0; x < info.width; x++) {
      if (data[y * info.width + x] <= 128) continue;
      n++;
      if (x < info.width / 2) { leftN++; leftY += y; } else { rightN++; rightY += y; }
    }
  }
  return { n, leftN, rightN, leftY: leftY / Math.max(1, leftN), rightY: rightY / Math.max(1, rightN) };
}

async function playerCrop(): Promise<Buffer> {
  const frame = await sharp(MESSI).jpeg().toBuffer();
  return cropJpeg(frame, padAndClamp([70, 60, 457, 338], 0.1, 548, 342)!, 90);
}

describe('crops', () => {
  it('clamps a box that spills off the frame instead of failing, and skips one wholly outside', async () => {
    const frame = await sharp(MESSI).jpeg().toBuffer();
    const region = padAndClamp([480, 250, 620, 400], 0.1, 548, 342)!;
    expect(region.left + region.width).toBe(548);
    expect(region.top + region.height).toBe(342);
    const crop = await cropJpeg(frame, region, 90);
    const meta = await sharp(crop).metadata();
    expect([meta.width, meta.height]).toEqual([region.width, region.height]);
    expect(padAndClamp([600, 400, 700, 500], 0.1, 548, 342)).toBeUndefined();
  });
});

describe('augmentation', () => {
  it('draws the same parameters for the same seed, crop and copy, and others for another copy', () => {
    expect(planAugmentation('run', 'a/crop_0.jpg', 0, ALL)).toEqual(planAugmentation('run', 'a/crop_0.jpg', 0, ALL));
    expect(planAugmentation('run', 'a/crop_0.jpg', 1, ALL)).not.toEqual(planAugmentation('run', 'a/crop_0.jpg', 0, ALL));
    expect(planAugmentation('other', 'a/crop_0.jpg', 0, ALL)).not.toEqual(planAugmentation('run', 'a/crop_0.jpg', 0, ALL));
  });

  it('switches everything off with zero strengths', () => {
    const a = planAugmentation('run', 'x', 3, NONE);
    expect(a).toMatchObject({ flip: false, brightness: 1, saturation: 1, rotate: 0, scale: 1, blurSigma: 0, erase: null });
  });

  it('produces byte-identical output twice, keeps the crop size, and changes the pixels', async () => {
    const crop = await playerCrop();
    const meta = await sharp(crop).metadata();
    for (let k = 0; k < 4; k++) {
      const aug = planAugmentation('run', 'messi', k, ALL);
      const a = await applyAugmentation(crop, aug, [0, 0, 0], 90);
      const b = await applyAugmentation(crop, aug, [0, 0, 0], 90);
      expect(Buffer.compare(a, b)).toBe(0);
      const m = await sharp(a).metadata();
      expect([m.width, m.height]).toEqual([meta.width, meta.height]);
      expect(Buffer.compare(a, crop)).not.toBe(0);
    }
  });

  it('random erasing fills its rectangle with the fill colour', async () => {
    const crop = await playerCrop();
    const aug = { ...planAugmentation('run', 'messi', 0, { ...NONE, erasingProbability: 1 }) };
    expect(aug.erase).not.toBeNull();
    const out = await applyAugmentation(crop, aug, [255, 0, 255], 95);
    const { data, info } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    const [fx, fy, fw, fh] = aug.erase!;
    const x = Math.round((fx + fw / 2) * info.width);
    const y = Math.round((fy + fh / 2) * info.height);
    const i = (y * info.width + x) * info.channels;
    expect(data[i]).toBeGreaterThan(230);
    expect(data[i + 1]).toBeLessThan(30);
    expect(data[i + 2]).toBeGreaterThan(230);
  });

  it('encodes once: a copy with nothing drawn is the crop decoded and encoded once at the quality', async () => {
    const crop = await playerCrop();
    const out = await applyAugmentation(crop, IDENTITY, [0, 0, 0], 90);
    expect(Buffer.compare(out, await sharp(crop).jpeg({ quality: 90, mozjpeg: false }).toBuffer())).toBe(0);
  });

  it('mirrors with flip and rotates clockwise (on screen) for a positive angle, as sharp rotate does', async () => {
    const leftHalf = await shapes(60, 100, [[0, 0, 30, 100]]);
    const flipped = await bright(await applyAugmentation(leftHalf, { ...IDENTITY, flip: true }, [0, 0, 0], 95));
    expect(flipped.rightN).toBeGreaterThan(2800);
    expect(flipped.leftN).toBeLessThan(100);
    const bar = await shapes(100, 100, [[10, 45, 80, 10]]);
    const turned = await bright(await applyAugmentation(bar, { ...IDENTITY, rotate: 20 }, [0, 0, 0], 95));
    expect(turned.rightY - turned.leftY).toBeGreaterThan(10);
    const back = await bright(await applyAugmentation(bar, { ...IDENTITY, rotate: -20 }, [0, 0, 0], 95));
    expect(back.leftY - back.rightY).toBeGreaterThan(10);
  });

  it('zooms about the centre: in cuts back to the crop size, out pads with the fill colour', async () => {
    const square = await shapes(60, 100, [[20, 40, 20, 20]]);
    const before = await bright(square);
    const zoomIn = await applyAugmentation(square, { ...IDENTITY, scale: 1.25 }, [0, 0, 0], 95);
    const zoomOut = await applyAugmentation(square, { ...IDENTITY, scale: 0.8 }, [255, 0, 255], 95);
    for (const img of [zoomIn, zoomOut]) {
      const m = await sharp(img).metadata();
      expect([m.width, m.height]).toEqual([60, 100]);
    }
    // Area scales with the square of the zoom; the square stays centred.
    const inside = await bright(zoomIn);
    expect(inside.n / before.n).toBeGreaterThan(1.25 ** 2 * 0.9);
    expect(inside.n / before.n).toBeLessThan(1.25 ** 2 * 1.1);
    expect(Math.abs(inside.leftN - inside.rightN)).toBeLessThan(0.1 * inside.n);
    const { data, info } = await sharp(zoomOut).raw().toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)];
    for (const [x, y] of [[0, 0], [59, 0], [0, 99], [59, 99], [30, 2], [2, 50]]) {
      const [r, g, b] = at(x, y);
      expect(r).toBeGreaterThan(220);
      expect(g).toBeLessThan(40);
      expect(b).toBeGreaterThan(220);
    }
    const [r, g, b] = at(30, 50);
    expect(Math.min(r, g, b)).toBeGreaterThan(220);
  });
});

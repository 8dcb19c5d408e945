/** Crops on real images: off-frame boxes are clamped; augmentations are deterministic and do what they say. */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { applyAugmentation, planAugmentation, type AugmentParams } from '../src/dataset/augment';
import { cropJpeg, padAndClamp } from '../src/dataset/crops';

const MESSI = '/usr/share/doc/opencv-doc/examples/data/messi5.jpg'; // 548 x 342
const ALL: AugmentParams = { flipProbability: 0.5, colorJitter: 0.2, rotateDegrees: 8, scale: 0.1, blurProbability: 0.2, erasingProbability: 0.3 };
const NONE: AugmentParams = { flipProbability: 0, colorJitter: 0, rotateDegrees: 0, scale: 0, blurProbability: 0, erasingProbability: 0 };

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
});

/**
 * Crop quality filters (src/dataset/quality.ts) on REAL crops: walkers of two consecutive vtest.avi frames
 * (t = 20 s, 10 fps) and people in messi5.jpg, both from Debian's opencv-doc. Boxes are YOLOv8n person
 * detections (models/yolov8n.onnx, conf ≥ 0.25) of those images, hard-coded so the test needs no model.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cropJpeg, padAndClamp } from '../src/dataset/crops';
import type { BBox } from '../src/vision/detection/geometry';
import { dHash, DEFAULT_DEDUP_MAX_DISTANCE, DEFAULT_MAX_OCCLUSION, DEFAULT_MIN_BLUR_VARIANCE, hamming, isBlurred, isNearDuplicate, isOccluded, laplacianVariance, occlusion, qualityFilter, type QualityCrop } from '../src/dataset/quality';

const DATA = '/usr/share/doc/opencv-doc/examples/data';
/** vtest.avi walkers at t = 20 s (frame A) and the same walkers, same order, one frame later (frame B). */
const WALKERS_A: BBox[] = [[616, 264, 649, 368], [487, 143, 518, 221], [705, 253, 742, 355], [220, 191, 250, 267], [82, 153, 112, 216], [677, 97, 698, 153], [702, 105, 722, 156]];
const WALKERS_B: BBox[] = [[623, 270, 662, 377], [479, 146, 513, 225], [714, 254, 749, 355], [211, 190, 245, 265], [73, 153, 101, 215], [676, 99, 696, 154], [700, 107, 720, 156]];
/** messi5.jpg: Messi, two defocused spectators in the stands (lone), two spectators inside Messi's box. */
const MESSI: BBox = [70, 60, 457, 338];
const SPECTATOR_LONE: BBox = [3, 210, 53, 262];
const SPECTATOR_PARTLY: BBox = [438, 60, 468, 104];
const SPECTATOR_INSIDE: BBox = [402, 61, 440, 104];
const MESSI_FRAME: BBox[] = [MESSI, SPECTATOR_LONE, [116, 213, 166, 260], SPECTATOR_PARTLY, [54, 208, 110, 261], SPECTATOR_INSIDE, [464, 61, 506, 104]];

let dir: string;
let frameA: Buffer;
let frameB: Buffer;
let messi: Buffer;

async function cut(frame: Buffer, bbox: BBox): Promise<Buffer> {
  const { width, height } = await sharp(frame).metadata();
  return cropJpeg(frame, padAndClamp(bbox, 0.1, width!, height!)!, 90);
}
const blur3 = (jpeg: Buffer) => sharp(jpeg).blur(3).jpeg({ quality: 90 }).toBuffer();

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'quality-'));
  execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-ss', '20', '-i', `${DATA}/vtest.avi`, '-frames:v', '2', path.join(dir, 'f%d.png')]);
  frameA = await readFile(path.join(dir, 'f1.png'));
  frameB = await readFile(path.join(dir, 'f2.png'));
  messi = await readFile(`${DATA}/messi5.jpg`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('laplacianVariance / isBlurred', () => {
  it('rejects every vtest walker after .blur(3) and keeps every sharp original', async () => {
    for (const b of WALKERS_A) {
      const crop = await cut(frameA, b);
      const sharpScore = await laplacianVariance(crop);
      const blurScore = await laplacianVariance(await blur3(crop));
      expect(isBlurred(sharpScore)).toBe(false);
      expect(isBlurred(blurScore)).toBe(true);
      expect(sharpScore).toBeGreaterThan(DEFAULT_MIN_BLUR_VARIANCE * 1.5);
      expect(blurScore).toBeLessThan(DEFAULT_MIN_BLUR_VARIANCE / 1.5);
    }
  });

  it('keeps in-focus Messi and rejects the defocused spectators behind him', async () => {
    expect(isBlurred(await laplacianVariance(await cut(messi, MESSI)))).toBe(false);
    expect(isBlurred(await laplacianVariance(await cut(messi, SPECTATOR_LONE)))).toBe(true);
    // The same blur lowers the score of a large crop too, even if less after normalisation.
    const m = await cut(messi, MESSI);
    expect(await laplacianVariance(await blur3(m))).toBeLessThan((await laplacianVariance(m)) / 5);
  });

  it('depends little on crop size (normalised height) and is 0 on a flat image', async () => {
    const crop = await cut(frameA, WALKERS_A[0]);
    const big = await sharp(crop).resize({ height: 400 }).jpeg({ quality: 95 }).toBuffer();
    const [s, l] = [await laplacianVariance(crop), await laplacianVariance(big)];
    expect(l / s).toBeGreaterThan(0.5);
    expect(l / s).toBeLessThan(2);
    const flat = await sharp({ create: { width: 40, height: 90, channels: 3, background: { r: 90, g: 120, b: 60 } } }).jpeg().toBuffer();
    expect(await laplacianVariance(flat)).toBe(0);
  });
});

describe('dHash / hamming / isNearDuplicate', () => {
  it('hamming counts differing bits of 64-bit values', () => {
    expect(hamming(0n, 0n)).toBe(0);
    expect(hamming(0n, 0xffffffffffffffffn)).toBe(64);
    expect(hamming(0b1011n, 0b0001n)).toBe(2);
  });

  it('hashes are 64-bit and stable under JPEG re-encoding', async () => {
    const crop = await cut(frameA, WALKERS_A[1]);
    const h = await dHash(crop);
    expect(h >= 0n && h < 1n << 64n).toBe(true);
    expect(await dHash(crop)).toBe(h);
    const reencoded = await sharp(crop).jpeg({ quality: 70 }).toBuffer();
    expect(hamming(h, await dHash(reencoded))).toBeLessThanOrEqual(2);
  });

  it('the same distant walker one frame later is a near-duplicate', async () => {
    const a = await dHash(await cut(frameA, WALKERS_A[6]));
    const b = await dHash(await cut(frameB, WALKERS_B[6]));
    expect(isNearDuplicate(a, b)).toBe(true);
  });

  it('different walkers of the same frame are not, by a clear margin', async () => {
    const hashes = await Promise.all(WALKERS_A.map(async (b) => dHash(await cut(frameA, b))));
    for (let i = 0; i < hashes.length; i++) {
      for (let k = i + 1; k < hashes.length; k++) {
        expect(isNearDuplicate(hashes[i], hashes[k])).toBe(false);
        expect(hamming(hashes[i], hashes[k])).toBeGreaterThanOrEqual(DEFAULT_DEDUP_MAX_DISTANCE + 5);
      }
    }
  });
});

describe('occlusion / isOccluded', () => {
  const others = (b: BBox) => MESSI_FRAME.filter((o) => o !== b);

  it('spectators inside or half inside Messi’s box are occluded; a lone one is not', () => {
    expect(occlusion(SPECTATOR_INSIDE, others(SPECTATOR_INSIDE))).toBe(1);
    expect(occlusion(SPECTATOR_PARTLY, others(SPECTATOR_PARTLY))).toBeCloseTo(19 / 30, 10);
    expect(isOccluded(occlusion(SPECTATOR_PARTLY, others(SPECTATOR_PARTLY)))).toBe(true);
    expect(occlusion(SPECTATOR_LONE, others(SPECTATOR_LONE))).toBe(0);
    expect(isOccluded(0)).toBe(false);
  });

  it('is relative to the box itself, not IoU: the big box is barely covered by the small ones', () => {
    expect(occlusion(MESSI, others(MESSI))).toBeLessThan(0.05);
    expect(isOccluded(DEFAULT_MAX_OCCLUSION)).toBe(false);
  });

  it('vtest walkers do not occlude each other', () => {
    for (const b of WALKERS_A) expect(occlusion(b, WALKERS_A.filter((o) => o !== b))).toBe(0);
  });

  it('throws on a degenerate box', () => {
    expect(() => occlusion([10, 10, 10, 20], [])).toThrow(RangeError);
  });
});

describe('qualityFilter', () => {
  it('filters per track in frame order with reasons, deterministically', async () => {
    const opts = { minBlurVariance: DEFAULT_MIN_BLUR_VARIANCE, maxOcclusion: DEFAULT_MAX_OCCLUSION, dedupMaxDistance: DEFAULT_DEDUP_MAX_DISTANCE };
    const crops: QualityCrop[] = [
      // Track 6 (distant walker): frame 2 repeats frame 1 -> duplicate; frame 3 is a blurred copy -> blur.
      { key: 't6/f2', trackId: 6, frameId: 2, bbox: WALKERS_B[6], othersInFrame: WALKERS_B.filter((_, i) => i !== 6), jpeg: await cut(frameB, WALKERS_B[6]) },
      { key: 't6/f1', trackId: 6, frameId: 1, bbox: WALKERS_A[6], othersInFrame: WALKERS_A.filter((_, i) => i !== 6), jpeg: await cut(frameA, WALKERS_A[6]) },
      { key: 't6/f3', trackId: 6, frameId: 3, bbox: WALKERS_A[6], othersInFrame: [], jpeg: await blur3(await cut(frameA, WALKERS_A[6])) },
      // Track 0 (near walker): two different poses -> both kept; a frame where another box covers it -> occluded.
      { key: 't0/f1', trackId: 0, frameId: 1, bbox: WALKERS_A[0], othersInFrame: [], jpeg: await cut(frameA, WALKERS_A[0]) },
      { key: 't0/f2', trackId: 0, frameId: 2, bbox: WALKERS_B[0], othersInFrame: [], jpeg: await cut(frameB, WALKERS_B[0]) },
      { key: 't0/f4', trackId: 0, frameId: 4, bbox: WALKERS_A[0], othersInFrame: [[600, 250, 660, 340]], jpeg: await cut(frameA, WALKERS_A[0]) },
      // Track 9: Messi kept; an occluded spectator is rejected as occluded even though it is also blurred.
      { key: 't9/f1', trackId: 9, frameId: 1, bbox: MESSI, othersInFrame: MESSI_FRAME.filter((o) => o !== MESSI), jpeg: await cut(messi, MESSI) },
      { key: 't9/f2', trackId: 9, frameId: 2, bbox: SPECTATOR_INSIDE, othersInFrame: [MESSI], jpeg: await cut(messi, SPECTATOR_INSIDE) },
    ];
    const expected = {
      kept: ['t0/f1', 't0/f2', 't6/f1', 't9/f1'],
      rejected: [
        { key: 't0/f4', reason: 'occluded' },
        { key: 't6/f2', reason: 'duplicate' },
        { key: 't6/f3', reason: 'blur' },
        { key: 't9/f2', reason: 'occluded' },
      ],
    };
    expect(await qualityFilter(crops, opts)).toEqual(expected);
    expect(await qualityFilter([...crops].reverse(), opts)).toEqual(expected);
  });

  it('compares with the previous KEPT crop, not the previous one', async () => {
    const a = await cut(frameA, WALKERS_A[6]);
    const crops: QualityCrop[] = [
      { key: 'k1', trackId: 1, frameId: 1, bbox: WALKERS_A[6], othersInFrame: [], jpeg: a },
      { key: 'blurred', trackId: 1, frameId: 2, bbox: WALKERS_A[6], othersInFrame: [], jpeg: await blur3(a) },
      { key: 'dup', trackId: 1, frameId: 3, bbox: WALKERS_A[6], othersInFrame: [], jpeg: a },
    ];
    const r = await qualityFilter(crops, { minBlurVariance: DEFAULT_MIN_BLUR_VARIANCE, maxOcclusion: 0.5, dedupMaxDistance: 0 });
    expect(r).toEqual({ kept: ['k1'], rejected: [{ key: 'blurred', reason: 'blur' }, { key: 'dup', reason: 'duplicate' }] });
  });
});

/**
 * Crop quality filters for step 6 (`extractCrops`): blur (variance of the Laplacian), occlusion
 * (overlap with another person's box of the same frame) and near-duplicate consecutive crops (a perceptual
 * difference hash). Pure functions over encoded crops (JPEG, or anything sharp decodes) and boxes; no I/O
 * besides sharp's in-memory decoding, no Temporal, no GCS.
 */
import sharp, { type ResizeOptions } from 'sharp';
import type { BBox } from '../vision/detection/geometry';
import pLimit from 'p-limit';
import { groupBy } from '../util/group';

/**
 * Height in pixels every crop is resized to (aspect ratio kept) before the Laplacian is taken, so the blur
 * score of a crop does not depend much on its size: the variance of the Laplacian of the same content grows
 * when the image is shrunk (edges get steeper per pixel) and drops when it is enlarged. 128 px is about the
 * height of a full-body player crop at broadcast resolution and what re-identification models are fed
 * (e.g. 256x128 or 128x64 inputs), so most crops are resized by a factor of 0.5-2.
 */
export const BLUR_NORMALISED_HEIGHT = 128;

/**
 * Default {@link isBlurred} threshold on {@link laplacianVariance} (grey levels², at
 * {@link BLUR_NORMALISED_HEIGHT}). Chosen on real crops: YOLOv8n person boxes (conf ≥ 0.5, padding 0.1,
 * JPEG q90) of vtest.avi frames at t = 5, 20, 40, 60 and 75 s (28 crops, 50-110 px high) scored 94-2602
 * as cut and 2-21 after sharp `.blur(3)` (Gaussian, sigma 3 px); 50 lies between the groups with margin
 * on both sides (2.4x the highest blurred score, 1.9x below the lowest sharp one). On messi5.jpg the
 * in-focus player scores 1272 and the defocused spectators 2-3 (rejected). Caveat: because of the
 * normalisation a fixed source blur counts for less on large crops (Messi's 278 px crop after `.blur(3)`
 * scores 78, kept). A per-footage knob: low-contrast or heavily compressed footage scores lower overall
 * and should be re-checked on a sample of its crops.
 */
export const DEFAULT_MIN_BLUR_VARIANCE = 50;

/**
 * Default {@link isNearDuplicate} maximum Hamming distance between two 64-bit {@link dHash} values.
 * Krawetz ("Kind of Like That", hackerfactor.com, 2013) reports 0 for the same picture, 1-10 for
 * "probably a variation" and over 10 for different pictures; 10 is the top of his "variation" band.
 * Measured on real crops (same vtest.avi crops as {@link DEFAULT_MIN_BLUR_VARIANCE}): 70 pairs of
 * different walkers of the same frame are 16-37 bits apart (so 10 keeps a 6-bit margin); a crop re-encoded
 * as JPEG is 0-2 bits from itself; the same walker re-detected in the next frame (0.1 s later, vtest is
 * 10 fps) is 2-31 bits apart: slow or distant walkers fall under 10, walkers striding across the frame do
 * not, which is wanted (a new pose is a new sample). Higher-fps footage or standing players repeat more.
 */
export const DEFAULT_DEDUP_MAX_DISTANCE = 10;

/**
 * Default {@link isOccluded} threshold on {@link occlusion}: a crop is dropped when more than half of its
 * box is covered by one other person's box. Above one half the other person can hide most of the torso,
 * so the crop stops being a clean sample of this player's identity and team colours. A design choice
 * (no published constant); the test's messi5.jpg spectators covered by Messi's box score 0.63 and 1.0,
 * a lone spectator 0.
 */
export const DEFAULT_MAX_OCCLUSION = 0.5;

/** Decodes `image` (EXIF orientation applied) to 8-bit greyscale raw pixels, optionally resized. */
async function grey(image: Buffer, resize?: ResizeOptions): Promise<{ data: Buffer; width: number; height: number }> {
  let p = sharp(image).rotate();
  if (resize) p = p.resize(resize);
  const { data, info } = await p.greyscale().raw().toBuffer({ resolveWithObject: true });
  // greyscale() may still leave an alpha channel; keep channel 0 only.
  if (info.channels === 1) return { data, width: info.width, height: info.height };
  const out = Buffer.alloc(info.width * info.height);
  for (let i = 0; i < out.length; i++) out[i] = data[i * info.channels];
  return { data: out, width: info.width, height: info.height };
}

/**
 * Blur score: the variance of the 3x3 Laplacian `[0,1,0; 1,-4,1; 0,1,0]` of the greyscale image
 * (Pech-Pacheco, Cristóbal, Chamorro-Martínez, Fernández-Valdivia, "Diatom autofocusing in brightfield
 * microscopy: a comparative study", ICPR 2000; the `cv2.Laplacian(img).var()` measure). Low = blurred.
 *
 * The image is first resized to {@link BLUR_NORMALISED_HEIGHT} px high, width scaled to keep the aspect
 * ratio (at least 3 px), with sharp's default Lanczos-3 kernel, then converted to greyscale (Rec. 709 luma,
 * 0-255). The Laplacian is taken over interior pixels only (no border padding), and the population
 * variance of those values is returned.
 *
 * @param jpeg an encoded image (JPEG crop; any format sharp decodes works)
 * @returns variance in grey levels² (≥ 0; 0 for a flat image)
 * @throws sharp's error when the buffer cannot be decoded
 */
export async function laplacianVariance(jpeg: Buffer): Promise<number> {
  const meta = await sharp(jpeg).rotate().metadata();
  const [w0, h0] = (meta.orientation ?? 1) >= 5 ? [meta.height!, meta.width!] : [meta.width!, meta.height!];
  const width = Math.max(3, Math.round((w0 * BLUR_NORMALISED_HEIGHT) / h0));
  const { data, width: w, height: h } = await grey(jpeg, { width, height: BLUR_NORMALISED_HEIGHT, fit: 'fill' });
  let n = 0;
  let sum = 0;
  let sumSq = 0;
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      const i = y * w + x;
      const v = data[i - w] + data[i + w] + data[i - 1] + data[i + 1] - 4 * data[i];
      n++;
      sum += v;
      sumSq += v * v;
    }
  }
  if (n === 0) return 0;
  const mean = sum / n;
  return Math.max(0, sumSq / n - mean * mean);
}

/**
 * True when a {@link laplacianVariance} score is below `threshold` (strictly).
 * @param score grey levels² @param threshold grey levels², default {@link DEFAULT_MIN_BLUR_VARIANCE}
 */
export function isBlurred(score: number, threshold: number = DEFAULT_MIN_BLUR_VARIANCE): boolean {
  return score < threshold;
}

/**
 * 64-bit difference hash (dHash; N. Krawetz, "Kind of Like That", hackerfactor.com, 2013): the image is
 * reduced to 9x8 pixels (aspect ratio ignored, sharp's default Lanczos-3 kernel), converted to greyscale,
 * and each of the 8 rows yields 8 bits, bit = 1 when a pixel is brighter than its right-hand neighbour.
 * Bits are packed row by row, left to right, the first one as the most significant bit.
 *
 * @param jpeg an encoded image @returns an unsigned 64-bit hash as a bigint in [0, 2^64)
 * @throws sharp's error when the buffer cannot be decoded
 */
export async function dHash(jpeg: Buffer): Promise<bigint> {
  const { data } = await grey(jpeg, { width: 9, height: 8, fit: 'fill' });
  let hash = 0n;
  for (let y = 0; y < 8; y++) {
    for (let x = 0; x < 8; x++) {
      hash = (hash << 1n) | (data[y * 9 + x] > data[y * 9 + x + 1] ? 1n : 0n);
    }
  }
  return hash;
}

/**
 * Number of differing bits between two 64-bit hashes (only the low 64 bits are compared).
 * @returns 0-64
 */
export function hamming(a: bigint, b: bigint): number {
  let x = BigInt.asUintN(64, a ^ b);
  let n = 0;
  while (x) {
    x &= x - 1n;
    n++;
  }
  return n;
}

/**
 * True when two {@link dHash} values are at most `maxDistance` bits apart.
 * @param maxDistance bits, default {@link DEFAULT_DEDUP_MAX_DISTANCE}
 */
export function isNearDuplicate(a: bigint, b: bigint, maxDistance: number = DEFAULT_DEDUP_MAX_DISTANCE): boolean {
  return hamming(a, b) <= maxDistance;
}

/**
 * The largest fraction of `bbox`'s area covered by any single other box: max over `others` of
 * area(bbox ∩ other) / area(bbox). Not IoU: a small player in front of (or behind) a big one scores high
 * even though their IoU is small. `others` must not contain `bbox` itself (it would score 1).
 *
 * @param bbox `[x1, y1, x2, y2]` in pixels, x2 > x1 and y2 > y1
 * @param others the other person boxes of the same frame, same convention
 * @returns 0-1; 0 when `others` is empty or nothing overlaps
 * @throws RangeError when `bbox` has zero or negative area, or a coordinate is not finite
 */
export function occlusion(bbox: BBox, others: BBox[]): number {
  const [x1, y1, x2, y2] = bbox;
  const area = (x2 - x1) * (y2 - y1);
  if (!bbox.every(Number.isFinite) || !(x2 > x1 && y2 > y1)) throw new RangeError(`occlusion: degenerate bbox [${bbox.join(', ')}]`);
  let best = 0;
  for (const [a1, b1, a2, b2] of others) {
    const iw = Math.min(x2, a2) - Math.max(x1, a1);
    const ih = Math.min(y2, b2) - Math.max(y1, b1);
    if (iw > 0 && ih > 0) best = Math.max(best, (iw * ih) / area);
  }
  return Math.min(1, best);
}

/**
 * True when an {@link occlusion} ratio is above `threshold` (strictly).
 * @param ratio 0-1 @param threshold 0-1, default {@link DEFAULT_MAX_OCCLUSION}
 */
export function isOccluded(ratio: number, threshold: number = DEFAULT_MAX_OCCLUSION): boolean {
  return ratio > threshold;
}

/** One candidate crop of {@link qualityFilter}. */
export interface QualityCrop {
  /** Caller's identifier, echoed in the result (e.g. the crop's object key). Must be unique. */
  key: string;
  trackId: number;
  frameId: number;
  /** The detection box `[x1, y1, x2, y2]` in source-frame pixels (unpadded). */
  bbox: BBox;
  /** The other person boxes of the same frame (excluding `bbox`), same convention. */
  othersInFrame: BBox[];
  /** The encoded crop. */
  jpeg: Buffer;
}

/** Thresholds of {@link qualityFilter}; see the `DEFAULT_*` constants of this module for sensible values. */
export interface QualityOptions {
  /** Reject when {@link laplacianVariance} < this (grey levels²). */
  minBlurVariance: number;
  /** Reject when {@link occlusion} > this (0-1). */
  maxOcclusion: number;
  /** Reject when the {@link dHash} is ≤ this many bits from the previous kept crop of the same track. */
  dedupMaxDistance: number;
}

/** Why {@link qualityFilter} rejected a crop. */
export type QualityRejectReason = 'blur' | 'occluded' | 'duplicate';

/** Result of {@link qualityFilter}. */
export interface QualityResult {
  /** Keys kept, by track id ascending, then frame order. */
  kept: string[];
  /** Keys rejected with the first failing check, same order. */
  rejected: { key: string; reason: QualityRejectReason }[];
}

/**
 * The measures of one crop that the filters need, computed in the filters' order and only as far as needed:
 * `occlusion` always (no decoding); `blurVariance` only when the crop is not occluded; `dhash` only when it is
 * also sharp enough. A crop's score depends on that crop alone, so scores can be computed concurrently and in
 * any order ({@link selectCrops} then decides in frame order).
 */
export interface CropScore {
  /** {@link occlusion} of the crop's bbox by the other boxes of its frame, 0-1. */
  occlusion: number;
  /** {@link laplacianVariance}, grey levels²; absent when occluded. */
  blurVariance?: number;
  /** {@link dHash}; absent when occluded or blurred. */
  dhash?: bigint;
}

/**
 * Scores one candidate crop (see {@link CropScore}): at most two decodes of its JPEG (blur, then dHash).
 * @throws sharp's error when the crop cannot be decoded; RangeError for a degenerate bbox
 */
export async function scoreCrop(c: Pick<QualityCrop, 'bbox' | 'othersInFrame' | 'jpeg'>, opts: Pick<QualityOptions, 'minBlurVariance' | 'maxOcclusion'>): Promise<CropScore> {
  const occ = occlusion(c.bbox, c.othersInFrame);
  if (isOccluded(occ, opts.maxOcclusion)) return { occlusion: occ };
  const blurVariance = await laplacianVariance(c.jpeg);
  if (isBlurred(blurVariance, opts.minBlurVariance)) return { occlusion: occ, blurVariance };
  return { occlusion: occ, blurVariance, dhash: await dHash(c.jpeg) };
}

/** A candidate of {@link selectCrops}: its identity and its {@link CropScore} (no image bytes needed). */
export type ScoredCrop = Pick<QualityCrop, 'key' | 'trackId' | 'frameId'> & { score: CropScore };

/**
 * Applies the quality filters per track, crops in frame order (ties by `key`), over precomputed scores: a
 * crop is rejected as `occluded`, else as `blur`, else as `duplicate` when its dHash is within
 * `dedupMaxDistance` of the previous KEPT crop of the same track (so a slow drift cannot chain through
 * rejected crops). Pure and synchronous: the output depends only on the inputs, never on timing.
 *
 * @returns kept keys and rejected keys with reasons, by track id ascending then frame order
 */
export function selectCrops(crops: readonly ScoredCrop[], opts: QualityOptions): QualityResult {
  const byTrack = groupBy([...crops], (c) => c.trackId);
  const kept: string[] = [];
  const rejected: QualityResult['rejected'] = [];
  for (const trackId of [...byTrack.keys()].sort((a, b) => a - b)) {
    const list = byTrack.get(trackId)!.sort((a, b) => a.frameId - b.frameId || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    let lastHash: bigint | undefined;
    for (const { key, score } of list) {
      if (isOccluded(score.occlusion, opts.maxOcclusion)) {
        rejected.push({ key, reason: 'occluded' });
        continue;
      }
      if (score.blurVariance === undefined || isBlurred(score.blurVariance, opts.minBlurVariance)) {
        rejected.push({ key, reason: 'blur' });
        continue;
      }
      const h = score.dhash!;
      if (lastHash !== undefined && isNearDuplicate(h, lastHash, opts.dedupMaxDistance)) {
        rejected.push({ key, reason: 'duplicate' });
        continue;
      }
      lastHash = h;
      kept.push(key);
    }
  }
  return { kept, rejected };
}

/** Crops scored at once by {@link qualityFilter}: sharp's default libuv thread pool has 4 threads. */
export const QUALITY_CONCURRENCY = 4;

/**
 * {@link scoreCrop} for every crop, at most `concurrency` at a time, then {@link selectCrops}.
 * Deterministic: the output depends only on the inputs, never on timing or concurrency.
 *
 * @param onScored called after each crop is scored (progress reporting of a long-running caller)
 * @returns kept keys and rejected keys with reasons, by track id ascending then frame order
 * @throws sharp's error when a crop cannot be decoded; RangeError for a degenerate bbox
 */
export async function qualityFilter(crops: QualityCrop[], opts: QualityOptions, concurrency = QUALITY_CONCURRENCY, onScored?: () => void): Promise<QualityResult> {
  const limit = pLimit(concurrency);
  const scored = await Promise.all(
    crops.map((c) =>
      limit(async (): Promise<ScoredCrop> => {
        const score = await scoreCrop(c, opts);
        onScored?.();
        return { key: c.key, trackId: c.trackId, frameId: c.frameId, score };
      }),
    ),
  );
  return selectCrops(scored, opts);
}

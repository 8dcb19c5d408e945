/**
 * A {@link Detector} that remembers what a real detector answered, per frame content, in a JSON file, so
 * that `npm run eval:identity` re-runs the tracker (what is being measured) without re-running the model.
 * Answers are exact replays: `detect` returns the stored detections; `inferRegion` (tiled inference) returns
 * a raw output in which every anchor the decoder could keep is as the model gave it (its box, its best
 * class score at its best class) and every other anchor is zero. `decodeYoloV8` keeps an anchor only when
 * its best class score exceeds the confidence threshold and that class is allowed (src/vision/detection/
 * yolo.ts), so with a threshold at least the one the cache was made with, the decoded detections are
 * identical.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Detection } from '../../src/vision/detection/geometry';
import type { DetectOptions, DetectTimings, Detector } from '../../src/vision/detection/detector';
import type { PixelRect } from '../../src/vision/detection/planar';
import type { RgbFrame } from '../../src/vision/image/rgb';

/** What is stored of one `inferRegion` answer: dims and, per kept anchor, [index, cx, cy, w, h, score, class]. */
interface SparseOutput {
  dims: number[];
  anchors: number[][];
}

interface CacheFile {
  version: 1;
  modelSha256: string;
  /** Anchors scoring at most this were dropped from `regions`. */
  scoreFloor: number;
  detect: Record<string, Detection[]>;
  regions: Record<string, SparseOutput>;
}

const ZERO: DetectTimings = { preprocessMs: 0, inferenceMs: 0, postprocessMs: 0 };

/** Hash of a frame's pixels and size (sha1: a cache key, not a security measure). */
function frameKey(frame: RgbFrame): string {
  return createHash('sha1').update(`${frame.width}x${frame.height}:`).update(frame.rgb).digest('hex');
}

/** Keeps of a raw YOLOv8 output 1 x (4 + nc) x N the anchors whose best class score is > `floor`. */
function sparsify(output: Float32Array, dims: number[], floor: number): SparseOutput {
  const rows = dims[1];
  const n = dims[2];
  const anchors: number[][] = [];
  for (let i = 0; i < n; i++) {
    let best = -Infinity;
    let cls = -1;
    for (let c = 4; c < rows; c++) {
      const s = output[c * n + i];
      if (s > best) {
        best = s;
        cls = c - 4;
      }
    }
    if (best > floor) anchors.push([i, output[i], output[n + i], output[2 * n + i], output[3 * n + i], best, cls]);
  }
  return { dims, anchors };
}

function densify(s: SparseOutput): Float32Array {
  const rows = s.dims[1];
  const n = s.dims[2];
  const out = new Float32Array(rows * n);
  for (const [i, cx, cy, w, h, score, cls] of s.anchors) {
    out[i] = cx;
    out[n + i] = cy;
    out[2 * n + i] = w;
    out[3 * n + i] = h;
    out[(4 + cls) * n + i] = score;
  }
  return out;
}

/** A caching detector plus what it did. */
export interface CachedDetector extends Detector {
  /** Calls answered from the cache and calls that ran the model. */
  readonly stats: { hits: number; misses: number };
  /** Writes the cache file when something was added (atomically: temporary file, then rename). */
  save(): Promise<void>;
}

/**
 * Wraps `inner` with a cache kept in `file`.
 * @param scoreFloor anchors of region outputs scoring at most this are not stored: pass the confidence
 *   threshold of the run (replays are exact for thresholds >= it); a file made with another floor or model
 *   is discarded
 */
export function cachedDetector(inner: Detector, file: string, scoreFloor: number): CachedDetector {
  let cache: CacheFile = { version: 1, modelSha256: inner.modelSha256, scoreFloor, detect: {}, regions: {} };
  if (existsSync(file)) {
    const loaded = JSON.parse(readFileSync(file, 'utf8')) as CacheFile;
    if (loaded.version === 1 && loaded.modelSha256 === inner.modelSha256 && loaded.scoreFloor === scoreFloor) cache = loaded;
  }
  let dirty = false;
  let timings: DetectTimings = ZERO;
  const keys = new WeakMap<RgbFrame, string>();
  const keyOf = (f: RgbFrame) => {
    let k = keys.get(f);
    if (!k) keys.set(f, (k = frameKey(f)));
    return k;
  };
  const stats = { hits: 0, misses: 0 };
  return {
    modelName: inner.modelName,
    modelSha256: inner.modelSha256,
    inputSize: inner.inputSize,
    numClasses: inner.numClasses,
    executionProvider: inner.executionProvider,
    get lastTimings() {
      return timings;
    },
    stats,
    async detect(frame: RgbFrame, opts: DetectOptions) {
      const key = `${keyOf(frame)}:${JSON.stringify(opts)}`;
      const hit = cache.detect[key];
      if (hit) {
        stats.hits++;
        timings = ZERO;
        return hit.map((d) => ({ ...d, bbox: [...d.bbox] as Detection['bbox'] }));
      }
      stats.misses++;
      const dets = await inner.detect(frame, opts);
      timings = inner.lastTimings;
      cache.detect[key] = dets;
      dirty = true;
      return dets;
    },
    inferRaw: (tensor) => inner.inferRaw(tensor),
    async inferRegion(frame: RgbFrame, rect: PixelRect) {
      const key = `${keyOf(frame)}:${rect.x},${rect.y},${rect.width},${rect.height}`;
      const hit = cache.regions[key];
      if (hit) {
        stats.hits++;
        return { output: densify(hit), dims: hit.dims, inferenceMs: 0, preprocessMs: 0 };
      }
      stats.misses++;
      const r = await inner.inferRegion(frame, rect);
      const sparse = sparsify(r.output, r.dims, scoreFloor);
      cache.regions[key] = sparse;
      dirty = true;
      // Answer what a cache hit would, so the first run and later runs agree exactly.
      return { ...r, output: densify(sparse) };
    },
    release: () => inner.release(),
    async save() {
      if (!dirty) return;
      await mkdir(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(cache));
      await rename(tmp, file);
      dirty = false;
    },
  };
}

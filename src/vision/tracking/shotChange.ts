/**
 * Shot changes of a video, from the colour of the whole frame: a cut (one picture replaced by another) or a
 * gradual transition (a dissolve: both pictures superimposed for a while). A tracklet must not continue
 * across one, because the person in the same place after it is someone else.
 *
 * Each sampled frame gets a signature: a {@link GRID} x {@link GRID} grid of cells, each an RGB colour
 * histogram ({@link LEVELS}^3 bins) over at most {@link SAMPLES_PER_CELL}^2 grid samples. Two signatures are
 * compared by the mean over cells of the Bhattacharyya distance of their histograms (./appearance.ts
 * `bhattacharyya`), 0-1. Colour histograms are the classic shot-boundary feature (Zhang, Kankanhalli and
 * Smoliar, "Automatic partitioning of full-motion video", Multimedia Systems 1(1), 1993); the grid keeps
 * some layout so two shots of the same green pitch still differ.
 *
 * Detection is their twin-comparison method (same paper): the distance `d` between consecutive sampled
 * frames above `cutDistance` is a cut; a `d` above `gradualDistance` (but below `cutDistance`) opens a
 * possible gradual transition, which stays open while `d` stays above `gradualDistance`, and is a shot
 * change as soon as the distance from the frame before it opened reaches `cutDistance`. A gradual change is
 * reported once, at the frame where it crossed `cutDistance`, and again on each later frame while it stays
 * open (the picture is still changing: nothing after the first report is safely the same shot).
 */
import type { RgbFrame } from '../image/rgb';
import { bhattacharyya } from './appearance';

/** Cells per side of a frame signature. */
export const GRID = 4;
/** Levels per RGB channel of a cell histogram (bins = LEVELS^3). */
export const LEVELS = 4;
/** Grid samples per side of a cell at most. */
export const SAMPLES_PER_CELL = 32;

/** Histogram level of each 8-bit channel value. */
const LEVEL_OF = Uint8Array.from({ length: 256 }, (_, v) => Math.min(LEVELS - 1, Math.floor((v * LEVELS) / 256)));

/** A frame signature: one normalised histogram per cell, row-major. */
export type FrameSignature = Float32Array[];

/** Options of {@link ShotChangeDetector}. */
export interface ShotChangeOptions {
  /** Signature distance between consecutive sampled frames (or across a gradual change) that is a shot change. Default 0.3. */
  cutDistance?: number;
  /** Signature distance between consecutive sampled frames that opens or keeps open a gradual change. Default 0.12. */
  gradualDistance?: number;
}

/**
 * The signature of a frame (see the file header). Cost: at most GRID^2 x SAMPLES_PER_CELL^2 pixel reads.
 * @throws RangeError for an empty frame
 */
export function frameSignature(frame: RgbFrame): FrameSignature {
  const { rgb, width, height } = frame;
  if (width <= 0 || height <= 0) throw new RangeError(`empty frame ${width}x${height}`);
  const bins = LEVELS ** 3;
  const out: FrameSignature = [];
  for (let cy = 0; cy < GRID; cy++) {
    for (let cx = 0; cx < GRID; cx++) {
      const x1 = (cx * width) / GRID;
      const x2 = ((cx + 1) * width) / GRID;
      const y1 = (cy * height) / GRID;
      const y2 = ((cy + 1) * height) / GRID;
      const sx = Math.max(1, (x2 - x1) / SAMPLES_PER_CELL);
      const sy = Math.max(1, (y2 - y1) / SAMPLES_PER_CELL);
      const hist = new Float32Array(bins);
      let n = 0;
      for (let fy = y1 + sy / 2; fy < y2; fy += sy) {
        const row = Math.floor(fy) * width;
        for (let fx = x1 + sx / 2; fx < x2; fx += sx) {
          const i = (row + Math.floor(fx)) * 3;
          hist[(LEVEL_OF[rgb[i]] * LEVELS + LEVEL_OF[rgb[i + 1]]) * LEVELS + LEVEL_OF[rgb[i + 2]]]++;
          n++;
        }
      }
      if (n > 0) for (let k = 0; k < bins; k++) hist[k] /= n;
      out.push(hist);
    }
  }
  return out;
}

/** Mean Bhattacharyya distance of two signatures' cell histograms, 0-1. @throws RangeError for different shapes */
export function signatureDistance(a: FrameSignature, b: FrameSignature): number {
  if (a.length !== b.length) throw new RangeError(`signatures differ in cells: ${a.length} vs ${b.length}`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += bhattacharyya(a[i], b[i]);
  return sum / a.length;
}

/** Serialised {@link ShotChangeDetector} state (for checkpoints): signatures as plain arrays. */
export interface ShotChangeState {
  prev: number[][] | null;
  /** Signature of the frame before an open gradual change; null when none is open. */
  start: number[][] | null;
  /** Whether the open gradual change has already been reported. */
  reported: boolean;
}

/** Feeds sampled frames in order and says which ones begin a new shot (twin comparison, see the file header). */
export class ShotChangeDetector {
  private readonly cut: number;
  private readonly gradual: number;
  private prev: FrameSignature | null = null;
  private start: FrameSignature | null = null;
  private reported = false;

  /** @throws RangeError unless 0 < gradualDistance <= cutDistance <= 1 */
  constructor(opts: ShotChangeOptions = {}) {
    this.cut = opts.cutDistance ?? 0.3;
    this.gradual = opts.gradualDistance ?? 0.12;
    if (!(this.gradual > 0 && this.gradual <= this.cut && this.cut <= 1)) {
      throw new RangeError(`need 0 < gradualDistance <= cutDistance <= 1, got ${this.gradual} and ${this.cut}`);
    }
  }

  /**
   * The next sampled frame (by its signature, {@link frameSignature}).
   * @returns whether a shot change lies between the previous frame and this one (false for the first frame)
   */
  push(sig: FrameSignature): boolean {
    const prev = this.prev;
    this.prev = sig;
    if (!prev) return false;
    const d = signatureDistance(prev, sig);
    if (d < this.gradual) {
      this.start = null;
      this.reported = false;
      return false;
    }
    if (d >= this.cut) {
      // An abrupt cut; a gradual change continuing after it is measured from here.
      this.start = prev;
      this.reported = true;
      return true;
    }
    this.start ??= prev;
    if (this.reported) return true;
    if (signatureDistance(this.start, sig) >= this.cut) this.reported = true;
    return this.reported;
  }

  /** The state as JSON-safe data. */
  snapshot(): ShotChangeState {
    const plain = (s: FrameSignature | null) => s && s.map((h) => Array.from(h));
    return { prev: plain(this.prev), start: plain(this.start), reported: this.reported };
  }

  /** A detector continuing from `state`, with the same options. */
  static restore(opts: ShotChangeOptions, state: ShotChangeState): ShotChangeDetector {
    const d = new ShotChangeDetector(opts);
    const sig = (s: number[][] | null) => s && s.map((h) => Float32Array.from(h));
    d.prev = sig(state.prev);
    d.start = sig(state.start);
    d.reported = state.reported;
    return d;
  }
}

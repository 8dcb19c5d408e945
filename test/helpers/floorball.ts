/**
 * A stand-in for an indoor floorball clip, built at test time from real footage: the people of Debian's
 * opencv-doc `vtest.avi` (cut out by background subtraction against the per-pixel median of 15 frames of the
 * clip) walking on a synthetic beige sports floor, with coloured bibs painted on their torsos (half the
 * people yellow-green, half red). The floor is a light maple-look sports floor as seen under a hall's
 * fluorescent light: khaki beige, planks of hue `floorHue` (default 50-66 degrees, so part of it falls
 * inside the pitch search range 60-170), saturation 0.26-0.34, value 0.66-0.80, with grain, plus painted
 * court lines. Bibs: neon yellow-green training bibs, hue 68 degrees, saturation 0.8; red bibs hue 355.
 *
 * Nothing here is committed media: every pixel is computed from vtest.avi and this code.
 */
import { execFileSync } from 'node:child_process';
import sharp from 'sharp';
import { defaultFfmpeg } from '../../src/vision/media/ffmpeg';

const VTEST = '/usr/share/doc/opencv-doc/examples/data/vtest.avi';
const W = 768;
const H = 576;

/** One player of a stand-in frame: bbox [x1, y1, x2, y2] in frame pixels, the bib colour, and its pixels. */
export interface FloorballPlayer {
  bbox: [number, number, number, number];
  team: 'green' | 'red' | 'none';
  /** Indices (y * width + x) of the player's pixels, and of the bib pixels among them. */
  pixels: number[];
  bibPixels: number[];
}

/** One stand-in frame: RGB24 pixels (768x576), its JPEG (quality 90, like step 3 stores frames) and players. */
export interface FloorballFrame {
  rgb: Buffer;
  width: number;
  height: number;
  jpeg: Buffer;
  players: FloorballPlayer[];
}

/** vtest.avi frames (indices among its decoded frames, ascending) as RGB24, in one ffmpeg run. */
function vtestFrames(indices: number[]): Buffer[] {
  const select = indices.map((n) => `eq(n\\,${n})`).join('+');
  const raw = execFileSync(
    defaultFfmpeg().ffmpeg,
    ['-nostdin', '-v', 'error', '-i', VTEST, '-vf', `select=${select}`, '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'],
    { maxBuffer: indices.length * W * H * 3 + (1 << 20) },
  );
  if (raw.length !== indices.length * W * H * 3) throw new Error(`vtest.avi: expected ${indices.length} frames, got ${raw.length / (W * H * 3)}`);
  return indices.map((_, k) => raw.subarray(k * W * H * 3, (k + 1) * W * H * 3));
}

/** HSV (degrees, 0-1, 0-1) to RGB bytes. */
export function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const c = v * s;
  const hp = (((h % 360) + 360) % 360) / 60;
  const x = c * (1 - Math.abs((hp % 2) - 1));
  const [r, g, b] = hp < 1 ? [c, x, 0] : hp < 2 ? [x, c, 0] : hp < 3 ? [0, c, x] : hp < 4 ? [0, x, c] : hp < 5 ? [x, 0, c] : [c, 0, x];
  const m = v - c;
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
}

/** Deterministic pseudo-random numbers in [0, 1) (a linear congruential generator, glibc constants). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) & 0x7fffffff) / 0x80000000;
}

/** The floor: horizontal planks 24 px high in staggered lengths, grain streaks, court lines. */
function makeFloor(floorHue: readonly [number, number]): Buffer {
  const rnd = rng(2024);
  const out = Buffer.alloc(W * H * 3);
  const plankH = 24;
  for (let row = 0; row * plankH < H; row++) {
    let x = -Math.floor(rnd() * 200);
    while (x < W) {
      const len = 180 + Math.floor(rnd() * 220);
      const hue = floorHue[0] + rnd() * (floorHue[1] - floorHue[0]);
      const sat = 0.26 + rnd() * 0.08;
      const val = 0.66 + rnd() * 0.14;
      const phase = rnd() * 10;
      for (let y = row * plankH; y < Math.min(H, (row + 1) * plankH); y++) {
        for (let xx = Math.max(0, x); xx < Math.min(W, x + len); xx++) {
          const grain = 0.025 * Math.sin(xx * 0.09 + phase + 0.7 * Math.sin(y * 0.5 + phase)) + (rnd() - 0.5) * 0.02;
          const seam = y === row * plankH || xx === x ? -0.12 : 0;
          const [r, g, b] = hsvToRgb(hue, sat, Math.max(0, Math.min(1, val + grain + seam)));
          const i = (y * W + xx) * 3;
          out[i] = r;
          out[i + 1] = g;
          out[i + 2] = b;
        }
      }
      x += len;
    }
  }
  // Court lines 5 px wide: a red halfway line, a blue goal-area box, a black side line.
  const paint = (x1: number, y1: number, x2: number, y2: number, rgb: [number, number, number]) => {
    for (let y = Math.max(0, y1); y < Math.min(H, y2); y++) for (let x = Math.max(0, x1); x < Math.min(W, x2); x++) out.set(rgb, (y * W + x) * 3);
  };
  paint(380, 0, 385, H, [190, 40, 40]);
  paint(60, 200, 200, 205, [40, 70, 170]);
  paint(60, 380, 200, 385, [40, 70, 170]);
  paint(195, 200, 200, 385, [40, 70, 170]);
  paint(0, 540, W, 545, [30, 30, 30]);
  return out;
}

/** Per-pixel, per-channel median of equally sized frames. */
function medianFrame(frames: Buffer[]): Buffer {
  const out = Buffer.alloc(frames[0].length);
  const col = new Uint8Array(frames.length);
  for (let i = 0; i < out.length; i++) {
    for (let k = 0; k < frames.length; k++) col[k] = frames[k][i];
    col.sort();
    out[i] = col[col.length >> 1];
  }
  return out;
}

/** 8-connected components of `m` (1 = set) with at least `minArea` pixels: pixel index lists. */
function components(m: Uint8Array, minArea: number): number[][] {
  const seen = new Uint8Array(m.length);
  const out: number[][] = [];
  for (let s = 0; s < m.length; s++) {
    if (!m[s] || seen[s]) continue;
    const stack = [s];
    const px: number[] = [];
    seen[s] = 1;
    while (stack.length) {
      const p = stack.pop()!;
      px.push(p);
      const x = p % W;
      const y = (p - x) / W;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          const ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= W || ny >= H) continue;
          const q = ny * W + nx;
          if (m[q] && !seen[q]) (seen[q] = 1), stack.push(q);
        }
      }
    }
    if (px.length >= minArea) out.push(px);
  }
  return out;
}

/** Square dilation (`max`) or erosion (`min`) of radius r, separably (rows, then columns), edges clamped. */
function morph(m: Uint8Array, r: number, op: 'max' | 'min'): Uint8Array {
  const pass = (src: Uint8Array, horizontal: boolean) => {
    const out = new Uint8Array(src.length);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        let v = op === 'max' ? 0 : 1;
        for (let d = -r; d <= r; d++) {
          const nx = horizontal ? Math.min(W - 1, Math.max(0, x + d)) : x;
          const ny = horizontal ? y : Math.min(H - 1, Math.max(0, y + d));
          const b = src[ny * W + nx];
          if (op === 'max' ? b : !b) {
            v = op === 'max' ? 1 : 0;
            break;
          }
        }
        out[y * W + x] = v;
      }
    }
    return out;
  };
  return pass(pass(m, true), false);
}

/** A person cut out of a vtest.avi frame: its pixels and their colours, and its bbox. */
interface CutOut {
  pixels: number[];
  colours: Buffer;
  bbox: [number, number, number, number];
}

/** The people of vtest.avi frames 45 apart (4.5 s at 10 fps) from frame 50 on, cut out once per process. */
let cutOuts: CutOut[][] | undefined;

function cutOutPeople(count: number): CutOut[][] {
  if (cutOuts && cutOuts.length >= count) return cutOuts.slice(0, count);
  // Background: the per-pixel median of 15 frames 50 apart (5 s); people walk on, so each pixel is mostly floor.
  const bg = medianFrame(vtestFrames(Array.from({ length: 15 }, (_, i) => 20 + i * 50)));
  const sources = vtestFrames(Array.from({ length: count }, (_, f) => 50 + f * 45));
  cutOuts = [];
  for (let f = 0; f < count; f++) {
    const src = sources[f];
    const fg = new Uint8Array(W * H);
    for (let p = 0, i = 0; p < W * H; p++, i += 3) {
      const d = Math.max(Math.abs(src[i] - bg[i]), Math.abs(src[i + 1] - bg[i + 1]), Math.abs(src[i + 2] - bg[i + 2]));
      fg[p] = d > 35 ? 1 : 0;
    }
    // Opening removes speckle, closing joins a person's parts.
    const clean = morph(morph(morph(morph(fg, 1, 'min'), 1, 'max'), 3, 'max'), 3, 'min');
    cutOuts.push(
      components(clean, 300)
        .map((pixels) => {
          let x1 = W, y1 = H, x2 = 0, y2 = 0;
          const colours = Buffer.alloc(pixels.length * 3);
          pixels.forEach((p, k) => {
            const x = p % W;
            const y = (p - x) / W;
            x1 = Math.min(x1, x);
            y1 = Math.min(y1, y);
            x2 = Math.max(x2, x + 1);
            y2 = Math.max(y2, y + 1);
            src.copy(colours, k * 3, p * 3, p * 3 + 3);
          });
          return { pixels, colours, bbox: [x1, y1, x2, y2] as [number, number, number, number] };
        })
        .sort((a, b) => a.bbox[0] - b.bbox[0]),
    );
  }
  return cutOuts;
}

/**
 * Builds `count` (at most 16) stand-in frames from vtest.avi frames 45 apart (4.5 s) from frame 50 on.
 * @param opts.floorHue hue range of the floor planks, degrees (default [50, 66])
 * @returns frames in time order; each lists its players (cut-outs of >= 300 px) with their bib colour
 */
export async function makeFloorballFrames(count = 16, opts: { floorHue?: readonly [number, number] } = {}): Promise<FloorballFrame[]> {
  const floor = makeFloor(opts.floorHue ?? [50, 66]);
  const frames: FloorballFrame[] = [];
  for (const people of cutOutPeople(count)) {
    const rgb = Buffer.from(floor);
    const players: FloorballPlayer[] = people.map(({ pixels, colours, bbox }, k) => {
      const h = bbox[3] - bbox[1];
      // Only person-shaped blobs (taller than wide, >= 40 px) get a bib; others are pasted as they are.
      const person = h >= 40 && h > bbox[2] - bbox[0];
      const team: FloorballPlayer['team'] = person ? (k % 2 === 0 ? 'green' : 'red') : 'none';
      const bibPixels: number[] = [];
      pixels.forEach((p, n) => {
        const y = (p - (p % W)) / W;
        const c = colours.subarray(n * 3, n * 3 + 3);
        if (team !== 'none' && y >= bbox[1] + 0.18 * h && y < bbox[1] + 0.5 * h) {
          const v = Math.max(c[0], c[1], c[2]) / 255;
          rgb.set(hsvToRgb(team === 'green' ? 68 : 355, 0.8, 0.45 + 0.5 * v), p * 3);
          bibPixels.push(p);
        } else {
          rgb.set(c, p * 3);
        }
      });
      return { bbox, team, pixels, bibPixels };
    });
    const jpeg = await sharp(rgb, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
    frames.push({ rgb, width: W, height: H, jpeg, players });
  }
  return frames;
}

/**
 * The WebAssembly SIMD kernels (src/vision/detection/planar.ts, src/vision/detection/wasm/planar.wat). Conversion: exact values
 * for every byte against a plain JavaScript reference, rectangles of any width (the SIMD steps and the scalar
 * tail), untouched values outside the written rectangle, memory growth. Resize: OpenCV INTER_LINEAR geometry
 * on linear ramps, 2x2 means at an exact 2x downscale. Bad rectangles and sizes.
 */
import { describe, expect, it } from 'vitest';
import { ErrorType, PipelineError } from '../src/errors';
import { letterbox } from '../src/vision/detection/yolo';
import { createPlanarWriter, type PixelRect } from '../src/vision/detection/planar';
import { cropRgb, planTiles } from '../src/vision/detection/tiling';

/** Reference: the per-pixel loop the kernel replaced. */
function reference(out: Float32Array, rgb: Uint8Array, imageWidth: number, rect: PixelRect, width: number, height: number, dx: number, dy: number): void {
  const plane = width * height;
  for (let r = 0; r < rect.height; r++) {
    for (let q = 0; q < rect.width; q++) {
      const s = ((rect.y + r) * imageWidth + rect.x + q) * 3;
      const d = (dy + r) * width + dx + q;
      for (let c = 0; c < 3; c++) out[c * plane + d] = rgb[s + c] / 255;
    }
  }
}

function noise(width: number, height: number, seed: number): Buffer {
  const b = Buffer.alloc(width * height * 3);
  let x = seed;
  for (let i = 0; i < b.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) | 0;
    b[i] = (x >>> 16) & 255;
  }
  return b;
}

describe('planar writer (WebAssembly SIMD kernel)', () => {
  it('maps every byte value to exactly Math.fround(v / 255), in the SIMD steps and in the scalar tail', async () => {
    const w = await createPlanarWriter();
    // 263 pixels: 16 SIMD steps of 16 pixels and a tail of 7; pixel i has R = i, G = 255 - i, B = (3 i) mod 256.
    const n = 263;
    const rgb = Buffer.alloc(n * 3);
    for (let i = 0; i < n; i++) rgb.set([i & 255, 255 - (i & 255), (3 * i) & 255], i * 3);
    const t = w.write(rgb, n, { x: 0, y: 0, width: n, height: 1 }, n, 1, 0, 0);
    for (let i = 0; i < n; i++) {
      expect([t[i], t[n + i], t[2 * n + i]]).toEqual([Math.fround((i & 255) / 255), Math.fround((255 - (i & 255)) / 255), Math.fround(((3 * i) & 255) / 255)]);
    }
  });

  it('equals the JavaScript reference for rectangles of many widths and offsets, and leaves the rest alone', async () => {
    const w = await createPlanarWriter();
    const imageWidth = 301;
    const imageHeight = 97;
    const rgb = noise(imageWidth, imageHeight, 7);
    const cases: [PixelRect, number, number, number, number][] = [
      [{ x: 0, y: 0, width: 301, height: 97 }, 301, 97, 0, 0],
      [{ x: 5, y: 3, width: 16, height: 10 }, 40, 20, 7, 9],
      [{ x: 17, y: 20, width: 15, height: 31 }, 15, 64, 0, 33],
      [{ x: 100, y: 1, width: 33, height: 50 }, 64, 64, 31, 2],
      [{ x: 300, y: 96, width: 1, height: 1 }, 3, 3, 1, 1],
    ];
    for (const [rect, width, height, dx, dy] of cases) {
      const sentinel = -1;
      w.tensor(width, height).fill(sentinel);
      const got = w.write(rgb, imageWidth, rect, width, height, dx, dy);
      const want = new Float32Array(3 * width * height).fill(sentinel);
      reference(want, rgb, imageWidth, rect, width, height, dx, dy);
      expect(got.length).toBe(want.length);
      expect(Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(want.buffer))).toBe(0);
    }
  });

  it('keeps the tensor when the memory grows for a larger source', async () => {
    const w = await createPlanarWriter();
    const before = w.tensor(640, 640);
    before.fill(0.25);
    // 640x320 source rows need 614 kB more than the 4.9 MB tensor: the memory grows and the old view detaches.
    const rgb = noise(640, 320, 3);
    const t = w.write(rgb, 640, { x: 0, y: 0, width: 640, height: 320 }, 640, 640, 0, 0);
    expect(before.length).toBe(0);
    expect(t.length).toBe(3 * 640 * 640);
    expect(t[640 * 320]).toBe(0.25);
    expect(t[2 * 640 * 640 + 640 * 640 - 1]).toBe(0.25);
    expect(t[0]).toBe(Math.fround(rgb[0] / 255));
  });

  it('cuts tiles with the same values as the letterbox of the cropped tile', async () => {
    const width = 1280;
    const height = 720;
    const frame = { rgb: noise(width, height, 11), width, height };
    const w = await createPlanarWriter();
    const tiles = planTiles(width, height, { tileSize: 640, overlap: 0.2 });
    expect(tiles.length).toBeGreaterThan(1);
    for (const tile of tiles) {
      const crop = cropRgb(frame, tile);
      const lb = await letterbox(crop.rgb, crop.width, crop.height, 640);
      expect([lb.scale, lb.padX, lb.padY]).toEqual([1, 0, 0]);
      const t = w.write(frame.rgb, width, tile, 640, 640, 0, 0);
      expect(Buffer.compare(Buffer.from(t.buffer, t.byteOffset, t.byteLength), Buffer.from(lb.tensor.buffer, lb.tensor.byteOffset, lb.tensor.byteLength))).toBe(0);
    }
  });

  it('resizes with OpenCV INTER_LINEAR geometry: a linear ramp maps to its sample positions', async () => {
    // R = x, G = y, B = 7: bilinear interpolation of a linear function is exact, so output pixel (x, y) must
    // hold R = clamp((x + 0.5) * sw / dw - 0.5, 0, sw - 1) and likewise G, whatever the implementation.
    const w = await createPlanarWriter();
    for (const [sw, sh, dw, dh] of [
      [200, 150, 160, 120], // 0.8: vtest-like downscale
      [240, 120, 120, 60], // exactly 2x
      [60, 40, 150, 100], // 2.5x upscale (messi5.jpg is upscaled)
      [97, 33, 64, 22], // odd sizes, SIMD steps and scalar tail in the vertical pass
    ]) {
      const rgb = Buffer.alloc(sw * sh * 3);
      for (let y = 0; y < sh; y++) for (let x = 0; x < sw; x++) rgb.set([x, y, 7], (y * sw + x) * 3);
      const [tw, th, dx, dy] = [dw + 5, dh + 3, 2, 1];
      const t = w.resize(rgb, sw, sh, dw, dh, tw, th, dx, dy);
      const plane = tw * th;
      const at = (f: number, s: number, d: number) => Math.min(Math.max((d + 0.5) * (s / f) - 0.5, 0), s - 1);
      for (let y = 0; y < dh; y++) {
        for (let x = 0; x < dw; x++) {
          const i = (y + dy) * tw + x + dx;
          expect(t[i] * 255).toBeCloseTo(at(dw, sw, x), 3);
          expect(t[plane + i] * 255).toBeCloseTo(at(dh, sh, y), 3);
          expect(t[2 * plane + i] * 255).toBeCloseTo(7, 4);
        }
      }
    }
  });

  it('resizes an exact 2x downscale to the mean of each 2x2 block, and leaves the padding alone', async () => {
    const w = await createPlanarWriter();
    const rgb = noise(64, 32, 5);
    const t0 = w.tensor(40, 20);
    t0.fill(-1);
    const t = w.resize(rgb, 64, 32, 32, 16, 40, 20, 4, 2);
    const plane = 40 * 20;
    for (let y = 0; y < 20; y++) {
      for (let x = 0; x < 40; x++) {
        const inside = x >= 4 && x < 36 && y >= 2 && y < 18;
        for (let c = 0; c < 3; c++) {
          const v = t[c * plane + y * 40 + x];
          if (!inside) {
            expect(v).toBe(-1);
            continue;
          }
          const [sx, sy] = [2 * (x - 4), 2 * (y - 2)];
          const px = (xx: number, yy: number) => rgb[(yy * 64 + xx) * 3 + c];
          expect(v * 255).toBeCloseTo((px(sx, sy) + px(sx + 1, sy) + px(sx, sy + 1) + px(sx + 1, sy + 1)) / 4, 3);
        }
      }
    }
  });

  it('rejects rectangles outside the image or the tensor, and short images', async () => {
    const w = await createPlanarWriter();
    const rgb = noise(10, 10, 1);
    const bad: [PixelRect, number, number, number, number][] = [
      [{ x: 5, y: 0, width: 6, height: 1 }, 10, 10, 0, 0], // past the image's right edge
      [{ x: 0, y: 0, width: 4, height: 4 }, 4, 4, 1, 0], // past the tensor's right edge
      [{ x: 0, y: 0, width: 4, height: 4 }, 4, 4, 0, 1], // past the tensor's bottom
      [{ x: 0, y: 8, width: 4, height: 4 }, 4, 4, 0, 0], // rows 8..11 of a 10-row image
      [{ x: -1, y: 0, width: 2, height: 2 }, 4, 4, 0, 0],
      [{ x: 0, y: 0, width: 0, height: 2 }, 4, 4, 0, 0],
    ];
    for (const [rect, width, height, dx, dy] of bad) {
      const err = (() => {
        try {
          w.write(rgb, 10, rect, width, height, dx, dy);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(PipelineError);
      expect((err as PipelineError).type).toBe(ErrorType.Internal);
    }
    expect(() => w.tensor(0, 4)).toThrow(/invalid tensor size/);
    expect(() => w.resize(rgb, 10, 10, 5, 5, 4, 4, 0, 0)).toThrow(/cannot resize/);
    expect(() => w.resize(rgb, 10, 9, 5, 5, 8, 8, 0, 0)).toThrow(/expected 10x9x3/);
  });
});

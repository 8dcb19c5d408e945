/**
 * Interleaved RGB bytes to the planar float32 input of a YOLOv8 model (HWC uint8 to CHW, value / 255), with
 * two WebAssembly SIMD kernels in `wasm/planar.wat`:
 * - `hwcToChw` converts a rectangle as it is (tiles, and images already at the model's size), 16 pixels
 *   per step, values bit for bit equal to `Math.fround(v / 255)`;
 * - `resizeToChw` resizes with bilinear interpolation (OpenCV INTER_LINEAR sampling) and converts in one
 *   pass (the letterbox of a whole frame).
 *
 * Why: on the 2-core development machine, sharp's resize plus a JavaScript conversion loop took 8-10 ms of a
 * vtest frame's detect step (640x480 out of 768x576), most of the step's overhead above raw inference; the
 * kernels take 2.4-3.2 ms (README "Performance of step 5").
 *
 * The kernels are assembled from their text source with `wabt` (the WebAssembly Binary Toolkit, compiled to
 * JavaScript) once per process, so the repository holds no binary. The tensor lives in the instance's
 * WebAssembly memory, and onnxruntime reads it from there; the source pixels are copied in first (a
 * WebAssembly function sees only its own memory).
 */
import { readFile } from 'node:fs/promises';
import { ErrorType, PipelineError } from '../../errors';

/** Where the kernel's text source lives, next to this file. */
const WAT_URL = new URL('./wasm/planar.wat', import.meta.url);

/** The parts of the WebAssembly JavaScript API used here (this project's TypeScript libs do not declare them). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  compile(bytes: Uint8Array): Promise<object>;
  instantiate(module: object): Promise<{ exports: object }>;
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The exports of `wasm/planar.wat`. */
interface PlanarExports {
  memory: WasmMemory;
  /** See `wasm/planar.wat`; all offsets and strides in bytes. */
  hwcToChw(src: number, srcStride: number, width: number, height: number, dst: number, dstStride: number, plane: number): void;
  /** See `wasm/planar.wat`; offsets and strides in bytes, sizes in pixels. */
  resizeToChw(
    src: number, srcW: number, dstW: number, dstH: number,
    xOff: number, xw: number, yOff0: number, yOff1: number, yw: number,
    row: number, dst: number, dstStride: number, plane: number,
  ): void;
}

let compiled: Promise<object> | undefined;

/**
 * Assembles and compiles `wasm/planar.wat` (once per process; later calls share the result).
 * @throws PipelineError(Internal, 'planar.wat') when the source is missing or does not assemble
 */
function planarModule(): Promise<object> {
  compiled ??= (async () => {
    try {
      // Loaded here, not at the top: only processes that build tensors pay for the assembler (about 3 MB).
      const { default: wabtInit } = await import('wabt');
      const wabt = await wabtInit();
      const wat = await readFile(WAT_URL, 'utf8');
      const parsed = wabt.parseWat('planar.wat', wat, { simd: true });
      try {
        parsed.resolveNames();
        parsed.validate();
        return await wasm.compile(parsed.toBinary({}).buffer);
      } finally {
        parsed.destroy();
      }
    } catch (err) {
      compiled = undefined; // let a later call try again
      throw new PipelineError(ErrorType.Internal, 'planar.wat', `cannot build the HWC-to-CHW kernel: ${(err as Error).message}`, { cause: err });
    }
  })();
  return compiled;
}

/** A rectangle of pixels: top-left corner and size, pixels. */
export interface PixelRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * One float32 tensor `1 x 3 x H x W` (planes R, G, B) in its own WebAssembly memory, and the kernel that
 * writes pixels into it. Not shared between concurrent users: each caller that keeps its tensor across
 * awaits owns its writer (the detector has one, used inside its queue).
 */
export interface PlanarWriter {
  /**
   * The tensor of `3 * height * width` floats, created (or grown) on first use of that size. Its values are
   * kept between calls of the same size; a new size starts with unspecified values.
   * The returned view is valid until the next call to `tensor` or `write` (which may grow the memory).
   */
  tensor(width: number, height: number): Float32Array;
  /**
   * Writes `rect` of the interleaved RGB image `rgb` (`imageWidth` pixels per row, 3 bytes per pixel) into
   * the tensor of size `width x height` at column `dx`, row `dy`: `t[c][dy + r][dx + q] = rgb(x + q, y + r)[c] / 255`
   * as float32 (exactly `Math.fround(v / 255)`). Values outside the written rectangle are left as they are.
   * @returns the tensor view (as {@link tensor})
   * @throws PipelineError(Internal, 'planar') when `rect` is not inside the image or the target rectangle is
   *   not inside the tensor, or `rgb` is shorter than the image rows that `rect` needs
   */
  write(rgb: Uint8Array, imageWidth: number, rect: PixelRect, width: number, height: number, dx: number, dy: number): Float32Array;
  /**
   * Resizes the whole interleaved RGB image `rgb` (`imageWidth x imageHeight`) to `outWidth x outHeight` with
   * bilinear interpolation and writes it into the tensor of size `width x height` at column `dx`, row `dy`,
   * as value / 255 float32. Values outside the written rectangle are left as they are.
   *
   * Sampling is OpenCV's `INTER_LINEAR` (what Ultralytics' `LetterBox` calls, `cv2.resize`): output pixel
   * (x, y) reads the source at sx = (x + 0.5) * imageWidth / outWidth - 0.5 (likewise sy), interpolating the
   * two neighbours on each axis, clamped at the borders (OpenCV `imgproc/src/resize.cpp`, `resize` with
   * `INTER_LINEAR`). Arithmetic is float32 rather than OpenCV's 11-bit fixed point, so values can differ from
   * `cv2.resize` by about half a grey level; no anti-aliasing, as in OpenCV.
   * @returns the tensor view (as {@link tensor})
   * @throws PipelineError(Internal, 'planar') when a size is not a positive integer, `rgb` is not
   *   `imageWidth * imageHeight * 3` bytes, or the output rectangle does not fit into the tensor
   */
  resize(rgb: Uint8Array, imageWidth: number, imageHeight: number, outWidth: number, outHeight: number, width: number, height: number, dx: number, dy: number): Float32Array;
}

/**
 * OpenCV INTER_LINEAR sampling along one axis: for each of `dst` output positions, the first source index i0
 * and the weight a of source i0 + 1 (`resize.cpp`: fx = (dx + 0.5) * scale - 0.5, sx = floor(fx), fx -= sx;
 * sx < 0 gives sx = 0, fx = 0; sx >= src - 1 gives sx = src - 1, fx = 0).
 */
function linearTaps(src: number, dst: number): { i0: Int32Array; a: Float32Array } {
  const i0 = new Int32Array(dst);
  const a = new Float32Array(dst);
  const scale = src / dst;
  for (let d = 0; d < dst; d++) {
    const f = (d + 0.5) * scale - 0.5;
    let s = Math.floor(f);
    let w = f - s;
    if (s < 0) {
      s = 0;
      w = 0;
    }
    if (s >= src - 1) {
      s = src - 1;
      w = 0;
    }
    i0[d] = s;
    a[d] = w;
  }
  return { i0, a };
}

/**
 * A new {@link PlanarWriter} (the kernel is compiled once per process; each writer has its own memory).
 * @throws PipelineError(Internal, 'planar.wat') when the kernel cannot be built
 */
export async function createPlanarWriter(): Promise<PlanarWriter> {
  const instance = await wasm.instantiate(await planarModule());
  const ex = instance.exports as unknown as PlanarExports;
  const memory = ex.memory;
  const PAGE = 65536;
  let view: Float32Array | undefined;
  let viewW = 0;
  let viewH = 0;

  /** Memory layout: [tensor: 3*W*H floats][source rows: rect.width*3*rect.height bytes]. */
  const ensure = (bytes: number) => {
    const have = memory.buffer.byteLength;
    if (bytes > have) memory.grow(Math.ceil((bytes - have) / PAGE));
  };
  const tensor = (width: number, height: number): Float32Array => {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
      throw new PipelineError(ErrorType.Internal, 'planar', `invalid tensor size ${width}x${height}`);
    }
    ensure(3 * width * height * 4);
    // A grown memory has a new ArrayBuffer (the old views are detached), so the view is re-made when needed.
    if (!view || view.buffer !== memory.buffer || viewW !== width || viewH !== height) {
      view = new Float32Array(memory.buffer, 0, 3 * width * height);
      viewW = width;
      viewH = height;
    }
    return view;
  };
  return {
    tensor,
    write(rgb, imageWidth, rect, width, height, dx, dy) {
      const { x, y, width: rw, height: rh } = rect;
      const ok = [x, y, rw, rh, dx, dy].every(Number.isInteger) && x >= 0 && y >= 0 && rw > 0 && rh > 0 && x + rw <= imageWidth && dx >= 0 && dy >= 0;
      if (!ok || dx + rw > width || dy + rh > height) {
        throw new PipelineError(ErrorType.Internal, 'planar', `rectangle ${rw}x${rh}+${x}+${y} of a ${imageWidth}-pixel-wide image does not fit at +${dx}+${dy} into a ${width}x${height} tensor`);
      }
      const rowBytes = imageWidth * 3;
      if (rgb.length < (y + rh) * rowBytes) {
        throw new PipelineError(ErrorType.Internal, 'planar', `image has ${rgb.length} bytes, rows ${y}..${y + rh - 1} of width ${imageWidth} need ${(y + rh) * rowBytes}`);
      }
      const tensorBytes = 3 * width * height * 4;
      const srcBytes = rw * 3 * rh;
      ensure(tensorBytes + srcBytes);
      const t = tensor(width, height);
      const mem = new Uint8Array(memory.buffer);
      if (x === 0 && rw === imageWidth) {
        mem.set(rgb.subarray(y * rowBytes, (y + rh) * rowBytes), tensorBytes);
      } else {
        for (let r = 0; r < rh; r++) {
          const from = (y + r) * rowBytes + x * 3;
          mem.set(rgb.subarray(from, from + rw * 3), tensorBytes + r * rw * 3);
        }
      }
      ex.hwcToChw(tensorBytes, rw * 3, rw, rh, (dy * width + dx) * 4, width * 4, width * height * 4);
      return t;
    },
    resize(rgb, imageWidth, imageHeight, outWidth, outHeight, width, height, dx, dy) {
      const sizes = [imageWidth, imageHeight, outWidth, outHeight];
      if (!sizes.every((v) => Number.isInteger(v) && v > 0) || !Number.isInteger(dx) || !Number.isInteger(dy) || dx < 0 || dy < 0 || dx + outWidth > width || dy + outHeight > height) {
        throw new PipelineError(ErrorType.Internal, 'planar', `cannot resize ${imageWidth}x${imageHeight} to ${outWidth}x${outHeight} at +${dx}+${dy} into a ${width}x${height} tensor`);
      }
      if (rgb.length !== imageWidth * imageHeight * 3) {
        throw new PipelineError(ErrorType.Internal, 'planar', `image has ${rgb.length} bytes, expected ${imageWidth}x${imageHeight}x3 = ${imageWidth * imageHeight * 3}`);
      }
      // Layout after the tensor: source bytes, then the tables (4 bytes per entry), then the float row.
      const tensorBytes = 3 * width * height * 4;
      const src = tensorBytes;
      const xOff = src + Math.ceil(rgb.length / 4) * 4;
      const xw = xOff + outWidth * 4;
      const yOff0 = xw + outWidth * 4;
      const yOff1 = yOff0 + outHeight * 4;
      const yw = yOff1 + outHeight * 4;
      const row = yw + outHeight * 4;
      ensure(row + (imageWidth * 3 + 3) * 4);
      const t = tensor(width, height);
      const buf = memory.buffer;
      new Uint8Array(buf).set(rgb, src);
      const xs = linearTaps(imageWidth, outWidth);
      const ys = linearTaps(imageHeight, outHeight);
      const xo = new Int32Array(buf, xOff, outWidth);
      for (let i = 0; i < outWidth; i++) xo[i] = xs.i0[i] * 12;
      new Float32Array(buf, xw, outWidth).set(xs.a);
      const y0 = new Int32Array(buf, yOff0, outHeight);
      const y1 = new Int32Array(buf, yOff1, outHeight);
      const rowBytes = imageWidth * 3;
      for (let i = 0; i < outHeight; i++) {
        y0[i] = ys.i0[i] * rowBytes;
        y1[i] = Math.min(ys.i0[i] + 1, imageHeight - 1) * rowBytes;
      }
      new Float32Array(buf, yw, outHeight).set(ys.a);
      new Float32Array(buf, row + imageWidth * 3 * 4, 3).fill(0);
      ex.resizeToChw(src, imageWidth, outWidth, outHeight, xOff, xw, yOff0, yOff1, yw, row, (dy * width + dx) * 4, width * 4, width * height * 4);
      return t;
    },
  };
}

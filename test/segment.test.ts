/**
 * Segmenter tests (step 7, modes `segmentation` and `both`): the real u2netp model on real crops from
 * Debian's opencv-doc: the player in messi5.jpg and a walker in a vtest.avi frame. Each case also writes a
 * side-by-side PNG (original | mask | result) to a temp dir for a person to look at.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorType, PipelineError } from '../src/errors';
import { applyMask, grassAlpha, intersectMasks } from '../src/dataset/background';
import { createSegmenter, validateSegmenterIO, type Segmenter, type SoftMask } from '../src/vision/segmentation/u2netp';
import type { PitchModel } from '../src/vision/pitch/model';

const DATA = '/usr/share/doc/opencv-doc/examples/data';
const MODEL = path.resolve('models/u2netp.onnx');
const FILL: [number, number, number] = [0, 0, 255];
/** A pitch-green HSV window wide enough for messi5's grass (hue in degrees, sat/val in 0..1). */
const GRASS: PitchModel = { pitchFound: true, greenFraction: 0.3, hue: { min: 65, max: 150, median: 100 }, sat: { min: 0.25, median: 0.5 }, val: { min: 0.15, median: 0.4 } };

interface Case {
  name: string;
  crop: Buffer;
  /** Torso centre in crop pixels. */
  torso: [number, number];
}

let tmp: string;
let seg: Segmenter;
const cases: Case[] = [];

async function cropOf(file: string, region: { left: number; top: number; width: number; height: number }): Promise<Buffer> {
  return sharp(file).extract(region).jpeg({ quality: 95 }).toBuffer();
}

/** Mean of the mask over a (2r+1)^2 window around (x, y). */
function meanAt(m: SoftMask, x: number, y: number, r = 3): number {
  let s = 0;
  let n = 0;
  for (let yy = Math.max(0, y - r); yy <= Math.min(m.height - 1, y + r); yy++) {
    for (let xx = Math.max(0, x - r); xx <= Math.min(m.width - 1, x + r); xx++, n++) s += m.alpha[yy * m.width + xx];
  }
  return s / n;
}

const corners = (m: SoftMask): [number, number][] => [
  [2, 2],
  [m.width - 3, 2],
  [2, m.height - 3],
  [m.width - 3, m.height - 3],
];

/** original | mask | result side by side, as PNG. */
async function sideBySide(crop: Buffer, m: SoftMask, result: Buffer, file: string): Promise<void> {
  const maskRgb = await sharp(Buffer.from(m.alpha), { raw: { width: m.width, height: m.height, channels: 1 } }).toColourspace('srgb').png().toBuffer();
  await sharp({ create: { width: m.width * 3, height: m.height, channels: 3, background: { r: 255, g: 255, b: 255 } } })
    .composite([
      { input: crop, left: 0, top: 0 },
      { input: maskRgb, left: m.width, top: 0 },
      { input: result, left: 2 * m.width, top: 0 },
    ])
    .png()
    .toFile(file);
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'segment-test-'));
  seg = await createSegmenter({ modelPath: MODEL });
  // messi5.jpg (548x342): the player spans roughly x 68-458, y 60-338.
  cases.push({ name: 'messi5', crop: await cropOf(path.join(DATA, 'messi5.jpg'), { left: 60, top: 52, width: 406, height: 290 }), torso: [180, 110] });
  // vtest.avi at 20 s: the walker in a dark jacket and jeans, right of centre (x ~612-655, y ~262-370).
  const frame = path.join(tmp, 'frame.png');
  execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-ss', '20', '-i', path.join(DATA, 'vtest.avi'), '-frames:v', '1', frame]);
  cases.push({ name: 'vtest-walker', crop: await cropOf(frame, { left: 600, top: 252, width: 68, height: 128 }), torso: [32, 50] });
  console.log(`segment test images in ${tmp}`);
});

afterAll(async () => {
  await seg?.release();
  if (tmp && !process.env.KEEP_SEGMENT_TEST_OUTPUT) await rm(tmp, { recursive: true, force: true });
});

describe('u2netp segmenter on real crops', () => {
  it('loads the model once and reports its name and hash', () => {
    expect(existsSync(MODEL)).toBe(true);
    expect(seg.modelName).toBe('u2netp.onnx');
    expect(seg.modelSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  for (const name of ['messi5', 'vtest-walker']) {
    it(`${name}: mask is high on the torso, low in the corners; applyMask fills the background`, async () => {
      const c = cases.find((k) => k.name === name)!;
      const meta = await sharp(c.crop).metadata();
      const m = await seg.mask(c.crop);
      expect([m.width, m.height]).toEqual([meta.width, meta.height]);
      expect(m.alpha.length).toBe(m.width * m.height);
      expect(meanAt(m, ...c.torso)).toBeGreaterThan(128);
      for (const [x, y] of corners(m)) expect(meanAt(m, x, y, 2)).toBeLessThan(64);

      const out = await applyMask(c.crop, m.alpha, FILL, 90);
      const { data, info } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([meta.width, meta.height]);
      for (const [x, y] of corners(m)) {
        const i = (y * info.width + x) * 3;
        const a = m.alpha[y * m.width + x];
        if (a > 8) continue; // only fully keyed-out corners must equal the fill
        for (let ch = 0; ch < 3; ch++) expect(Math.abs(data[i + ch] - FILL[ch])).toBeLessThanOrEqual(24);
      }
      await sideBySide(c.crop, m, out, path.join(tmp, `${name}-segmentation.png`));
    });
  }

  it('both = min(segmentation, grass) is never more opaque than either input', async () => {
    for (const c of cases) {
      const s = await seg.mask(c.crop);
      const g = await grassAlpha(c.crop, GRASS, 1);
      const b = intersectMasks(s, g);
      for (let i = 0; i < b.alpha.length; i++) {
        if (b.alpha[i] > s.alpha[i] || b.alpha[i] > g.alpha[i]) throw new Error(`pixel ${i} more opaque than an input`);
      }
      const out = await applyMask(c.crop, b.alpha, FILL, 90);
      await sideBySide(c.crop, b, out, path.join(tmp, `${c.name}-both.png`));
      const gOut = await applyMask(c.crop, g.alpha, FILL, 90);
      await sideBySide(c.crop, g, gOut, path.join(tmp, `${c.name}-grass.png`));
    }
    // messi5's bottom-left corner is pitch: the grass mask keys it out.
    const messi = cases[0];
    const g = await grassAlpha(messi.crop, GRASS);
    expect(g.alpha[(g.height - 3) * g.width + 2]).toBe(0);
    expect(new Set(g.alpha)).toEqual(new Set([0, 255]));
  });

  it('rejects mismatched mask sizes', async () => {
    const c = cases[1];
    expect(() => intersectMasks({ width: 2, height: 1, alpha: new Uint8Array(2) }, { width: 1, height: 2, alpha: new Uint8Array(2) })).toThrow(PipelineError);
    await expect(applyMask(c.crop, new Uint8Array(5), FILL, 90)).rejects.toThrow(/mask has 5 values/);
  });

  it('measures ms per crop', async () => {
    const n = 10;
    for (const c of cases) {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await seg.mask(c.crop);
      const ms = (performance.now() - t0) / n;
      console.log(`u2netp mask(): ${c.name} ${ms.toFixed(1)} ms/crop`);
      expect(ms).toBeGreaterThan(0);
    }
  });
});

describe('model errors', () => {
  it('a missing model file is a ModelError', async () => {
    const err = await createSegmenter({ modelPath: '/nonexistent/u2netp.onnx' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PipelineError);
    expect((err as PipelineError).type).toBe(ErrorType.ModelError);
  });

  it('a model with the wrong IO (the YOLO detector) is a ModelError', async () => {
    const yolo = path.resolve('models/yolov8n.onnx');
    if (!existsSync(yolo)) return;
    await expect(createSegmenter({ modelPath: yolo })).rejects.toMatchObject({ type: ErrorType.ModelError });
  });

  it('validateSegmenterIO accepts u2netp IO and rejects other shapes', () => {
    const out = { name: 'd0', isTensor: true, type: 'float32', shape: [1, 1, 320, 320] };
    const inp = { name: 'input.1', isTensor: true, type: 'float32', shape: [1, 3, 320, 320] };
    expect(validateSegmenterIO([inp], [out])).toEqual({ inputName: 'input.1', outputName: 'd0' });
    expect(() => validateSegmenterIO([{ ...inp, shape: [1, 3, 640, 640] }], [out])).toThrow(/wrong shape/);
    expect(() => validateSegmenterIO([inp], [{ ...out, shape: [1, 84, 8400] }])).toThrow(/wrong shape/);
  });
});

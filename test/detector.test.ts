/**
 * Detector tests: pure geometry/NMS units, and the real YOLOv8n model on real images from Debian's
 * opencv-doc. The model-backed cases need models/yolov8n.onnx (fetched by setup).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config';
import { ErrorType, PipelineError } from '../src/errors';
import { createDetector, type Detector } from '../src/vision/detection/detector';
import { iou, nms, type Detection } from '../src/vision/detection/geometry';
import { decodeYoloV8, DEFAULT_CONF_THRESHOLD, DEFAULT_IOU_THRESHOLD, letterbox, toLetterbox, unletterbox, validateModelIO } from '../src/vision/detection/yolo';
import type { RgbFrame } from '../src/vision/image/rgb';
import { drawDetections } from '../src/vision/image/draw';
import { decodeImage } from '../src/vision/image/rgb';
import { cropRgb } from '../src/vision/detection/tiling';
import { IouTracker } from './helpers/iouTracker';

const DATA = '/usr/share/doc/opencv-doc/examples/data';
const MODEL = loadConfig().detectorModelPath;
const quiet = { info() {}, warn() {} };
const PERSON = { confThreshold: DEFAULT_CONF_THRESHOLD, iouThreshold: DEFAULT_IOU_THRESHOLD, classes: [0] };

async function expectModelError(p: Promise<unknown>, reason: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PipelineError);
  expect((err as PipelineError).type).toBe(ErrorType.ModelError);
  expect((err as PipelineError).reason).toMatch(reason);
}

function solid(width: number, height: number, rgb: [number, number, number]): Buffer {
  const b = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) b.set(rgb, i * 3);
  return b;
}

const det = (bbox: [number, number, number, number], score: number, classId = 0): Detection => ({ bbox, score, classId });

describe('letterbox', () => {
  it('resizes 768x576 to 640x480 centred with 80 rows of grey 114 above and below', async () => {
    const lb = await letterbox(solid(768, 576, [255, 0, 51]), 768, 576, 640);
    expect(lb.tensor.length).toBe(3 * 640 * 640);
    expect(lb.scale).toBeCloseTo(640 / 768, 10);
    expect(lb.padX).toBe(0);
    expect(lb.padY).toBe(80);
    const plane = 640 * 640;
    const at = (c: number, x: number, y: number) => lb.tensor[c * plane + y * 640 + x];
    for (const c of [0, 1, 2]) {
      expect(at(c, 10, 79)).toBeCloseTo(114 / 255, 6);
      expect(at(c, 10, 560)).toBeCloseTo(114 / 255, 6);
    }
    // image rows 80..559, channel order R, G, B
    expect(at(0, 320, 80)).toBeCloseTo(1, 6);
    expect(at(1, 320, 300)).toBeCloseTo(0, 6);
    expect(at(2, 639, 559)).toBeCloseTo(51 / 255, 6);
  });

  it('pads a tall image left and right, splitting an odd pad like Ultralytics (round(d/2 - 0.1))', async () => {
    // 100x201 -> gain 640/201, width round(318.4) = 318, dw = 322 -> left 161, right 161
    let lb = await letterbox(solid(100, 201, [0, 0, 0]), 100, 201, 640);
    expect(lb.padY).toBe(0);
    expect(lb.padX).toBe(161);
    // 101x200 -> gain 3.2, width round(323.2) = 323, dw = 317 -> left round(158.4) = 158 (right 159)
    lb = await letterbox(solid(101, 200, [0, 0, 0]), 101, 200, 640);
    expect(lb.padX).toBe(158);
  });

  it('rejects a buffer whose length does not match the size', async () => {
    await expect(letterbox(Buffer.alloc(10), 4, 4)).rejects.toThrow(/expected 4x4x3/);
  });

  it('round-trips synthetic boxes through toLetterbox/unletterbox and clamps to the image', async () => {
    for (const [w, h] of [
      [768, 576],
      [548, 342],
      [300, 900],
      [640, 640],
    ]) {
      const lb = await letterbox(solid(w, h, [1, 2, 3]), w, h, 640);
      const boxes: [number, number, number, number][] = [
        [0, 0, w, h],
        [w * 0.1, h * 0.2, w * 0.3, h * 0.9],
        [w / 2 - 5, h / 2 - 7, w / 2 + 5, h / 2 + 7],
      ];
      const back = unletterbox(
        boxes.map((b) => det(toLetterbox(b, lb), 0.9)),
        lb,
        w,
        h,
      );
      expect(back).toHaveLength(boxes.length);
      back.forEach((d, i) => d.bbox.forEach((v, k) => expect(v).toBeCloseTo(boxes[i][k], 6)));
    }
    const lb = { scale: 0.5, padX: 0, padY: 80 };
    const [clamped] = unletterbox([det([-10, 50, 700, 700], 0.5)], lb, 768, 576);
    expect(clamped.bbox).toEqual([0, 0, 768, 576]);
    // entirely in the padding: zero height after clamping, dropped
    expect(unletterbox([det([10, 0, 50, 70], 0.5)], lb, 768, 576)).toEqual([]);
  });
});

describe('decodeYoloV8', () => {
  // [1, 4 + 2 classes, 3 anchors], channel-major
  const dims = [1, 6, 3];
  const out = new Float32Array([
    // cx        cy          w           h
    100, 200, 300, 50, 60, 70, 20, 10, 40, 40, 30, 20,
    // class 0, class 1
    0.9, 0.1, 0.2, 0.05, 0.8, 0.1,
  ]);

  it('converts cx, cy, w, h to x1, y1, x2, y2 and takes the best class above the threshold', () => {
    const dets = decodeYoloV8(out, dims, { confThreshold: 0.25 });
    expect(dets).toEqual([
      { bbox: [90, 30, 110, 70], score: expect.closeTo(0.9, 6), classId: 0 },
      { bbox: [195, 45, 205, 75], score: expect.closeTo(0.8, 6), classId: 1 },
    ]);
  });

  it('filters by class after the argmax, as Ultralytics does', () => {
    expect(decodeYoloV8(out, dims, { confThreshold: 0.25, classes: [1] }).map((d) => d.classId)).toEqual([1]);
    // anchor 1 has class 1 best (0.8) and class 0 only 0.1: not a person
    expect(decodeYoloV8(out, dims, { confThreshold: 0.25, classes: [0] })).toHaveLength(1);
  });

  it('throws ModelError on a transposed or mismatched output', () => {
    expect(() => decodeYoloV8(out, [1, 3, 6], { confThreshold: 0.25 })).toThrow(PipelineError);
    expect(() => decodeYoloV8(out, [1, 6, 4], { confThreshold: 0.25 })).toThrow(/need 24/);
    try {
      decodeYoloV8(out, [6, 3], { confThreshold: 0.25 });
    } catch (e) {
      expect((e as PipelineError).type).toBe(ErrorType.ModelError);
    }
  });
});

describe('iou and nms', () => {
  it('computes IoU of [x1, y1, x2, y2] boxes', () => {
    expect(iou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(50 / 150, 10);
    expect(iou([0, 0, 10, 10], [10, 0, 20, 10])).toBe(0);
    expect(iou([0, 0, 0, 0], [0, 0, 0, 0])).toBe(0);
  });

  it('suppresses an overlapping box of the same class and keeps the higher score', () => {
    const kept = nms([det([0, 0, 10, 10], 0.6), det([1, 0, 11, 10], 0.9), det([50, 50, 60, 60], 0.3)], 0.7);
    expect(kept.map((d) => d.score)).toEqual([0.9, 0.3]);
  });

  it('keeps overlapping boxes of different classes when class-aware, not when agnostic', () => {
    const dets = [det([0, 0, 10, 10], 0.9, 0), det([1, 0, 11, 10], 0.8, 32)];
    expect(nms(dets, 0.7, true)).toHaveLength(2);
    expect(nms(dets, 0.7, false)).toHaveLength(1);
  });

  it('suppresses only above the threshold (IoU > t) and caps the count', () => {
    // IoU exactly 0.5
    const a = det([0, 0, 10, 10], 0.9);
    const b = det([0, 0, 10, 20], 0.8);
    expect(iou(a.bbox, b.bbox)).toBe(0.5);
    expect(nms([a, b], 0.5)).toHaveLength(2);
    expect(nms([a, b], 0.49)).toHaveLength(1);
    const many = Array.from({ length: 20 }, (_, i) => det([i * 20, 0, i * 20 + 10, 10], i / 20));
    expect(nms(many, 0.7, true, 5)).toHaveLength(5);
  });
});

describe('validateModelIO', () => {
  const good = {
    inputs: [{ name: 'images', isTensor: true, type: 'float32', shape: [1, 3, 640, 640] }],
    outputs: [{ name: 'output0', isTensor: true, type: 'float32', shape: [1, 84, 8400] }],
  };

  it('accepts the YOLOv8n COCO export and reports its sizes', () => {
    expect(validateModelIO(good.inputs, good.outputs)).toEqual({ inputName: 'images', outputName: 'output0', inputSize: 640, numClasses: 80, numAnchors: 8400 });
    // dynamic axes take the requested size
    const dyn = validateModelIO([{ ...good.inputs[0], shape: ['batch', 3, 'h', 'w'] }], [{ ...good.outputs[0], shape: ['batch', 84, 'anchors'] }], 960);
    expect(dyn.inputSize).toBe(960);
  });

  it.each([
    ['wrong input name', [{ ...good.inputs[0], name: 'input' }], good.outputs, undefined, /input is named 'input'/],
    ['uint8 input', [{ ...good.inputs[0], type: 'uint8' }], good.outputs, undefined, /not a float32 tensor/],
    ['batch 4', [{ ...good.inputs[0], shape: [4, 3, 640, 640] }], good.outputs, undefined, /batch 4/],
    ['fixed 640 but 1280 requested', good.inputs, good.outputs, 1280, /fixed at 640x640/],
    ['no output0', good.inputs, [{ ...good.outputs[0], name: 'boxes' }], undefined, /no output named 'output0'/],
    ['transposed output', good.inputs, [{ ...good.outputs[0], shape: [1, 8400, 84] }], undefined, /anchors|transposed/],
    ['anchors do not match input', good.inputs, [{ ...good.outputs[0], shape: [1, 84, 2100] }], undefined, /implies 8400/],
    ['output with NMS inside', good.inputs, [{ ...good.outputs[0], shape: [1, 300, 6] }], undefined, /./],
  ])('throws ModelError for %s', (_name, inputs, outputs, size, reason) => {
    let err: unknown;
    try {
      validateModelIO(inputs, outputs, size as number | undefined, '/m.onnx');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PipelineError);
    expect((err as PipelineError).type).toBe(ErrorType.ModelError);
    expect((err as PipelineError).subject).toBe('/m.onnx');
    expect((err as PipelineError).reason).toMatch(reason as RegExp);
  });
});

describe('createDetector errors', () => {
  it('throws ModelError for a missing model file', async () => {
    await expectModelError(createDetector({ modelPath: '/nonexistent/yolov8n.onnx', logger: quiet }), /not found/);
  });

  it('throws ModelError for a file that is not an ONNX model', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'detector-'));
    try {
      const fake = path.join(dir, 'fake.onnx');
      await writeFile(fake, 'this is not a protobuf');
      await expectModelError(createDetector({ modelPath: fake, logger: quiet }), /cannot load/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!existsSync(MODEL))('YOLOv8n on real images', () => {
  let detector: Detector;
  let tmp: string;
  let vtest: RgbFrame;

  beforeAll(async () => {
    detector = await createDetector({ modelPath: MODEL, executionProviders: ['cpu'], logger: quiet });
    tmp = await mkdtemp(path.join(os.tmpdir(), 'detector-'));
    const png = path.join(tmp, 'vtest_20s.png');
    execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-ss', '20', '-i', path.join(DATA, 'vtest.avi'), '-frames:v', '1', png]);
    vtest = await decodeImage(png);
  });

  afterAll(async () => {
    await detector?.release();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('loads the declared model and reports its identity', () => {
    expect(detector.modelName).toBe('yolov8n.onnx');
    expect(detector.modelSha256).toBe('9697a185dd8eb7448aea4c979e10db2b4977f70a46687890ef796936c44a848b');
    expect(detector.inputSize).toBe(640);
    expect(detector.numClasses).toBe(80);
    expect(detector.executionProvider).toBe('cpu');
  });

  it('finds the player in messi5.jpg with a plausible box', async () => {
    const frame = await decodeImage(path.join(DATA, 'messi5.jpg'));
    const people = await detector.detect(frame, PERSON);
    console.log(`messi5.jpg: ${people.length} persons at conf ${PERSON.confThreshold}; best ${people[0]?.score.toFixed(3)} [${people[0]?.bbox.map((v) => v.toFixed(0))}]`);
    const best = people[0];
    expect(best.score).toBeGreaterThan(0.5);
    const [x1, y1, x2, y2] = best.bbox;
    expect(y2 - y1).toBeGreaterThan(frame.height / 3);
    // the player's torso (the "unicef" shirt) is around (230, 150) and his knee around (300, 260)
    for (const [x, y] of [
      [230, 150],
      [300, 260],
    ]) {
      expect(x).toBeGreaterThan(x1);
      expect(x).toBeLessThan(x2);
      expect(y).toBeGreaterThan(y1);
      expect(y).toBeLessThan(y2);
    }
    for (const d of people) {
      expect(d.classId).toBe(0);
      expect(d.bbox[0]).toBeGreaterThanOrEqual(0);
      expect(d.bbox[2]).toBeLessThanOrEqual(frame.width);
      expect(d.bbox[3]).toBeLessThanOrEqual(frame.height);
    }
    // without a class filter the ball (COCO 32, sports ball) is found too
    const all = await detector.detect(frame, { confThreshold: 0.5, iouThreshold: 0.7 });
    expect(all.some((d) => d.classId === 32)).toBe(true);
  });

  it('finds the walkers in the vtest.avi frame at 20 s and draws them', async () => {
    const people = await detector.detect(vtest, PERSON);
    console.log(`vtest.avi @20s (${vtest.width}x${vtest.height}): ${people.length} persons at conf ${PERSON.confThreshold}: ${people.map((d) => d.score.toFixed(2)).join(' ')}`);
    expect(people.length).toBeGreaterThanOrEqual(5);
    for (const d of people) {
      const [x1, y1, x2, y2] = d.bbox;
      expect(y2 - y1).toBeGreaterThan(x2 - x1); // upright people
    }
    const tracked = new IouTracker().update(200, people);
    const png = await drawDetections(vtest, tracked);
    const meta = await sharp(png).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 768, 576]);
    await writeFile(path.join(tmp, 'vtest_dets.png'), png);
  });

  it('runs on the greyscale basketball1.png', async () => {
    const frame = await decodeImage(path.join(DATA, 'basketball1.png'));
    const people = await detector.detect(frame, PERSON);
    console.log(`basketball1.png: ${people.length} persons`);
    expect(Array.isArray(people)).toBe(true);
  });

  it('gives identical results for concurrent calls and records timings', async () => {
    const [a, b] = await Promise.all([detector.detect(vtest, PERSON), detector.detect(vtest, PERSON)]);
    expect(a).toEqual(b);
    const t = detector.lastTimings;
    expect(t.inferenceMs).toBeGreaterThan(0);
    expect(t.preprocessMs).toBeGreaterThan(0);
    const lb = await letterbox(vtest.rgb, vtest.width, vtest.height, detector.inputSize);
    const raw = await detector.inferRaw(lb.tensor);
    expect(raw.dims).toEqual([1, 84, 8400]);
    expect(raw.output.length).toBe(84 * 8400);
  });

  it('runs an S x S region of a frame with the same output as the letterbox of its crop', async () => {
    const width = 960;
    const height = 720;
    const rgb = await sharp(vtest.rgb, { raw: { width: vtest.width, height: vtest.height, channels: 3 } }).resize(width, height).raw().toBuffer();
    const frame = { rgb, width, height };
    const rect = { x: 200, y: 60, width: 640, height: 640 };
    const region = await detector.inferRegion(frame, rect);
    const crop = cropRgb(frame, rect);
    const raw = await detector.inferRaw((await letterbox(crop.rgb, crop.width, crop.height, 640)).tensor);
    expect(region.dims).toEqual(raw.dims);
    expect(Buffer.compare(Buffer.from(region.output.buffer, region.output.byteOffset, region.output.byteLength), Buffer.from(raw.output.buffer, raw.output.byteOffset, raw.output.byteLength))).toBe(0);
    expect(region.preprocessMs).toBeGreaterThan(0);
    await expect(detector.inferRegion(frame, { x: 0, y: 0, width: 600, height: 640 })).rejects.toThrow(/not a 640x640 rectangle/);
    await expect(detector.inferRegion(frame, { x: 0, y: 100, width: 640, height: 640 })).rejects.toThrow(/not a 640x640 rectangle/);
  });

  it('falls back to CPU when CUDA is unavailable, and refuses work after release', async () => {
    const warnings: string[] = [];
    const d = await createDetector({ modelPath: MODEL, executionProviders: ['cuda', 'cpu'], logger: { info() {}, warn: (_o, m) => warnings.push(m) } });
    expect(['cuda', 'cpu']).toContain(d.executionProvider);
    if (d.executionProvider === 'cpu') expect(warnings.join()).toMatch(/cuda unavailable/);
    await d.release();
    await d.release();
    await expect(d.detect(vtest, PERSON)).rejects.toThrow(/after release/);
  });
});

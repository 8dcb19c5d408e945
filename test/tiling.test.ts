/**
 * Tiled inference: tile planning, cropping and merging units, and the real YOLOv8n model on a frame of the
 * soccer broadcast clip (1280x720, ~20 players, scoreboard top-left, crowd above the pitch) with the pitch
 * mask and the feet-on-pitch filter.
 *
 * The soccer cases need `TEST_MEDIA_DIR` (the folder holding soccer_broadcast_720p.mp4, e.g.
 * ../shared/media); without it they are skipped with a message. The footage is a test fixture only: the
 * overlay rendered here goes to a temp folder (path printed), never into the repository.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config';
import { createDetector, type Detector } from '../src/vision/detection/detector';
import type { Detection } from '../src/vision/detection/geometry';
import type { RgbFrame } from '../src/vision/image/rgb';
import { drawDetections } from '../src/vision/image/draw';
import { decodeImage } from '../src/vision/image/rgb';
import { defaultFfmpeg } from '../src/vision/media/ffmpeg';
import type { GrassParams } from '../src/vision/pitch/colour';
import { filterOnPitch, pitchTopAt } from '../src/vision/pitch/feet';
import { fitPitchModel } from '../src/vision/pitch/fit';
import { computePitchMask } from '../src/vision/pitch/mask';
import { autoTileDecision, cropRgb, detectTiledWithStats, intersectionOverSmaller, mergeDetections, planTiles, touchesInnerEdge, type Tile } from '../src/vision/detection/tiling';

const PARAMS: GrassParams = { hueMin: 60, hueMax: 170, satMin: 0.15, valMin: 0.15, minPitchFraction: 0.15 };
/** The pipeline's detector defaults (options.detector in src/validation.ts). */
const PERSON = { confThreshold: 0.25, iouThreshold: 0.45, classes: [0] };
const det = (bbox: [number, number, number, number], score = 0.9, classId = 0): Detection => ({ bbox, score, classId });

/** Checks that `tiles` cover every pixel of the frame and returns the per-pixel cover counts. */
function coverage(tiles: Tile[], width: number, height: number): Uint8Array {
  const c = new Uint8Array(width * height);
  for (const t of tiles) for (let y = t.y; y < t.y + t.height; y++) for (let x = t.x; x < t.x + t.width; x++) c[y * width + x]++;
  return c;
}

/** Smallest overlap between horizontally or vertically adjacent tiles, as a fraction of the tile side. */
function minOverlap(tiles: Tile[]): number {
  let m = Infinity;
  const xs = [...new Set(tiles.map((t) => t.x))].sort((a, b) => a - b);
  const ys = [...new Set(tiles.map((t) => t.y))].sort((a, b) => a - b);
  for (let i = 1; i < xs.length; i++) m = Math.min(m, (xs[i - 1] + tiles[0].width - xs[i]) / tiles[0].width);
  for (let i = 1; i < ys.length; i++) m = Math.min(m, (ys[i - 1] + tiles[0].height - ys[i]) / tiles[0].height);
  return m;
}

describe('planTiles', () => {
  it('1280x720 at 640 px / 20 %: 3 x 2 tiles covering every pixel, overlapping >= 20 %', () => {
    const tiles = planTiles(1280, 720, { tileSize: 640, overlap: 0.2 });
    expect(tiles).toHaveLength(6);
    expect(tiles.map((t) => [t.x, t.y])).toEqual([[0, 0], [320, 0], [640, 0], [0, 80], [320, 80], [640, 80]]);
    expect(tiles.every((t) => t.width === 640 && t.height === 640)).toBe(true);
    expect(coverage(tiles, 1280, 720).every((n) => n > 0)).toBe(true);
    expect(minOverlap(tiles)).toBeGreaterThanOrEqual(0.2);
  });

  it('768x576 (vtest.avi): 2 x 1 tiles of 640x576', () => {
    const tiles = planTiles(768, 576);
    expect(tiles).toEqual([{ x: 0, y: 0, width: 640, height: 576 }, { x: 128, y: 0, width: 640, height: 576 }]);
    expect(coverage(tiles, 768, 576).every((n) => n > 0)).toBe(true);
  });

  it('covers every pixel with at least the requested overlap for many sizes', () => {
    for (const [w, h, ts, ov] of [[1920, 1080, 640, 0.2], [1920, 1080, 512, 0.3], [1000, 333, 300, 0.25], [641, 641, 640, 0.2], [100, 50, 640, 0.2], [3840, 2160, 640, 0.5]]) {
      const tiles = planTiles(w, h, { tileSize: ts, overlap: ov });
      expect(coverage(tiles, w, h).every((n) => n > 0), `${w}x${h}`).toBe(true);
      if (tiles.length > 1) expect(minOverlap(tiles), `${w}x${h}`).toBeGreaterThanOrEqual(ov - 1e-9);
      for (const t of tiles) expect(t.x + t.width <= w && t.y + t.height <= h).toBe(true);
    }
    expect(planTiles(100, 50)).toEqual([{ x: 0, y: 0, width: 100, height: 50 }]);
    expect(planTiles(1920, 1080)).toHaveLength(4 * 2);
  });

  it('rejects bad arguments', () => {
    expect(() => planTiles(0, 10)).toThrow(RangeError);
    expect(() => planTiles(10.5, 10)).toThrow(RangeError);
    expect(() => planTiles(10, 10, { overlap: 1 })).toThrow(RangeError);
    expect(() => planTiles(10, 10, { tileSize: 0 })).toThrow(RangeError);
  });
});

describe('cropping and merging', () => {
  it('crops the RGB buffer row by row', () => {
    const frame: RgbFrame = { width: 4, height: 3, rgb: Buffer.from(Array.from({ length: 36 }, (_, i) => i)) };
    const c = cropRgb(frame, { x: 1, y: 1, width: 2, height: 2 });
    expect([...c.rgb]).toEqual([15, 16, 17, 18, 19, 20, 27, 28, 29, 30, 31, 32]);
    expect(() => cropRgb(frame, { x: 3, y: 0, width: 2, height: 1 })).toThrow(RangeError);
  });

  it('flags boxes touching inner tile edges only', () => {
    const tile = { x: 320, y: 0, width: 640, height: 640 }; // middle tile of a 1280x720 frame: left, right, bottom are inner
    expect(touchesInnerEdge([0, 100, 30, 180], tile, 1280, 720, 6)).toBe(true);
    expect(touchesInnerEdge([600, 100, 638, 180], tile, 1280, 720, 6)).toBe(true);
    expect(touchesInnerEdge([100, 560, 130, 640], tile, 1280, 720, 6)).toBe(true);
    expect(touchesInnerEdge([100, 0, 130, 60], tile, 1280, 720, 6)).toBe(false); // the top is the frame's top
    expect(touchesInnerEdge([100, 100, 130, 180], tile, 1280, 720, 6)).toBe(false);
  });

  it('NMS merges duplicates; containment drops a part of a person but not a distant person inside a big box', () => {
    const whole = det([100, 100, 130, 180], 0.8);
    const dup = det([101, 101, 131, 181], 0.7);
    const torso = det([100, 100, 130, 140], 0.85); // IoU with whole 0.5: NMS at 0.45... kept only by containment
    const otherClass = det([100, 100, 130, 140], 0.6, 1);
    const big = det([0, 0, 400, 300], 0.9);
    const smallInside = det([20, 20, 40, 60], 0.5); // 0.7 % of big's area
    expect(intersectionOverSmaller(whole.bbox, torso.bbox)).toBe(1);
    const merged = mergeDetections([whole, dup, torso, otherClass], 0.7);
    expect(merged).toEqual([whole, otherClass]);
    expect(mergeDetections([big, smallInside], 0.45)).toEqual([big, smallInside]);
    expect(mergeDetections([whole, torso], 0.7, 1)).toEqual([torso, whole]); // disabled
  });

  it('auto rule: tiles 720p with small people, not 768x576 or large people', () => {
    const small = [det([0, 0, 20, 60]), det([0, 0, 20, 70]), det([0, 0, 20, 80])];
    expect(autoTileDecision(small, 1280, 720, 640).tile).toBe(true); // 70 px x 0.5 = 35 input px
    expect(autoTileDecision([], 1280, 720, 640).tile).toBe(true);
    expect(autoTileDecision(small, 768, 576, 640).tile).toBe(false);
    expect(autoTileDecision([det([0, 0, 100, 300])], 1280, 720, 640).tile).toBe(false); // 150 input px
  });
});

const MEDIA = process.env.TEST_MEDIA_DIR;
const CLIP = MEDIA ? path.join(MEDIA, 'soccer_broadcast_720p.mp4') : '';
if (!MEDIA) console.log('tiling.test: TEST_MEDIA_DIR is not set: skipping the soccer broadcast cases (set it to ../shared/media)');

describe.skipIf(!MEDIA)('soccer broadcast frame 300 (TEST_MEDIA_DIR): tiling + pitch mask + feet filter', () => {
  let detector: Detector;
  let tmp: string;
  let frame: RgbFrame;
  let samples: Buffer[];

  /**
   * Regions of frame 300 measured by looking at it: the crowd stands end at the advertising boards, whose
   * top edge is at y ~205 across the frame (boards y 205-225, a blue strip 225-243 where an assistant
   * referee stands, grass from y ~243); the scoreboard overlay is the rectangle x 98-462, y 38-76.
   */
  const CROWD_BOTTOM_Y = 205;
  const SCOREBOARD = { x1: 98, y1: 38, x2: 462, y2: 76 };
  const feet = (d: Detection) => ({ x: (d.bbox[0] + d.bbox[2]) / 2, y: d.bbox[3] });
  const inCrowdOrScoreboard = (d: Detection) => {
    const f = feet(d);
    return f.y < CROWD_BOTTOM_Y || (f.x >= SCOREBOARD.x1 && f.x <= SCOREBOARD.x2 && f.y >= SCOREBOARD.y1 && f.y <= SCOREBOARD.y2);
  };

  beforeAll(async () => {
    if (!existsSync(CLIP)) throw new Error(`TEST_MEDIA_DIR is set but ${CLIP} does not exist`);
    tmp = await mkdtemp(path.join(os.tmpdir(), 'tiling-test-'));
    console.log(`tiling.test overlays: ${tmp}`);
    const ff = defaultFfmpeg().ffmpeg;
    execFileSync(ff, ['-loglevel', 'error', '-y', '-i', CLIP, '-vf', 'select=eq(n\\,300)', '-frames:v', '1', path.join(tmp, 'frame_300.png')]);
    // Step 4 samples frames evenly: here frames 0, 75, ..., 600 of the 630 decodable ones.
    execFileSync(ff, ['-loglevel', 'error', '-y', '-i', CLIP, '-vf', 'select=not(mod(n\\,75))', '-fps_mode', 'vfr', '-q:v', '3', path.join(tmp, 'sample_%02d.jpg')]);
    const names = (await readdir(tmp)).filter((f) => f.startsWith('sample_')).sort();
    samples = await Promise.all(names.map((f) => readFile(path.join(tmp, f))));
    frame = await decodeImage(path.join(tmp, 'frame_300.png'));
    detector = await createDetector({ modelPath: loadConfig().detectorModelPath, logger: { info() {}, warn() {} } });
  });

  afterAll(async () => {
    await detector?.release();
    if (tmp && !process.env.KEEP_TEST_OUTPUT) await rm(tmp, { recursive: true, force: true });
  });

  it('finds >= 18 players with tiling, keeps nobody in the crowd or on the scoreboard, and beats the full-frame pass', async () => {
    const model = await fitPitchModel(samples, PARAMS);
    console.log(`soccer model (${samples.length} frames): ${JSON.stringify({ ...model, pitch: { ...model.pitch, params: undefined } })}`);
    expect(model.pitchFound).toBe(true);
    const mask = await computePitchMask(frame, model);
    // The mask's top edge lies between the boards and the grass (y 205-250) across the frame.
    for (const x of [100, 400, 640, 900, 1200]) {
      expect(pitchTopAt(mask, x)).toBeGreaterThan(CROWD_BOTTOM_Y);
      expect(pitchTopAt(mask, x)).toBeLessThan(250);
    }

    await detectTiledWithStats(detector, frame, { ...PERSON, tiles: 'off' }); // warm-up
    const full = await detectTiledWithStats(detector, frame, { ...PERSON, tiles: 'off' });
    const tiled = await detectTiledWithStats(detector, frame, { ...PERSON, tiles: 'auto' });
    expect(tiled.stats.tiled).toBe(true);
    expect(tiled.stats.tiles).toBe(6);
    const fullKept = filterOnPitch(full.detections, mask).kept;
    const { kept, dropped } = filterOnPitch(tiled.detections, mask);
    const missed = kept.filter((k) => !full.detections.some((d) => intersectionOverSmaller(d.bbox, k.bbox) > 0.5));
    const ms = (s: typeof full.stats) => `${s.totalMs.toFixed(0)} ms (model ${s.inferenceMs.toFixed(0)} ms in ${s.passes} passes)`;
    console.log(
      `soccer frame 300: full frame ${full.detections.length} persons (${fullKept.length} on pitch) in ${ms(full.stats)}; ` +
        `tiled [${tiled.stats.reason}] ${tiled.detections.length} persons, ${kept.length} kept, ${dropped.length} dropped, in ${ms(tiled.stats)}; ` +
        `the full-frame pass misses ${missed.map((d) => `[${d.bbox.map(Math.round).join(',')} h${Math.round(d.bbox[3] - d.bbox[1])}]`).join(' ')}`,
    );
    await writeFile(path.join(tmp, 'frame_300_overlay.png'), await drawDetections(frame, [...kept, ...dropped.map((x) => ({ ...x.det, classId: 1 }))]));
    expect(kept.length).toBeGreaterThanOrEqual(18);
    expect(kept.length).toBeGreaterThan(fullKept.length);
    expect(kept.filter(inCrowdOrScoreboard)).toEqual([]);
  });

  it('at a low confidence (0.1) crowd members are detected, and the feet filter drops every one of them', async () => {
    const model = await fitPitchModel(samples.slice(0, 3), PARAMS);
    const mask = await computePitchMask(frame, model);
    const { detections } = await detectTiledWithStats(detector, frame, { ...PERSON, confThreshold: 0.1, tiles: 'auto' });
    const crowd = detections.filter(inCrowdOrScoreboard);
    const { kept, dropped } = filterOnPitch(detections, mask);
    console.log(`soccer frame 300 at conf 0.1: ${detections.length} persons, ${crowd.length} with feet in the crowd/scoreboard, kept ${kept.length}, dropped ${dropped.length}`);
    await writeFile(path.join(tmp, 'frame_300_conf01_overlay.png'), await drawDetections(frame, [...kept, ...dropped.map((x) => ({ ...x.det, classId: 1 }))]));
    expect(crowd.length).toBeGreaterThanOrEqual(3);
    expect(kept.filter(inCrowdOrScoreboard)).toEqual([]);
    expect(kept.length).toBeGreaterThanOrEqual(18);
  });
});

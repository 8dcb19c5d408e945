/**
 * Pitch colour model, pitch masks and the feet-on-pitch filter: pure units on synthetic masks, and the real
 * YOLOv8n model on real images from Debian's opencv-doc: messi5.jpg (a player on a pitch,
 * spectators behind a wall above it; also padded with black bars by ffmpeg), vtest.avi (people walking on a
 * road beside a lawn), basketball1.png, and a floorball stand-in built from vtest.avi's people on a beige
 * floor (test/helpers/floorball.ts). With TEST_MEDIA_DIR set, the soccer broadcast clip with black bars
 * added by ffmpeg's `pad` (pillarbox and letterbox), into a temp folder; skipped with a message otherwise.
 * Overlays are written to a temp folder (path printed) so a person can look at them.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config';
import { createDetector, type Detector } from '../src/vision/detection/detector';
import type { Detection } from '../src/vision/detection/geometry';
import { drawDetections } from '../src/vision/image/draw';
import { decodeImage } from '../src/vision/image/rgb';
import { defaultFfmpeg } from '../src/vision/media/ffmpeg';
import { collectHsvSamples, fitGrassColour, fitGrassModel, isGrass, isGrassRgb, rgbToHsv, type GrassParams } from '../src/vision/pitch/colour';
import { filterOnPitch, pitchRunAt, isOnPitch, pitchTopAt } from '../src/vision/pitch/feet';
import { fitPitchModel } from '../src/vision/pitch/fit';
import { closeMask, computePitchMask, fillHoles, fillRowSpans, largestRegion, morph, pitchMaskFromGrass, pitchShape } from '../src/vision/pitch/mask';
import { PITCH_DEFAULTS, type PitchMask } from '../src/vision/pitch/model';
import { findPicture, framePicture } from '../src/vision/pitch/picture';
import { detectTiledWithStats } from '../src/vision/detection/tiling';
import { hsvToRgb, makeFloorballFrames } from './helpers/floorball';

const DATA = '/usr/share/doc/opencv-doc/examples/data';
const PARAMS: GrassParams = { hueMin: 60, hueMax: 170, satMin: 0.15, valMin: 0.15, minPitchFraction: 0.15 };
/** The pipeline's detector defaults (options.detector in src/validation.ts). */
const PERSON = { confThreshold: 0.25, iouThreshold: 0.45, classes: [0] };

/** Builds a mask from rows of '#' (set) and '.' (unset). */
function grid(rows: string[]): { m: Uint8Array; w: number; h: number } {
  const w = rows[0].length;
  const h = rows.length;
  const m = new Uint8Array(w * h);
  rows.forEach((r, y) => [...r].forEach((c, x) => (m[y * w + x] = c === '#' ? 1 : 0)));
  return { m, w, h };
}
const show = (m: Uint8Array, w: number) => Array.from({ length: m.length / w }, (_, y) => [...m.subarray(y * w, y * w + w)].map((v) => (v ? '#' : '.')).join(''));

function maskOf(rows: string[], frameScale = 1): PitchMask {
  const { m, w, h } = grid(rows);
  return { width: w, height: h, scale: frameScale, frameWidth: w / frameScale, frameHeight: h / frameScale, data: m, ...pitchShape(m, w, h, PITCH_DEFAULTS) };
}

describe('HSV and the colour window', () => {
  it('converts pure colours (Smith 1978 hexcone)', () => {
    expect(rgbToHsv(255, 0, 0)).toEqual([0, 1, 1]);
    expect(rgbToHsv(0, 255, 0)).toEqual([120, 1, 1]);
    expect(rgbToHsv(0, 0, 255)).toEqual([240, 1, 1]);
    expect(rgbToHsv(128, 128, 128)[1]).toBe(0);
  });

  it('isGrassRgb agrees with isGrass(rgbToHsv(...)) on 20000 random pixels', () => {
    const model = { hue: { min: 73, max: 93, median: 83 }, sat: { min: 0.35, median: 0.88 }, val: { min: 0.17, median: 0.56 } };
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 256);
    let agree = 0;
    for (let i = 0; i < 20000; i++) {
      const [r, g, b] = [rnd(), rnd(), rnd()];
      if (isGrassRgb(r, g, b, model) === isGrass(...rgbToHsv(r, g, b), model)) agree++;
    }
    expect(agree).toBe(20000);
  });

  it('centres the window on the dominant green, not on the search range, and excludes a second green', () => {
    // 70 % grass at hue ~80 with stripes (value 0.45 / 0.6), 20 % grey, 10 % a blue-green at hue ~150.
    const px: number[] = [];
    const hsvToRgb = (h: number, s: number, v: number) => {
      const c = v * s;
      const x = c * (1 - Math.abs(((h / 60) % 2) - 1));
      const m = v - c;
      const [r, g, b] = h < 60 ? [c, x, 0] : h < 120 ? [x, c, 0] : h < 180 ? [0, c, x] : [0, x, c];
      return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
    };
    for (let i = 0; i < 700; i++) px.push(...hsvToRgb(76 + (i % 9), 0.85, i % 2 ? 0.45 : 0.6));
    for (let i = 0; i < 200; i++) px.push(120, 120, 120);
    for (let i = 0; i < 100; i++) px.push(...hsvToRgb(150, 0.8, 0.5));
    const model = fitGrassColour(collectHsvSamples(Uint8Array.from(px), 3, PARAMS), PARAMS);
    expect(model.hue.median).toBeGreaterThan(74);
    expect(model.hue.median).toBeLessThan(86);
    expect(model.hue.min).toBeGreaterThanOrEqual(55);
    expect(model.hue.max).toBeLessThan(150);
    expect(model.sat.min).toBeGreaterThan(0.3); // 0.4 x median 0.85
    expect(model.val.min).toBeLessThan(0.45); // the darker stripe is grass too
    expect(model.greenFraction).toBeCloseTo(0.7, 2);
    expect(model.pitchFound).toBe(true);
  });

  it('takes a true hue peak inside the range, not the flank of a beige hill whose top lies outside it', () => {
    // 60 % a beige floor with hue spread over 40-62 deg (its top at ~50, its flank crossing 60), 15 % a
    // grass green at 90 deg. The old rule (maximum of the histogram inside [60, 170]) took the flank at 61.
    const px: number[] = [];
    for (let i = 0; i < 600; i++) px.push(...hsvToRgb(40 + (i % 23), 0.3, 0.75));
    for (let i = 0; i < 150; i++) px.push(...hsvToRgb(88 + (i % 5), 0.7, 0.5));
    const model = fitGrassColour(collectHsvSamples(Uint8Array.from(px), 3, PARAMS), PARAMS);
    expect(model.hue.median).toBeGreaterThan(85);
    expect(model.hue.min).toBeGreaterThan(62); // the floor stays outside the window
    // The floor alone has no peak in the range: no pitch colour at all.
    const floorOnly = fitGrassColour(collectHsvSamples(Uint8Array.from(px.slice(0, 600 * 3)), 3, PARAMS), PARAMS);
    expect(floorOnly.hue.median).toBe(0);
    expect(floorOnly.pitchFound).toBe(false);
  });

  it('reports no pitch when nothing is green', () => {
    const grey = new Uint8Array(300).fill(90);
    const model = fitGrassColour(collectHsvSamples(grey, 3, PARAMS), PARAMS);
    expect(model.pitchFound).toBe(false);
    expect(model.greenFraction).toBe(0);
  });
});

describe('mask morphology', () => {
  it('closes a one-pixel line through a region, erodes nothing at the border', () => {
    const { m, w, h } = grid(['#####.#####', '#####.#####', '#####.#####', '#####.#####']);
    expect(show(closeMask(m, w, h, 1), w)).toEqual(['###########', '###########', '###########', '###########']);
    expect(show(morph(m, w, h, 1, 'min'), w)).toEqual(['####...####', '####...####', '####...####', '####...####']);
  });

  it('keeps the largest 4-connected region, fills its holes, then fills row spans', () => {
    const { m, w, h } = grid(['##.......', '##..#####', '....#..##', '....#####', '.....##..']);
    const { mask, area } = largestRegion(m, w, h);
    expect(area).toBe(15);
    expect(show(mask, w)).toEqual(['.........', '....#####', '....#..##', '....#####', '.....##..']);
    const filled = fillHoles(mask, w, h);
    expect(show(filled, w)[2]).toBe('....#####');
    const { m: notch, w: w2, h: h2 } = grid(['#####', '##.##', '##.##']);
    expect(show(fillHoles(notch, w2, h2), w2)).toEqual(['#####', '##.##', '##.##']); // open at the border: not a hole
    expect(show(fillRowSpans(notch, w2, h2), w2)).toEqual(['#####', '#####', '#####']);
  });

  it('says a full-width lower region is pitch-like and a corner triangle is not', () => {
    const pitch = grid(['..........', '..........', '##########', '##########', '##########', '##########']);
    const lawn = grid(['..........', '#.........', '###.......', '#####.....', '#######...', '##########']);
    const p = pitchShape(pitch.m, pitch.w, pitch.h, PITCH_DEFAULTS);
    const l = pitchShape(lawn.m, lawn.w, lawn.h, PITCH_DEFAULTS);
    expect(p).toMatchObject({ fraction: 0.667, fullWidthRows: 1, topRow: 2, pitchLike: true });
    expect(l.fullWidthRows).toBe(0.2);
    expect(l.pitchLike).toBe(false);
  });
});

describe('black bars (picture area)', () => {
  /** A w x h frame: black bars of the given widths (with codec-like noise 0-20) around a mid-grey picture. */
  const framed = (w: number, h: number, bars: { left?: number; right?: number; top?: number; bottom?: number }, picture = 120) => {
    const rgb = Buffer.alloc(w * h * 3);
    let seed = 3;
    const noise = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 21);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const bar = x < (bars.left ?? 0) || x >= w - (bars.right ?? 0) || y < (bars.top ?? 0) || y >= h - (bars.bottom ?? 0);
        rgb.fill(bar ? noise() : picture, (y * w + x) * 3, (y * w + x) * 3 + 3);
      }
    }
    return { rgb, width: w, height: h };
  };

  it('finds pillarbox, letterbox and windowbox bars, and nothing in a dark or black frame', () => {
    expect(framePicture(framed(200, 100, { left: 20, right: 20 }))).toEqual([20, 0, 180, 100]);
    expect(framePicture(framed(200, 100, { top: 15, bottom: 10 }))).toEqual([0, 15, 200, 90]);
    expect(framePicture(framed(200, 100, { left: 8, right: 12, top: 5, bottom: 5 }))).toEqual([8, 5, 188, 95]);
    expect(framePicture(framed(200, 100, {}, 30))).toEqual([0, 0, 200, 100]); // dark picture (mean 30 > 24)
    expect(framePicture(framed(200, 100, {}, 0))).toBeNull(); // black frame (a fade)
  });

  it('unites the frames of a video, ignores black frames and lines thinner than 1 %', () => {
    // A dark scene whose left 30 columns happen to be black in one frame does not shrink the picture.
    const a = findPicture([framed(200, 100, { left: 20, right: 20 }), framed(200, 100, { left: 30, right: 20 }), framed(200, 100, {}, 0)]);
    expect(a).toEqual({ box: [20, 0, 180, 100], frameWidth: 200, frameHeight: 100 });
    // Three black rows at the top of 400 (under 1 %; the soccer clip has one of 720) are not a bar.
    expect(findPicture([framed(200, 400, { top: 3 })]).box).toEqual([0, 0, 200, 400]);
    expect(findPicture([framed(200, 400, { top: 4 })]).box).toEqual([0, 4, 200, 400]);
    expect(findPicture([framed(200, 100, {}, 0)]).box).toEqual([0, 0, 200, 100]);
  });

  it('measures the pitch region inside the picture: a pitch between pillarbox bars has full-width rows', () => {
    // 20 x 10 mask, 4-column bars each side; the pitch fills the picture's lower 6 rows.
    const rows = Array.from({ length: 10 }, (_, y) => (y >= 4 ? '....############....' : '....................'));
    const { m, w, h } = grid(rows);
    const whole = pitchMaskFromGrass(m, w, h);
    expect(whole.fullWidthRows).toBe(0); // 12 of 20 columns: no row is 90 % full
    expect(whole.pitchLike).toBe(false);
    const inside = pitchMaskFromGrass(m, w, h, {}, [4, 0, 16, 10]);
    expect(inside).toMatchObject({ fraction: 0.6, fullWidthRows: 1, topRow: 4, pitchLike: true });
    expect(show(inside.data, w)).toEqual(rows); // nothing on the bars
  });
});

describe('feet-on-pitch filter (synthetic mask, 1 mask px = 10 frame px)', () => {
  const mask = maskOf(['..........', '..........', '..........', '##########', '##########', '##########'], 0.1);
  const d = (bbox: [number, number, number, number]): Detection => ({ bbox, score: 0.9, classId: 0 });

  it('maps frame pixels to mask pixels, including the bottom/right frame edge', () => {
    expect(isOnPitch(mask, 5, 35)).toBe(true);
    expect(isOnPitch(mask, 5, 29.9)).toBe(false);
    expect(isOnPitch(mask, 100, 60)).toBe(true);
    expect(isOnPitch(mask, 100.1, 60)).toBe(false);
    expect(isOnPitch(mask, -1, 40)).toBe(false);
    expect(pitchTopAt(mask, 55)).toBe(30);
  });

  it('keeps feet on the pitch or within the tolerance of its edge, drops feet above it, keeps all without a mask', () => {
    const onPitch = d([40, 10, 50, 45]);
    const onEdge = d([40, 0, 50, 25]); // bottom 5 px above the edge; tolerance max(10, 0.05 x 25) = 10 px
    const crowd = d([10, 0, 20, 15]); // bottom 15 px above the edge
    const { kept, dropped } = filterOnPitch([onPitch, onEdge, crowd], mask);
    expect(kept).toEqual([onPitch, onEdge]);
    expect(dropped).toEqual([{ det: crowd, reason: 'feet-off-pitch' }]);
    expect(filterOnPitch([crowd], null).kept).toEqual([crowd]);
  });

  it('drops feet on a sliver of pitch cut off from the body of the pitch below it', () => {
    // 1 mask px = 1 frame px. Rows 60-71: a 12 px strip of "pitch" (columns 0-4) above a gap, as a green
    // board or vest merged into the mask at the pitch's edge; rows 78-99: the body of the pitch.
    const rows = Array.from({ length: 100 }, (_, y) => (y >= 78 ? '##########' : y >= 60 && y < 72 ? '#####.....' : '..........'));
    const sliver = maskOf(rows, 1);
    expect(pitchRunAt(sliver, 2, 65)).toBe(12);
    expect(pitchRunAt(sliver, 2, 90)).toBe(22);
    expect(pitchRunAt(sliver, 2, 75)).toBe(0);
    const onStrip = d([1, 16, 4, 66]); // feet on the strip: 12 px < 0.25 x 50 px box height
    const onBody = d([1, 40, 4, 90]); // feet on the body: 22 px >= 12.5
    const { kept, dropped } = filterOnPitch([onStrip, onBody], sliver);
    expect(kept).toEqual([onBody]);
    expect(dropped).toEqual([{ det: onStrip, reason: 'feet-off-pitch' }]);
    // Without the run condition (only the two-mask-pixel floor) the strip counts as pitch.
    expect(filterOnPitch([onStrip], sliver, { minRunFraction: 0 }).kept).toEqual([onStrip]);
  });

});

describe('pitch model and feet filter on real images (YOLOv8n)', () => {
  let detector: Detector;
  let tmp: string;
  const vtestFrames: Buffer[] = [];

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'grass-test-'));
    console.log(`grass.test overlays: ${tmp}`);
    detector = await createDetector({ modelPath: loadConfig().detectorModelPath, logger: { info() {}, warn() {} } });
    // vtest.avi at 5, 20, 40, 60 and 75 s (the 20 s frame is the walkers test frame of detector.test.ts).
    for (const t of [5, 20, 40, 60, 75]) {
      const out = path.join(tmp, `vtest_${t}.png`);
      execFileSync(defaultFfmpeg().ffmpeg, ['-loglevel', 'error', '-y', '-ss', String(t), '-i', path.join(DATA, 'vtest.avi'), '-frames:v', '1', out]);
      vtestFrames.push(await readFile(out));
    }
  });

  afterAll(async () => {
    await detector?.release();
    if (tmp && !process.env.KEEP_TEST_OUTPUT) {
      const files = await readdir(tmp).catch(() => []);
      if (files.some((f) => f.endsWith('_overlay.png'))) console.log(`(set KEEP_TEST_OUTPUT=1 to keep ${tmp})`);
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it('messi5.jpg: finds the pitch, keeps the player, drops the spectators above the pitch', async () => {
    const file = path.join(DATA, 'messi5.jpg');
    const jpeg = await readFile(file);
    const model = await fitPitchModel([jpeg], PARAMS);
    console.log(`messi5 model: ${JSON.stringify({ ...model, pitch: { ...model.pitch, params: undefined } })}`);
    expect(model.pitchFound).toBe(true);
    const frame = await decodeImage(jpeg);
    const mask = await computePitchMask(frame, model);
    // The grass begins at y ~263 (the spectators' wall ends there); the pitch mask's top edge agrees.
    for (const x of [30, 140, 300]) expect(Math.abs(pitchTopAt(mask, x) - 264)).toBeLessThan(5);

    const { detections, stats } = await detectTiledWithStats(detector, frame, { ...PERSON, tiles: 'auto' });
    expect(stats.tiled).toBe(false); // 548 px wide: the full-frame pass already sees it at 1.17x
    const { kept, dropped } = filterOnPitch(detections, mask);
    console.log(`messi5: ${detections.length} persons, kept ${kept.length} (${kept.map((d) => d.bbox.map(Math.round).join(',')).join(' | ')}), dropped ${dropped.length}`);
    await writeFile(path.join(tmp, 'messi5_overlay.png'), await drawDetections(frame, [...kept, ...dropped.map((x) => ({ ...x.det, classId: 1 }))]));
    // The player: the one large box (arms out from x ~70 to the ball foot at x ~455, head y ~60 to boot y ~335).
    expect(kept).toHaveLength(1);
    const [x1, y1, x2, y2] = kept[0].bbox;
    expect(x2 - x1).toBeGreaterThan(300);
    expect(y2 - y1).toBeGreaterThan(230);
    expect(y2).toBeGreaterThan(320);
    // Spectators: every other box, all with their feet above the pitch.
    expect(dropped.length).toBeGreaterThanOrEqual(5);
    for (const { det } of dropped) expect(det.bbox[3]).toBeLessThan(263);
  });

  it('vtest.avi: a lawn beside a road is not a pitch, and all 7 walkers at 20 s are kept', async () => {
    const model = await fitPitchModel(vtestFrames, PARAMS);
    console.log(`vtest model: ${JSON.stringify({ ...model, pitch: { ...model.pitch, params: undefined } })}`);
    expect(model.greenFraction).toBeGreaterThan(0.3); // there IS a lot of grass...
    expect(model.pitchFound).toBe(false); // ...but it is not shaped like a pitch
    expect(model.pitch.medianFullWidthRows).toBeLessThan(PITCH_DEFAULTS.minFullWidthRows);

    const frame = await decodeImage(vtestFrames[1]);
    const mask = await computePitchMask(frame, model);
    const { detections } = await detectTiledWithStats(detector, frame, { ...PERSON, tiles: 'auto' });
    const { kept } = filterOnPitch(detections, model.pitchFound ? mask : null);
    // Had the lawn been taken for a pitch, the filter would have dropped the walkers on the road:
    const wouldDrop = filterOnPitch(detections, mask).dropped.length;
    console.log(`vtest @20s: ${detections.length} persons, kept ${kept.length}; the lawn mask alone would drop ${wouldDrop}`);
    await writeFile(path.join(tmp, 'vtest20_overlay.png'), await drawDetections(frame, kept));
    expect(kept).toHaveLength(7);
    expect(wouldDrop).toBeGreaterThanOrEqual(5);
  });

  for (const [name, pad, dx, dy, barPoint] of [
    ['pillarboxed', 'pad=iw+196:ih:98:0:black', 98, 0, [49, 330]],
    ['letterboxed', 'pad=iw:ih+240:0:120:black', 0, 120, [274, 520]],
  ] as const) {
    it(`messi5.jpg ${name} by ffmpeg (black bars): the same pitch, player and spectators as without bars`, async () => {
      // Without bar handling: pillarboxed, no row of the frame is 90 % grass (0 full-width rows); letterboxed,
      // the pitch covers 0.137 of the frame (< 0.15). Both were "no pitch".
      const file = path.join(tmp, `messi5_${name}.jpg`);
      execFileSync(defaultFfmpeg().ffmpeg, ['-loglevel', 'error', '-y', '-i', path.join(DATA, 'messi5.jpg'), '-vf', pad, '-q:v', '2', file]);
      const jpeg = await readFile(file);
      const model = await fitPitchModel([jpeg], PARAMS);
      console.log(`messi5 ${name} model: ${JSON.stringify({ ...model, pitch: { ...model.pitch, params: undefined } })}`);
      expect(model.pitchFound).toBe(true);
      expect(model.pitch.medianFraction).toBeCloseTo(0.233, 1); // as without bars
      expect(model.pitch.picture?.box).toEqual([dx, dy, 548 + dx, 342 + dy]);
      const frame = await decodeImage(jpeg);
      const mask = await computePitchMask(frame, model, model.pitch.params, model.pitch.picture);
      for (const x of [30, 140, 300]) expect(Math.abs(pitchTopAt(mask, x + dx) - (264 + dy))).toBeLessThan(6);
      expect(isOnPitch(mask, 274 + dx, 330 + dy)).toBe(true);
      expect(isOnPitch(mask, barPoint[0], barPoint[1])).toBe(false); // the bars (beside or below the grass) are never pitch
      const { detections } = await detectTiledWithStats(detector, frame, { ...PERSON, tiles: 'auto' });
      const { kept, dropped } = filterOnPitch(detections, mask);
      await writeFile(path.join(tmp, `messi5_${name}_overlay.png`), await drawDetections(frame, [...kept, ...dropped.map((x) => ({ ...x.det, classId: 1 }))]));
      expect(kept).toHaveLength(1);
      expect(kept[0].bbox[2] - kept[0].bbox[0]).toBeGreaterThan(300);
      expect(dropped.length).toBeGreaterThanOrEqual(4);
      for (const { det } of dropped) expect(det.bbox[3]).toBeLessThan(263 + dy);
    });
  }

  it('floorball stand-in (beige floor, yellow-green and red bibs): not a pitch, so no grass keying of bibs', async () => {
    // The floor: hue 40-56 deg, saturation ~0.3 (a beige maple-look sports floor). The bibs' hue (68 deg) is
    // the hue peak inside the search range and the window grown from it takes in the floor, which covers
    // every frame edge to edge: the shape rule alone says "pitch" in 16 of 16 frames (the old model did:
    // pitchFound true, window 34-72 deg). A second floor, planks of 56-72 deg, has its own peak in range.
    for (const floorHue of [[40, 56], [56, 72]] as const) {
      const frames = await makeFloorballFrames(16, { floorHue });
      // Step 4 reads the JPEGs step 3 stored, decoded.
      const decoded = await Promise.all(frames.map((f) => decodeImage(f.jpeg)));
      await writeFile(path.join(tmp, `floorball_${floorHue[0]}_overlay.png`), await drawDetections(decoded[13], frames[13].players.map((p) => ({ bbox: p.bbox, score: 1, classId: p.team === 'green' ? 0 : 1 }))));
      const model = await fitPitchModel(decoded, PARAMS);
      console.log(`floorball stand-in (floor hue ${floorHue.join('-')}): ${JSON.stringify({ ...model, pitch: { ...model.pitch, params: undefined } })}`);
      expect(model.pitchFound).toBe(false);
      expect(model.pitch.framesPitchLike).toBe(16); // by shape it would be one...
      expect(model.sat.median).toBeLessThan(PITCH_DEFAULTS.minGrassSaturation); // ...but its colour is not grass
      expect(model.pitch.reason).toMatch(/too pale for grass/);
      // What keying with this colour window would do: black out the yellow-green bibs.
      let bib = 0;
      let keyed = 0;
      frames.forEach((f, i) => {
        for (const pl of f.players.filter((x) => x.team === 'green')) {
          for (const q of pl.bibPixels) {
            bib++;
            if (isGrassRgb(decoded[i].rgb[q * 3], decoded[i].rgb[q * 3 + 1], decoded[i].rgb[q * 3 + 2], model)) keyed++;
          }
        }
      });
      expect(bib).toBeGreaterThan(10_000);
      expect(keyed / bib).toBeGreaterThan(0.9);
    }
  });

  it('basketball1.png runs without error (no green: no pitch, nothing filtered)', async () => {
    const png = await readFile(path.join(DATA, 'basketball1.png'));
    const model = await fitPitchModel([png], PARAMS);
    expect(model.pitchFound).toBe(false);
    const frame = await decodeImage(png);
    const mask = await computePitchMask(frame, model);
    expect(mask.width).toBe(320);
    const { detections } = await detectTiledWithStats(detector, frame, { ...PERSON, tiles: 'auto' });
    const { kept } = filterOnPitch(detections, model.pitchFound ? mask : null);
    expect(kept).toEqual(detections);
    // The colour-only fit of grass.ts still works on its own (backward-compatible API).
    expect((await fitGrassModel([png], PARAMS)).pitchFound).toBe(false);
  });
});

const MEDIA = process.env.TEST_MEDIA_DIR;
const SOCCER = MEDIA ? path.join(MEDIA, 'soccer_broadcast_720p.mp4') : '';
if (!MEDIA) console.log('grass.test: TEST_MEDIA_DIR is not set: skipping the soccer broadcast cases with black bars (set it to ../shared/media)');

describe.skipIf(!MEDIA)('soccer broadcast clip with black bars added by ffmpeg pad (TEST_MEDIA_DIR)', () => {
  let detector: Detector;
  let tmp: string;
  /** Frames 0, 40, ..., 600 (16 evenly spaced, as step 4 samples) and frame 300, per framing. */
  const clips: Record<string, { samples: Buffer[]; frame300: Buffer; dx: number; dy: number }> = {};
  const framings = { original: ['null', 0, 0], pillarboxed: ['pad=iw+196:ih:98:0:black', 98, 0], letterboxed: ['pad=iw:ih+240:0:120:black', 0, 120] } as const;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'grass-bars-'));
    const ff = defaultFfmpeg().ffmpeg;
    for (const [name, [pad, dx, dy]] of Object.entries(framings)) {
      const dir = path.join(tmp, name);
      await mkdir(dir, { recursive: true });
      execFileSync(ff, ['-loglevel', 'error', '-y', '-i', SOCCER, '-vf', `select=not(mod(n\\,40)),${pad}`, '-fps_mode', 'passthrough', '-q:v', '3', path.join(dir, 'sample_%02d.jpg')]);
      execFileSync(ff, ['-loglevel', 'error', '-y', '-i', SOCCER, '-vf', `select=eq(n\\,300),${pad}`, '-frames:v', '1', path.join(dir, 'frame_300.png')]);
      const names = (await readdir(dir)).filter((f) => f.startsWith('sample_')).sort();
      clips[name] = { samples: await Promise.all(names.map((f) => readFile(path.join(dir, f)))), frame300: await readFile(path.join(dir, 'frame_300.png')), dx, dy };
    }
    detector = await createDetector({ modelPath: loadConfig().detectorModelPath, logger: { info() {}, warn() {} } });
  });

  afterAll(async () => {
    await detector?.release();
    if (tmp && !process.env.KEEP_TEST_OUTPUT) await rm(tmp, { recursive: true, force: true });
  });

  it('finds the pitch in as many sampled frames with bars as without, measured inside the picture', async () => {
    // Without bar handling the pillarboxed clip had no pitch (0 of 16 frames, medianFullWidthRows 0) and
    // the letterboxed one a median pitch fraction of 0.50 instead of 0.67.
    const models = Object.fromEntries(await Promise.all(Object.entries(clips).map(async ([name, c]) => [name, await fitPitchModel(c.samples, PARAMS)] as const)));
    for (const [name, m] of Object.entries(models)) console.log(`soccer ${name}: ${m.pitch.framesPitchLike} of ${m.pitch.framesSampled} frames pitch-like; ${m.pitch.reason}`);
    const base = models.original;
    expect(base.pitch.framesSampled).toBe(16);
    expect(base.pitch.framesPitchLike).toBe(13);
    for (const name of ['pillarboxed', 'letterboxed']) {
      const m = models[name];
      const { dx, dy } = clips[name];
      expect(m.pitchFound).toBe(true);
      expect(m.pitch.framesPitchLike).toBe(base.pitch.framesPitchLike);
      expect(Math.abs(m.pitch.medianFraction - base.pitch.medianFraction)).toBeLessThan(0.01);
      expect(Math.abs(m.pitch.medianFullWidthRows - base.pitch.medianFullWidthRows)).toBeLessThan(0.02);
      // (the clip's own first row is black too: the letterbox's top bar is 121 rows)
      [dx, dy, 1280 + dx, 720 + dy].forEach((v, i) => expect(Math.abs(m.pitch.picture!.box[i] - v)).toBeLessThanOrEqual(1));
    }
  });

  it('frame 300 at confidence 0.1: the same 20 players kept and the crowd dropped, with or without bars', async () => {
    for (const [name, c] of Object.entries(clips)) {
      const model = await fitPitchModel(c.samples, PARAMS);
      const frame = await decodeImage(c.frame300);
      const mask = await computePitchMask(frame, model, model.pitch.params, model.pitch.picture);
      const { detections } = await detectTiledWithStats(detector, frame, { ...PERSON, confThreshold: 0.1, tiles: 'auto' });
      const { kept, dropped } = filterOnPitch(detections, model.pitchFound ? mask : null);
      // Crowd (feet above the boards at y ~205) and scoreboard (x 98-462, y 38-76), in the original's pixels.
      const crowd = kept.filter((d) => {
        const fx = (d.bbox[0] + d.bbox[2]) / 2 - c.dx;
        const fy = d.bbox[3] - c.dy;
        return fy < 205 || (fx >= 98 && fx <= 462 && fy >= 38 && fy <= 76);
      });
      console.log(`soccer ${name} frame 300 at conf 0.1: ${detections.length} persons, kept ${kept.length}, dropped ${dropped.length}, kept in the crowd ${crowd.length}`);
      expect(kept).toHaveLength(20);
      expect(crowd).toEqual([]);
    }
  });
});

/**
 * Shot changes (src/vision/tracking/shotChange.ts) on synthetic textured scenes: an abrupt cut, a dissolve
 * (both pictures superimposed over several frames, as in the soccer test clip's frames 120-134) and a
 * scene whose people move; then their effect on tracklets (src/vision/tracking/tracklets.ts, reason
 * `shot-change`) and on joins (src/vision/tracking/join.ts, no join across a shot change).
 */
import { describe, expect, it } from 'vitest';
import type { Detection } from '../src/vision/detection/geometry';
import type { RgbFrame } from '../src/vision/image/rgb';
import { joinCandidates, type TrackletBoxes } from '../src/vision/tracking/join';
import { frameSignature, ShotChangeDetector, signatureDistance } from '../src/vision/tracking/shotChange';
import { TrackletTracker, type CutOptions, type TrackletCut } from '../src/vision/tracking/tracklets';

const W = 320;
const H = 180;

/** A textured picture: each 8x8 block a colour drawn around `base` (deterministic LCG), plus a person box. */
function scene(base: number[], seed: number, person?: { box: number[]; top: number[]; bottom: number[] }): RgbFrame {
  const rgb = Buffer.alloc(W * H * 3);
  let s = seed >>> 0;
  const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const blocks: number[][] = [];
  for (let i = 0; i < (W / 8) * Math.ceil(H / 8); i++) blocks.push(base.map((c) => Math.max(0, Math.min(255, c + (rand() - 0.5) * 140))));
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      let c = blocks[Math.floor(y / 8) * (W / 8) + Math.floor(x / 8)];
      const b = person?.box;
      if (b && x >= b[0] && x < b[2] && y >= b[1] && y < b[3]) c = y < (b[1] + b[3]) / 2 ? person.top : person.bottom;
      rgb.set(c, (y * W + x) * 3);
    }
  }
  return { rgb, width: W, height: H };
}

/** `a` and `b` superimposed: (1 - t) a + t b. */
function blend(a: RgbFrame, b: RgbFrame, t: number): RgbFrame {
  const rgb = Buffer.alloc(a.rgb.length);
  for (let i = 0; i < rgb.length; i++) rgb[i] = Math.round((1 - t) * a.rgb[i] + t * b.rgb[i]);
  return { rgb, width: a.width, height: a.height };
}

const GREEN = [60, 140, 60];
const STANDS = [120, 90, 140];
const RED = [200, 30, 30];
const BLUE = [30, 30, 200];
const box = (cx: number) => [cx - 12, 60, cx + 12, 130];

/** Shot A (pitch) for frames < 10, a dissolve to shot B (stands) over frames 10..17 when `dissolve`, else a cut at 10. */
function clip(n: number, dissolve: boolean, person?: (f: number) => { box: number[]; top: number[]; bottom: number[] }): RgbFrame[] {
  const frames: RgbFrame[] = [];
  for (let f = 0; f < n; f++) {
    const a = scene(GREEN, 1, person?.(f));
    const b = scene(STANDS, 2, person?.(f));
    if (f < 10) frames.push(a);
    else if (dissolve && f < 18) frames.push(blend(a, b, (f - 9) / 9));
    else frames.push(b);
  }
  return frames;
}

/** The frames at which the detector reports a shot change. */
function changes(frames: RgbFrame[], d = new ShotChangeDetector()): number[] {
  return frames.flatMap((f, i) => (d.push(frameSignature(f)) ? [i] : []));
}

describe('frame signatures', () => {
  it('are 0 apart for the same picture and near 1 apart for pictures of disjoint colours', () => {
    const a = frameSignature(scene(GREEN, 1));
    expect(signatureDistance(a, frameSignature(scene(GREEN, 1)))).toBe(0);
    const black = frameSignature({ rgb: Buffer.alloc(W * H * 3), width: W, height: H });
    const white = frameSignature({ rgb: Buffer.alloc(W * H * 3, 255), width: W, height: H });
    expect(signatureDistance(black, white)).toBeGreaterThan(0.99);
  });
});

describe('ShotChangeDetector', () => {
  it('reports an abrupt cut at its frame only', () => {
    expect(changes(clip(20, false))).toEqual([10]);
  });

  it('reports a dissolve inside it (twin comparison), where no single step is a cut', () => {
    const frames = clip(24, true);
    const steps = frames.slice(1).map((f, i) => signatureDistance(frameSignature(frames[i]), frameSignature(f)));
    // No single step reaches the cut distance: a detector that compares consecutive frames only misses it.
    expect(Math.max(...steps)).toBeLessThan(0.3);
    expect(changes(frames, new ShotChangeDetector({ cutDistance: 0.3, gradualDistance: 0.3 }))).toEqual([]);
    const found = changes(frames);
    expect(found.length).toBeGreaterThan(0);
    expect(Math.min(...found)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...found)).toBeLessThanOrEqual(18);
  });

  it('reports nothing while people move within one shot', () => {
    expect(changes(clip(20, false, (f) => ({ box: box(40 + 8 * f), top: RED, bottom: BLUE })).slice(0, 10))).toEqual([]);
  });

  it('continues from a snapshot with the same answers', () => {
    const frames = clip(24, true);
    const d = new ShotChangeDetector();
    const first = frames.slice(0, 13).flatMap((f, i) => (d.push(frameSignature(f)) ? [i] : []));
    const restored = ShotChangeDetector.restore({}, JSON.parse(JSON.stringify(d.snapshot())));
    const rest = frames.slice(13).flatMap((f, i) => (restored.push(frameSignature(f)) ? [i + 13] : []));
    expect([...first, ...rest]).toEqual(changes(frames));
  });
});

describe('tracklets and joins at a shot change', () => {
  /**
   * One person box in the same place and the same kit in both shots (another player of the same team after
   * the dissolve): box, motion and appearance all continue, only the picture around it changed.
   */
  function run(cut: CutOptions) {
    const frames = clip(26, true, () => ({ box: box(160), top: RED, bottom: BLUE }));
    const t = new TrackletTracker({ trackBuffer: 10, frameGap: 1 }, cut);
    const ids: number[] = [];
    const cuts: TrackletCut[] = [];
    frames.forEach((frame, f) => {
      const dets: Detection[] = [{ bbox: box(160) as Detection['bbox'], score: 0.9, classId: 0 }];
      for (const d of t.update(f, dets, frame)) ids[f] = d.trackId;
      cuts.push(...t.lastCuts);
    });
    return { ids, cuts };
  }

  it('ends the tracklet at the dissolve (reason shot-change); without it one tracklet spans both shots', () => {
    const off = run({ shotChange: { cutDistance: 1, gradualDistance: 1 } });
    expect(off.ids[5]).toBe(off.ids[25]);
    expect(off.cuts).toEqual([]);
    const on = run({});
    expect(on.ids[5]).not.toBe(on.ids[25]);
    expect(on.cuts.length).toBeGreaterThan(0);
    expect(on.cuts.every((c) => c.reason === 'shot-change' && c.frameId >= 10 && c.frameId <= 18)).toBe(true);
  });

  it('leaves the boxes of the frames where a shot change is reported out of every tracklet (ghosts inside a dissolve)', () => {
    const frames = clip(26, true, () => ({ box: box(160), top: RED, bottom: BLUE }));
    const reported = changes(frames);
    expect(reported.length).toBeGreaterThan(1);
    const on = run({});
    // No box on a reported frame; a box on every other frame (the person stands still in both shots).
    frames.forEach((_, f) => expect(on.ids[f] === undefined, `frame ${f}`).toBe(reported.includes(f)));
    // One cut: the tracklet before the dissolve ends, one new tracklet starts on the first frame after it.
    expect(on.cuts).toHaveLength(1);
    expect(on.ids[Math.max(...reported) + 1]).toBe(on.cuts[0].newTrackletId);
    expect(on.ids[25]).toBe(on.cuts[0].newTrackletId);
  });

  it('joins no tracklets across a shot change', () => {
    const a: TrackletBoxes = { trackletId: 0, boxes: [8, 9].map((f) => ({ frameId: f, bbox: [100, 60, 124, 130] as [number, number, number, number] })) };
    const b: TrackletBoxes = { trackletId: 1, boxes: [11, 12].map((f) => ({ frameId: f, bbox: [100, 60, 124, 130] as [number, number, number, number] })) };
    expect(joinCandidates([a, b], { maxGapFrames: 5, frameGap: 1 }).map((c) => [c.from, c.to])).toEqual([[0, 1]]);
    expect(joinCandidates([a, b], { maxGapFrames: 5, frameGap: 1, shotChanges: [11] })).toEqual([]);
    expect(joinCandidates([a, b], { maxGapFrames: 5, frameGap: 1, shotChanges: [9, 13] }).length).toBe(1);
  });
});

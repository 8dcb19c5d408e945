/**
 * Colour appearance (src/vision/tracking/appearance.ts) on synthetic frames: histograms, the Bhattacharyya
 * distance checked against values computed by hand, pitch keying and the running model.
 */
import { describe, expect, it } from 'vitest';
import {
  appearanceDistance,
  appearanceFromJson,
  appearanceToJson,
  bhattacharyya,
  extractAppearance,
  REGION_BINS,
  updateAppearanceModel,
} from '../src/vision/tracking/appearance';
import type { PitchColour } from '../src/vision/pitch/model';
import { personFrame } from './helpers/personFrame';

const GREEN = [40, 140, 40];
const RED = [200, 30, 30];
const BLUE = [30, 30, 200];
const WHITE = [240, 240, 240];
const BLACK = [10, 10, 10];
const PITCH: PitchColour = { hue: { min: 90, max: 150, median: 120 }, sat: { min: 0.3, median: 0.7 }, val: { min: 0.2, median: 0.5 } };

describe('bhattacharyya', () => {
  it('is 0 for equal, 1 for disjoint and sqrt(1 - rho) in between (by hand)', () => {
    expect(bhattacharyya([0.5, 0.5], [0.5, 0.5])).toBeCloseTo(0, 12);
    expect(bhattacharyya([1, 0], [0, 1])).toBe(1);
    // rho = sqrt(0.5 * 1) = 0.7071..., d = sqrt(1 - 0.7071) = 0.5412
    expect(bhattacharyya([0.5, 0.5], [1, 0])).toBeCloseTo(Math.sqrt(1 - Math.SQRT1_2), 12);
    expect(() => bhattacharyya([1], [0.5, 0.5])).toThrow(RangeError);
  });
});

describe('extractAppearance', () => {
  it('tells a red-over-blue person from a blue-over-red one, and matches the same colours', () => {
    const a = personFrame(100, 120, WHITE, [30, 10, 70, 110], RED, BLUE);
    const b = personFrame(100, 120, WHITE, [30, 10, 70, 110], BLUE, RED);
    const box = [30, 10, 70, 110] as [number, number, number, number];
    const fa = extractAppearance(a, box);
    const fb = extractAppearance(b, box);
    expect(fa.upper).not.toBeNull();
    expect(fa.upper!.length).toBe(REGION_BINS);
    expect(fa.upper!.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 5);
    expect(appearanceDistance(fa, extractAppearance(a, box))).toBeCloseTo(0, 6);
    expect(appearanceDistance(fa, fb)).toBeGreaterThan(0.9);
  });

  it('puts black and white into separate achromatic bins', () => {
    const box = [30, 10, 70, 110] as [number, number, number, number];
    const k = extractAppearance(personFrame(100, 120, GREEN, box, BLACK, BLACK), box);
    const w = extractAppearance(personFrame(100, 120, GREEN, box, WHITE, WHITE), box);
    expect(appearanceDistance(k, w)).toBeGreaterThan(0.9);
  });

  it('keys the pitch colour out: background grass inside the box does not count', () => {
    // Box wider than the person: grass on both sides inside the box.
    const frame = personFrame(100, 120, GREEN, [45, 10, 55, 110], RED, RED);
    const box = [30, 10, 70, 110] as [number, number, number, number];
    const plain = extractAppearance(frame, box);
    const keyed = extractAppearance(frame, box, { pitch: PITCH });
    const pureRed = extractAppearance(personFrame(100, 120, GREEN, box, RED, RED), box);
    expect(appearanceDistance(keyed, pureRed)).toBeCloseTo(0, 5);
    expect(appearanceDistance(plain, pureRed)).toBeGreaterThan(0.3);
  });

  it('gives null regions for a box too small or off the frame', () => {
    const frame = personFrame(50, 50, WHITE, [0, 0, 1, 1], RED, RED);
    const f = extractAppearance(frame, [60, 60, 80, 90]);
    expect(f.upper).toBeNull();
    expect(f.lower).toBeNull();
    expect(appearanceDistance(f, f)).toBeUndefined();
  });
});

describe('updateAppearanceModel', () => {
  it('moves the model by (1 - momentum) towards the observation and round-trips through JSON exactly', () => {
    const box = [30, 10, 70, 110] as [number, number, number, number];
    const red = extractAppearance(personFrame(100, 120, WHITE, box, RED, RED), box);
    const blue = extractAppearance(personFrame(100, 120, WHITE, box, BLUE, BLUE), box);
    let m = updateAppearanceModel(null, red);
    expect(appearanceDistance(m, red)).toBeCloseTo(0, 6);
    m = updateAppearanceModel(m, blue, 0.9);
    const redBin = red.upper!.findIndex((x) => x > 0.5);
    expect(m.upper![redBin]).toBeCloseTo(0.9, 5);
    expect(m.upper!.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 5);
    const back = appearanceFromJson(JSON.parse(JSON.stringify(appearanceToJson(m))));
    expect(Array.from(back.upper!)).toEqual(Array.from(m.upper!));
    expect(() => appearanceFromJson({ upper: [1], lower: null })).toThrow(RangeError);
  });
});

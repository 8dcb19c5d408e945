/**
 * Team and role per class (src/vision/teams/): CIELAB conversion against published values, the kit colour
 * of a box with the pitch colour keyed out, and the clustering on synthetic kit colours (two kits, officials,
 * a goalkeeper, grass), with its "no pitch" and "one team" answers. Pure units, no stack.
 * The same on real frames lives in test/teams.media.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { RgbFrame } from '../src/vision/image/rgb';
import type { PitchColour } from '../src/vision/pitch/model';
import { DEFAULT_OPTIONS } from '../src/validation';
import { assignTeams as assign, meanSilhouette, type ClassKitInput } from '../src/vision/teams/cluster';
import { completeLinkage } from '../src/vision/teams/roles';
import { boxKit, classKit, classKitInputs, kitSpread } from '../src/vision/teams/kit';
import { deltaE, srgbToLab, type Lab } from '../src/vision/teams/lab';

/** A grass window like the one step 4 fits on the soccer clip (hue 69-89 degrees). */
const GRASS: PitchColour = { hue: { min: 69, max: 89, median: 79 }, sat: { min: 0.365, median: 0.91 }, val: { min: 0.15, median: 0.5 } };
const GRASS_RGB: [number, number, number] = [100, 150, 30]; // hue 85 degrees, saturation 0.8, value 0.59

function frameOf(width: number, height: number, fill: [number, number, number]): RgbFrame {
  const rgb = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) rgb.set(fill, i * 3);
  return { rgb, width, height };
}
function paint(f: RgbFrame, x1: number, y1: number, x2: number, y2: number, c: [number, number, number]) {
  for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) f.rgb.set(c, (y * f.width + x) * 3);
}

describe('CIELAB', () => {
  it('matches published sRGB (D65) values', () => {
    // Reference values: Lindbloom's colour calculator (brucelindbloom.com), sRGB, D65, as in CIE 15:2004.
    const near = (p: Lab, q: Lab) => expect(deltaE(p, q)).toBeLessThan(0.05);
    near(srgbToLab(255, 255, 255), [100, 0, 0]);
    near(srgbToLab(0, 0, 0), [0, 0, 0]);
    near(srgbToLab(255, 0, 0), [53.2408, 80.0925, 67.2032]);
    near(srgbToLab(0, 255, 0), [87.7347, -86.1827, 83.1793]);
    near(srgbToLab(0, 0, 255), [32.297, 79.1875, -107.8602]);
    near(srgbToLab(128, 128, 128), [53.585, 0, 0]);
  });
});

describe('kit colour of a box', () => {
  it('keys the pitch colour out of the torso and ignores head and shorts', () => {
    const f = frameOf(200, 200, GRASS_RGB);
    // A player 20 px wide, 60 px tall at (50, 50): head (skin), a red shirt 4 px wide (a thin player side
    // on: the torso columns 55-64 show more grass than shirt), white shorts.
    paint(f, 56, 50, 64, 60, [220, 170, 140]);
    paint(f, 58, 60, 62, 78, [200, 20, 30]);
    paint(f, 55, 78, 65, 95, [250, 250, 250]);
    const kit = boxKit(f, [50, 50, 70, 110], GRASS)!;
    expect(kit).not.toBeNull();
    expect(deltaE(kit.lab, srgbToLab(200, 20, 30))).toBeLessThan(1);
    expect(kit.grassShare).toBeGreaterThan(0.5);
    // Without keying, the grass pixels of the torso region are the majority and the median is grass.
    const raw = boxKit(f, [50, 50, 70, 110], null)!;
    expect(deltaE(raw.lab, srgbToLab(200, 20, 30))).toBeGreaterThan(50);
  });

  it('has no colour for a box that shows only grass or lies off the frame', () => {
    const f = frameOf(100, 100, GRASS_RGB);
    expect(boxKit(f, [10, 10, 40, 90], GRASS)).toBeNull();
    expect(boxKit(f, [200, 200, 240, 290], GRASS)).toBeNull();
  });

  it('aggregates a class with the per-channel median, robust to a minority of odd boxes', () => {
    const red = srgbToLab(200, 20, 30);
    const boxes: Lab[] = [red, red, red, srgbToLab(250, 250, 250), red];
    expect(deltaE(classKit(boxes), red)).toBeLessThan(1e-9);
    expect(kitSpread(red, boxes)).toBe(0);
    expect(() => classKit([])).toThrow();
    const inputs = classKitInputs([
      { frame_id: 0, detections: [{ track_id: 3, kit: red }, { track_id: 1, kit: null }] },
      { frame_id: 2, detections: [{ track_id: 3, kit: red }] },
    ]);
    expect(inputs.map((c) => [c.trackId, c.boxes, c.frames])).toEqual([
      [1, 0, [0]],
      [3, 2, [0, 2]],
    ]);
    expect(inputs[0].kit).toBeNull();
  });
});

/** A class of `boxes` box colours jittered deterministically around `rgb`, seen in `frames`. */
function cls(trackId: number, rgb: [number, number, number], frames: number[], jitter = 6): ClassKitInput {
  const boxes = frames.map((_, i) => {
    const d = ((trackId * 7 + i * 13) % 9) - 4; // -4..4, deterministic
    const c = rgb.map((v) => Math.max(0, Math.min(255, v + Math.round((d * jitter) / 4)))) as [number, number, number];
    return srgbToLab(...c);
  });
  const kit = classKit(boxes);
  return { trackId, kit, boxes: boxes.length, spread: kitSpread(kit, boxes), frames };
}
const range = (a: number, n: number) => Array.from({ length: n }, (_, i) => a + 2 * i);

const WHITE: [number, number, number] = [235, 235, 230];
const RED: [number, number, number] = [150, 30, 40];
const BLACK: [number, number, number] = [25, 25, 30];
const YELLOW: [number, number, number] = [230, 220, 40];

const TEAMS = DEFAULT_OPTIONS.teams;
const assignTeams = (classes: ClassKitInput[], pitchFound: boolean) => assign(classes, pitchFound, TEAMS);

describe('teams by kit colour', () => {
  const match = (): ClassKitInput[] => [
    ...Array.from({ length: 9 }, (_, i) => cls(i, WHITE, range(0, 20))),
    ...Array.from({ length: 9 }, (_, i) => cls(10 + i, RED, range(0, 20))),
    // Two officials in black on screen at the same time (frames 10-28 overlap), and one goalkeeper in yellow.
    cls(30, BLACK, range(0, 15)),
    cls(31, BLACK, range(10, 10)),
    cls(40, YELLOW, range(0, 20)),
    // A fragment too short to take part in fitting, in the red kit.
    cls(50, RED, [4, 6]),
  ];

  it('finds the two kits, the officials and the goalkeeper', () => {
    const r = assignTeams(match(), true);
    expect(r.status).toBe('teams');
    const by = new Map(r.classes.map((c) => [c.trackId, c]));
    const whiteTeam = by.get(0)!.team;
    const redTeam = by.get(10)!.team;
    expect(whiteTeam).not.toBeNull();
    expect(redTeam).not.toBeNull();
    expect(whiteTeam).not.toBe(redTeam);
    for (let i = 0; i < 9; i++) {
      expect(by.get(i)).toMatchObject({ team: whiteTeam, role: 'player' });
      expect(by.get(10 + i)).toMatchObject({ team: redTeam, role: 'player' });
    }
    expect(by.get(30)).toMatchObject({ team: null, role: 'referee' });
    expect(by.get(31)).toMatchObject({ team: null, role: 'referee' });
    // Yellow: far from both teams and unlike the officials' black; its team is not guessed.
    expect(by.get(40)).toMatchObject({ team: null, role: 'goalkeeper' });
    expect(by.get(50)).toMatchObject({ team: redTeam, role: 'player', fitted: false });
    expect(r.silhouette!).toBeGreaterThan(TEAMS.minSilhouette);
  });

  it('takes a lone official split over classes that never overlap, seen longest of the outlier kits, for the referee', () => {
    // One referee in black, split by the tracker (frames 0-14 and 40-54, never together), and a
    // 1-box fragment of him; the goalkeeper in yellow is seen in 5 frames only.
    const classes = [
      ...match().filter((c) => c.trackId < 30),
      cls(30, BLACK, range(0, 8)),
      cls(32, BLACK, range(40, 8)),
      cls(33, BLACK, [60]),
      cls(40, YELLOW, range(0, 5)),
    ];
    const by = new Map(assignTeams(classes, true).classes.map((c) => [c.trackId, c]));
    for (const id of [30, 32, 33]) expect(by.get(id)).toMatchObject({ team: null, role: 'referee' });
    expect(by.get(40)).toMatchObject({ team: null, role: 'goalkeeper' });
  });

  it('takes a kit only just beyond a team\'s (between 1 and 2 outlier thresholds) for that team\'s, not a goalkeeper\'s', () => {
    // A red player whose shirt reads purplish (a blue board bleeding into a small shirt): 22 ΔE from red.
    const PURPLISH: [number, number, number] = [140, 30, 70];
    const r = assignTeams([...match(), cls(70, PURPLISH, range(60, 10), 0)], true);
    const c = r.classes.find((x) => x.trackId === 70)!;
    expect(c.distance!).toBeGreaterThan(r.threshold!);
    expect(c.distance!).toBeLessThan(2 * r.threshold!);
    expect(c).toMatchObject({ team: r.classes.find((x) => x.trackId === 10)!.team, role: 'player' });
    expect(r.classes.find((x) => x.trackId === 40)!.role).toBe('goalkeeper');
  });

  it('leaves an outlier nearer an official\'s kit than the nearest team centre as other', () => {
    // Officials in light blue beside a white team; a shaded official reads between the two.
    const LIGHT_BLUE: [number, number, number] = [130, 180, 230];
    const SHADED_OFFICIAL: [number, number, number] = [180, 205, 230];
    const BLUISH_WHITE: [number, number, number] = [200, 215, 235];
    const classes = [
      ...match().filter((c) => c.trackId < 30 || c.trackId === 40),
      cls(30, LIGHT_BLUE, range(0, 15)),
      cls(31, LIGHT_BLUE, range(10, 10)),
      // One box each: too short to be grouped with the officials (step 1 of src/vision/teams/roles.ts).
      cls(80, SHADED_OFFICIAL, [60], 0),
      cls(81, BLUISH_WHITE, [60], 0),
    ];
    const r = assignTeams(classes, true);
    const by = new Map(r.classes.map((c) => [c.trackId, c]));
    const whiteTeam = by.get(0)!.team;
    expect(by.get(30)!.role).toBe('referee');
    expect(by.get(31)!.role).toBe('referee');
    const official = (id: number) => Math.min(deltaE(by.get(id)!.kit!, by.get(30)!.kit!), deltaE(by.get(id)!.kit!, by.get(31)!.kit!));
    for (const id of [80, 81]) {
      // Both beyond the outlier threshold of the white team and of the officials' kits (so not a referee by
      // step 4), within twice it of white.
      expect(by.get(id)!.distance!).toBeGreaterThan(r.threshold!);
      expect(by.get(id)!.distance!).toBeLessThan(2 * r.threshold!);
      expect(official(id)).toBeGreaterThan(r.threshold!);
    }
    // 80 is nearer the officials' kit than the white centre; 81 nearer the white centre.
    expect(official(80)).toBeLessThan(by.get(80)!.distance!);
    expect(by.get(80)).toMatchObject({ team: null, role: 'other' });
    expect(official(81)).toBeGreaterThan(by.get(81)!.distance!);
    expect(by.get(81)).toMatchObject({ team: whiteTeam, role: 'player' });
  });

  it('compares an outlier with the median kit of the officials\' group, not with a member chained into it', () => {
    // Kits placed on one line from the red centre R (b* decreasing): the officials O at 56.3 ΔE, a class C
    // at 44.5 that the kit grouping puts with them (11.8 from O, within the threshold), and P, a red player
    // measured badly, at 25. P is nearer C than R, but nearer R than the officials' median kit.
    const base = assignTeams(match(), true);
    const red = base.classes.find((c) => c.trackId === 10)!.team!;
    const R = base.centres![red];
    const at = (db: number): Lab => [R[0], R[1], R[2] - db];
    const lab = (trackId: number, kit: Lab, frames: number[]): ClassKitInput => ({ trackId, kit, boxes: frames.length, spread: 0, frames });
    const classes = [
      ...match().filter((c) => c.trackId < 30 || c.trackId === 40),
      lab(30, at(56.3), range(0, 15)),
      lab(31, at(56.3), range(10, 10)),
      lab(32, at(44.5), range(40, 6)),
      lab(70, at(25), range(60, 10)),
    ];
    const r = assignTeams(classes, true);
    const by = new Map(r.classes.map((c) => [c.trackId, c]));
    const t = r.threshold!;
    const centre = r.centres![red];
    // The premises: C is grouped with the officials, P lies between 1 and 2 thresholds from R and nearer C than R.
    expect(deltaE(at(44.5), at(56.3))).toBeLessThanOrEqual(t);
    expect(by.get(32)!.role).toBe('referee');
    expect(deltaE(at(25), centre)).toBeGreaterThan(t);
    expect(deltaE(at(25), centre)).toBeLessThan(2 * t);
    expect(deltaE(at(25), at(44.5))).toBeLessThan(deltaE(at(25), centre));
    expect(by.get(70)).toMatchObject({ team: red, role: 'player' });
  });

  it('does not make officials of two classes that each mix two people', () => {
    // Each class holds a white player in half its boxes and a red one in the other half: colour between kits.
    const mixed = (trackId: number, frames: number[]): ClassKitInput => {
      const boxes = frames.map((_, i) => srgbToLab(...(i % 2 ? WHITE : RED)));
      const kit = classKit(boxes);
      return { trackId, kit, boxes: boxes.length, spread: kitSpread(kit, boxes), frames };
    };
    const r = assignTeams([...match(), mixed(60, range(0, 10)), mixed(61, range(0, 10))], true);
    expect(r.status).toBe('teams');
    for (const id of [60, 61]) expect(r.classes.find((c) => c.trackId === id)!.role).not.toBe('referee');
  });

  it('gives the same answer for the same input, in any class order', () => {
    const a = assignTeams(match(), true);
    const b = assignTeams(match().reverse(), true);
    const teamOf = (r: typeof a, id: number) => r.classes.find((c) => c.trackId === id)!.team;
    for (const c of a.classes) expect(teamOf(b, c.trackId)).toBe(c.team);
  });

  it('says "no pitch: no teams" without a pitch', () => {
    const r = assignTeams(match(), false);
    expect(r.status).toBe('no-pitch');
    expect(r.reason).toMatch(/^no pitch: no teams/);
    expect(r.classes.every((c) => c.team === null && c.role === null)).toBe(true);
  });

  it('says one team when every class wears the same kit', () => {
    const r = assignTeams(Array.from({ length: 16 }, (_, i) => cls(i, WHITE, range(0, 20), 10)), true);
    expect(r.status).toBe('one-team');
    expect(r.classes.every((c) => c.team === null)).toBe(true);
  });

  it('says one team when the second kit is a single class', () => {
    const r = assignTeams([...Array.from({ length: 10 }, (_, i) => cls(i, WHITE, range(0, 20))), cls(20, RED, range(0, 20))], true);
    expect(r.status).toBe('one-team');
  });

  it('says too few with fewer than 4 classes to fit', () => {
    const r = assignTeams([cls(0, WHITE, range(0, 5)), cls(1, RED, range(0, 5)), cls(2, RED, [0])], true);
    expect(r.status).toBe('too-few');
  });

  it('scores silhouettes as Rousseeuw defines them', () => {
    // Two tight pairs 100 apart: a = 1, b ≈ 100, s ≈ 0.99 each.
    const pts: Lab[] = [[0, 0, 0], [1, 0, 0], [100, 0, 0], [101, 0, 0]];
    expect(meanSilhouette(pts, [0, 0, 1, 1])).toBeCloseTo(0.99, 2);
    // A point alone in its cluster scores 0 (Rousseeuw 1987).
    expect(meanSilhouette([[0, 0, 0], [1, 0, 0], [50, 0, 0]], [0, 0, 1])).toBeCloseTo((2 * (1 - 1 / 49.5)) / 3, 3);
  });
});

describe('complete linkage (kit groups of the roles)', () => {
  // Points on a line at 0, 8, 16, 24 and 60: each within 10 of the next, the ends of the chain 24 apart.
  const x = [0, 8, 16, 24, 60];
  const dist = (a: number, b: number) => Math.abs(x[a] - x[b]);

  it('does not chain: every two members of a group are within the distance', () => {
    // Single linkage at 10 would make one group of 0-3. Complete linkage merges the nearest pair first
    // (0 and 1, then 2 and 3 at distance 8 each); the two pairs are 24 apart at their farthest.
    expect(completeLinkage([0, 1, 2, 3, 4], dist, 10)).toEqual([[0, 1], [2, 3], [4]]);
    for (const g of completeLinkage([0, 1, 2, 3, 4], dist, 10)) for (const i of g) for (const j of g) expect(dist(i, j)).toBeLessThanOrEqual(10);
  });

  it('merges everything within a large distance and nothing within zero', () => {
    expect(completeLinkage([0, 1, 2, 3, 4], dist, 100)).toEqual([[0, 1, 2, 3, 4]]);
    expect(completeLinkage([0, 1, 2, 3, 4], dist, 0)).toEqual([[0], [1], [2], [3], [4]]);
    expect(completeLinkage([], dist, 10)).toEqual([]);
  });

  it('keeps the input order inside groups and orders groups by their first item', () => {
    expect(completeLinkage([4, 3, 2, 1, 0], dist, 10)).toEqual([[4], [3, 2], [1, 0]]);
  });
});

/**
 * Tracklet cuts (src/vision/tracking/tracklets.ts) and fragment joins (src/vision/tracking/join.ts) on
 * synthetic scenes drawn in colour: every tracklet must hold one person; joins only on clear evidence.
 */
import { describe, expect, it } from 'vitest';
import type { BBox, Detection } from '../src/vision/detection/geometry';
import { classesOf, decideJoins, insideShare, joinCandidates, type TrackletBoxes } from '../src/vision/tracking/join';
import { TrackletTracker, type CutOptions, type TrackletCut } from '../src/vision/tracking/tracklets';
import { dressedAppearances, SCENE, sceneFrame, type ScenePerson } from './helpers/personFrame';

const { W, H, BG, RED, BLUE, YELLOW, BLACK } = SCENE;
const box = (cx: number, cy = 100, w = 30, h = 80) => [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2];

/** Runs the tracker over frames 0..n-1 (stride 1); returns per frame the (person index, tracklet id) pairs and the cuts. */
function run(persons: ScenePerson[], n: number, cut: CutOptions = {}) {
  const t = new TrackletTracker({ trackBuffer: 10, frameGap: 1 }, cut);
  const owner: { frameId: number; person: number; tracklet: number; bbox: BBox }[] = [];
  const cuts: TrackletCut[] = [];
  for (let f = 0; f < n; f++) {
    const frame = sceneFrame(W, H, BG, persons, f);
    const dets: Detection[] = [];
    const who: number[] = [];
    persons.forEach((p, i) => {
      const b = p.boxAt(f);
      if (b) {
        dets.push({ bbox: b as BBox, score: 0.9, classId: 0 });
        who.push(i);
      }
    });
    for (const d of t.update(f, dets, frame)) owner.push({ frameId: f, person: who[dets.findIndex((x) => x.bbox === d.bbox || x.bbox.every((v, k) => v === d.bbox[k]))], tracklet: d.trackId, bbox: d.bbox });
    cuts.push(...t.lastCuts);
  }
  return { owner, cuts };
}

/** Tracklet ids that hold boxes of more than one person. */
function mixed(owner: { person: number; tracklet: number }[], classOf: (t: number) => number = (t) => t): number[] {
  const people = new Map<number, Set<number>>();
  for (const o of owner) {
    const c = classOf(o.tracklet);
    if (!people.has(c)) people.set(c, new Set());
    people.get(c)!.add(o.person);
  }
  return [...people].filter(([, s]) => s.size > 1).map(([c]) => c);
}

/** Two walkers meet in the middle and turn back (each returns the way it came): a motion model alone swaps them. */
const bounce: ScenePerson[] = [
  { top: RED, bottom: BLUE, boxAt: (f) => box(f <= 23 ? 60 + 6 * f : 198 - 6 * (f - 23)) },
  { top: BLUE, bottom: RED, boxAt: (f) => box(f <= 23 ? 340 - 6 * f : 202 + 6 * (f - 23)) },
];

describe('TrackletTracker cuts', () => {
  it('two walkers with swapped colours who meet and turn back: no tracklet holds both', () => {
    // Control: ByteTrack's ids alone (no cuts) give one track both people here.
    expect(mixed(run(bounce, 40, { enabled: false }).owner).length).toBeGreaterThan(0);
    const { owner, cuts } = run(bounce, 40);
    expect(mixed(owner)).toEqual([]);
    expect(cuts.length).toBeGreaterThan(0);
  });

  it('an occluder passing in front of a standing person gives a cut, not a swap', () => {
    // Person 0 stands at x = 200; person 1 walks in, stops in front of it (hiding it, so it is not detected)
    // for 10 frames, then walks on; person 0 reappears where it stood.
    const walkerX = (f: number) => (f < 20 ? 80 + 6 * f : f < 30 ? 200 : 200 + 6 * (f - 30));
    const standing: ScenePerson = { top: YELLOW, bottom: BLACK, boxAt: (f) => (Math.abs(walkerX(f) - 200) < 20 ? undefined : box(200)) };
    const walker: ScenePerson = { top: RED, bottom: BLUE, boxAt: (f) => box(walkerX(f), 104) };
    const persons = [standing, walker];
    const { owner, cuts } = run(persons, 45);
    expect(mixed(owner)).toEqual([]);
    // The standing person's track is cut where it went under the walker, and what re-appears is a new tracklet.
    const standingTracklets = new Set(owner.filter((o) => o.person === 0).map((o) => o.tracklet));
    expect(standingTracklets.size).toBe(2);
    expect(cuts.some((c) => c.reason === 'occlusion' || c.reason === 'overlap' || c.reason === 'cost-margin')).toBe(true);
  });

  it('a box that jumps to another colour, with someone else near, is cut (appearance)', () => {
    // The same box, but from frame 10 on the person in it wears blue; a bystander in yellow stands 50 px
    // (0.6 box heights) to the side all along, so a switch to another person was possible.
    const bystander: ScenePerson = { top: YELLOW, bottom: BLACK, boxAt: (f) => box(150 + 2 * f, 100) };
    const scene: ScenePerson[] = [
      { top: RED, bottom: RED, boxAt: (f) => (f < 10 ? box(100 + 2 * f) : undefined) },
      { top: BLUE, bottom: BLUE, boxAt: (f) => (f >= 10 ? box(100 + 2 * f) : undefined) },
      bystander,
    ];
    const { owner, cuts } = run(scene, 20);
    expect(mixed(owner)).toEqual([]);
    expect(cuts.map((c) => [c.frameId, c.reason])).toEqual([[10, 'appearance']]);
  });

  it('a lone person whose colours change keeps the tracklet (no one near to switch to)', () => {
    const scene: ScenePerson[] = [
      { top: RED, bottom: RED, boxAt: (f) => (f < 10 ? box(100 + 2 * f) : undefined) },
      { top: BLUE, bottom: BLUE, boxAt: (f) => (f >= 10 ? box(100 + 2 * f) : undefined) },
    ];
    expect(run(scene, 20).cuts).toEqual([]);
    // With the radius switched off (every jump cuts) the same scene is cut.
    expect(run(scene, 20, { appearanceRadius: Infinity }).cuts.map((c) => [c.frameId, c.reason])).toEqual([[10, 'appearance']]);
  });

  it('restores from a snapshot with identical results', () => {
    const a = new TrackletTracker({ trackBuffer: 10, frameGap: 1 });
    let b: TrackletTracker | undefined;
    const ids: number[][] = [[], []];
    for (let f = 0; f < 40; f++) {
      const frame = sceneFrame(W, H, BG, bounce, f);
      const dets = bounce.map((p) => ({ bbox: p.boxAt(f) as BBox, score: 0.9, classId: 0 }));
      ids[0].push(...a.update(f, dets, frame).map((d) => d.trackId));
      if (f === 15) b = TrackletTracker.restore({ trackBuffer: 10, frameGap: 1 }, {}, JSON.parse(JSON.stringify(a.snapshot())));
      else if (b) ids[1].push(...b.update(f, dets, frame).map((d) => d.trackId));
    }
    expect(ids[1]).toEqual(ids[0].slice(ids[0].length - ids[1].length));
  });
});

describe('fragment joins', () => {
  const walk = (id: number, f0: number, f1: number, x0: number, vx: number): TrackletBoxes => ({
    trackletId: id,
    boxes: Array.from({ length: f1 - f0 + 1 }, (_, i) => ({ frameId: f0 + i, bbox: box(x0 + vx * i) as BBox })),
  });
  const opts = { maxGapFrames: 10, frameGap: 1 };

  it('joins a clean fragment pair (short gap, predicted position, same colours)', async () => {
    const ts = [walk(0, 0, 20, 50, 5), walk(1, 25, 40, 50 + 5 * 25, 5)];
    const cands = joinCandidates(ts, opts);
    expect(cands.map((c) => [c.from, c.to])).toEqual([[0, 1]]);
    const joins = decideJoins(cands, dressedAppearances(ts, { 0: [RED, BLUE], 1: [RED, BLUE] }), opts);
    expect(joins.map((j) => [j.from, j.to])).toEqual([[0, 1]]);
    expect([...classesOf([0, 1], joins).values()]).toEqual([0, 0]);
  });

  it('does not join when two fragments start near the prediction with the same colours (ambiguous)', async () => {
    const ts = [walk(0, 0, 20, 50, 5), walk(1, 25, 40, 50 + 5 * 25, 5), walk(2, 25, 40, 50 + 5 * 25 + 10, 5)];
    const joins = decideJoins(joinCandidates(ts, opts), dressedAppearances(ts, { 0: [RED, BLUE], 1: [RED, BLUE], 2: [RED, BLUE] }), opts);
    expect(joins).toEqual([]);
  });

  it('does not join a fragment of other colours, nor one far from the prediction, nor after a long gap', async () => {
    const colour = [walk(0, 0, 20, 50, 5), walk(1, 25, 40, 175, 5)];
    expect(decideJoins(joinCandidates(colour, opts), dressedAppearances(colour, { 0: [RED, BLUE], 1: [BLUE, RED] }), opts)).toEqual([]);
    // 205 px (2.6 box heights) from the predicted centre at x 175.
    expect(joinCandidates([walk(0, 0, 20, 50, 5), walk(1, 25, 40, 380, 5)], opts)).toEqual([]);
    expect(joinCandidates([walk(0, 0, 20, 50, 5), walk(1, 35, 40, 225, 5)], opts)).toEqual([]);
  });

  it('does not join a walker predicted out of the picture to one who enters at that edge', () => {
    // A walks right and leaves: its last box is centred at x 380 of 400; at frame 25 its predicted box
    // (centre 405, 30 px wide) has 10 of 30 px inside. B enters there at frame 25, centred at 385, walking left.
    const ts = [walk(0, 0, 20, 280, 5), walk(1, 25, 40, 385, -5)];
    expect(joinCandidates(ts, opts).map((c) => [c.from, c.to])).toEqual([[0, 1]]);
    expect(joinCandidates(ts, { ...opts, frameSize: { width: W, height: H } })).toEqual([]);
    // A walker who stays in the picture is still a candidate with the frame size given.
    const inside = [walk(0, 0, 20, 50, 5), walk(1, 25, 40, 50 + 5 * 25, 5)];
    expect(joinCandidates(inside, { ...opts, frameSize: { width: W, height: H } }).map((c) => [c.from, c.to])).toEqual([[0, 1]]);
  });

  it('insideShare: the share of a box inside the frame', () => {
    expect(insideShare([390, 60, 420, 140], 400, 200)).toBeCloseTo(1 / 3, 12);
    expect(insideShare([10, 10, 40, 90], 400, 200)).toBe(1);
    expect(insideShare([-30, 180, 0, 260], 400, 200)).toBe(0);
    expect(insideShare([5, 5, 5, 50], 400, 200)).toBe(0);
  });

});

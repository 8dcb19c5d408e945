/**
 * Identity ground truth parsing (src/dataset/identity/groundTruth.ts) and the identity metrics
 * (src/dataset/identity/metrics.ts) on a small case computed by hand.
 */
import { describe, expect, it } from 'vitest';
import { parseFrameList, parseIdentities, parseIdentityGroundTruth, parseMotGroundTruth } from '../src/dataset/identity/groundTruth';
import { evaluateIdentity, visibleStretches, type PredictedFrame } from '../src/dataset/identity/metrics';
import type { BBox } from '../src/vision/detection/geometry';

// Person boxes (10 x 20 px, far apart, so IoU is 1 or 0).
const A: BBox = [0, 0, 10, 20]; // person 1
const B: BBox = [100, 0, 110, 20]; // person 2
const C: BBox = [200, 0, 210, 20]; // person 3
const NOBODY: BBox = [300, 0, 310, 20];

/**
 * Frames (MOT numbers 1, 3, 5, 7, 9 = frame_id 0, 2, 4, 6, 8): persons 1-3 in the first four, person 4
 * only in MOT frame 7, person 1 alone in MOT frame 9 (which is not predicted).
 */
const GT_TXT = `1,1,0,0,10,20,1,-1,-1,-1
1,2,100,0,10,20,1,-1,-1,-1
1,3,200,0,10,20,1,-1,-1,-1
3,1,0,0,10,20,1,-1,-1,-1
3,2,100,0,10,20,1,-1,-1,-1
3,3,200,0,10,20,1,-1,-1,-1
5,1,0,0,10,20,1,-1,-1,-1
5,2,100,0,10,20,1,-1,-1,-1
5,3,200,0,10,20,1,-1,-1,-1
7,1,0,0,10,20,1,-1,-1,-1
7,2,100,0,10,20,1,-1,-1,-1
7,3,200,0,10,20,1,-1,-1,-1
7,4,400,0,10,20,1,-1,-1,-1
7,9,500,0,10,20,0,-1,-1,-1
9,1,0,0,10,20,1,-1,-1,-1
`;
const FRAMES_TXT = '1\n3\n5\n7\n9\n';
const IDENTITIES_CSV = 'id,team,role\n1,A,player\n2,B,player\n3,-,referee\n4,A,goalkeeper\n';

/**
 * Classes: 7 follows person 1, then swaps to person 2 at frame_id 4; 8 does the reverse; 9 follows
 * person 3, then drifts onto nobody at frame_id 6; 10 picks up person 1 at frame_id 6.
 */
const PREDICTED: PredictedFrame[] = [
  { frameId: 0, boxes: [{ classId: 7, bbox: A }, { classId: 8, bbox: B }] },
  { frameId: 2, boxes: [{ classId: 7, bbox: A }, { classId: 8, bbox: B }, { classId: 9, bbox: C }] },
  { frameId: 4, boxes: [{ classId: 7, bbox: B }, { classId: 8, bbox: A }, { classId: 9, bbox: C }] },
  { frameId: 6, boxes: [{ classId: 7, bbox: B }, { classId: 10, bbox: A }, { classId: 9, bbox: NOBODY }] },
];

const gt = () => parseIdentityGroundTruth({ gt: GT_TXT, frames: FRAMES_TXT, identities: IDENTITIES_CSV });

describe('identity ground truth (MOT format)', () => {
  it('parses boxes to 0-based frame ids and [x1, y1, x2, y2], skipping MOT ignore entries', () => {
    const g = gt();
    expect(g.frameIds).toEqual([0, 2, 4, 6, 8]);
    expect(g.boxes).toHaveLength(14);
    expect(g.boxes[0]).toEqual({ frameId: 0, personId: 1, bbox: [0, 0, 10, 20], conf: 1 });
    expect(g.boxes.some((b) => b.personId === 9)).toBe(false);
    expect(g.identities.get(3)).toEqual({ team: null, role: 'referee' });
    expect(g.identities.get(4)).toEqual({ team: 'A', role: 'goalkeeper' });
  });

  it('rejects malformed lines with the file, line and reason', () => {
    expect(() => parseMotGroundTruth('1,1,0,0,10\n')).toThrow(/gt\.txt:1.*expected frame,id/);
    expect(() => parseMotGroundTruth('0,1,0,0,10,20\n')).toThrow(/1-based/);
    expect(() => parseMotGroundTruth('1,0,0,0,10,20\n')).toThrow(/positive integer/);
    expect(() => parseMotGroundTruth('1,1,0,0,0,20\n')).toThrow(/width and height/);
    expect(() => parseMotGroundTruth('1,1,0,0,10,20\n1,1,5,0,10,20\n')).toThrow(/gt\.txt:2.*twice in frame 1/);
    expect(() => parseFrameList('1\nx\n')).toThrow(/frames\.txt:2/);
    expect(() => parseIdentities('1,C,player\n')).toThrow(/team must be A, B or -/);
    expect(() => parseIdentities('1,A,coach\n')).toThrow(/role must be one of/);
    expect(() => parseIdentityGroundTruth({ gt: '3,1,0,0,10,20\n', frames: '1\n' })).toThrow(/frame 3 has boxes but is not listed/);
  });
});

describe('evaluateIdentity on a case computed by hand', () => {
  it('counts frames and boxes over the annotated frames that were predicted', () => {
    const r = evaluateIdentity(gt(), PREDICTED);
    expect(r.frames).toEqual({ annotated: 5, evaluated: 4, notPredicted: [8] });
    // 3 + 3 + 3 + 4 ground-truth boxes; 2 + 3 + 3 + 3 predicted; all but the box on nobody matched.
    expect(r.boxes).toEqual({ groundTruth: 13, predicted: 11, matched: 10 });
  });

  it('class purity: majority person crops over matched crops, impure classes with their mix', () => {
    const r = evaluateIdentity(gt(), PREDICTED);
    // 7: persons 1,1,2,2 (majority 2 of 4); 8: 2,2,1 (2 of 3); 9: 3,3 + one unmatched (2 of 2); 10: 1 (1 of 1).
    expect(r.purity).toBeCloseTo(7 / 10, 12);
    expect(r.classes.map((c) => [c.classId, c.matched, c.unmatched, c.majorityPerson])).toEqual([
      [7, 4, 0, 1],
      [8, 3, 0, 2],
      [9, 2, 1, 3],
      [10, 1, 0, 1],
    ]);
    expect(r.impure.map((c) => c.classId)).toEqual([7, 8]);
    expect(r.impure[1].mix).toEqual([
      { personId: 2, crops: 2 },
      { personId: 1, crops: 1 },
    ]);
  });

  it('fragmentation: classes per matched person', () => {
    const f = evaluateIdentity(gt(), PREDICTED).fragmentation;
    expect(f.perPerson).toEqual([
      { personId: 1, classes: [7, 8, 10] },
      { personId: 2, classes: [7, 8] },
      { personId: 3, classes: [9] },
    ]);
    expect(f.mean).toBeCloseTo(2, 12);
    expect(f.max).toBe(3);
    expect(f.persons).toBe(3);
    expect(f.unmatchedPersons).toEqual([4]);
  });

  it('ID switches, MOTA and IDF1', () => {
    const m = evaluateIdentity(gt(), PREDICTED).mot;
    // frame_id 4: persons 1 and 2 both change class (2 switches); frame_id 6: person 1 goes to class 10
    // (1 switch), person 2 stays on 7; person 3 missed at 0 and 6, person 4 missed at 6; class 9 is an FP at 6.
    expect([m.numMatches, m.numSwitches, m.numMisses, m.numFalsePositives]).toEqual([7, 3, 3, 1]);
    expect(m.mota).toBeCloseTo(1 - (3 + 1 + 3) / 13, 12);
    // Co-occurrences: (1,7)=2 (1,8)=1 (1,10)=1 (2,8)=2 (2,7)=2 (3,9)=2; best one-to-one: 1→7, 2→8, 3→9 = 6.
    expect(m.idtp).toBe(6);
    expect(m.idf1).toBeCloseTo((2 * 6) / (13 + 11), 12);
    expect(m.idp).toBeCloseTo(6 / 11, 12);
    expect(m.idr).toBeCloseTo(6 / 13, 12);
  });

  it('team accuracy takes the better A/B naming; roles compared directly', () => {
    const labels = new Map([
      [7, { team: 'B' as const, role: 'player' as const }], // person 1 (A, player): right once A/B are swapped
      [8, { team: 'A' as const, role: 'player' as const }], // person 2 (B, player): right once swapped
      [9, { team: null, role: 'referee' as const }], // person 3 (-, referee): right either way
      [10, { team: 'B' as const, role: 'goalkeeper' as const }], // person 1: team right once swapped, role wrong
    ]);
    const t = evaluateIdentity(gt(), PREDICTED, { classLabels: labels }).teams!;
    expect(t.swapped).toBe(true);
    expect(t.classes).toBe(4);
    expect(t.team).toBeCloseTo(1, 12);
    expect(t.role).toBeCloseTo(3 / 4, 12);
    expect(t.teamAndRole).toBeCloseTo(3 / 4, 12);
    expect(t.wrong).toEqual([{ classId: 10, personId: 1, expected: { team: 'A', role: 'player' }, predicted: { team: 'A', role: 'goalkeeper' } }]);
    // A class without a predicted label counts as wrong.
    const partial = evaluateIdentity(gt(), PREDICTED, { classLabels: new Map([[9, { team: null, role: 'referee' as const }]]) }).teams!;
    expect(partial.teamAndRole).toBeCloseTo(1 / 4, 12);
    // No role predicted (null) is a wrong role.
    const noRole = evaluateIdentity(gt(), PREDICTED, { classLabels: new Map([[9, { team: null, role: null }]]) }).teams!;
    expect([noRole.team, noRole.role]).toEqual([1 / 4, 0]);
  });

  it('team accuracy is n/a (absent) when the ground truth names no team A or B', () => {
    // Footage without teams (vtest.avi: every walker `-,other`): a prediction of no team and no role is not 0 %.
    const noTeams = parseIdentityGroundTruth({ gt: GT_TXT, frames: FRAMES_TXT, identities: 'id,team,role\n1,-,other\n2,-,other\n3,-,other\n' });
    const labels = new Map([7, 8, 9, 10].map((c) => [c, { team: null, role: null }]));
    expect(evaluateIdentity(noTeams, PREDICTED, { classLabels: labels }).teams).toBeUndefined();
    // With teams in the ground truth the figure is there.
    expect(evaluateIdentity(gt(), PREDICTED, { classLabels: labels }).teams).toBeDefined();
  });

  it('val leak: val crops showing a person that none of the class train crops show', () => {
    const split: Record<number, Record<number, 'train' | 'val' | 'gap'>> = {
      7: { 0: 'train', 2: 'train', 4: 'val', 6: 'val' }, // train: person 1; val: person 2 → leak
      8: { 0: 'train', 2: 'gap', 4: 'val' }, // train: person 2; val: person 1 → leak
      9: { 2: 'train', 4: 'val', 6: 'val' }, // val: person 3 and one box on nobody → no leak
      10: { 6: 'train' },
    };
    const v = evaluateIdentity(gt(), PREDICTED, { splitOf: (c, f) => split[c]?.[f] }).valLeak!;
    expect(v.classesWithVal).toBe(3);
    expect(v.unmatchedValCrops).toBe(1);
    expect(v.leaking).toEqual([
      { classId: 7, personsNotInTrain: [2], valCrops: 2 },
      { classId: 8, personsNotInTrain: [1], valCrops: 1 },
    ]);
  });

  it('a perfect prediction scores 1 everywhere', () => {
    const g = gt();
    const perfect: PredictedFrame[] = g.frameIds.map((frameId) => ({
      frameId,
      boxes: g.boxes.filter((b) => b.frameId === frameId).map((b) => ({ classId: 100 + b.personId, bbox: b.bbox })),
    }));
    const r = evaluateIdentity(g, perfect);
    expect(r.purity).toBe(1);
    expect(r.fragmentation.mean).toBe(1);
    expect(r.mot.numSwitches).toBe(0);
    expect(r.mot.idf1).toBe(1);
    expect(r.mot.mota).toBe(1);
    expect(r.impure).toEqual([]);
  });
});

describe('visibleStretches: the fragmentation floor of joins that bridge short gaps only', () => {
  // Person 1 has boxes at frame_id 0, 2, 4, 6, 8 (MOT 1-9); persons 2 and 3 at 0-6; person 4 at 6 only.
  it('one stretch per person when every gap is within the limit', () => {
    const s = visibleStretches(gt(), 2);
    expect(s.perPerson.map((p) => [p.personId, p.stretches])).toEqual([
      [1, [[0, 8]]],
      [2, [[0, 6]]],
      [3, [[0, 6]]],
      [4, [[6, 6]]],
    ]);
    expect(s.mean).toBe(1);
  });

  it('a gap longer than the limit starts a new stretch', () => {
    // Person 1 again at frame_id 20 (MOT 21), 12 frames after frame_id 8: beyond a 10-frame limit, within 12.
    const g = parseIdentityGroundTruth({ gt: `${GT_TXT}21,1,0,0,10,20,1,-1,-1,-1\n`, frames: `${FRAMES_TXT}21\n` });
    expect(visibleStretches(g, 10).perPerson[0].stretches).toEqual([
      [0, 8],
      [20, 20],
    ]);
    // (2 + 1 + 1 + 1) / 4 persons.
    expect(visibleStretches(g, 10).mean).toBe(5 / 4);
    expect(visibleStretches(g, 12).mean).toBe(1);
    // With a limit of 1 frame every box 2 frames apart is its own stretch: person 1 has 6, 2 and 3 have 4, 4 has 1.
    expect(visibleStretches(g, 1).mean).toBe((6 + 4 + 4 + 1) / 4);
  });

  it('rejects a negative or non-finite limit', () => {
    expect(() => visibleStretches(gt(), -1)).toThrow(RangeError);
    expect(() => visibleStretches(gt(), Number.NaN)).toThrow(RangeError);
  });
});

/**
 * Joins decided on whole assignments (src/vision/tracking/joinAssignment.ts, `decision: 'assignment'` of
 * src/vision/tracking/join.ts): a crossing is re-joined when the two people's colours tell them apart
 * both ways, and never when they do not.
 */
import { describe, expect, it } from 'vitest';
import type { BBox } from '../src/vision/detection/geometry';
import { decideJoins, joinCandidates, type JoinOptions, type TrackletBoxes } from '../src/vision/tracking/join';
import { assignmentJoins } from '../src/vision/tracking/joinAssignment';
import { dressedAppearances, SCENE } from './helpers/personFrame';

const pairs = (xs: { from: number; to: number }[]) => xs.map((x) => [x.from, x.to]);

describe('assignmentJoins (costs given)', () => {
  const opts = { noJoinCost: 0.4, margin: 0.1 };

  it('re-joins a crossing that mutual best refuses: each side is close to both, but the swap is clearly worse', () => {
    // A (0) -> A' (10) 0.10, B (1) -> B' (11) 0.08; the swap costs 0.15 + 0.15 = 0.30 vs 0.18.
    const c = [
      { from: 0, to: 10, cost: 0.1 },
      { from: 0, to: 11, cost: 0.15 },
      { from: 1, to: 10, cost: 0.15 },
      { from: 1, to: 11, cost: 0.08 },
    ];
    expect(pairs(assignmentJoins(c, opts))).toEqual([
      [0, 10],
      [1, 11],
    ]);
  });

  it('joins nothing when the swap is within the margin (two similarly dressed people)', () => {
    const c = [
      { from: 0, to: 10, cost: 0.1 },
      { from: 0, to: 11, cost: 0.13 },
      { from: 1, to: 10, cost: 0.12 },
      { from: 1, to: 11, cost: 0.1 },
    ];
    expect(assignmentJoins(c, opts)).toEqual([]);
  });

  it('with one rival on a side it is mutual best with a margin', () => {
    expect(pairs(assignmentJoins([{ from: 0, to: 10, cost: 0.1 }, { from: 1, to: 10, cost: 0.25 }], opts))).toEqual([[0, 10]]);
    expect(assignmentJoins([{ from: 0, to: 10, cost: 0.1 }, { from: 1, to: 10, cost: 0.15 }], opts)).toEqual([]);
    expect(pairs(assignmentJoins([{ from: 0, to: 10, cost: 0.35 }], opts))).toEqual([[0, 10]]);
  });

  it('explains a rival away: B fits A\' and B\' alike, but A takes A\', and leaving B\' unjoined costs more than the margin', () => {
    const c = [
      { from: 0, to: 10, cost: 0.1 },
      { from: 1, to: 10, cost: 0.12 },
      { from: 1, to: 11, cost: 0.12 },
    ];
    expect(pairs(assignmentJoins(c, opts))).toEqual([
      [0, 10],
      [1, 11],
    ]);
    // Without B' the same rival is not explained away: A -> A' beats B -> A' by 0.02 only.
    expect(assignmentJoins(c.slice(0, 2), opts)).toEqual([]);
  });

  it('throws on a pair not cheaper than leaving it unjoined, and on a negative margin', () => {
    expect(() => assignmentJoins([{ from: 0, to: 1, cost: 0.4 }], opts)).toThrow(RangeError);
    expect(() => assignmentJoins([], { noJoinCost: 1, margin: -1 })).toThrow(RangeError);
  });
});

describe('decideJoins with decision assignment, on drawn people crossing', () => {
  const { RED, BLUE, YELLOW, BLACK } = SCENE;
  const box = (cx: number): BBox => [cx - 15, 60, cx + 15, 140];
  // A walks right, B walks left; both tracklets are cut at the crossing (frames 6-9 left out) and continue.
  const walk = (id: number, f0: number, f1: number, x0: number, vx: number): TrackletBoxes => ({
    trackletId: id,
    boxes: Array.from({ length: f1 - f0 + 1 }, (_, i) => ({ frameId: f0 + i, bbox: box(x0 + vx * (f0 + i)) })),
  });
  const ts = [walk(0, 0, 5, 180, 2), walk(1, 0, 5, 220, -2), walk(2, 10, 15, 180, 2), walk(3, 10, 15, 220, -2)];
  const opts: JoinOptions = { maxGapFrames: 10, frameGap: 1, decision: 'assignment' };
  const dressed = (dress: Record<number, number[][]>) => dressedAppearances(ts, dress);

  it('every end is a position candidate of every start (the crossing is ambiguous by position)', () => {
    expect(joinCandidates(ts, opts).length).toBe(4);
  });

  it('re-joins two differently dressed people each to their own continuation', () => {
    const joins = decideJoins(joinCandidates(ts, opts), dressed({ 0: [RED, BLUE], 1: [YELLOW, BLACK], 2: [RED, BLUE], 3: [YELLOW, BLACK] }), opts);
    expect(pairs(joins)).toEqual([
      [0, 2],
      [1, 3],
    ]);
  });

  it('joins nothing when the two are dressed alike', () => {
    const same = { 0: [RED, BLUE], 1: [RED, BLUE], 2: [RED, BLUE], 3: [RED, BLUE] };
    expect(decideJoins(joinCandidates(ts, opts), dressed(same), opts)).toEqual([]);
  });
});

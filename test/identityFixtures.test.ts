/**
 * The identity ground truth of test/fixtures/identity/ parses and is self-consistent, and the annotation
 * tooling that made it (scripts/annotate/) cuts tracklets and applies decisions as documented.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AnnotFrame } from '../scripts/annotate/boxes';
import { applyDecisions, formatMot, type Decisions } from '../scripts/annotate/decisions';
import { readIdentityFixture } from '../scripts/annotate/fixtures';
import { buildTracklets, buildTrackletsInRuns, DEFAULT_TRACKLET_OPTIONS } from '../scripts/annotate/tracklets';

const ROOT = path.resolve('test/fixtures/identity');
const videos = existsSync(ROOT) ? readdirSync(ROOT, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name) : [];

describe('identity fixtures', () => {
  it('include vtest', () => {
    expect(videos).toContain('vtest');
  });

  describe.each(videos)('%s', (video) => {
    const fx = readIdentityFixture(path.join(ROOT, video));

    it('has boxes, frames and identities', () => {
      expect(fx.boxes.length).toBeGreaterThan(0);
      expect(fx.frames.length).toBeGreaterThanOrEqual(video === 'vtest' ? 200 : 100);
      expect(fx.identities.size).toBeGreaterThan(0);
      expect(existsSync(path.join(ROOT, video, 'README.md'))).toBe(true);
    });

    it('uses exactly the ids of identities.csv', () => {
      const used = new Set(fx.boxes.map((b) => b.id));
      expect([...used].filter((id) => !fx.identities.has(id))).toEqual([]);
      expect([...fx.identities.keys()].filter((id) => !used.has(id))).toEqual([]);
    });

    it('boxes only annotated frames, each listed once, in increasing order', () => {
      const frames = new Set(fx.frames);
      expect(frames.size).toBe(fx.frames.length);
      expect([...fx.frames].sort((a, b) => a - b)).toEqual(fx.frames);
      expect(fx.boxes.filter((b) => !frames.has(b.frame))).toEqual([]);
    });

    it('never has the same id twice in one frame', () => {
      const seen = new Set<string>();
      const dups = fx.boxes.filter((b) => {
        const k = `${b.frame}/${b.id}`;
        const dup = seen.has(k);
        seen.add(k);
        return dup;
      });
      expect(dups).toEqual([]);
    });

    it('labels teams only on soccer and vtest walkers as -,other', () => {
      for (const v of fx.identities.values()) {
        if (video === 'vtest') expect(v).toEqual({ team: '-', role: 'other' });
        else if (v.role === 'player' || v.role === 'goalkeeper') expect(v.team).not.toBe('-');
      }
    });
  });
});

/** A frame with the given boxes (scores 0.9). */
const frame = (frameId: number, ...bboxes: [number, number, number, number][]): AnnotFrame => ({
  frameId,
  width: 400,
  height: 300,
  boxes: bboxes.map((bbox, index) => ({ index, bbox, score: 0.9 })),
});

describe('buildTracklets', () => {
  it('links an isolated walker across frames and cuts when a neighbour comes close', () => {
    const frames = [
      frame(0, [10, 10, 40, 100], [200, 10, 230, 100]),
      frame(2, [14, 10, 44, 100], [200, 10, 230, 100]),
      frame(4, [18, 10, 48, 100], [30, 10, 60, 100]), // a second box overlaps the first (IoU 0.43): both cut
      frame(6, [22, 10, 52, 100]),
    ];
    const t = buildTracklets(frames, DEFAULT_TRACKLET_OPTIONS);
    const runs = t.map((x) => x.boxes.map((b) => `${b.frameId}:${b.bbox[0]}`));
    // the right walker's box of frame 2 has no successor; frame 6 starts afresh after the crowded frame 4
    expect(runs).toEqual([['0:10', '2:14'], ['0:200', '2:200'], ['4:18'], ['4:30'], ['6:22']]);
  });

  it('never links across frames left out of the annotation', () => {
    const f = [frame(0, [10, 10, 40, 100]), frame(2, [12, 10, 42, 100]), frame(10, [14, 10, 44, 100]), frame(12, [16, 10, 46, 100])];
    expect(buildTracklets(f).map((x) => x.boxes.length)).toEqual([4]);
    expect(buildTrackletsInRuns(f, 2).map((x) => x.boxes.map((b) => b.frameId))).toEqual([[0, 2], [10, 12]]);
  });

  it('drops boxes under minScore and cuts on a gap in detection', () => {
    const f = [frame(0, [10, 10, 40, 100]), frame(2, [12, 10, 42, 100]), frame(4), frame(6, [16, 10, 46, 100])];
    f[1].boxes[0].score = 0.1;
    const t = buildTracklets(f, DEFAULT_TRACKLET_OPTIONS);
    expect(t.map((x) => x.boxes.map((b) => b.frameId))).toEqual([[0], [6]]);
  });
});

describe('applyDecisions', () => {
  const frames = [frame(0, [10, 10, 40, 100], [200, 10, 230, 100]), frame(2, [12, 10, 42, 100], [202, 10, 232, 100]), frame(4, [14, 10, 44, 100])];
  const tracklets = buildTracklets(frames, DEFAULT_TRACKLET_OPTIONS); // #1 left walker (0-4), #2 right walker (0-2)
  const base: Decisions = {
    video: 't', source: '-', stride: 2, firstFrameId: 0, lastFrameId: 4, tracklets: DEFAULT_TRACKLET_OPTIONS,
    splits: {}, persons: { 7: { tracklets: ['1'] }, 3: { tracklets: ['2'] } }, notPerson: [],
  };

  it('writes MOT rows with frame = frame_id + 1 and the person ids', () => {
    const gt = applyDecisions(frames, tracklets, base);
    expect(gt.frames).toEqual([1, 3, 5]);
    expect(gt.identities.map((i) => i.id)).toEqual([3, 7]);
    expect(formatMot(gt.boxes).split('\n')[0]).toBe('1,3,200,10,30,90,1,-1,-1,-1');
    expect(gt.boxes).toHaveLength(5);
  });

  it('splits a tracklet at a frame and drops parts that are not a person', () => {
    const gt = applyDecisions(frames, tracklets, { ...base, splits: { 1: [4] }, persons: { 7: { tracklets: ['1.1'] }, 3: { tracklets: ['2'] } }, notPerson: ['1.2'] });
    expect(gt.boxes.filter((b) => b.id === 7).map((b) => b.frame)).toEqual([1, 3]);
  });

  it('leaves excluded frames out of the boxes and of frames.txt', () => {
    const gt = applyDecisions(frames, tracklets, { ...base, excludeFrameIds: [[2, 2]] });
    expect(gt.frames).toEqual([1, 5]);
    expect(gt.boxes.map((b) => b.frame)).toEqual([1, 1, 5]);
  });

  it('refuses undecided tracklets and two boxes of one person in a frame', () => {
    expect(() => applyDecisions(frames, tracklets, { ...base, persons: { 7: { tracklets: ['1'] } } })).toThrow(/not decided: 2/);
    expect(() => applyDecisions(frames, tracklets, { ...base, persons: { 7: { tracklets: ['1', '2'] } } })).toThrow(/two boxes in frame 0/);
  });
});

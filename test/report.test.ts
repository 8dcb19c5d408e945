/**
 * The dataset report's class strips (src/dataset/report.ts): first, middle and last crop per class, team and
 * role groups, and the tracklet cuts and joins of `detections.json` marked on each class (none rendered when
 * the run records none). Pure units; the look was checked in headless Chromium (bench/teams.ts writes a
 * report of a stored run).
 */
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { classMarks, renderReport, stripPicks, type ReportInput, type ReportTrack } from '../src/dataset/report';

let jpeg: Buffer;
beforeAll(async () => {
  jpeg = await sharp({ create: { width: 8, height: 16, channels: 3, background: { r: 200, g: 200, b: 200 } } }).jpeg().toBuffer();
});

const track = (trackId: number, extra: Partial<ReportTrack> = {}): ReportTrack => ({
  trackId,
  train: 3,
  val: 0,
  gap: 0,
  samples: [
    { frameId: 0, original: jpeg, label: 'first' },
    { frameId: 10, original: jpeg, label: 'middle' },
    { frameId: 20, original: jpeg, label: 'last' },
  ],
  span: [0, 20],
  ...extra,
});
const input = (tracks: ReportTrack[], extra: Partial<ReportInput> = {}): ReportInput => ({
  tenantId: 't',
  runGuid: 'r',
  videoGuid: 'v',
  source: 's',
  counts: { tracks: tracks.length, crops: 3 * tracks.length, train: 3 * tracks.length, val: 0, gap: 0 },
  rejected: {},
  dropped: {},
  background: { text: 'none', removed: false },
  trainOnlyTracks: [],
  tracks,
  frameRange: [0, 100],
  ...extra,
});

describe('report strips', () => {
  it('labels the first, middle and last crop of a class', () => {
    const html = renderReport(input([track(4)]));
    expect(html).toMatch(/first · frame 0<\/figcaption>.*middle · frame 10<\/figcaption>.*last · frame 20<\/figcaption>/s);
  });

  it('picks the first, middle and last crop, each once', () => {
    expect(stripPicks(0)).toEqual([]);
    expect(stripPicks(1)).toEqual([{ index: 0, label: 'first' }]);
    expect(stripPicks(2)).toEqual([{ index: 0, label: 'first' }, { index: 1, label: 'last' }]);
    expect(stripPicks(7)).toEqual([{ index: 0, label: 'first' }, { index: 3, label: 'middle' }, { index: 6, label: 'last' }]);
  });

  it('marks each cut on both classes and each join on its class', () => {
    const marks = classMarks([{ frame_id: 12, reason: 'overlap', track_id: 4, next_track_id: 9 }], [{ frame_id: 40, track_id: 9, gap_frames: 6 }]);
    expect(marks.get(4)).toEqual([{ frameId: 12, kind: 'cut', text: 'cut at frame 12 (overlap): continues as track_9' }]);
    expect(marks.get(9)!.map((m) => [m.kind, m.frameId])).toEqual([
      ['cut', 12],
      ['join', 40],
    ]);
    const html = renderReport(input([track(4, { marks: marks.get(4) }), track(9, { span: [12, 60], marks: marks.get(9) })]));
    expect(html.match(/<i class="cut"/g)).toHaveLength(2);
    expect(html.match(/<i class="join"/g)).toHaveLength(1);
    expect(html).toContain('joined at frame 40, after a gap of 6 frames');
    expect(html).toContain('starts at a cut at frame 12 (overlap) of track_4');
  });

  it('renders no marks when the run records no cuts or joins', () => {
    expect(classMarks(undefined, undefined).size).toBe(0);
    const html = renderReport(input([track(4)]));
    expect(html).not.toMatch(/<i class="(cut|join)"/);
    expect(html).not.toContain('<ul class="marks">');
  });

  it('groups classes by team and role, with the reason, when the video has two teams', () => {
    const html = renderReport(
      input([track(1, { team: 'B', role: 'player', kit: [40, 20, 15] }), track(2, { team: 'A', role: 'player', kit: [85, 0, 3] }), track(3, { team: null, role: 'referee' })], {
        teams: { status: 'teams', reason: 'two teams (A 1 classes, B 1)', centres: { A: [85, 0, 3], B: [40, 20, 15] } },
      }),
    );
    const order = ['Team A', 'track_2', 'Team B', 'track_1', 'Referees', 'track_3'].map((s) => html.indexOf(s));
    expect(order.every((p) => p >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(html).toContain('two teams (A 1 classes, B 1)');
  });

  it('says why there are no teams and does not group', () => {
    const html = renderReport(input([track(1, { team: null, role: null })], { teams: { status: 'no-pitch', reason: 'no pitch: no teams', centres: null } }));
    expect(html).toContain('no pitch: no teams');
    expect(html).not.toContain('Team A');
  });
});

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

  it('marks each cut on both classes and each join on its class (the tracklet record of detections.json)', () => {
    // Tracklets 0 (frames 0-10) and 1 (from 12, cut off 0 for overlap) are classes 4 and 9; tracklet 2 (from
    // 40) was joined to 1, so class 9 holds tracklets 1 and 2. A cut whose new tracklet kept no boxes (an
    // ambiguous stretch) marks only the class that ended.
    const frames = [
      { frame_id: 0, detections: [{ track_id: 4, tracklet_id: 0 }] },
      { frame_id: 10, detections: [{ track_id: 4, tracklet_id: 0 }] },
      { frame_id: 12, detections: [{ track_id: 9, tracklet_id: 1 }] },
      { frame_id: 34, detections: [{ track_id: 9, tracklet_id: 1 }] },
      { frame_id: 40, detections: [{ track_id: 9, tracklet_id: 2 }] },
    ];
    const record = {
      cuts: [
        { frame_id: 12, reason: 'overlap', old_tracklet_id: 0, new_tracklet_id: 1 },
        { frame_id: 36, reason: 'motion', old_tracklet_id: 1, new_tracklet_id: 7 },
      ],
      joins: [{ from: 1, to: 2, track_id: 9, gap_frames: 6 }],
    };
    const marks = classMarks(record, frames);
    expect(marks.get(4)).toEqual([{ frameId: 12, kind: 'cut', text: 'cut at frame 12 (overlap): continues as track_9' }]);
    expect(marks.get(9)!.map((m) => [m.kind, m.frameId, m.text])).toEqual([
      ['cut', 12, 'starts at a cut at frame 12 (overlap) of track_4'],
      ['cut', 36, 'cut at frame 36 (motion)'],
      ['join', 40, 'joined at frame 40, after a gap of 6 frames'],
    ]);
    const html = renderReport(input([track(4, { marks: marks.get(4) }), track(9, { span: [12, 60], marks: marks.get(9) })]));
    expect(html.match(/<i class="cut"/g)).toHaveLength(3);
    expect(html.match(/<i class="join"/g)).toHaveLength(1);
    expect(html).toContain('joined at frame 40, after a gap of 6 frames');
  });

  it('renders no marks when the run records no cuts or joins', () => {
    expect(classMarks(undefined, [{ frame_id: 0, detections: [{ track_id: 1 }] }]).size).toBe(0);
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

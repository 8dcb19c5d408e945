/** MOT Challenge and COCO exports of tracked boxes. */
import { describe, expect, it } from 'vitest';
import { cocoJson, cocoJsonChunks, motChunks, motText, tracksFromMot, type ExportFrame } from '../src/dataset/exports';
import { parseMotGroundTruth } from '../src/dataset/identity/groundTruth';

const frames: ExportFrame[] = [
  { frame_id: 10, width: 640, height: 480, detections: [{ track_id: 3, bbox: [100.25, 50, 130.5, 120], score: 0.91 }, { track_id: 0, bbox: [0, 0, 10, 30], score: 0.4 }] },
  { frame_id: 5, width: 640, height: 480, detections: [] },
  { frame_id: 15, width: 640, height: 480, detections: [{ track_id: 3, bbox: [104, 52, 134, 123.75], score: 0.88 }] },
];

describe('detection exports', () => {
  it('MOT text: 1-based frames and ids, x,y,w,h, score, -1 world coordinates, frame then track order', () => {
    expect(motText(frames)).toBe('11,1,0,0,10,30,0.4,-1,-1,-1\n11,4,100.25,50,30.25,70,0.91,-1,-1,-1\n16,4,104,52,30,71.75,0.88,-1,-1,-1\n');
  });

  it('writes sizes without binary floating-point noise (684.74 - 640.19 is 44.549999999999955 in doubles)', () => {
    const f: ExportFrame[] = [{ frame_id: 0, width: 768, height: 576, detections: [{ track_id: 0, bbox: [640.19, 239.82, 684.74, 323.78], score: 0.8461 }] }];
    expect(motText(f)).toBe('1,1,640.19,239.82,44.55,83.96,0.8461,-1,-1,-1\n');
    const a = cocoJson(f, { videoGuid: 'v', fileName: String }).annotations[0];
    expect([a.bbox, a.area]).toEqual([[640.19, 239.82, 44.55, 83.96], 3740.418]);
  });

  it('MOT text reads back (as MOT ground truth is read) to the same frames, tracks and boxes', () => {
    const back = parseMotGroundTruth(motText(frames), 'tracks_mot.txt');
    const expected = frames
      .flatMap((f) => f.detections.map((d) => ({ frameId: f.frame_id, personId: d.track_id + 1, bbox: [...d.bbox], conf: d.score })))
      .sort((a, b) => a.frameId - b.frameId || a.personId - b.personId);
    expect(back).toEqual(expected);
  });

  it('COCO JSON: one image per sampled frame, [x, y, w, h] boxes with track and team attributes', () => {
    const coco = cocoJson(frames, { videoGuid: 'v1', fileName: (f) => `selected_frames/frame_${f}.jpg`, labelOf: (id) => (id === 3 ? { team: 'A', role: 'player' } : undefined) });
    expect(coco.images.map((i) => [i.id, i.file_name, i.frame_id])).toEqual([
      [6, 'selected_frames/frame_5.jpg', 5],
      [11, 'selected_frames/frame_10.jpg', 10],
      [16, 'selected_frames/frame_15.jpg', 15],
    ]);
    expect(coco.annotations.map((a) => a.id)).toEqual([1, 2, 3]);
    expect(coco.annotations[1]).toEqual({
      id: 2, image_id: 11, category_id: 1, bbox: [100.25, 50, 30.25, 70], area: 30.25 * 70, iscrowd: 0, score: 0.91, track_id: 3,
      attributes: { track_id: 3, team: 'A', role: 'player' },
    });
    expect(coco.annotations[0].attributes).toEqual({ track_id: 0, team: null, role: null });
    expect(coco.categories).toEqual([{ id: 1, name: 'person', supercategory: 'person' }]);
  });

  it('reads exported MOT text back onto the sampled frames with the same tracks, boxes and scores', () => {
    const real: ExportFrame[] = [
      { frame_id: 0, width: 768, height: 576, detections: [{ track_id: 0, bbox: [640.19, 239.82, 684.74, 323.78], score: 0.8461 }, { track_id: 7, bbox: [0.01, 3.33, 99.99, 200.07], score: 0.3 }] },
      { frame_id: 2, width: 768, height: 576, detections: [] },
      { frame_id: 4, width: 768, height: 576, detections: [{ track_id: 7, bbox: [1.1, 2.2, 3.3, 4.4], score: 0.5 }] },
    ];
    const back = tracksFromMot(motText(real), 'mot.txt', [0, 2, 4]);
    expect([...back.frames.keys()]).toEqual([0, 2, 4]);
    for (const f of real) expect(back.frames.get(f.frame_id)).toEqual(f.detections);
    expect([back.boxes, back.tracks, back.notSampled]).toEqual([3, 2, 0]);
  });

  it('ignores boxes on frames that were not sampled, takes a missing or negative conf as 1, and refuses a file with nothing on a sampled frame', () => {
    const t = tracksFromMot('1,3,10,10,5,5\n2,3,11,10,5,5,-1,-1,-1,-1\n3,3,12,10,5,5,0.7\n', 'fixed.txt', [0, 2]);
    expect(t.frames.get(0)).toEqual([{ track_id: 2, bbox: [10, 10, 15, 15], score: 1 }]);
    expect(t.frames.get(2)).toEqual([{ track_id: 2, bbox: [12, 10, 17, 15], score: 0.7 }]);
    expect(t.notSampled).toBe(1);
    expect(() => tracksFromMot('5,1,0,0,5,5\n', 'fixed.txt', [0, 2])).toThrow(/fixed\.txt.*no box lies on one of the video's 2 sampled frames.*1 boxes are on other frames/);
    expect(() => tracksFromMot('1,1,0,0,5\n', 'fixed.txt', [0])).toThrow(/fixed\.txt:1/);
  });

  it('writes MOT and COCO piece by piece to exactly the bytes of the whole export', () => {
    const o = { videoGuid: 'v1', fileName: (f: number) => `selected_frames/frame_${f}.jpg`, labelOf: (id: number) => (id === 3 ? { team: 'A', role: 'player' } : undefined) };
    // Frames out of order, a frame with no box between two with boxes, boxes out of track order.
    const many: ExportFrame[] = [
      ...frames,
      { frame_id: 2, width: 64, height: 48, detections: [] },
      { frame_id: 40, width: 64, height: 48, detections: [{ track_id: 9, bbox: [1.5, 2, 3.25, 4.75], score: 0.5 }, { track_id: 3, bbox: [0, 0, 1, 1], score: 1 }] },
    ];
    for (const f of [many, frames, []]) {
      expect([...motChunks(f)].join('')).toBe(motText(f));
      const pieces = [...cocoJsonChunks(f, o)];
      expect(pieces.join('')).toBe(JSON.stringify(cocoJson(f, o)));
      expect(JSON.parse(pieces.join(''))).toEqual(cocoJson(f, o));
    }
    // One piece per image and per frame with boxes, not one string.
    expect([...cocoJsonChunks(many, o)].length).toBeGreaterThanOrEqual(many.length + 3);
    expect([...motChunks(many)].length).toBe(many.filter((f) => f.detections.length > 0).length);
  });
});

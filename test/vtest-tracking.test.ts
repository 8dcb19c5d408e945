/**
 * Tracking plausibility on real footage: the whole of vtest.avi (79.5 s, 10 fps) through the detect step
 * as the pipeline runs it (stride 2, default options), counting ByteTrack tracks.
 *
 * How the range below was checked: on average about 7 people are in view (the detector finds 7 walkers
 * at 20 s, 5-10 elsewhere) and a walker crosses the scene in roughly 10-25 s, so 79.5 s of video holds
 * on the order of 7 x 79.5 / 17 = 20-60 distinct people. A pipeline run gave 58 tracks; in its rendered
 * frames 200, 220 and 240 (`npm run render`) three walkers kept their ids (#16, #19, #20) over the 4 s and
 * one switched from #18 to #21, so the count is somewhat above the number of people. The greedy IoU tracker
 * that came before gave 225 tracks here (518 at stride 5), most of them single boxes.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config';
import { validateInput } from '../src/validation';
import { ByteTracker } from '../src/vision/tracking/bytetrack';
import { createDetector } from '../src/vision/detection/detector';
import { detectAndTrackFrame } from '../src/vision/players';
import { encodeJpeg } from '../src/vision/image/rgb';
import { extractFrames } from '../src/vision/media/frames';

const VTEST = '/usr/share/doc/opencv-doc/examples/data/vtest.avi';

describe('ByteTrack on the whole of vtest.avi', () => {
  it('yields a plausible number of tracks for the people who walk through', async () => {
    const cfg = loadConfig();
    const { options } = validateInput({ tenantId: 't', videos: [{ source: VTEST }] });
    const detector = await createDetector({ modelPath: cfg.detectorModelPath, intraOpNumThreads: cfg.ortIntraOpThreads });
    const fps = 10;
    const tracker = new ByteTracker({
      highThreshold: options.tracker.highThreshold,
      lowThreshold: options.tracker.lowThreshold,
      newTrackThreshold: options.tracker.newTrackThreshold,
      matchThreshold: options.tracker.matchThreshold,
      minHits: options.tracker.minHits,
      trackBuffer: Math.round((options.tracker.bufferSeconds * fps) / options.frameStride),
      frameGap: options.frameStride,
    });
    const lengths = new Map<number, number>();
    let frames = 0;
    for await (const f of extractFrames(VTEST, { stride: options.frameStride })) {
      const r = await detectAndTrackFrame(detector, tracker, await encodeJpeg(f, options.jpegQuality), f.frameId, {
        detect: { confThreshold: options.detector.confThreshold, iouThreshold: options.detector.iouThreshold, classes: options.detector.classes, tiles: options.detector.tiles },
        pitch: null,
      });
      for (const d of r.tracked) lengths.set(d.trackId, (lengths.get(d.trackId) ?? 0) + 1);
      frames++;
    }
    await detector.release();
    const tracks = lengths.size;
    const sorted = [...lengths.values()].sort((a, b) => a - b);
    const median = sorted[sorted.length >> 1];
    console.log(`vtest.avi: ${frames} sampled frames, ${tracks} tracks, median track length ${median} sampled frames`);
    expect(frames).toBe(398);
    expect(tracks).toBeGreaterThanOrEqual(20);
    expect(tracks).toBeLessThanOrEqual(80);
    // Tracks are people walking through, not single boxes: the median track spans seconds.
    expect(median).toBeGreaterThanOrEqual(10);
    expect([...lengths.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: tracks }, (_, i) => i));
  }, 240_000);
});

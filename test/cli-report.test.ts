/**
 * What `npm run pipeline` tells its user about each video on stderr (pure formatting of
 * `src/cli/client.ts`). The per-video `pitch` of the run summary, which the CLI prints as its JSON line, is
 * covered by workflow.test.ts (mocked steps) and pipeline.e2e.test.ts (vtest.avi: no pitch).
 */
import { describe, expect, it } from 'vitest';
import { videoLines, type RunOutcome } from '../src/cli/client';

const video = (pitch?: RunOutcome['videos'][number]['pitch']): RunOutcome['videos'][number] => ({
  videoGuid: 'v1',
  source: '/data/floorball.mp4',
  status: 'completed',
  counts: { frames: 16, detections: 90 },
  ...(pitch ? { pitch } : {}),
});

describe('per-video report of the pipeline CLI', () => {
  it('says plainly on stderr when no pitch was found, why, and what that means for the dataset', () => {
    const reason = 'the dominant green (hue peak 67 deg) has median saturation 0.296 < 0.4: too pale for grass';
    const lines = videoLines(video({ found: false, framesPitchLike: 16, framesSampled: 16, reason }));
    expect(lines).toEqual([
      'video v1: {"frames":16,"detections":90} (/data/floorball.mp4)',
      `video v1: NO PITCH FOUND (16 of 16 sampled frames pitch-like; ${reason}): every detected person was kept (no feet-on-pitch filter) and no grass was keyed out of crops`,
    ]);
  });

  it('says when a pitch was found, and nothing when the video stopped before step 4', () => {
    expect(videoLines(video({ found: true, framesPitchLike: 13, framesSampled: 16, reason: 'r' }))[1]).toBe(
      'video v1: pitch found (13 of 16 sampled frames pitch-like); people whose feet are off the pitch were dropped',
    );
    expect(videoLines(video())).toHaveLength(1);
    // A refusal by shape already starts with the counts: they are said once.
    const shape = '0 of 16 sampled frames are pitch-like (largest grass region >= 0.15 of the picture); < 0.5 of the frames needed';
    expect(videoLines(video({ found: false, framesPitchLike: 0, framesSampled: 16, reason: shape }))[1]).toBe(
      `video v1: NO PITCH FOUND (${shape}): every detected person was kept (no feet-on-pitch filter) and no grass was keyed out of crops`,
    );
    // A step-4 result of an older run has no shape counts.
    expect(videoLines(video({ found: false, framesSampled: 8 }))[1]).toMatch(/^video v1: NO PITCH FOUND \(8 frames sampled\)/);
  });
});

/**
 * The background treatment of step 7 (`decideBackground`, src/dataset/background.ts) is one rule, and the
 * report states it as the step result and the manifest record it. Pure: no stack, no model (the masks
 * themselves are tested in test/segment.test.ts; a whole run in test/pipeline.e2e.test.ts).
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decideBackground, describeBackground, NO_PITCH_REASON } from '../src/dataset/background';
import { renderReport, type ReportInput } from '../src/dataset/report';

describe('decideBackground', () => {
  it('keys grass only where a pitch was found; otherwise grass removes nothing and both is segmentation', () => {
    expect(decideBackground('grass', true)).toEqual({ requestedMode: 'grass', mode: 'grass', removed: true });
    expect(decideBackground('both', true)).toEqual({ requestedMode: 'both', mode: 'both', removed: true });
    expect(decideBackground('grass', false)).toEqual({ requestedMode: 'grass', mode: 'none', removed: false, reason: NO_PITCH_REASON });
    expect(decideBackground('both', false)).toEqual({ requestedMode: 'both', mode: 'segmentation', removed: true, reason: NO_PITCH_REASON });
    for (const pitch of [true, false]) {
      expect(decideBackground('segmentation', pitch)).toEqual({ requestedMode: 'segmentation', mode: 'segmentation', removed: true });
      expect(decideBackground('none', pitch)).toEqual({ requestedMode: 'none', mode: 'none', removed: false });
    }
  });

  it('describes a changed mode with the request and the reason', () => {
    expect(describeBackground(decideBackground('grass', true))).toBe('grass');
    expect(describeBackground(decideBackground('grass', false))).toBe(`none (requested grass: ${NO_PITCH_REASON})`);
  });
});

describe('the report states the decision', () => {
  const report = async (removed: boolean): Promise<string> => {
    const jpeg = await sharp({ create: { width: 8, height: 16, channels: 3, background: { r: 10, g: 200, b: 30 } } }).jpeg().toBuffer();
    const d = removed ? decideBackground('segmentation', false) : decideBackground('grass', false);
    const input: ReportInput = {
      tenantId: 't',
      runGuid: 'r',
      videoGuid: 'v',
      source: 'vtest.avi',
      counts: { tracks: 1, crops: 1, train: 1, val: 0, gap: 0 },
      rejected: {},
      dropped: {},
      background: { text: describeBackground(d), removed: d.removed },
      trainOnlyTracks: [0],
      tracks: [{ trackId: 0, train: 1, val: 0, gap: 0, samples: [{ frameId: 4, original: jpeg, modified: removed ? jpeg : undefined }] }],
    };
    return renderReport(input);
  };

  it('without removal: the mode, the request and the reason, and one image per sample', async () => {
    const html = await report(false);
    expect(html).toContain(`background mode none (requested grass: ${NO_PITCH_REASON})`);
    expect(html).toContain('original crops: no background removed');
    expect(html.match(/<img /g)).toHaveLength(1);
  });

  it('with removal: pairs of original and background-removed crops', async () => {
    const html = await report(true);
    expect(html).toContain('background mode segmentation');
    expect(html).toContain('each pair: original | background removed');
    expect(html.match(/<img /g)).toHaveLength(2);
  });
});

/**
 * Identity targets on the ground truth of test/fixtures/identity/ (README "Identity evaluation"): the
 * tracking as the pipeline runs it (steps 1-5 replayed by scripts/identity/replay.ts, detector answers
 * cached under .data/identity-eval/) scored by src/dataset/identity/metrics.ts.
 *
 * The figures are always printed. On vtest.avi the targets the tracker meets are always asserted: class
 * purity >= 98 % and no val crop showing a person absent from its class's train crops. The target it does
 * not meet yet, at most 1.5 classes per person on vtest (the ground truth's own floor for joins is 1.73:
 * walkers leave the picture and come back, README "Identity evaluation"), is asserted only with
 * IDENTITY_TARGETS=1. A fixture that is absent is skipped with a message. The soccer clip needs
 * TEST_MEDIA_DIR and runs only with IDENTITY_TARGETS=1 (purity >= 95 %, no val leak, team and role right
 * for >= 95 % of classes): its first run detects on every sampled frame with tiles (minutes per 100 frames
 * on two cores), so the default suite leaves it to `npm run eval:identity`.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateIdentity, type IdentityReport } from '../src/dataset/identity/metrics';
import type { Detector } from '../src/vision/detection/detector';
import { detailText, summaryTable } from '../scripts/identity/format';
import { defaultOptions, loadFixture, prepareVideo, realDetector, splitOfRun, trackFrames } from '../scripts/identity/replay';

const FIXTURES = path.resolve('test/fixtures/identity');
const TARGETS = process.env.IDENTITY_TARGETS === '1';
const MEDIA = process.env.TEST_MEDIA_DIR;

const VIDEOS = [
  { name: 'vtest', source: '/usr/share/doc/opencv-doc/examples/data/vtest.avi', purity: 0.98, fragmentation: 1.5, teamAndRole: undefined, always: true },
  { name: 'soccer', source: MEDIA ? path.join(MEDIA, 'soccer_broadcast_720p.mp4') : undefined, purity: 0.95, fragmentation: undefined, teamAndRole: 0.95, always: false },
];

if (!TARGETS) console.log('identity-targets: IDENTITY_TARGETS is not set: figures are printed, targets are not asserted (set IDENTITY_TARGETS=1)');

let detector: Detector | undefined;
afterAll(async () => {
  await detector?.release();
});

for (const v of VIDEOS) {
  const dir = path.join(FIXTURES, v.name);
  const hasFixture = existsSync(path.join(dir, 'gt.txt'));
  const hasVideo = v.source !== undefined && existsSync(v.source);
  if (!hasFixture) console.log(`identity-targets: ${dir}/gt.txt is absent: skipping ${v.name}`);
  else if (!hasVideo) console.log(`identity-targets: the ${v.name} video is not available (${v.source ?? 'set TEST_MEDIA_DIR'}): skipping ${v.name}`);
  else if (!v.always && !TARGETS) console.log(`identity-targets: ${v.name} runs with IDENTITY_TARGETS=1 only (or: npm run eval:identity -- --video ${v.name})`);

  describe.runIf(hasFixture && hasVideo && (v.always || TARGETS))(`identity on the ${v.name} ground truth`, () => {
    let report: IdentityReport;
    let annotated: number;

    beforeAll(async () => {
      const gt = await loadFixture(dir);
      annotated = gt.frameIds.length;
      const options = defaultOptions(v.source!);
      const video = await prepareVideo(v.name, v.source!, path.resolve('.data/identity-eval', v.name), options);
      detector ??= await realDetector();
      const run = await trackFrames(video, detector, options, { from: gt.frameIds[0], to: gt.frameIds[gt.frameIds.length - 1] });
      // Team and role per class as step 5 computed them on this run.
      const classLabels = run.teams && new Map(run.teams.classes.map((c) => [c.track_id, { team: c.team, role: c.role }]));
      report = evaluateIdentity(gt, run.frames, { splitOf: splitOfRun(run.frames, options, video.fps), classLabels });
      console.log(`${summaryTable([{ name: v.name, report }])}\n\n${detailText(v.name, report, 10)}`);
    }, 3_600_000);

    it('tracks every annotated frame (the annotated frames are sampled frames)', () => {
      expect(report.frames.notPredicted).toEqual([]);
      expect(report.frames.evaluated).toBe(annotated);
      expect(report.boxes.matched).toBeGreaterThan(0);
    });

    it(`class purity >= ${v.purity * 100} %`, () => {
      expect(report.purity).toBeGreaterThanOrEqual(v.purity);
    });

    if (v.fragmentation !== undefined) {
      it.runIf(TARGETS)(`at most ${v.fragmentation} classes per person`, () => {
        expect(report.fragmentation.mean).toBeLessThanOrEqual(v.fragmentation!);
      });
    }

    it('no val crop shows a person absent from its class train crops', () => {
      expect(report.valLeak).toBeDefined();
      expect(report.valLeak!.leaking).toEqual([]);
    });

    if (v.teamAndRole !== undefined) {
      it(`team and role right for >= ${v.teamAndRole * 100} % of classes`, () => {
        expect(report.teams).toBeDefined();
        expect(report.teams!.teamAndRole).toBeGreaterThanOrEqual(v.teamAndRole!);
      });
    }
  });
}

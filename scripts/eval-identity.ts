/**
 * `npm run eval:identity`: identity metrics of the tracking against the ground truth of
 * test/fixtures/identity/{video}/ (README "Identity evaluation", docs/ARCHITECTURE.md "Identity
 * evaluation").
 *
 * Default: for each fixture whose video is available, run steps 1-5 as the pipeline does (without Temporal
 * or GCS; scripts/identity/replay.ts) over the sampled frames spanning the annotated frames, and print the
 * metrics. Detector answers are cached under `.data/identity-eval/` (the tracker runs every time).
 * `--detections FILE --video NAME` evaluates the `detections.json` of a finished run instead.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import type { IdentityGroundTruth, IdentityRole } from '../src/dataset/identity/groundTruth';
import { evaluateIdentity, visibleStretches, type CropSplit, type IdentityReport, type PredictedLabel, type StretchReport } from '../src/dataset/identity/metrics';
import { detectionsFileSchema, manifestSchema, type FrameDetections } from '../src/storage/artifacts';
import type { Detector } from '../src/vision/detection/detector';
import { detailText, stretchText, summaryTable } from './identity/format';
import { planSegments, stitchSegments } from '../src/vision/tracking/stitch';
import {
  defaultOptions,
  fixtureNames,
  hasTracklets,
  loadFixture,
  predictedFrames,
  prepareVideo,
  realDetector,
  splitOfRun,
  trackFrames,
  type PipelineOptions,
  type PreparedVideo,
  type StoredFrame,
} from './identity/replay';

/** Where the fixtures' videos are: vtest.avi from Debian's opencv-doc, the soccer clip under TEST_MEDIA_DIR. */
function knownSource(name: string): string | undefined {
  if (name === 'vtest') return '/usr/share/doc/opencv-doc/examples/data/vtest.avi';
  if (name === 'soccer' && process.env.TEST_MEDIA_DIR) return path.join(process.env.TEST_MEDIA_DIR, 'soccer_broadcast_720p.mp4');
  return undefined;
}

const ROLES = new Set(['player', 'goalkeeper', 'referee', 'other']);

/**
 * Predicted team and role per class from parsed JSON: a `detections.json` with `teams.classes`, a
 * `manifest.json` with `teams.tracks`, a teams object with `classes`, an array of `{ track_id, team, role }`,
 * or a map `{ "<track_id>": { team, role } }`.
 * Team `A`/`B`, anything else none; a role outside player/goalkeeper/referee/other is none.
 * @returns undefined when `raw` holds no team labels
 */
function teamLabelsOf(raw: unknown): Map<number, PredictedLabel> | undefined {
  type Entry = { track_id?: unknown; team?: unknown; role?: unknown };
  const obj = raw as { teams?: { classes?: Entry[]; tracks?: Record<string, Entry> }; classes?: Entry[]; images?: unknown } | null;
  const list: Entry[] | undefined = Array.isArray(raw) ? (raw as Entry[]) : (obj?.teams?.classes ?? obj?.classes);
  const map = obj?.teams?.tracks ?? (raw && typeof raw === 'object' && !('frames' in raw) && !('images' in raw) ? (raw as Record<string, Entry>) : undefined);
  const entries: [unknown, Entry][] = list ? list.map((e) => [e.track_id, e]) : map ? Object.entries(map) : [];
  const out = new Map<number, PredictedLabel>();
  for (const [id, e] of entries) {
    if (!Number.isInteger(Number(id)) || !e || typeof e !== 'object') continue;
    const team = e.team === 'A' || e.team === 'B' ? e.team : null;
    const role = typeof e.role === 'string' && ROLES.has(e.role) ? (e.role as IdentityRole) : null;
    out.set(Number(id), { team, role });
  }
  return out.size > 0 ? out : undefined;
}

/** Cut counts by reason, e.g. `overlap 12, motion 3`. */
function cutReasons(cuts: readonly { reason: string }[]): string {
  const n = new Map<string, number>();
  for (const c of cuts) n.set(c.reason, (n.get(c.reason) ?? 0) + 1);
  return [...n].map(([r, k]) => `${r} ${k}`).join(', ') || 'none';
}

const program = new Command()
  .name('eval-identity')
  .description('Identity metrics (class purity, fragmentation, ID switches, IDF1, teams, val leak) against test/fixtures/identity ground truth')
  .option('--fixtures <dir>', 'folder of fixture folders ({name}/gt.txt, frames.txt, identities.csv)', 'test/fixtures/identity')
  .option('--video <name>', 'evaluate only this fixture')
  .option('--source <file>', 'the video file of --video (default: known location of vtest/soccer)')
  .option('--detections <file>', "evaluate this run's detections.json (needs --video) instead of running the tracker")
  .option('--manifest <file>', 'with --detections: datasets/manifest.json of the run, for the val-leak check')
  .option('--teams <file>', 'predicted team/role per class (JSON: a detections.json with teams, or {"<track_id>": {team, role}}), for team accuracy')
  .option('--write-detections <dir>', 'write the tracked frames of each video as {dir}/{name}.detections.json (frames, tracklets, teams)')
  .option('--options <json>', 'pipeline options to try instead of the defaults, as a run takes them (e.g. \'{"tracker":{"joins":{"margin":0.05}}}\')', '{}')
  .option('--segment-seconds <s>', 'also track in time segments of this length, each on its own, stitched on their overlaps (src/vision/tracking/stitch.ts), and report that next to the whole-video tracking')
  .option('--overlap-seconds <s>', 'overlap of neighbouring segments, seconds', '2')
  .option('--from-start', 'track from the first sampled frame of the video (default: from the first annotated frame)')
  .option('--work <dir>', 'cache folder', '.data/identity-eval')
  .option('--json <file>', 'also write the full reports as JSON')
  .option('--details <n>', 'lines of detail per list', '15');

/**
 * The tracking of `range` done in time segments (`planSegments`), each tracked on its own by `trackFrames`
 * as a segment's activity would, then stitched (`stitchSegments`), and its identity report against `gt`.
 */
async function segmented(video: PreparedVideo, detector: Detector, options: PipelineOptions, range: { from: number; to: number }, gt: IdentityGroundTruth, seconds: number, overlap: number) {
  const plan = planSegments(range.to - range.from + 1, Math.round(seconds * video.fps), Math.round(overlap * video.fps));
  const parts: FrameDetections[][] = [];
  for (const seg of plan) parts.push((await trackFrames(video, detector, options, { from: range.from + seg.from, to: range.from + seg.to })).detections);
  const stitched = stitchSegments(parts);
  const frames = predictedFrames(stitched.frames);
  const name = `${video.name} (${plan.length} segments of ${seconds} s)`;
  const links = stitched.links.map((l) => `${l.segment}:${l.localTrackId}->${l.trackId}`).join(' ');
  console.log(`${name}: cuts at frames ${stitched.cuts.slice(1).join(', ')}; ${stitched.links.length} tracks continued (${links || 'none'})`);
  return { name, report: evaluateIdentity(gt, frames, { splitOf: splitOfRun(frames, options, video.fps) }) };
}

async function main(): Promise<void> {
  const o = program.parse().opts<{
    fixtures: string;
    video?: string;
    source?: string;
    detections?: string;
    manifest?: string;
    teams?: string;
    writeDetections?: string;
    fromStart?: boolean;
    segmentSeconds?: string;
    overlapSeconds: string;
    options: string;
    work: string;
    json?: string;
    details: string;
  }>();
  const names = o.video ? [o.video] : await fixtureNames(o.fixtures);
  if (names.length === 0) {
    console.log(`no fixtures under ${o.fixtures} (expected {name}/gt.txt)`);
    return;
  }
  if (o.detections && !o.video) throw new Error('--detections needs --video NAME (the fixture to compare with)');
  const teams = o.teams ? teamLabelsOf(JSON.parse(readFileSync(o.teams, 'utf8'))) : undefined;
  if (o.teams && !teams) throw new Error(`${o.teams} holds no team labels`);
  const reports: { name: string; report: IdentityReport; stretches?: StretchReport }[] = [];
  let detector: Detector | undefined;
  for (const name of names) {
    const dir = path.join(o.fixtures, name);
    if (!existsSync(path.join(dir, 'gt.txt'))) throw new Error(`${dir}/gt.txt not found`);
    const gt = await loadFixture(dir);
    if (o.detections) {
      const raw = JSON.parse(readFileSync(o.detections, 'utf8')) as { frames?: StoredFrame[] };
      const det = detectionsFileSchema.parse(raw);
      // Tracklet ids from the file as written (a schema without the field would drop them).
      const stored = raw.frames ?? [];
      const frames = predictedFrames(stored);
      let splitOf: ((c: number, f: number) => CropSplit | undefined) | undefined;
      if (o.manifest) {
        const man = manifestSchema.parse(JSON.parse(readFileSync(o.manifest, 'utf8')));
        const split = new Map(man.images.filter((i) => i.augmentation === null).map((i) => [`${i.track_id}/${i.frame_id}`, i.split]));
        splitOf = (c, f) => split.get(`${c}/${f}`);
      }
      reports.push({ name, report: evaluateIdentity(gt, frames, { classLabels: teams ?? teamLabelsOf(raw), splitOf }) });
      if (hasTracklets(stored)) reports.push({ name: `${name} (tracklets)`, report: evaluateIdentity(gt, predictedFrames(stored, 'tracklet')) });
      console.log(`${name}: ${o.detections} (${det.frames.length} frames)`);
      continue;
    }
    const source = o.source ?? knownSource(name);
    if (!source || !existsSync(source)) {
      console.log(`${name}: skipped, video not available (${source ?? 'unknown source: pass --video and --source'}; the soccer clip is found through TEST_MEDIA_DIR)`);
      continue;
    }
    const options = defaultOptions(source, JSON.parse(o.options) as Record<string, unknown>);
    const video = await prepareVideo(name, source, path.join(o.work, name), options);
    const from = o.fromStart ? 0 : gt.frameIds[0];
    const to = gt.frameIds[gt.frameIds.length - 1];
    detector ??= await realDetector();
    const run = await trackFrames(video, detector, options, { from, to });
    const splitOf = splitOfRun(run.frames, options, video.fps);
    // Team labels: --teams, else those step 5 computed on this run.
    // The lowest fragmentation joins of at most maxGapSeconds can reach on this ground truth.
    const stretches = visibleStretches(gt, Math.round(options.tracker.joins.maxGapSeconds * video.fps));
    reports.push({ name, report: evaluateIdentity(gt, run.frames, { classLabels: teams ?? (run.teams && teamLabelsOf({ teams: run.teams })), splitOf }), stretches });
    if (hasTracklets(run.detections)) reports.push({ name: `${name} (tracklets)`, report: evaluateIdentity(gt, predictedFrames(run.detections, 'tracklet')) });
    if (o.segmentSeconds) reports.push(await segmented(video, detector, options, { from, to }, gt, Number(o.segmentSeconds), Number(o.overlapSeconds)));
    if (o.writeDetections) {
      await mkdir(o.writeDetections, { recursive: true });
      await writeFile(path.join(o.writeDetections, `${name}.detections.json`), JSON.stringify({ frames: run.detections, tracklets: run.tracklets, ...(run.teams ? { teams: run.teams } : {}) }));
    }
    console.log(
      `${name}: tracked ${run.frames.length} sampled frames (frame_id ${from}-${to}) in ${run.seconds.toFixed(1)} s; ` +
        `${run.tracklets.count} tracklets, ${run.tracklets.cuts.length} cuts (${cutReasons(run.tracklets.cuts)}), ${run.tracklets.joins.length} joins; ` +
        `detector calls ${run.detectorCalls.cached} cached, ${run.detectorCalls.run} run; pitch ${run.pitchFound ? 'found' : 'not found'}`,
    );
  }
  await detector?.release();
  if (reports.length === 0) return;
  console.log('\nIdentity metrics (a predicted box shows a person when IoU >= 0.5; crops = tracked boxes)\n');
  console.log(summaryTable(reports));
  for (const { name, report, stretches } of reports) {
    console.log(`\n${detailText(name, report, Number(o.details))}`);
    if (stretches) console.log(stretchText(stretches, Number(o.details)));
  }
  if (o.json) {
    await mkdir(path.dirname(path.resolve(o.json)), { recursive: true });
    const plain = reports.map((r) => ({ ...r, report: { ...r.report, mot: { ...r.report.mot, idAssignment: Object.fromEntries(r.report.mot.idAssignment) } } }));
    await writeFile(o.json, JSON.stringify(plain, null, 1));
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});

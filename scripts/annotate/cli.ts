/**
 * Annotation tooling for the identity ground truth of test/fixtures/identity/ (see its README files).
 *
 *   npx tsx scripts/annotate/cli.ts detect <video> <source> [--stride 2] [--max-frames N]
 *   npx tsx scripts/annotate/cli.ts sheets <video> [--rows N] [--scale S]
 *   npx tsx scripts/annotate/cli.ts overview <video> <frameId>
 *   npx tsx scripts/annotate/cli.ts propose <video>
 *   npx tsx scripts/annotate/cli.ts review <video> [--decisions file] [--persons 1,2] [--scale S]
 *   npx tsx scripts/annotate/cli.ts strips <video> [--decisions file] [--scale S]
 *   npx tsx scripts/annotate/cli.ts gt <video> [--decisions file] [--out dir]
 *
 * Images go to `.data/annotate/<video>/{sheets,review,strips,overview}/` (JPEG; never committed).
 * `<video>` names the cache folder `.data/annotate/<video>/`; the decisions file defaults to
 * `scripts/annotate/<video>-assignments.json` and the output folder to `test/fixtures/identity/<video>/`.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { annotDir, detectBoxes, readBoxes, type BoxesFile } from './boxes';
import { annotated, applyDecisions, formatMot, proposePersons, splitTracklets, type Decisions, type TrackletPart } from './decisions';
import { evenly, FrameCache, renderOverview, writeSheets, type SheetLayout, type SheetRow, DEFAULT_LAYOUT } from './render';
import { buildTrackletsInRuns, DEFAULT_TRACKLET_OPTIONS, type Tracklet } from './tracklets';

const decisionsPath = (video: string) => path.resolve('scripts/annotate', `${video}-assignments.json`);

/** The decisions file of `video`, or null before one is written. */
async function readDecisions(video: string, file?: string): Promise<Decisions | null> {
  const p = file ?? decisionsPath(video);
  return existsSync(p) ? (JSON.parse(await readFile(p, 'utf8')) as Decisions) : null;
}

/** Row label parts of a tracklet part: frame range, count, first and last centre and height. */
function describe(p: TrackletPart): { range: string; sub: string } {
  const a = p.boxes[0];
  const z = p.boxes[p.boxes.length - 1];
  const c = (b: typeof a) => `(${Math.round((b.bbox[0] + b.bbox[2]) / 2)},${Math.round((b.bbox[1] + b.bbox[3]) / 2)})`;
  return { range: `f${a.frameId}-${z.frameId} n${p.boxes.length}`, sub: `${c(a)}->${c(z)}\nh${Math.round(a.bbox[3] - a.bbox[1])} s${a.score.toFixed(2)}` };
}

/**
 * Tracklets of the cached boxes with the decisions' options (or the defaults), over the annotated frames
 * only (all frames before a decisions file exists), never crossing an excluded range.
 */
function tracklets(boxes: BoxesFile, d: Decisions | null): Tracklet[] {
  const frames = d ? boxes.frames.filter((f) => annotated(d, f.frameId)) : boxes.frames;
  return buildTrackletsInRuns(frames, boxes.stride, d?.tracklets ?? DEFAULT_TRACKLET_OPTIONS);
}

/** Rows grouped by person: each part of each person, then the parts decided as not a person. */
function personRows(parts: TrackletPart[], persons: Record<string, string[]>, notPerson: string[], perRow: number): SheetRow[] {
  const byKey = new Map(parts.map((p) => [p.key, p]));
  const rows: SheetRow[] = [];
  const add = (who: string, key: string) => {
    const p = byKey.get(key);
    if (!p) return;
    const { range, sub } = describe(p);
    rows.push({ label: `${who} #${key}`, sub: `${range}\n${sub}`, crops: evenly(p.boxes, perRow) });
  };
  for (const [pid, keys] of Object.entries(persons)) for (const k of keys) add(`P${pid}`, k);
  for (const k of notPerson) add('NOT', k);
  return rows;
}

async function main(): Promise<void> {
  const [cmd, video, ...rest] = process.argv.slice(2);
  const flag = (name: string): string | undefined => {
    const i = rest.indexOf(`--${name}`);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  const num = (name: string): number | undefined => (flag(name) === undefined ? undefined : Number(flag(name)));
  const scale = num('scale') ?? 1;
  const layout: SheetLayout = { ...DEFAULT_LAYOUT, cellWidth: Math.round(DEFAULT_LAYOUT.cellWidth * scale), cellHeight: Math.round(DEFAULT_LAYOUT.cellHeight * scale) };
  if (!cmd || !video) throw new Error('usage: cli.ts <detect|sheets|overview|propose|strips|gt> <video> ...');
  switch (cmd) {
    case 'detect': {
      const f = await detectBoxes(video, rest[0], num('stride') ?? 2, num('max-frames'));
      console.log(`${f.frames.length} frames, ${f.frames.reduce((s, x) => s + x.boxes.length, 0)} boxes`);
      break;
    }
    case 'sheets': {
      // One row per tracklet, in tracklet order.
      const boxes = await readBoxes(video);
      const d = await readDecisions(video);
      const first = d?.firstFrameId ?? -Infinity;
      const last = d?.lastFrameId ?? Infinity;
      const parts = splitTracklets(tracklets(boxes, d), d?.splits ?? {}).filter((p) => p.boxes[0].frameId <= last && p.boxes[p.boxes.length - 1].frameId >= first);
      const rows = parts.map((p) => {
        const { range, sub } = describe(p);
        return { label: `#${p.key} ${range}`, sub, crops: evenly(p.boxes, layout.perLine) };
      });
      const out = await writeSheets(new FrameCache(video), path.join(annotDir(video), 'sheets'), 'tracklets', rows, num('rows') ?? 12, layout);
      console.log(`${parts.length} tracklets, ${out.length} sheets in ${path.dirname(out[0])}`);
      break;
    }
    case 'propose': {
      // A first guess of tracklet -> person, written beside the cache for a person to correct.
      // Tracklet options and frame range come from the decisions file when there is one.
      const boxes = await readBoxes(video);
      const prior = await readDecisions(video);
      const first = prior?.firstFrameId ?? boxes.frames[0].frameId;
      const last = prior?.lastFrameId ?? boxes.frames[boxes.frames.length - 1].frameId;
      const parts = splitTracklets(tracklets(boxes, prior), {}).filter((p) => p.boxes[0].frameId <= last && p.boxes[p.boxes.length - 1].frameId >= first);
      const proposal = proposePersons(parts, boxes.stride);
      const d: Decisions = {
        video,
        source: boxes.source,
        stride: boxes.stride,
        firstFrameId: first,
        lastFrameId: last,
        ...(prior?.excludeFrameIds ? { excludeFrameIds: prior.excludeFrameIds } : {}),
        tracklets: prior?.tracklets ?? DEFAULT_TRACKLET_OPTIONS,
        splits: {},
        persons: Object.fromEntries(Object.entries(proposal).map(([k, v]) => [k, { tracklets: v }])),
        notPerson: [],
      };
      await writeFile(path.join(annotDir(video), 'proposal.json'), JSON.stringify(d, null, 1));
      console.log(`${parts.length} tracklets -> ${Object.keys(proposal).length} proposed persons`);
      break;
    }
    case 'review': {
      // Rows grouped by person, from the decisions file (or --decisions file), for checking each person.
      const boxes = await readBoxes(video);
      const d = await readDecisions(video, flag('decisions'));
      if (!d) throw new Error('no decisions file');
      const parts = splitTracklets(tracklets(boxes, d), d.splits);
      const only = flag('persons')?.split(',');
      const persons = Object.fromEntries(Object.entries(d.persons).filter(([k]) => !only || only.includes(k)).map(([k, v]) => [k, v.tracklets]));
      const rows = personRows(parts, persons, only ? [] : d.notPerson, layout.perLine);
      const out = await writeSheets(new FrameCache(video), path.join(annotDir(video), 'review'), 'persons', rows, num('rows') ?? 12, layout);
      console.log(`${rows.length} rows, ${out.length} sheets in ${path.dirname(out[0])}`);
      break;
    }
    case 'strips': {
      // Every crop of each person in time order, one image per person.
      const boxes = await readBoxes(video);
      const d = await readDecisions(video, flag('decisions'));
      if (!d) throw new Error('no decisions file');
      const gt = applyDecisions(boxes.frames, tracklets(boxes, d), d);
      const dir = path.join(annotDir(video), 'strips');
      const frames = new FrameCache(video);
      const small: SheetLayout = { ...layout, cellWidth: Math.round(layout.cellWidth * 0.75), cellHeight: Math.round(layout.cellHeight * 0.75), perLine: 20, labelWidth: 90 };
      for (const idn of gt.identities) {
        const mine = gt.boxes.filter((b) => b.id === idn.id);
        const row: SheetRow = { label: `P${idn.id}`, sub: `f${mine[0].frame - 1}-${mine[mine.length - 1].frame - 1}\nn${mine.length} ${idn.team} ${idn.role}`, crops: mine.map((b) => ({ frameId: b.frame - 1, bbox: b.bbox })) };
        await writeSheets(frames, dir, `person-${String(idn.id).padStart(3, '0')}`, [row], 1, small);
      }
      console.log(`${gt.identities.length} person strips in ${dir}`);
      break;
    }
    case 'overview': {
      // One frame with its boxes numbered by tracklet.
      const frameId = Number(rest[0]);
      const boxes = await readBoxes(video);
      const d = await readDecisions(video);
      const parts = splitTracklets(tracklets(boxes, d), d?.splits ?? {});
      const here = parts.flatMap((p) => p.boxes.filter((b) => b.frameId === frameId).map((b) => ({ b, key: p.key })));
      const dir = path.join(annotDir(video), 'overview');
      await mkdir(dir, { recursive: true });
      const file = path.join(dir, `frame_${frameId}.jpg`);
      await writeFile(file, await renderOverview(new FrameCache(video), frameId, here.map((h) => h.b.bbox), here.map((h) => Math.floor(Number(h.key)))));
      console.log(`${file}: ${here.map((h) => h.key).join(' ')}`);
      break;
    }
    case 'gt': {
      const boxes = await readBoxes(video);
      const d = await readDecisions(video, flag('decisions'));
      if (!d) throw new Error('no decisions file');
      const gt = applyDecisions(boxes.frames, tracklets(boxes, d), d);
      const out = path.resolve(flag('out') ?? path.join('test/fixtures/identity', video));
      await mkdir(out, { recursive: true });
      await writeFile(path.join(out, 'gt.txt'), formatMot(gt.boxes));
      await writeFile(path.join(out, 'frames.txt'), gt.frames.map((f) => `${f}\n`).join(''));
      await writeFile(path.join(out, 'identities.csv'), 'id,team,role\n' + gt.identities.map((i) => `${i.id},${i.team},${i.role}\n`).join(''));
      console.log(`${out}: ${gt.frames.length} frames, ${gt.identities.length} persons, ${gt.boxes.length} boxes`);
      break;
    }
    default:
      throw new Error(`unknown command ${cmd}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

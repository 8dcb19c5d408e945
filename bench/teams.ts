/**
 * Team and role of every class of a stored run, computed from its `detections.json` and sampled frames the
 * way step 5 does (src/vision/teams/), with per-class crop strips for checking by eye.
 *
 *   npx tsx bench/teams.ts <video folder of a run> [out folder]
 *
 * The video folder holds `detections.json`, `selected_frames/` and `crops/original/`. Prints the status,
 * the counts per team and role, and one line per class; with an out folder, writes
 * `{team}_{role}_track_{id}.png` (first, middle and last box of the class, side by side), `teams.json`,
 * and `report.html`: the dataset report's track strips (src/dataset/report.ts) with these teams, to look at.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { classMarks, renderReport, stripPicks, type ReportTrack, type TrackletRecord } from '../src/dataset/report';
import { decodeImage } from '../src/vision/image/rgb';
import { DEFAULT_OPTIONS } from '../src/validation';
import { assignTeams } from '../src/vision/teams/cluster';
import { boxKit, classKitInputs } from '../src/vision/teams/kit';
import type { Lab } from '../src/vision/teams/lab';

type Box = [number, number, number, number];
interface Det { track_id: number; tracklet_id?: number; bbox: Box; kit?: Lab | null }

async function main() {
  const [dir, out] = process.argv.slice(2);
  if (!dir) throw new Error('usage: tsx bench/teams.ts <video folder> [out folder]');
  const det = JSON.parse(readFileSync(path.join(dir, 'detections.json'), 'utf8')) as { grass: null | (Parameters<typeof boxKit>[2] & { pitchFound: boolean }); frames: { frame_id: number; detections: Det[] }[] };
  const pitch = det.grass?.pitchFound ? det.grass : null;
  const t0 = performance.now();
  let kitMs = 0;
  if (pitch) {
    for (const f of det.frames) {
      if (f.detections.length === 0) continue;
      const frame = await decodeImage(path.join(dir, 'selected_frames', `frame_${f.frame_id}.jpg`));
      const k0 = performance.now();
      for (const d of f.detections) d.kit = boxKit(frame, d.bbox, pitch)?.lab ?? null;
      kitMs += performance.now() - k0;
    }
  }
  const inputs = classKitInputs(det.frames);
  const c0 = performance.now();
  const teams = assignTeams(inputs, !!pitch, DEFAULT_OPTIONS.teams);
  const clusterMs = performance.now() - c0;
  const boxes = det.frames.reduce((s, f) => s + f.detections.length, 0);
  console.log(`${teams.status}: ${teams.reason}`);
  console.log(`centres ${JSON.stringify(teams.centres)} threshold ${teams.threshold} silhouette ${teams.silhouette}`);
  console.log(`kit colours of ${boxes} boxes in ${kitMs.toFixed(0)} ms (${(kitMs / Math.max(1, boxes)).toFixed(3)} ms/box); teams of ${inputs.length} classes in ${clusterMs.toFixed(0)} ms; total with decoding ${(performance.now() - t0).toFixed(0)} ms`);
  const counts: Record<string, number> = {};
  for (const c of teams.classes) counts[`${c.team ?? '-'}/${c.role ?? '-'}`] = (counts[`${c.team ?? '-'}/${c.role ?? '-'}`] ?? 0) + 1;
  console.log('classes by team/role:', counts);
  for (const c of teams.classes) {
    const inp = inputs.find((i) => i.trackId === c.trackId)!;
    console.log(`track_${c.trackId}\t${c.team ?? '-'}\t${c.role ?? '-'}\tboxes ${inp.frames.length}\tkit ${c.kit?.join(',') ?? '-'}\td ${c.distance ?? '-'}\tspread ${inp.spread?.toFixed(1)}${c.fitted ? '' : ' (not fitted)'}`);
  }
  if (!out) return;
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'teams.json'), JSON.stringify(teams, null, 1));
  writeFileSync(path.join(out, 'report.html'), await reportOf(dir, det, teams));
  for (const c of teams.classes) {
    const list = det.frames.flatMap((f) => f.detections.filter((d) => d.track_id === c.trackId).map((d) => ({ frameId: f.frame_id, bbox: d.bbox })));
    const picks = [list[0], list[Math.floor(list.length / 2)], list[list.length - 1]];
    const tiles = await Promise.all(
      picks.map(async (p) => {
        const meta = await sharp(path.join(dir, 'selected_frames', `frame_${p.frameId}.jpg`)).metadata();
        const [x1, y1, x2, y2] = p.bbox.map(Math.round);
        const left = Math.max(0, x1 - 4);
        const top = Math.max(0, y1 - 4);
        const region = { left, top, width: Math.min(meta.width!, x2 + 4) - left, height: Math.min(meta.height!, y2 + 4) - top };
        return sharp(path.join(dir, 'selected_frames', `frame_${p.frameId}.jpg`)).extract(region).resize({ height: 160 }).png().toBuffer();
      }),
    );
    const widths = await Promise.all(tiles.map(async (t) => (await sharp(t).metadata()).width!));
    const composite = sharp({ create: { width: widths.reduce((a, b) => a + b + 4, 0), height: 160, channels: 3, background: '#ffffff' } }).composite(
      tiles.map((t, i) => ({ input: t, left: widths.slice(0, i).reduce((a, b) => a + b + 4, 0), top: 0 })),
    );
    await composite.png().toFile(path.join(out, `${c.team ?? '-'}_${c.role ?? '-'}_track_${c.trackId}.png`));
  }
}

/** The report of the run's tracks with `teams` (counts other than crops are left at 0). */
async function reportOf(dir: string, det: { frames: { frame_id: number; detections: Det[] }[]; tracklets?: TrackletRecord }, teams: ReturnType<typeof assignTeams>): Promise<string> {
  const index = JSON.parse(readFileSync(path.join(dir, 'crops/original/index.json'), 'utf8')) as { crops: { track_id: number; frame_id: number; object: string }[]; rejected: Record<string, number> };
  const marks = classMarks(det.tracklets, det.frames);
  const tracks: ReportTrack[] = [];
  for (const id of [...new Set(index.crops.map((c) => c.track_id))].sort((a, b) => a - b)) {
    const list = index.crops.filter((c) => c.track_id === id).sort((a, b) => a.frame_id - b.frame_id);
    const picks = stripPicks(list.length);
    const samples = picks.map(({ index, label }) => ({ frameId: list[index].frame_id, label, original: readFileSync(path.join(dir, list[index].object.slice(list[index].object.indexOf('crops/')))) }));
    const frames = det.frames.filter((f) => f.detections.some((d) => d.track_id === id)).map((f) => f.frame_id);
    const t = teams.classes.find((c) => c.trackId === id);
    tracks.push({ trackId: id, train: list.length, val: 0, gap: 0, samples, span: [frames[0], frames[frames.length - 1]], team: t?.team, role: t?.role, kit: t?.kit, marks: marks.get(id) });
  }
  return renderReport({
    tenantId: '-',
    runGuid: '-',
    videoGuid: path.basename(dir),
    source: dir,
    counts: { tracks: tracks.length, crops: index.crops.length, train: index.crops.length, val: 0, gap: 0 },
    rejected: index.rejected,
    dropped: {},
    background: { text: 'as stored', removed: false },
    trainOnlyTracks: [],
    tracks,
    teams: { status: teams.status, reason: teams.reason, centres: teams.centres },
    frameRange: [det.frames[0].frame_id, det.frames[det.frames.length - 1].frame_id],
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

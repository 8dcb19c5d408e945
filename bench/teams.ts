/**
 * Team and role of every class of a stored run, computed from its `detections.json` and sampled frames the
 * way step 5 does (src/vision/teams/), with per-class crop strips for checking by eye.
 *
 *   npx tsx bench/teams.ts <video folder of a run> [out folder]
 *
 * The video folder holds `detections.json` and `selected_frames/`. Prints the status, the counts per team
 * and role, and one line per class; with an out folder, writes `track_{id}.png` (first, middle and last
 * box of the class, side by side) named by team and role, and `teams.json`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { decodeImage } from '../src/vision/image/rgb';
import { assignTeams, TEAM_DEFAULTS } from '../src/vision/teams/cluster';
import { boxKit, classKitInputs } from '../src/vision/teams/kit';
import type { Lab } from '../src/vision/teams/lab';

type Box = [number, number, number, number];
interface Det { track_id: number; bbox: Box; kit?: Lab | null }

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
  const teams = assignTeams(inputs, !!pitch, TEAM_DEFAULTS);
  const boxes = det.frames.reduce((s, f) => s + f.detections.length, 0);
  console.log(`${teams.status}: ${teams.reason}`);
  console.log(`centres ${JSON.stringify(teams.centres)} threshold ${teams.threshold} silhouette ${teams.silhouette}`);
  console.log(`kit colours of ${boxes} boxes in ${kitMs.toFixed(0)} ms (${(kitMs / Math.max(1, boxes)).toFixed(3)} ms/box); total with decoding ${(performance.now() - t0).toFixed(0)} ms`);
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

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

/**
 * `npm run render -- ...`: draws a sampled frame of a finished (or running) run with its boxes and track ids,
 * so a person can look at what the detector and the tracker did.
 *
 *   npm run render -- --tenant local --run-guid GUID [--video VIDEO_GUID] [--frame FRAME_ID] [--out FILE.png]
 *
 * Reads `selected_frames/frame_{id}.jpg` and `detections.json` of the run from the configured bucket.
 * Without `--video` the run's only (or first) video is used; without `--frame` the sampled frame with the
 * most detections. Prints the PNG's path.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../config';
import { detectionsFileSchema, parseArtifact } from '../storage/artifacts';
import { createObjectStore } from '../storage/gcs';
import { RunLayout } from '../storage/layout';
import { drawDetections } from '../vision/image/draw';

async function main(): Promise<void> {
  const o = new Command('render')
    .description('Draw a sampled frame of a run with its boxes and track ids.')
    .requiredOption('--tenant <id>', 'tenant id')
    .requiredOption('--run-guid <guid>', 'run GUID')
    .option('--video <guid>', 'video GUID (default: the first video of the run)')
    .option('--frame <id>', 'frame id (default: the sampled frame with the most detections)')
    .option('--out <file>', 'output PNG (default: ./render_{video}_{frame}.png)')
    .parse()
    .opts<{ tenant: string; runGuid: string; video?: string; frame?: string; out?: string }>();
  const cfg = loadConfig();
  const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost, projectId: cfg.gcsProjectId });
  const run = new RunLayout(o.tenant, o.runGuid);
  let videoGuid = o.video;
  if (!videoGuid) {
    const first = (await store.list(run.prefix)).map((x) => run.videoGuidOf(x.name)).find(Boolean);
    if (!first) throw new Error(`no video folders under gs://${cfg.bucket}/${run.prefix}`);
    videoGuid = first;
  }
  const video = run.video(videoGuid);
  const stored = await store.getJson<unknown>(video.detections);
  if (!stored) throw new Error(`gs://${cfg.bucket}/${video.detections} does not exist (has detectPlayers run?)`);
  const detections = parseArtifact(detectionsFileSchema, video.detections, stored);
  const frame =
    o.frame !== undefined
      ? detections.frames.find((f) => f.frame_id === Number(o.frame))
      : [...detections.frames].sort((a, b) => b.detections.length - a.detections.length || a.frame_id - b.frame_id)[0];
  if (!frame) throw new Error(`frame ${o.frame} is not among the sampled frames of video ${videoGuid}`);
  const png = await drawDetections(
    await store.get(video.frame(frame.frame_id)),
    frame.detections.map((d) => ({ bbox: d.bbox, score: d.score, classId: d.class, trackId: d.track_id })),
  );
  const out = path.resolve(o.out ?? `render_${videoGuid}_${frame.frame_id}.png`);
  await writeFile(out, png);
  console.error(`frame ${frame.frame_id} of video ${videoGuid}: ${frame.detections.length} boxes`);
  console.log(out);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

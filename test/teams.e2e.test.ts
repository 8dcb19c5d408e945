/**
 * Team and role through the real pipeline on the first 40 sampled frames of the soccer broadcast clip: the
 * real workflow and activities (YOLOv8n, ffmpeg, sharp) against the test stack's dev server and GCS emulator.
 * Step 5 takes each box's kit colour while the frame is decoded and the teams at its end; `detections.json`,
 * the manifest and the report carry them, and the stored artifacts match their schemas field for field.
 * A copy of the report is written to the temp folder (path printed) so a person can look at it.
 *
 * Needs `TEST_MEDIA_DIR` (the folder with soccer_broadcast_720p.mp4); skipped with a message otherwise.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../src/activities';
import { startRun } from '../src/cli/client';
import { loadConfig, type Config } from '../src/config';
import { detectionsFileSchema, manifestSchema, parseArtifact } from '../src/storage/artifacts';
import { createObjectStore } from '../src/storage/gcs';
import { RunLayout } from '../src/storage/layout';
import { createDeps } from '../src/workers/worker';
import { GPU_STEP_NAMES } from '../src/workflows/steps';
import { testClient, withWorkers } from './helpers/temporal';

const MEDIA = process.env.TEST_MEDIA_DIR;
const CLIP = MEDIA ? path.join(MEDIA, 'soccer_broadcast_720p.mp4') : '';
if (!MEDIA) console.log('teams.e2e: TEST_MEDIA_DIR is not set: skipping the soccer run (set it to ../shared/media)');

const configured = loadConfig();
const cfg: Config = { ...configured, sourceRoots: [...configured.sourceRoots, ...(MEDIA ? [path.resolve(MEDIA)] : [])] };
const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost });
let client: Client;
beforeAll(async () => {
  if (MEDIA) client = await testClient();
});
afterAll(async () => {
  await client?.connection.close();
});

describe.skipIf(!MEDIA)('teams through the pipeline on the soccer clip (TEST_MEDIA_DIR)', () => {
  it('stores each box kit colour and each class team and role in detections.json, the manifest and the report', async () => {
    const deps = createDeps({ ...cfg, dataDir: path.join(tmpdir(), `teams-e2e-${process.pid}`) });
    const all = createActivities(deps) as Record<string, unknown>;
    const isGpu = (k: string) => (GPU_STEP_NAMES as readonly string[]).includes(k);
    const gpu = Object.fromEntries(Object.entries(all).filter(([k]) => isGpu(k)));
    const cpu = Object.fromEntries(Object.entries(all).filter(([k]) => !isGpu(k)));
    const tenantId = `teams${Math.random().toString(36).slice(2, 8)}`;
    const summary = await withWorkers(
      cpu,
      async (taskQueue) => (await startRun(client, { ...cfg, taskQueue }, { tenantId, videos: [{ source: CLIP }], options: { maxFrames: 40, augment: { count: 0 } } })).handle.result(),
      gpu,
    );
    await deps.release();
    expect(summary.status).toBe('completed');
    const video = new RunLayout(tenantId, summary.runGuid).video(summary.videos[0].videoGuid);

    const raw = await store.getJson<unknown>(video.detections);
    const dets = parseArtifact(detectionsFileSchema, video.detections, raw);
    expect(dets).toEqual(raw);
    const teams = dets.teams!;
    console.log(`teams.e2e: ${teams.reason}`);
    expect(teams.status).toBe('teams');
    // Nearly every box on the pitch has a kit colour (a few are too small or all grass).
    const boxes = dets.frames.flatMap((f) => f.detections);
    expect(boxes.filter((d) => d.kit).length / boxes.length).toBeGreaterThan(0.9);
    const ids = [...new Set(boxes.map((d) => d.track_id))].sort((a, b) => a - b);
    expect(teams.classes.map((c) => c.track_id)).toEqual(ids);
    // Both teams have members; team members are players, and nobody outside a team is a player.
    expect(teams.classes.filter((c) => c.team === 'A').length).toBeGreaterThanOrEqual(2);
    expect(teams.classes.filter((c) => c.team === 'B').length).toBeGreaterThanOrEqual(2);
    for (const c of teams.classes) expect(c.team !== null).toBe(c.role === 'player');

    const rawManifest = await store.getJson<unknown>(video.manifest);
    const manifest = parseArtifact(manifestSchema, video.manifest, rawManifest);
    expect(manifest).toEqual(rawManifest);
    expect(manifest.teams!.status).toBe('teams');
    expect(Object.keys(manifest.teams!.tracks).sort()).toEqual(Object.keys(manifest.counts.tracks).sort());
    const byId = new Map(teams.classes.map((c) => [String(c.track_id), c]));
    for (const [id, t] of Object.entries(manifest.teams!.tracks)) expect(t).toEqual({ team: byId.get(id)!.team, role: byId.get(id)!.role });

    const report = (await store.get(video.report)).toString('utf8');
    const copy = path.join(tmpdir(), `teams-e2e-report-${process.pid}.html`);
    writeFileSync(copy, report);
    console.log(`teams.e2e: the report is in ${copy}, to look at`);
    expect(report).toContain(teams.reason);
    expect(report).toContain('Team A');
    expect(report).toContain('Team B');
  });
});

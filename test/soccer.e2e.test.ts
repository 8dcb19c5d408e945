/**
 * The main job on the WHOLE soccer broadcast clip (every frame at the default stride, default options), as a
 * user runs it: the real worker process (`src/workers/main.ts`, default liveness and timeouts) on its own task
 * queue, the real client, the test stack's dev server and emulator. It must complete without a single retried
 * step, while another process keeps one core busy, so it cannot depend on an idle machine. It prints each step's
 * duration and liveness figures (longest heartbeat and progress gaps).
 *
 * Needs `TEST_MEDIA_DIR` (the folder with soccer_broadcast_720p.mp4; `.ci/run` sets it to ../shared/media);
 * skipped with a message otherwise.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRun } from '../src/cli/client';
import { loadConfig } from '../src/config';
import { createObjectStore } from '../src/storage/gcs';
import { RunLayout } from '../src/storage/layout';
import { videoWorkflowId } from '../src/workflows/ids';
import { STEP_NAMES } from '../src/workflows/steps';
import type { RunSummary, StepResultBase } from '../src/workflows/types';
import { expectExportsAgree, expectLoadableDataset } from './helpers/datasetChecks';
import { spawnWorkerProcess, testClient } from './helpers/temporal';

const MEDIA = process.env.TEST_MEDIA_DIR;
const CLIP = MEDIA ? path.join(MEDIA, 'soccer_broadcast_720p.mp4') : '';
if (!MEDIA) console.log('soccer.e2e: TEST_MEDIA_DIR is not set: skipping the whole-clip run (set it to ../shared/media)');

const cfg = loadConfig();
let client: Client;
beforeAll(async () => {
  client = await testClient();
});
afterAll(async () => {
  await client?.connection.close();
});

/** A process that keeps one core busy until killed. */
function cpuHog(): ChildProcess {
  return spawn(process.execPath, ['-e', 'for (;;) Math.sqrt(Math.random())'], { stdio: 'ignore' });
}

describe.skipIf(!MEDIA)('the main job on the whole soccer clip (TEST_MEDIA_DIR)', () => {
  it('completes with default options, every step on its first attempt, under CPU load', async () => {
    if (!existsSync(CLIP)) throw new Error(`TEST_MEDIA_DIR is set but ${CLIP} does not exist`);
    const taskQueue = `soccer-${Math.random().toString(36).slice(2, 8)}`;
    const dataDir = mkdtempSync(path.join(tmpdir(), 'dataprep-soccer-'));
    const worker = await spawnWorkerProcess({ TASK_QUEUE: taskQueue, DATAPREP_DATA_DIR: dataDir, SOURCE_ROOTS: path.resolve(MEDIA!) });
    const hog = cpuHog();
    const tenantId = `soccer${Math.random().toString(36).slice(2, 8)}`;
    let summary: RunSummary;
    let workflowId: string;
    try {
      const run = await startRun(client, { ...cfg, taskQueue }, { tenantId, videos: [{ source: CLIP }] });
      workflowId = run.workflowId;
      summary = await run.handle.result();
    } finally {
      hog.kill('SIGKILL');
      worker.child.kill('SIGTERM');
      await worker.exited;
    }
    expect(summary.status).toBe('completed');
    const v = summary.videos[0];
    // 630 decodable frames at the default stride of 2.
    expect(v.counts.frames).toBe(315);
    for (const k of ['detections', 'tracks', 'crops', 'train', 'val'] as const) expect(v.counts[k]).toBeGreaterThan(0);
    expect(v.routing?.reroutes).toEqual([]);

    // Every step ran once: no attempt was lost to a heartbeat timeout (or anything else).
    const history = await client.workflow.getHandle(videoWorkflowId(workflowId, v.videoGuid)).fetchHistory();
    const attempts = (history.events ?? []).flatMap((e) => (e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt ?? 1] : []));
    expect(attempts.length).toBeGreaterThanOrEqual(STEP_NAMES.length);
    expect(attempts.every((a) => a === 1)).toBe(true);

    // Step figures, for the record; every step stayed far from its 30 s heartbeat timeout.
    const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost });
    const layout = new RunLayout(tenantId, summary.runGuid);
    const rows: Record<string, unknown>[] = [];
    for (const [i, name] of STEP_NAMES.entries()) {
      const r = (await store.getJson<{ videos: Record<string, StepResultBase> }>(layout.stepResult(i + 1)))!.videos[v.videoGuid];
      rows.push({ step: `${i + 1} ${name}`, seconds: Math.round(r.durationMs / 100) / 10, ...r.liveness, loopMaxMs: r.eventLoopDelayMs?.max });
      expect(r.liveness?.maxHeartbeatGapMs).toBeLessThan(15_000);
    }
    // The dataset loads as ML tools read it: one class list in every split, no empty folder, data.yaml and
    // classes.txt match the folders, every manifest row resolves, the CSV/JSONL agree, and the MOT/COCO
    // exports agree with detections.json.
    const video = layout.video(v.videoGuid);
    const manifest = await expectLoadableDataset(store, video, 2);
    await expectExportsAgree(store, video);
    expect(manifest.classes!.every((c) => c.train > 0 && c.val > 0)).toBe(true);
    console.log(`soccer.e2e: ${JSON.stringify(v.counts)}, ${manifest.classes!.length} classes, ${manifest.excludedTracks!.length} tracks left out`);
    console.table(rows);
  }, 3_600_000);
});

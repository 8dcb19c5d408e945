/**
 * Cancellation with the real activities: a run is cancelled while frames are being extracted and
 * while players are being detected, once through the `cancel` signal and once natively. Measured: how long
 * the running activity takes to stop after the request; checked: no ffmpeg process is left, the workflow
 * ends as Canceled, `.pipeline_info.json` says cancelled (with who, why and when) and marks the step
 * cancelled, no dataset manifest exists, and the run's entries are gone from the worker's cache.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../src/activities';
import { prepareInput, startRun } from '../src/cli/client';
import { loadConfig, type Config } from '../src/config';
import { createObjectStore } from '../src/storage/gcs';
import { RunLayout } from '../src/storage/layout';
import { createDeps, splitActivities } from '../src/workers/worker';
import { videoWorkflowId } from '../src/workflows/ids';
import { cancelSignal } from '../src/workflows/messages';
import { testClient, waitForActivity, withWorkers } from './helpers/temporal';

const DATA = '/usr/share/doc/opencv-doc/examples/data';
const tmp = mkdtempSync(path.join(tmpdir(), 'dataprep-cancel-'));
/**
 * vtest.avi played twice (159 s, 1590 frames) as H.264 MP4, which the import stream-copies: long enough that
 * extraction at stride 1 cannot finish within the 2 s heartbeat throttle on a fast machine, so the cancel
 * request always reaches a running step.
 */
const clip = path.join(tmp, 'vtest_x2.mp4');
/** vtest.avi played four times (318 s) as MPEG-4 Part 2 in AVI: the import must transcode it (ffmpeg reports progress). */
const aviClip = path.join(tmp, 'vtest_x4.avi');
const configured = loadConfig();
/** The test stack, with this test's folder as a source root (as a deployment lists its video folders). */
const cfg: Config = { ...configured, sourceRoots: [...configured.sourceRoots, tmp] };
const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost });
let client: Client;

beforeAll(async () => {
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-stream_loop', '3', '-i', path.join(DATA, 'vtest.avi'), '-c', 'copy', aviClip]);
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-stream_loop', '1', '-i', path.join(DATA, 'vtest.avi'), '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', clip]);
  client = await testClient();
});
afterAll(async () => {
  await client?.connection.close();
});

/** ffmpeg processes of this test (their command line names a file under this test's folder). */
function ffmpegProcesses(): string[] {
  try {
    return execFileSync('pgrep', ['-af', `ffmpeg.*${tmp}`]).toString().trim().split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

const cases = [
  // ffmpeg's progress callback heartbeats here: cancellation must stop ffmpeg, not throw from the callback.
  { step: 'importVideo', how: 'native', source: aviClip, options: { frameStride: 1 } },
  { step: 'extractFramesForDetections', how: 'signal', source: clip, options: { frameStride: 1 } },
  // Stride 4: ~400 frames to extract before detection starts, then ~400 to detect.
  { step: 'detectPlayers', how: 'native', source: clip, options: { frameStride: 4 } },
] as const;

describe('cancellation of running steps (real activities)', () => {
  for (const c of cases) {
    it(`stops ${c.step} within seconds when cancelled via ${c.how === 'signal' ? 'the cancel signal' : 'native cancellation'}`, async () => {
      const deps = createDeps({ ...cfg, dataDir: path.join(tmp, c.step) });
      const { cpu, gpu } = splitActivities(createActivities(deps));
      const tenantId = `cancel${c.step.slice(0, 8).toLowerCase()}`;
      const input = { tenantId, videos: [{ source: c.source }], options: c.options };
      const videoGuid = prepareInput(input).videos[0].videoGuid!;
      const measured = await withWorkers(
        cpu,
        async (taskQueue) => {
          const run = await startRun(client, { ...cfg, taskQueue }, input);
          // Wait until the step runs and has made progress (its heartbeat details say so).
          await waitForActivity<{ framesDone?: number }>(client, videoWorkflowId(run.workflowId, videoGuid), c.step, (d) => (d.framesDone ?? 0) >= 5);
          if (c.step !== 'detectPlayers') expect(ffmpegProcesses().length).toBeGreaterThan(0);
          const t0 = Date.now();
          if (c.how === 'signal') await client.workflow.getHandle(run.workflowId).signal(cancelSignal, { reason: 'test stop', by: 'cancel-test' });
          else await run.handle.cancel();
          const err = await run.handle.result().catch((e: unknown) => e);
          const closedMs = Date.now() - t0;
          expect(err).toBeInstanceOf(WorkflowFailedError);
          expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
          expect((await run.handle.describe()).status.name).toBe('CANCELLED');
          return { closedMs, requestedAt: t0, runGuid: run.runGuid };
        },
        gpu,
      );
      // The run is closed only after its activities stopped (WAIT_CANCELLATION_COMPLETED).
      console.log(`cancel during ${c.step}: workflow closed ${measured.closedMs} ms after the request`);
      expect(measured.closedMs).toBeLessThan(10_000);
      expect(ffmpegProcesses()).toEqual([]);
      const layout = new RunLayout(tenantId, measured.runGuid);
      const info = (await store.getJson<Record<string, any>>(layout.pipelineInfo))!;
      expect(info.status).toBe('cancelled');
      expect(info.cancellation.at).toMatch(/^\d{4}-/);
      if (c.how === 'signal') expect(info.cancellation).toMatchObject({ reason: 'test stop', by: 'cancel-test' });
      expect(info.steps[videoGuid][c.step].status).toBe('cancelled');
      // The activity recorded its own end: how long it ran on after the request.
      const stoppedMs = Date.parse(info.steps[videoGuid][c.step].finishedAt) - measured.requestedAt;
      console.log(`cancel during ${c.step}: the activity stopped ${stoppedMs} ms after the request`);
      expect(stoppedMs).toBeLessThan(5_000);
      expect(await store.exists(layout.video(videoGuid).manifest)).toBe(false);
      // The video's cache entries were released on cancellation.
      expect(deps.cache.count(`${tenantId}/`)).toBe(0);
      await deps.release();
    });
  }
});

/**
 * Liveness by design (src/activities/liveness.ts) against the real dev server, with the real workflows and
 * mocked activities whose step 6 misbehaves:
 * - a step that works for several heartbeat timeouts without ever calling `heartbeat()` stays alive;
 * - a step that hangs is given up by the watchdog with a `Stalled` failure naming its last progress;
 * - a step whose heartbeats stop on a live worker fails the video with the step, the attempts and the root
 *   cause, and is not re-routed as if its worker were gone; on a worker that is really gone, it is re-routed.
 */
import { randomUUID } from 'node:crypto';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportProgress } from '../src/activities/liveness';
import { startRun } from '../src/cli/client';
import { loadConfig } from '../src/config';
import { createPipelineWorkers } from '../src/workers/worker';
import { videoWorkflowId } from '../src/workflows/ids';
import type { RunSummary, StepInput } from '../src/workflows/types';
import { mockActivities } from './helpers/mockActivities';
import { testClient, withWorkers, workflowBundle } from './helpers/temporal';

let client: Client;
const cfg = loadConfig();
beforeAll(async () => {
  client = await testClient();
});
afterAll(async () => {
  await client?.connection.close();
});

const uniq = () => `live${Math.random().toString(36).slice(2, 8)}`;
/** Short heartbeat timeout (the option's minimum), so a silent step would be declared dead within 5 s. */
const ROUTING = { heartbeatTimeoutSeconds: 5, scheduleToStartSeconds: 3 };

/** Busy CPU work for `ms`, in 20 ms slices that yield to the event loop (as sharp- or loop-bound code does). */
async function silentWork(ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const slice = Date.now() + 20;
    while (Date.now() < slice) Math.sqrt(Math.random());
    await yieldLoop();
  }
}

describe('activity liveness (real dev server, real workflows, misbehaving mocked step 6)', () => {
  it('keeps a step alive that works for three heartbeat timeouts without calling heartbeat()', async () => {
    const m = mockActivities();
    let calls = 0;
    const cpu = {
      ...m.cpu,
      extractCrops: async (input: StepInput) => {
        calls++;
        await silentWork(16_000);
        return { ...(await m.cpu.extractCrops(input)) };
      },
    };
    const summary = await withWorkers(
      cpu,
      async (taskQueue) => (await startRun(client, { ...cfg, taskQueue }, { tenantId: uniq(), videos: [{ source: '/a.mp4' }], options: { routing: ROUTING } })).handle.result(),
      m.gpu,
    );
    expect(summary.status).toBe('completed');
    expect(calls).toBe(1); // no attempt was lost to a heartbeat timeout
    expect(summary.videos[0].routing?.reroutes).toEqual([]);
  });

  it('gives up a hung attempt after the stall limit, naming its last progress, and the retry completes', async () => {
    const m = mockActivities();
    const seen: { attempt: number; lastFailure?: string }[] = [];
    let childId = '';
    const cpu = {
      ...m.cpu,
      extractCrops: async (input: StepInput) => {
        const { attempt } = Context.current().info;
        if (attempt === 1) {
          reportProgress({ cropsDone: 7 });
          seen.push({ attempt });
          return new Promise<never>(() => undefined); // hangs; given up by the watchdog
        }
        // The server's record of attempt 1, as an operator sees it (temporal workflow describe / Web UI).
        const desc = await client.workflow.getHandle(childId).describe();
        const pending = desc.raw.pendingActivities?.find((p) => p.activityType?.name === 'extractCrops');
        seen.push({ attempt, lastFailure: pending?.lastFailure?.message ?? undefined });
        return m.cpu.extractCrops(input);
      },
    };
    const summary = await withWorkers(
      cpu,
      async (taskQueue) => {
        const run = await startRun(client, { ...cfg, taskQueue }, { tenantId: uniq(), videos: [{ source: '/a.mp4', videoGuid: 'v1' }], options: { routing: ROUTING } });
        childId = videoWorkflowId(run.workflowId, 'v1');
        return run.handle.result();
      },
      m.gpu,
      { liveness: { stallMs: 2_000 } },
    );
    expect(summary.status).toBe('completed');
    expect(seen.map((s) => s.attempt)).toEqual([1, 2]);
    expect(seen[1].lastFailure).toMatch(/activity extractCrops: no progress for [23] s \(limit 2 s, ACTIVITY_STALL_SECONDS\); last progress: \{"cropsDone":7\}/);
  });

  /**
   * Both cases wait out all 8 attempts of a step (about 40 s of heartbeat timeouts plus 2 min of retry
   * backoff), so they run side by side. The liveness timer is off in these workers (an interval longer than
   * the test), which is what a blocked event loop looks like to the server: no heartbeats at all. Hung attempts
   * end when the test opens `gate`, so the workers can shut down.
   */
  it('fails a step whose heartbeats stop on a live worker with step, attempts and cause; re-routes when the worker is gone', async () => {
    const connection = await NativeConnection.connect({ address: cfg.temporalAddress });
    const bundle = await workflowBundle();
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const hang = async (): Promise<never> => {
      await gate;
      throw new Error('released at the end of the test');
    };
    const start = async (name: string, extractCrops: (input: StepInput) => Promise<unknown>) => {
      const m = mockActivities();
      const taskQueue = `live-${name}-${randomUUID().slice(0, 6)}`;
      const { workers, queues } = await createPipelineWorkers({
        connection,
        namespace: cfg.temporalNamespace,
        taskQueue,
        workflowBundle: bundle,
        cpuActivities: { ...m.cpu, extractCrops },
        gpuActivities: m.gpu,
        shutdownGraceTime: '1s',
        workerId: `${name}-${randomUUID().slice(0, 6)}`,
        liveness: { intervalMs: 3_600_000 },
      });
      const running = workers.map((w) => w.run());
      return { m, taskQueue, workers, queues, running };
    };
    // Case 1, live worker: every attempt of step 6 hangs without a heartbeat; the worker keeps polling.
    const liveAttempts: { attempt: number; queue: string }[] = [];
    const live = await start('alive', () => {
      const { attempt, taskQueue } = Context.current().info;
      liveAttempts.push({ attempt, queue: taskQueue });
      return hang();
    });
    // Case 2, worker gone during the last attempt: its own CPU queue is no longer polled once attempt 8 has
    // started (the worker stops polling at shutdown; the hung attempt never reports, like a killed process).
    // After the re-route, on the shared queue, the step completes.
    let gone: Awaited<ReturnType<typeof start>> | undefined;
    gone = await start('gone', async (input) => {
      const info = Context.current().info;
      if (info.taskQueue === gone!.taskQueue) return gone!.m.cpu.extractCrops(input);
      if (info.attempt === 8) void gone!.workers[1].shutdown();
      return hang();
    });
    try {
      const tenantId = uniq();
      const [liveRun, goneRun] = await Promise.all([
        startRun(client, { ...cfg, taskQueue: live.taskQueue }, { tenantId, videos: [{ source: '/a.mp4', videoGuid: 'v1' }], options: { routing: ROUTING } }),
        startRun(client, { ...cfg, taskQueue: gone.taskQueue }, { tenantId: `${tenantId}x`, videos: [{ source: '/a.mp4', videoGuid: 'v1' }], options: { routing: ROUTING } }),
      ]);
      const [liveOutcome, goneOutcome] = await Promise.allSettled([liveRun.handle.result(), goneRun.handle.result()]);

      // Live worker: the run fails, and says which step failed, after how many attempts, and why.
      expect(liveOutcome.status).toBe('rejected');
      const err = (liveOutcome as PromiseRejectedResult).reason;
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const failure = (err as WorkflowFailedError).cause as ApplicationFailure;
      expect(failure.type).toBe('Timeout');
      expect(failure.message).toMatch(/^video v1 \(\/a\.mp4\): step 6 extractCrops failed on attempt 8 of 8: Timeout: no heartbeat within the heartbeat timeout/);
      // Not treated as a lost worker: all 8 attempts ran on the worker's own queue, nothing was re-routed.
      expect(liveAttempts).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((attempt) => ({ attempt, queue: live.queues.cpu })));
      const end = live.m.records.find((r) => r.status !== 'running')!;
      expect(end.status).toBe('failed');
      const stepMessage = failure.message.replace(/^video v1 \(\/a\.mp4\): /, '');
      expect(end.error).toEqual({ type: 'Timeout', message: stepMessage });
      expect(end.summary?.videos[0].routing?.reroutes).toEqual([]);
      expect(end.summary?.videos[0].error).toBe(stepMessage);

      // Worker gone during the last attempt: the ping finds nobody, the step moves to the shared queue.
      expect(goneOutcome.status).toBe('fulfilled');
      const summary = (goneOutcome as PromiseFulfilledResult<RunSummary>).value;
      expect(summary.status).toBe('completed');
      expect(summary.videos[0].routing?.reroutes).toEqual([expect.objectContaining({ step: 'extractCrops', from: gone.queues.cpu, to: gone.taskQueue })]);
      expect(gone.m.calls.find((c) => c.name === 'extractCrops')?.queue).toBe(gone.taskQueue);
    } finally {
      open();
      for (const w of [...live.workers, ...gone.workers]) if (w.getState() === 'RUNNING') w.shutdown();
      await Promise.allSettled([...live.running, ...gone.running]);
      await connection.close();
    }
  }, 400_000);
});

/**
 * Workflow logic against the real Temporal dev server with mocked activities: progress query, cancel
 * signal and native cancellation, validation errors, search attributes, idempotent starts.
 */
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config';
import { startRun } from '../src/cli/client';
import { runWorkflowId, segmentWorkflowId, videoWorkflowId } from '../src/workflows/ids';
import { PATCH_CLASS_BATCHES, PATCH_SEGMENT_WORKFLOWS, PATCH_VIDEO_SEGMENTS } from '../src/workflows/processVideo';
import { cancelSignal, PIPELINE_STEP, progressQuery, RUN_GUID, TENANT_ID } from '../src/workflows/messages';
import { STEP_NAMES } from '../src/workflows/steps';
import { ErrorType, PipelineError, toApplicationFailure } from '../src/errors';
import type { StepInput } from '../src/workflows/types';
import { WORKER_ID } from '../src/workers/worker';
import { PATCH_RUN_DATASET, PATCH_VIDEO_TRACKS } from '../src/workflows/trainPipeline';
import { patchIds } from './fixtures/histories/fixtures';
import { mockActivities } from './helpers/mockActivities';
import { testClient, withWorkers } from './helpers/temporal';

let client: Client;
beforeAll(async () => {
  client = await testClient();
});
afterAll(async () => {
  await client?.connection.close();
});

const uniq = () => `t${Math.random().toString(36).slice(2, 10)}`;

describe('trainPipeline workflow (mocked activities, real dev server)', () => {
  it('runs the nine steps per video on the right queues and returns the summary', async () => {
    const m = mockActivities();
    const tenantId = uniq();
    const queues = new Map<string, string>();
    const summary = await withWorkers(
      m.cpu,
      async (taskQueue) => {
        const run = await startRun(client, { ...loadConfig(), taskQueue }, { tenantId, videos: [{ source: '/a.mp4' }, { source: '/b-no-pitch.mp4' }] });
        queues.set(run.workflowId, taskQueue);
        return run.handle.result();
      },
      m.gpu,
    );
    const queueOf = (workflowId: string) => queues.get(workflowId)!;
    expect(summary.status).toBe('completed');
    expect(summary.videos).toHaveLength(2);
    for (const v of summary.videos) expect(v.counts).toEqual({ frames: 20, detections: 50, tracks: 4, crops: 40, train: 30, val: 10 });
    // Step 4's pitch decision is part of each video's summary, "no pitch" included.
    expect(summary.videos.map((v) => v.pitch)).toEqual([
      { found: true, framesPitchLike: 12, framesSampled: 16, reason: 'mock: grass' },
      { found: false, framesPitchLike: 0, framesSampled: 16, reason: 'mock: no grass' },
    ]);
    expect(summary.cache).toEqual({ hits: 2 * 9 * 2, misses: 2 * 9, bytesFromCache: 2 * 9 * 100, artifactDownloads: 2 * 9 });
    const perVideo = m.calls.filter((c) => (c.input as StepInput).videoGuid === summary.videos[0].videoGuid);
    expect(perVideo.map((c) => c.name)).toEqual([...STEP_NAMES]);
    // Worker-specific task queues: CPU steps on this worker's own CPU queue, GPU steps on its own GPU queue.
    const tq = queueOf(summary.workflowId);
    for (const c of perVideo) {
      const gpuStep = c.name === 'detectPlayers' || c.name === 'removeCropBackground';
      expect(c.queue).toBe(`${tq}${gpuStep ? '-gpu' : ''}@${WORKER_ID}`);
    }
    expect(summary.videos[0].routing).toMatchObject({ cpu: `${tq}@${WORKER_ID}`, gpu: `${tq}-gpu@${WORKER_ID}`, reroutes: [] });
    // Each video's cache is released on both queues that hold some of it.
    for (const v of summary.videos) {
      expect(m.releases.filter((r) => r.videoGuid === v.videoGuid).map((r) => r.queue).sort()).toEqual([`${tq}-gpu@${WORKER_ID}`, `${tq}@${WORKER_ID}`]);
    }
    expect(m.records.map((r) => r.status)).toEqual(['running', 'completed']);
    expect(m.records[1].summary?.runGuid).toBe(summary.runGuid);
    // Two videos: once both completed, their datasets are merged into the run-level dataset, on the run's
    // (shared CPU) queue, before the final record, which carries it.
    const merges = m.calls.filter((c) => c.name === 'mergeRunDataset');
    expect(merges).toHaveLength(1);
    expect(merges[0].input).toEqual({ tenantId, runGuid: summary.runGuid, videoGuids: summary.videos.map((v) => v.videoGuid) });
    expect(merges[0].queue).toBe(tq);
    expect(summary.dataset).toMatchObject({ classes: 8, train: 60, val: 20 });
    expect(m.records[1].summary?.dataset).toEqual(summary.dataset);
    expect(m.calls.findIndex((c) => c.name === 'mergeRunDataset')).toBe(m.calls.length - 1);
  });

  it('hands a video its corrected tracks in every step input, behind the video-tracks patch; a single video makes no run dataset', async () => {
    const m = mockActivities();
    const tenantId = uniq();
    const { summary, history } = await withWorkers(
      m.cpu,
      async (taskQueue) => {
        const run = await startRun(client, { ...loadConfig(), taskQueue }, { tenantId, videos: [{ source: '/a.mp4', tracks: 'gs://bkt/t/mot.txt' }] });
        return { summary: await run.handle.result(), history: await run.handle.fetchHistory() };
      },
      m.gpu,
    );
    expect(summary.status).toBe('completed');
    expect(m.calls.filter((c) => STEP_NAMES.includes(c.name as never)).map((c) => (c.input as StepInput).tracks)).toEqual(STEP_NAMES.map(() => 'gs://bkt/t/mot.txt'));
    const patches = patchIds(history);
    expect(patches).toContain(PATCH_VIDEO_TRACKS);
    expect(patches).not.toContain(PATCH_RUN_DATASET);
    expect(m.calls.some((c) => c.name === 'mergeRunDataset')).toBe(false);
    expect(summary.dataset).toBeUndefined();
  });

  it('fans step 5 of a long video out over its segments on the shared GPU queue, one child workflow each, behind the video-segments patch, then stitches', async () => {
    const m = mockActivities();
    const tenantId = uniq();
    const { summary, history, childHistory, segmentRuns, taskQueue, runGuid } = await withWorkers(
      m.cpu,
      async (taskQueue) => {
        const run = await startRun(client, { ...loadConfig(), taskQueue }, { tenantId, videos: [{ source: '/long-segments.mp4' }] });
        const summary = await run.handle.result();
        const videoId = videoWorkflowId(run.workflowId, summary.videos[0].videoGuid);
        const child = client.workflow.getHandle(videoId);
        const segmentRuns = await Promise.all(
          [0, 1, 2].map(async (k) => {
            const h = client.workflow.getHandle(segmentWorkflowId(videoId, k));
            return { description: await h.describe(), history: await h.fetchHistory() };
          }),
        );
        return { summary, history: await run.handle.fetchHistory(), childHistory: await child.fetchHistory(), segmentRuns, taskQueue, runGuid: run.runGuid };
      },
      m.gpu,
    );
    expect(summary.status).toBe('completed');
    expect(history.events!.length).toBeGreaterThan(0);
    // Step 3 planned three segments: each is tracked once, on the shared GPU queue (any worker), before step 5.
    const names = m.calls.map((c) => c.name);
    const segs = m.calls.filter((c) => c.name === 'detectSegment');
    expect(segs.map((c) => (c.input as { segment: { index: number } }).segment.index).sort()).toEqual([0, 1, 2]);
    for (const c of segs) expect(c.queue).toBe(`${taskQueue}-gpu`);
    expect(names.lastIndexOf('detectSegment')).toBeLessThan(names.indexOf('detectPlayers'));
    expect(names.indexOf('initializeGrassMask')).toBeLessThan(names.indexOf('detectSegment'));
    // Step 5 gets the segments to stitch and runs on the video's own GPU queue; the other steps are unchanged.
    const detect = m.calls.find((c) => c.name === 'detectPlayers')!;
    expect((detect.input as { segments?: unknown[] }).segments).toHaveLength(3);
    expect(detect.queue).toBe(`${taskQueue}-gpu@${WORKER_ID}`);
    expect(m.calls.filter((c) => STEP_NAMES.includes(c.name as never)).map((c) => c.name)).toEqual([...STEP_NAMES]);
    // Each segment is a trackSegment child of the video, with the run's search attributes and its own history,
    // in which its activity carries its own id; the video schedules no detectSegment itself. Patch markers recorded.
    const started = childHistory.events!.flatMap((e) => (e.startChildWorkflowExecutionInitiatedEventAttributes ? [e.startChildWorkflowExecutionInitiatedEventAttributes] : []));
    expect(started.map((c) => c.workflowType?.name)).toEqual(['trackSegment', 'trackSegment', 'trackSegment']);
    expect(childHistory.events!.some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'detectSegment')).toBe(false);
    for (const [k, seg] of segmentRuns.entries()) {
      expect(seg.description.type).toBe('trackSegment');
      expect(seg.description.status.name).toBe('COMPLETED');
      expect(seg.description.typedSearchAttributes.get(TENANT_ID)).toBe(tenantId);
      expect(seg.description.typedSearchAttributes.get(RUN_GUID)).toBe(runGuid);
      expect(seg.description.typedSearchAttributes.get(PIPELINE_STEP)).toBe('completed');
      const scheduled = seg.history.events!.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes] : []));
      expect(scheduled.map((a) => [a.activityType?.name, a.activityId, a.taskQueue?.name])).toEqual([['detectSegment', `detectSegment-${k}`, `${taskQueue}-gpu`]]);
    }
    const patches = patchIds(childHistory);
    expect(patches).toContain(PATCH_VIDEO_SEGMENTS);
    expect(patches).toContain(PATCH_SEGMENT_WORKFLOWS);
    // Each segment's storage counters count in the video's: 9 steps and 3 segments.
    expect(summary.cache.hits).toBe(2 * 12);
    // The cache is released wherever a segment says it cached (the mock reports the queue it ran on).
    expect(m.releases.map((r) => r.queue).sort()).toEqual([`${taskQueue}-gpu@${WORKER_ID}`, `${taskQueue}-gpu`, `${taskQueue}@${WORKER_ID}`].sort());
  });

  it('fails the video naming step 5, the attempt and the cause when a segment child fails for good; no later step runs', async () => {
    const m = mockActivities();
    const detectSegment = m.gpu.detectSegment;
    m.gpu.detectSegment = async (input) => {
      const { segment } = input as StepInput & { segment: { index: number } };
      if (segment.index === 1) throw toApplicationFailure(new PipelineError(ErrorType.BadMedia, `segment ${segment.index}`, 'undecodable frames'), 1);
      return detectSegment(input);
    };
    const { err, videoHistory, segment } = await withWorkers(
      m.cpu,
      async (taskQueue) => {
        const run = await startRun(client, { ...loadConfig(), taskQueue }, { tenantId: uniq(), videos: [{ source: '/long-segments.mp4' }] });
        const err = await run.handle.result().catch((e: unknown) => e);
        const videoId = videoWorkflowId(run.workflowId, (await run.handle.query(progressQuery)).videos[0].videoGuid);
        return { err, videoHistory: await client.workflow.getHandle(videoId).fetchHistory(), segment: await client.workflow.getHandle(segmentWorkflowId(videoId, 1)).describe() };
      },
      m.gpu,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const failed = videoHistory.events!.find((e) => e.workflowExecutionFailedEventAttributes)!.workflowExecutionFailedEventAttributes!.failure!;
    expect(failed.message).toBe('step 5 detectPlayers failed on attempt 1 of 8: BadMedia: segment 1: undecodable frames');
    expect(segment.status.name).toBe('FAILED');
    expect(m.calls.some((c) => c.name === 'detectPlayers' || c.name === 'extractCrops')).toBe(false);
    expect(m.records.at(-1)!.status).toBe('failed');
  });

  it('tracks, crops and augments a video of one segment and one class batch in one piece, with no patch marker', async () => {
    const m = mockActivities();
    const { history } = await withWorkers(
      m.cpu,
      async (taskQueue) => {
        const run = await startRun(client, { ...loadConfig(), taskQueue }, { tenantId: uniq(), videos: [{ source: '/a.mp4' }] });
        const summary = await run.handle.result();
        return { history: await client.workflow.getHandle(videoWorkflowId(run.workflowId, summary.videos[0].videoGuid)).fetchHistory() };
      },
      m.gpu,
    );
    expect(m.calls.some((c) => c.name === 'detectSegment')).toBe(false);
    const patches = patchIds(history);
    expect(patches).not.toContain(PATCH_VIDEO_SEGMENTS);
    expect(patches).not.toContain(PATCH_SEGMENT_WORKFLOWS);
    // One class batch too: steps 6-8 crop, treat and augment the video in one piece.
    expect(m.calls.some((c) => c.name.endsWith('Batch'))).toBe(false);
    expect(patches).not.toContain(PATCH_CLASS_BATCHES);
  });

  it('fans steps 6, 7 and 8 of a video of many boxes out over its class batches on the shared queues, behind the class-batches patch', async () => {
    const m = mockActivities();
    const { summary, childHistory, taskQueue } = await withWorkers(
      m.cpu,
      async (taskQueue) => {
        const run = await startRun(client, { ...loadConfig(), taskQueue }, { tenantId: uniq(), videos: [{ source: '/many-batches.mp4' }] });
        const summary = await run.handle.result();
        const child = client.workflow.getHandle(videoWorkflowId(run.workflowId, summary.videos[0].videoGuid));
        return { summary, childHistory: await child.fetchHistory(), taskQueue };
      },
      m.gpu,
    );
    expect(summary.status).toBe('completed');
    // Step 5 planned three batches: each is cropped once before step 6, treated once before step 7 and augmented
    // once before step 8, on the step's shared queue (any worker: CPU, GPU for step 7).
    const names = m.calls.map((c) => c.name);
    for (const [part, queue, before] of [['cropBatch', taskQueue, 'extractCrops'], ['backgroundBatch', `${taskQueue}-gpu`, 'removeCropBackground'], ['augmentBatch', taskQueue, 'augmentCrops']] as const) {
      const calls = m.calls.filter((c) => c.name === part);
      expect(calls.map((c) => (c.input as { batch: { index: number } }).batch.index).sort(), part).toEqual([0, 1, 2]);
      for (const c of calls) expect(c.queue).toBe(queue);
      expect(names.lastIndexOf(part)).toBeLessThan(names.indexOf(before));
      expect(names.indexOf(STEP_NAMES[STEP_NAMES.indexOf(before) - 1])).toBeLessThan(names.indexOf(part));
    }
    // Steps 6-9 get the batches (to merge, gather, count and copy from) and run on the video's own queues.
    for (const name of ['extractCrops', 'removeCropBackground', 'augmentCrops', 'createTrainingAndValidationSets']) {
      const c = m.calls.find((x) => x.name === name)!;
      expect((c.input as { batches?: unknown[] }).batches, name).toHaveLength(3);
      expect(c.queue).toBe(name === 'removeCropBackground' ? `${taskQueue}-gpu@${WORKER_ID}` : `${taskQueue}@${WORKER_ID}`);
    }
    expect(m.calls.filter((c) => STEP_NAMES.includes(c.name as never)).map((c) => c.name)).toEqual([...STEP_NAMES]);
    const scheduled = childHistory.events!.flatMap((e) => (e.activityTaskScheduledEventAttributes?.activityType?.name?.endsWith('Batch') ? [e.activityTaskScheduledEventAttributes.activityId] : []));
    expect(scheduled.sort()).toEqual(['augmentBatch-0', 'augmentBatch-1', 'augmentBatch-2', 'backgroundBatch-0', 'backgroundBatch-1', 'backgroundBatch-2', 'cropBatch-0', 'cropBatch-1', 'cropBatch-2']);
    expect(patchIds(childHistory)).toContain(PATCH_CLASS_BATCHES);
    // Each batch's storage counters count in the video's: 9 steps and 3 x 3 batches.
    expect(summary.cache.hits).toBe(2 * 18);
    expect(m.releases.map((r) => r.queue).sort()).toEqual([`${taskQueue}-gpu@${WORKER_ID}`, `${taskQueue}-gpu`, taskQueue, `${taskQueue}@${WORKER_ID}`].sort());
  });

  it.each([
    { part: 'detectSegment', source: '/long-segments.mp4', step: 'detectPlayers', progress: { segments: { total: 3, done: 0, framesDone: 0 } }, later: ['detectPlayers', 'extractCrops'] },
    { part: 'cropBatch', source: '/many-batches.mp4', step: 'extractCrops', progress: { batches: { total: 3, done: 0 } }, later: ['extractCrops', 'removeCropBackground'] },
    { part: 'augmentBatch', source: '/many-batches.mp4', step: 'augmentCrops', progress: { batches: { total: 3, done: 0 } }, later: ['augmentCrops', 'createTrainingAndValidationSets'] },
  ] as const)('counts the parts of a fanned-out step in progress and cancels a run while a $part runs: no later step starts', async ({ part, source, step, progress, later }) => {
    const m = mockActivities({ hold: part, gate: new Promise(() => undefined) });
    await withWorkers(
      m.cpu,
      async (taskQueue) => {
        const run = await startRun(client, { ...loadConfig(), taskQueue }, { tenantId: uniq(), videos: [{ source }] });
        for (let i = 0; i < 100 && !m.calls.some((c) => c.name === part); i++) await new Promise((r) => setTimeout(r, 100));
        const p = await run.handle.query(progressQuery);
        expect(p.videos[0]).toMatchObject({ currentStep: step, ...progress });
        const t0 = Date.now();
        await client.workflow.getHandle(run.workflowId).signal(cancelSignal, { reason: 'operator request', by: 'test' });
        const err = await run.handle.result().catch((e: unknown) => e);
        expect(Date.now() - t0).toBeLessThan(10_000);
        expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
        if (part === 'detectSegment') {
          // The segments' child workflows were cancelled with the run: none is left running.
          const videoId = videoWorkflowId(run.workflowId, p.videos[0].videoGuid);
          const states = await Promise.all([0, 1, 2].map(async (k) => (await client.workflow.getHandle(segmentWorkflowId(videoId, k)).describe()).status.name));
          expect(states).toEqual(['CANCELLED', 'CANCELLED', 'CANCELLED']);
        }
      },
      m.gpu,
    );
    expect(m.records.at(-1)!.status).toBe('cancelled');
    expect(m.calls.some((c) => (later as readonly string[]).includes(c.name))).toBe(false);
  });

  it('answers the progress query, sets search attributes, and does not run the same run twice', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const m = mockActivities({ hold: 'detectPlayers', gate });
    const tenantId = uniq();
    await withWorkers(
      m.cpu,
      async (taskQueue) => {
        const cfg = { ...loadConfig(), taskQueue };
        const input = { tenantId, videos: [{ source: '/a.mp4' }] };
        const run = await startRun(client, cfg, input);
        expect(run.workflowId).toBe(runWorkflowId(tenantId, run.runGuid));
        let p = await run.handle.query(progressQuery);
        for (let i = 0; i < 100 && p.videos[0].currentStep !== 'detectPlayers'; i++) {
          await new Promise((r) => setTimeout(r, 100));
          p = await run.handle.query(progressQuery);
        }
        expect(p.status).toBe('running');
        expect(p.videos[0].currentStep).toBe('detectPlayers');
        expect(p.videos[0].stepsDone).toBe(4);
        expect(p.videos[0].counts.frames).toBe(20);
        expect(p.videos[0].pitch).toMatchObject({ found: true, framesSampled: 16 }); // known from step 4 on
        expect(p.fraction).toBeCloseTo(4 / 9);
        // Same input again: same workflow id, attached, not a second execution.
        const again = await startRun(client, cfg, input);
        expect(again.workflowId).toBe(run.workflowId);
        expect((await again.handle.describe()).runId).toBe((await run.handle.describe()).runId);
        release();
        await run.handle.result();
        const desc = await run.handle.describe();
        expect(desc.typedSearchAttributes.get(TENANT_ID)).toBe(tenantId);
        expect(desc.typedSearchAttributes.get(RUN_GUID)).toBe(run.runGuid);
        expect(desc.typedSearchAttributes.get(PIPELINE_STEP)).toBe('completed');
        // After completion, a new start does not run it again either.
        const third = await startRun(client, cfg, input);
        expect(third.started).toBe(false);
        expect((await third.handle.describe()).runId).toBe(desc.runId);
      },
      m.gpu,
    );
    expect(m.calls.filter((c) => c.name === 'importVideo')).toHaveLength(1);
  });

  for (const how of ['signal', 'native'] as const) {
    it(`cancels promptly via ${how === 'signal' ? 'the cancel signal' : 'native cancellation'} and records it`, async () => {
      const m = mockActivities({ hold: 'extractFramesForDetections', gate: new Promise(() => undefined) });
      const tenantId = uniq();
      await withWorkers(
        m.cpu,
        async (taskQueue) => {
          const run = await startRun(client, { ...loadConfig(), taskQueue }, { tenantId, videos: [{ source: '/a.mp4' }] });
          for (let i = 0; i < 100 && !m.calls.some((c) => c.name === 'extractFramesForDetections'); i++) await new Promise((r) => setTimeout(r, 100));
          const t0 = Date.now();
          if (how === 'signal') {
            // Another service needs only the workflow id.
            await client.workflow.getHandle(run.workflowId).signal(cancelSignal, { reason: 'operator request', by: 'test' });
          } else {
            await run.handle.cancel();
          }
          const err = await run.handle.result().catch((e: unknown) => e);
          expect(Date.now() - t0).toBeLessThan(10_000);
          expect(err).toBeInstanceOf(WorkflowFailedError);
          expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
          expect((await run.handle.describe()).status.name).toBe('CANCELLED');
        },
        m.gpu,
      );
      const end = m.records.at(-1)!;
      expect(end.status).toBe('cancelled');
      expect(end.cancellation?.reason).toBe(how === 'signal' ? 'operator request' : 'workflow cancellation requested');
      if (how === 'signal') expect(end.cancellation?.by).toBe('test');
      expect(end.summary?.videos[0].status).toBe('cancelled');
      expect(m.calls.some((c) => c.name === 'detectPlayers')).toBe(false);
      // The cancelled video's cache is released on the worker that held it: both of its own queues, since the
      // cancelled step may have cached something before it stopped.
      const videoGuid = (m.calls[0].input as StepInput).videoGuid;
      const own = m.calls[0].queue;
      expect(own).toMatch(/@/);
      expect(m.releases.filter((r) => r.videoGuid === videoGuid).map((r) => r.queue).sort()).toEqual([own.replace('@', '-gpu@'), own].sort());
    });
  }

  it('re-routes the remaining steps to the shared queues when the claimed worker is gone', async () => {
    const m = mockActivities();
    const tenantId = uniq();
    // A worker that answers the claim and then vanishes: nobody polls its queues.
    const ghost = { workerId: 'ghost', cpu: 'ghost-cpu-queue', gpu: 'ghost-gpu-queue' };
    const cpu = { ...m.cpu, claimWorker: async () => ghost };
    let taskQueue = '';
    const summary = await withWorkers(
      cpu,
      async (q) => {
        taskQueue = q;
        const options = { routing: { scheduleToStartSeconds: 1 } };
        const run = await startRun(client, { ...loadConfig(), taskQueue: q }, { tenantId, videos: [{ source: '/a.mp4' }], options });
        return run.handle.result();
      },
      m.gpu,
    );
    expect(summary.status).toBe('completed');
    // The first step waited 1 s on the ghost's queue, then it and every later CPU and GPU step ran on the shared queues.
    expect(m.calls.map((c) => c.name)).toEqual([...STEP_NAMES]);
    for (const c of m.calls) expect(c.queue).toBe(c.name === 'detectPlayers' || c.name === 'removeCropBackground' ? `${taskQueue}-gpu` : taskQueue);
    const routing = summary.videos[0].routing!;
    expect(routing.reroutes).toHaveLength(1);
    expect(routing.reroutes[0]).toMatchObject({ step: 'importVideo', from: 'ghost-cpu-queue', to: taskQueue });
    expect(routing.reroutes[0].reason).toContain('ghost');
    expect(routing).toMatchObject({ cpu: taskQueue, gpu: `${taskQueue}-gpu` });
  });

  it.each([
    ['empty video list', { tenantId: 'acme', videos: [] }, 'videos', true],
    ['unknown option', { tenantId: 'acme', videos: [{ source: '/a.mp4' }], options: { frameStrid: 3 } }, 'options', true],
    ['unsupported scheme', { tenantId: 'acme', videos: [{ source: 'ftp://x/y.mp4' }] }, 'unsupported scheme', true],
    ['tenant id with ..', { tenantId: '../other', videos: [{ source: '/a.mp4' }] }, 'tenantId', false],
    ['tenant id with /', { tenantId: 'a/b', videos: [{ source: '/a.mp4' }] }, 'tenantId', false],
    ['empty tenant id', { tenantId: '', videos: [{ source: '/a.mp4' }] }, 'tenantId', false],
  ])('rejects bad input (%s) with a non-retryable InvalidInput failure', async (_label, input, mention, recorded) => {
    const m = mockActivities();
    const err = await withWorkers(
      m.cpu,
      async (taskQueue) => {
        // Started directly (as from the Temporal CLI), bypassing client-side validation.
        const handle = await client.workflow.start('trainPipeline', { taskQueue, workflowId: `bad-${uniq()}`, args: [input] });
        return handle.result().catch((e: unknown) => e);
      },
      m.gpu,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause.type).toBe('InvalidInput');
    expect(cause.nonRetryable).toBe(true);
    expect(cause.message).toContain(mention);
    expect(m.calls).toHaveLength(0);
    // A failed status is recorded only where the run's own prefix is well defined (valid tenant id).
    expect(m.records.map((r) => r.status)).toEqual(recorded ? ['failed'] : []);
  });
});

/**
 * No client mistake leaves a run Running forever: inputs over the size and count limits are refused at once
 * (client and workflow) and recorded, `recordRunStart` carries the input once, undecodable payloads (signal or
 * input) are dropped or refused instead of failing every workflow task, `cancel` payloads are brought to their
 * contract, and an invalid tenant id with another input error fails once as InvalidInput.
 *
 * Real dev server and real workflows; mocked step activities (test/helpers/mockActivities.ts), and the real
 * run bookkeeping activities on the GCS emulator where they are the subject.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityDeps } from '../src/activities';
import { createRunActivities } from '../src/activities/run';
import { prepareInput, startRun } from '../src/cli/client';
import { loadConfig } from '../src/config';
import { PipelineError } from '../src/errors';
import { createObjectStore } from '../src/storage/gcs';
import { RunLayout } from '../src/storage/layout';
import {
  jsonByteLength,
  MAX_CANCEL_BY_LENGTH,
  MAX_CANCEL_REASON_LENGTH,
  MAX_INPUT_BYTES,
  MAX_SOURCE_LENGTH,
  MAX_VIDEO_PROGRESS_BYTES,
  MAX_VIDEOS_PER_RUN,
  sanitizeCancelRequest,
  validateInput,
} from '../src/validation';
import { runWorkflowId } from '../src/workflows/ids';
import { cancelSignal, progressQuery } from '../src/workflows/messages';
import { MAX_PROGRESS_TEXT_LENGTH, sanitizeVideoProgress, stepsDoneOf } from '../src/workflows/progress';
import type { RunStartRecord, RunSummary, VideoProgress, VideoSummary } from '../src/workflows/types';
import { mockActivities } from './helpers/mockActivities';
import { GARBAGE_PAYLOAD, signalRaw, testClient, withWorkers } from './helpers/temporal';

const cfg = loadConfig();
const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost });
/** The real run bookkeeping activities over the test stack's GCS emulator. */
const runActivities = createRunActivities({ store, codeVersion: 'test', modelInfo: async (name: string) => ({ name, path: '', sha256: 'none' }) } as unknown as ActivityDeps);

const uniq = () => `t${Math.random().toString(36).slice(2, 10)}`;

/** Polls `cond` every 100 ms, at most `tries` times; returns whether it became true. */
async function until(cond: () => boolean | Promise<boolean>, tries = 300): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** What the history of `workflowId` says about workflow-task failures and scheduled activities. */
async function historyFacts(client: Client, workflowId: string) {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  return {
    workflowTaskFailures: events.filter((e) => e.workflowTaskFailedEventAttributes).length,
    activities: events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType!.name!] : [])),
    /** Bytes of the first payload of each scheduled activity, by activity type. */
    activityInputBytes: Object.fromEntries(
      events.flatMap((e) => {
        const a = e.activityTaskScheduledEventAttributes;
        return a ? [[a.activityType!.name!, (a.input?.payloads?.[0]?.data as Uint8Array | undefined)?.length ?? 0]] : [];
      }),
    ) as Record<string, number>,
    inputBytes: (events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data as Uint8Array | undefined)?.length ?? 0,
    signals: events.filter((e) => e.workflowExecutionSignaledEventAttributes).map((e) => e.workflowExecutionSignaledEventAttributes!.signalName!),
  };
}

/** The failure of a run that ended failed, as an ApplicationFailure. */
function failureOf(err: unknown): ApplicationFailure {
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

/** 300 videos with sources of about 4 KB each: about 1.2 MB of JSON, which the server accepts (limit 2 MB). */
function hugeInput(tenantId: string) {
  return { tenantId, runGuid: 'big', videos: Array.from({ length: 300 }, (_, i) => ({ source: `/videos/${String(i).padStart(3, '0')}-${'x'.repeat(4000)}.mp4` })) };
}

describe('limits on the input (pure)', () => {
  it('refuses an input over MAX_INPUT_BYTES or MAX_VIDEOS_PER_RUN, naming the field and the limit', () => {
    const huge = hugeInput('acme');
    expect(huge.videos[0].source.length).toBeLessThan(MAX_SOURCE_LENGTH);
    const bytes = jsonByteLength(huge);
    expect(bytes).toBeGreaterThan(1_200_000);
    expect(() => validateInput(huge)).toThrow(`input: is ${bytes} bytes of JSON, over the limit of ${MAX_INPUT_BYTES} bytes (MAX_INPUT_BYTES)`);
    const many = { tenantId: 'acme', videos: Array.from({ length: MAX_VIDEOS_PER_RUN + 1 }, (_, i) => ({ source: `/v${i}.mp4` })) };
    expect(() => validateInput(many)).toThrow(`videos: has ${MAX_VIDEOS_PER_RUN + 1} entries, over the limit of ${MAX_VIDEOS_PER_RUN} videos per run (MAX_VIDEOS_PER_RUN)`);
    expect(validateInput({ ...many, videos: many.videos.slice(1) }).videos).toHaveLength(MAX_VIDEOS_PER_RUN);
    // The client checks the input it would start with (absolute paths, derived GUIDs) the same way.
    expect(() => prepareInput(huge)).toThrow(/^input: is \d+ bytes of JSON, over the limit of 262144 bytes \(MAX_INPUT_BYTES\)$/);
    expect(() => prepareInput(many)).toThrow(PipelineError);
  });

  it('counts JSON bytes as UTF-8', () => {
    expect(jsonByteLength({ a: 'é€😀' })).toBe(Buffer.byteLength(JSON.stringify({ a: 'é€😀' }), 'utf8'));
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(jsonByteLength(cyclic)).toBe(Infinity);
  });

  it('a run at every limit keeps its largest activity payloads below 1 MB', () => {
    // As many videos as allowed, their sources sharing what MAX_INPUT_BYTES leaves (multi-byte characters).
    const per = Math.floor((MAX_INPUT_BYTES - 1024) / MAX_VIDEOS_PER_RUN / 3) - 40;
    const input = { tenantId: 'a'.repeat(63), runGuid: 'g'.repeat(64), videos: Array.from({ length: MAX_VIDEOS_PER_RUN }, (_, i) => ({ source: `/${i}-${'€'.repeat(per)}`, videoGuid: `${i}-${'v'.repeat(60)}` })) };
    const v = validateInput(input);
    const start: RunStartRecord = { tenantId: v.tenantId, runGuid: input.runGuid, workflowId: runWorkflowId(v.tenantId, input.runGuid), input, videoGuids: v.videos.map((x) => x.videoGuid!) };
    expect(jsonByteLength(start)).toBeLessThan(MAX_INPUT_BYTES + MAX_VIDEOS_PER_RUN * 70 + 1024);
    // Worst-case summary: every video failed with an error naming its source, after two re-routes.
    const queue = `train-pipeline@${'w'.repeat(40)}`;
    const io = { gcsRequests: 1e9, bytesUploaded: 1e12, bytesDownloaded: 1e12, cacheHits: 1e9, cacheMisses: 1e9, bytesFromCache: 1e12, artifactDownloads: 1e9, uploadsSkipped: 1e9 };
    const videos: VideoSummary[] = v.videos.map((x) => ({
      videoGuid: x.videoGuid!,
      source: x.source,
      status: 'failed',
      counts: { frames: 1e9, detections: 1e9, tracks: 1e9, crops: 1e9, train: 1e9, val: 1e9 },
      io,
      routing: { cpu: queue, gpu: queue, cpuWorker: 'w'.repeat(40), gpuWorker: 'w'.repeat(40), reroutes: ['importVideo', 'detectPlayers'].map((step) => ({ step: step as 'importVideo', from: queue, to: queue, reason: `activity ScheduleToStart timeout: worker ${'w'.repeat(40)} is gone` })) },
      error: `${x.source}: not a readable media file (${'e'.repeat(200)})`,
    }));
    const summary: RunSummary = { status: 'failed', tenantId: v.tenantId, runGuid: input.runGuid, workflowId: start.workflowId, bucket: 'b'.repeat(63), outputPrefix: 'x'.repeat(200), videos, cache: { hits: 1, misses: 1, bytesFromCache: 1, artifactDownloads: 1 }, storage: { requests: 1, bytesUploaded: 1, bytesDownloaded: 1 } };
    expect(jsonByteLength({ ...start, status: 'failed', summary })).toBeLessThan(1024 * 1024);
  });
});

/** A `videoProgress` report as an attacker sends it: every field off its type or bounds, just under 32 KiB. */
function forgedReport(videoGuid: string): Record<string, unknown> {
  return {
    videoGuid,
    source: 'forged',
    status: 'done',
    currentStep: 'mineBitcoin',
    stepsDone: 1e9,
    totalSteps: -1,
    counts: { frames: 12, tracks: 'x', crops: -1, extra: 5 },
    pitch: { found: true, framesSampled: 3, reason: 'A'.repeat(31_000) },
    io: { gcsRequests: 'lots', bytesUploaded: 7 },
    routing: { cpu: 'q', gpu: 'g', reroutes: Array.from({ length: 3 }, () => ({ step: 'importVideo', from: 'a', to: 'b', reason: 'r' })) },
    error: 'forged error',
  };
}

describe('videoProgress reports (pure)', () => {
  const known: VideoProgress = { videoGuid: 'v1', source: '/v1.mp4', status: 'pending', currentStep: null, stepsDone: 0, totalSteps: 9, counts: {} };
  it('keeps a child\'s own report as it is', () => {
    const io = { gcsRequests: 3, bytesUploaded: 10, bytesDownloaded: 5, cacheHits: 2, cacheMisses: 1, bytesFromCache: 100, artifactDownloads: 1, uploadsSkipped: 0 };
    const report: VideoProgress = {
      ...known,
      status: 'running',
      currentStep: 'detectPlayers',
      stepsDone: 4,
      counts: { frames: 20 },
      pitch: { found: false, framesPitchLike: 0, framesSampled: 16, reason: '0 of 16 sampled frames are pitch-like' },
      io,
      routing: { cpu: 'q@w1', gpu: 'q-gpu@w1', cpuWorker: 'w1', gpuWorker: 'w1', reroutes: [{ step: 'importVideo', from: 'q@w0', to: 'q', reason: 'timeout: worker w0 is gone' }] },
      segments: { total: 8, done: 3, framesDone: 310 },
    };
    expect(sanitizeVideoProgress(JSON.parse(JSON.stringify(report)), known)).toEqual(report);
    // Segments done count in the run's fraction as a part of step 5.
    expect(stepsDoneOf(report)).toBeCloseTo(4 + (0.9 * 3) / 8, 10);
    expect(stepsDoneOf({ ...report, currentStep: 'extractCrops', stepsDone: 5 })).toBe(5);
  });

  it('keeps segment progress only as whole numbers with done at most total', () => {
    for (const segments of [{ total: 2, done: 3, framesDone: 1 }, { total: -1, done: 0, framesDone: 0 }, { total: 2, done: 1.5, framesDone: 0 }, { total: 2, done: 1 }, 'x']) {
      expect(sanitizeVideoProgress({ ...known, segments }, known).segments).toBeUndefined();
    }
  });

  it('keeps class batch progress the same way, and counts it in the fraction of steps 6, 7 and 8 only', () => {
    const report: VideoProgress = { ...known, status: 'running', currentStep: 'augmentCrops', stepsDone: 7, batches: { total: 4, done: 1 } };
    expect(sanitizeVideoProgress(JSON.parse(JSON.stringify(report)), known)).toEqual(report);
    expect(stepsDoneOf(report)).toBeCloseTo(7 + 0.9 / 4, 10);
    expect(stepsDoneOf({ ...report, currentStep: 'extractCrops', stepsDone: 5 })).toBeCloseTo(5 + 0.9 / 4, 10);
    expect(stepsDoneOf({ ...report, currentStep: 'removeCropBackground', stepsDone: 6 })).toBeCloseTo(6 + 0.9 / 4, 10);
    expect(stepsDoneOf({ ...report, currentStep: 'createTrainingAndValidationSets', stepsDone: 8 })).toBe(8);
    for (const batches of [{ total: 2, done: 3 }, { total: 2 }, { total: 1.5, done: 0 }, [1, 2]]) {
      expect(sanitizeVideoProgress({ ...known, batches }, known).batches).toBeUndefined();
    }
  });

  it('brings a forged report to the shape and bounds of a child\'s, with the run\'s own source', () => {
    const p = sanitizeVideoProgress(forgedReport('v1'), known);
    expect(p).toEqual({
      videoGuid: 'v1',
      source: '/v1.mp4',
      status: 'pending',
      currentStep: null,
      stepsDone: 0,
      totalSteps: 9,
      counts: { frames: 12 },
      pitch: { found: true, framesSampled: 3, reason: 'A'.repeat(MAX_PROGRESS_TEXT_LENGTH) },
      io: { gcsRequests: 0, bytesUploaded: 7, bytesDownloaded: 0, cacheHits: 0, cacheMisses: 0, bytesFromCache: 0, artifactDownloads: 0, uploadsSkipped: 0 },
      routing: { cpu: 'q', gpu: 'g', reroutes: [{ step: 'importVideo', from: 'a', to: 'b', reason: 'r' }, { step: 'importVideo', from: 'a', to: 'b', reason: 'r' }] },
    });
    for (const raw of [null, 'x', 7, [], { videoGuid: 'v1', counts: null, pitch: [], routing: 'q' }]) expect(sanitizeVideoProgress(raw, known)).toMatchObject({ videoGuid: 'v1', source: '/v1.mp4', counts: {} });
  });
});

describe('cancel payloads and input errors (pure)', () => {
  it('brings any cancel payload to { reason?, by? } within the limits, and never throws', () => {
    const long = 'r'.repeat(MAX_CANCEL_REASON_LENGTH + 5);
    expect(sanitizeCancelRequest({ reason: 'wrong video', by: 'ops' })).toEqual({ request: { reason: 'wrong video', by: 'ops' }, changes: [] });
    expect(sanitizeCancelRequest(undefined)).toEqual({ request: {}, changes: [] });
    expect(sanitizeCancelRequest({ reason: long, by: 'b'.repeat(MAX_CANCEL_BY_LENGTH + 1) })).toEqual({
      request: { reason: long.slice(0, MAX_CANCEL_REASON_LENGTH), by: 'b'.repeat(MAX_CANCEL_BY_LENGTH) },
      changes: [`reason truncated from ${long.length} to ${MAX_CANCEL_REASON_LENGTH} characters`, `by truncated from ${MAX_CANCEL_BY_LENGTH + 1} to ${MAX_CANCEL_BY_LENGTH} characters`],
    });
    expect(sanitizeCancelRequest({ reason: { nested: true }, by: 7, extra: 1 })).toEqual({
      request: {},
      changes: ['reason of type object dropped (expected a string)', 'by of type number dropped (expected a string)', 'unknown fields dropped: "extra"'],
    });
    expect(sanitizeCancelRequest('stop').changes).toEqual(['payload of type string dropped (expected { reason?, by? })']);
    expect(sanitizeCancelRequest([1]).request).toEqual({});
    // A cut never splits a surrogate pair.
    const emoji = `${'a'.repeat(MAX_CANCEL_REASON_LENGTH - 1)}😀`;
    expect(sanitizeCancelRequest({ reason: emoji }).request.reason).toBe('a'.repeat(MAX_CANCEL_REASON_LENGTH - 1));
  });

  it('names an invalid tenant id before any other field error (it decides whether the refusal can be recorded)', () => {
    expect(() => validateInput({ tenantId: 'a b', extra: 1, videos: [] })).toThrow(/^tenantId "a b": must match/);
    expect(() => validateInput({ tenantId: 'a b', extra: 1, videos: [] }, { legacy: true })).toThrow(/^input\.extra: unknown field/);
  });
});

describe('no client mistake wedges a run (real dev server)', () => {
  let client: Client;
  beforeAll(async () => {
    client = await testClient();
  });
  afterAll(async () => {
    await client?.connection.close();
  });

  it('an input of 300 videos with 4 KB sources is refused by the client, and by the workflow at once, and recorded', async () => {
    const t = uniq();
    const input = hugeInput(t);
    const m = mockActivities();
    const err = await withWorkers(
      m.cpu,
      async (taskQueue) => {
        // The client starts nothing.
        await expect(startRun(client, { ...cfg, taskQueue }, input)).rejects.toThrow(/MAX_INPUT_BYTES/);
        await expect(client.workflow.getHandle(runWorkflowId(t, 'big')).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
        // Started directly (as from the Temporal CLI): the workflow refuses it in its first task.
        const handle = await client.workflow.start('trainPipeline', { taskQueue, workflowId: runWorkflowId(t, 'big'), args: [input] });
        return handle.result().catch((e: unknown) => e);
      },
      m.gpu,
    );
    const failure = failureOf(err);
    expect([failure.type, failure.nonRetryable]).toEqual(['InvalidInput', true]);
    expect(failure.message).toBe(`input: is ${jsonByteLength(input)} bytes of JSON, over the limit of ${MAX_INPUT_BYTES} bytes (MAX_INPUT_BYTES)`);
    const facts = await historyFacts(client, runWorkflowId(t, 'big'));
    expect(facts.workflowTaskFailures).toBe(0);
    expect(facts.activities).toEqual(['recordRunEnd']);
    // Recorded in the run's own prefix, without the oversized input itself.
    expect(m.records).toHaveLength(1);
    expect(m.records[0]).toMatchObject({ tenantId: t, runGuid: 'big', status: 'failed', error: { type: 'InvalidInput', message: failure.message } });
    expect(m.records[0].input).toBeUndefined();
    expect(facts.activityInputBytes.recordRunEnd).toBeLessThan(4096);
  });

  it('recordRunStart carries the input once', async () => {
    const t = uniq();
    const input = { tenantId: t, videos: Array.from({ length: 8 }, (_, i) => ({ source: `/videos/${i}-${'y'.repeat(4000)}.mp4` })) };
    const m = mockActivities();
    const summary = await withWorkers(m.cpu, async (taskQueue) => (await startRun(client, { ...cfg, taskQueue }, input)).handle.result(), m.gpu);
    expect(summary.status).toBe('completed');
    const facts = await historyFacts(client, summary.workflowId);
    expect(facts.inputBytes).toBeGreaterThan(32_000);
    // The input once, plus the derived video GUIDs and the identifiers.
    expect(facts.activityInputBytes.recordRunStart).toBeLessThan(facts.inputBytes + 8 * 30 + 512);
    const start = m.records[0] as unknown as RunStartRecord;
    expect(start.videoGuids).toEqual(summary.videos.map((v) => v.videoGuid));
  });

  it('recordRunStart writes the options and videos it derives from the input, and still takes the older record', async () => {
    const t = uniq();
    const input = { tenantId: t, runGuid: 'r1', videos: [{ source: '/a.mp4' }, { source: 'gs://bucket-b/v.mp4', videoGuid: 'given' }], options: { frameStride: 3 } };
    const layout = new RunLayout(t, 'r1');
    const out = await runActivities.recordRunStart({ tenantId: t, runGuid: 'r1', workflowId: runWorkflowId(t, 'r1'), input, videoGuids: ['derived', 'given'] });
    expect(out).toEqual({ bucket: cfg.bucket, outputPrefix: `gs://${cfg.bucket}/${layout.prefix}` });
    const info = (await store.getJson<Record<string, any>>(layout.pipelineInfo))!;
    expect(info).toMatchObject({ status: 'running', input, videos: [{ videoGuid: 'derived', source: '/a.mp4' }, { videoGuid: 'given', source: 'gs://bucket-b/v.mp4' }] });
    expect(info.options).toEqual(validateInput(input).options);
    // Executions started before RunStartRecord send options and videos themselves.
    const legacy = { tenantId: t, runGuid: 'r2', workflowId: 'w', status: 'running' as const, input, options: validateInput(input).options, videos: [{ videoGuid: 'x', source: '/x.mp4' }] };
    await runActivities.recordRunStart(legacy);
    expect(await store.getJson<Record<string, any>>(new RunLayout(t, 'r2').pipelineInfo)).toMatchObject({ videos: legacy.videos, options: legacy.options });
    await store.deletePrefix(`${t}/`);
  });

  it('a cancel signal with an undecodable payload (and a foreign videoProgress) is dropped; the run stays queryable and completes', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const m = mockActivities({ hold: 'extractFramesForDetections', gate });
    const t = uniq();
    const { summary, progress } = await withWorkers(
      m.cpu,
      async (taskQueue) => {
        const run = await startRun(client, { ...cfg, taskQueue }, { tenantId: t, videos: [{ source: '/a.mp4' }] });
        expect(await until(() => m.calls.some((c) => c.name === 'extractFramesForDetections'))).toBe(true);
        // What `temporal workflow signal --name cancel --input-meta encoding=binary/garbage` sends.
        await signalRaw(client, run.workflowId, 'cancel', [GARBAGE_PAYLOAD]);
        await client.workflow.getHandle(run.workflowId).signal('videoProgress', null);
        const p = await run.handle.query(progressQuery);
        release();
        return { summary: await run.handle.result(), progress: p };
      },
      m.gpu,
    );
    expect(progress.status).toBe('running');
    expect(progress.cancelRequested).toBeUndefined();
    expect(progress.videos.map((v) => v.currentStep)).toEqual(['extractFramesForDetections']);
    expect(summary.status).toBe('completed');
    const facts = await historyFacts(client, summary.workflowId);
    expect(facts.signals).toEqual(expect.arrayContaining(['cancel', 'videoProgress']));
    expect(facts.workflowTaskFailures).toBe(0);
    expect(m.records.at(-1)?.status).toBe('completed');
  });

  it('an input that cannot be decoded fails the run once as InvalidInput', async () => {
    const m = mockActivities();
    const workflowId = `undecodable-${uniq()}`;
    const err = await withWorkers(
      m.cpu,
      async (taskQueue) => {
        await client.workflowService.startWorkflowExecution({
          namespace: client.options.namespace,
          workflowId,
          workflowType: { name: 'trainPipeline' },
          taskQueue: { name: taskQueue },
          input: { payloads: [{ metadata: { encoding: Buffer.from(GARBAGE_PAYLOAD.metadata.encoding) }, data: GARBAGE_PAYLOAD.data }] },
          identity: 'limits-test',
          requestId: randomUUID(),
        });
        return client.workflow.getHandle(workflowId).result().catch((e: unknown) => e);
      },
      m.gpu,
    );
    const failure = failureOf(err);
    expect([failure.type, failure.nonRetryable]).toEqual(['InvalidInput', true]);
    expect(failure.message).toBe('input: payload could not be decoded (argument 0: Unknown encoding: binary/garbage); send JSON (encoding json/plain)');
    expect((await historyFacts(client, workflowId)).workflowTaskFailures).toBe(0);
  });

  it('an oversized cancel reason is truncated, other fields dropped, and the run is cancelled', async () => {
    const m = mockActivities({ hold: 'extractFramesForDetections', gate: new Promise(() => undefined) });
    const t = uniq();
    const { err, workflowId, progress } = await withWorkers(
      m.cpu,
      async (taskQueue) => {
        const run = await startRun(client, { ...cfg, taskQueue }, { tenantId: t, videos: [{ source: '/a.mp4' }] });
        expect(await until(() => m.calls.some((c) => c.name === 'extractFramesForDetections'))).toBe(true);
        const payload = { reason: 'r'.repeat(1_500_000), by: { nested: { deep: ['x'] } }, extra: 'y' };
        await client.workflow.getHandle(run.workflowId).signal(cancelSignal, payload as never);
        const e = await run.handle.result().catch((x: unknown) => x);
        return { err: e, workflowId: run.workflowId, progress: await run.handle.query(progressQuery) };
      },
      m.gpu,
    );
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    const end = m.records.at(-1)!;
    expect(end.status).toBe('cancelled');
    expect(end.cancellation?.reason).toBe('r'.repeat(MAX_CANCEL_REASON_LENGTH));
    expect(end.cancellation?.by).toBeUndefined();
    expect(progress.cancelRequested?.reason).toHaveLength(MAX_CANCEL_REASON_LENGTH);
    const facts = await historyFacts(client, workflowId);
    expect(facts.workflowTaskFailures).toBe(0);
    expect(facts.activityInputBytes.recordRunEnd).toBeLessThan(16 * 1024);
  });

  it('forged videoProgress reports about every video cannot push the run summary over the payload limit: a cancelled run still ends', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const m = mockActivities({ hold: 'importVideo', gate });
    const t = uniq();
    // 72 reports of 31 KB are over Temporal's 2 MiB payload limit, each within the signal's own limit.
    const videos = Array.from({ length: 72 }, (_, i) => ({ source: `/v${i}.mp4`, videoGuid: `v${i}` }));
    expect(jsonByteLength(forgedReport('v71'))).toBeLessThan(MAX_VIDEO_PROGRESS_BYTES);
    expect(videos.length * jsonByteLength(forgedReport('v71'))).toBeGreaterThan(2 * 1024 * 1024);
    const { workflowId, ended } = await withWorkers(
      m.cpu,
      async (taskQueue) => {
        const run = await startRun(client, { ...cfg, taskQueue }, { tenantId: t, videos });
        // Every child has reported step 1 (held, or waiting for an activity slot), so no later report of its own
        // replaces the forged one.
        expect(await until(async () => (await run.handle.query(progressQuery)).videos.every((v) => v.currentStep === 'importVideo'), 1200)).toBe(true);
        const handle = client.workflow.getHandle(run.workflowId);
        // A cancelled video's summary is built from its last report.
        for (const v of videos) await handle.signal('videoProgress', forgedReport(v.videoGuid));
        await handle.signal(cancelSignal, { reason: 'forged reports' });
        // Either the run ends, or its workflow task fails (on every retry) on a payload over 2 MB.
        const ended = await until(async () => (await handle.describe()).status.name !== 'RUNNING' || (await historyFacts(client, run.workflowId)).workflowTaskFailures > 0, 1200);
        release();
        return { workflowId: run.workflowId, ended };
      },
      m.gpu,
    );
    expect(ended).toBe(true);
    const facts = await historyFacts(client, workflowId);
    expect(facts.workflowTaskFailures).toBe(0);
    expect((await client.workflow.getHandle(workflowId).describe()).status.name).toBe('CANCELLED');
    expect(facts.activityInputBytes.recordRunEnd).toBeLessThan(1024 * 1024);
    const end = m.records.at(-1)!;
    expect(end.status).toBe('cancelled');
    const summaries = end.summary!.videos;
    expect(summaries.map((v) => v.source)).toEqual(videos.map((v) => v.source));
    expect(summaries.every((v) => (v.pitch?.reason?.length ?? 0) <= MAX_PROGRESS_TEXT_LENGTH)).toBe(true);
  }, 600_000);

  it('an invalid tenant id with another input error fails once as InvalidInput naming the tenant id; a valid one is recorded', async () => {
    // Real run bookkeeping: it refuses an invalid tenant id itself, as non-retryable InvalidInput.
    const direct = await runActivities.recordRunEnd({ tenantId: 'a b', runGuid: 'r1', workflowId: 'w', status: 'failed' }).catch((e: unknown) => e);
    expect(direct).toBeInstanceOf(ApplicationFailure);
    expect([(direct as ApplicationFailure).type, (direct as ApplicationFailure).nonRetryable]).toEqual(['InvalidInput', true]);

    const m = mockActivities();
    const t = uniq();
    const ids = { bad: `bad-${uniq()}`, good: `bad-${uniq()}` };
    const [bad, good] = await withWorkers(
      { ...m.cpu, ...runActivities },
      async (taskQueue) => {
        const start = (workflowId: string, input: unknown) => client.workflow.start('trainPipeline', { taskQueue, workflowId, args: [input] });
        const a = await start(ids.bad, { tenantId: 'a b', extra: 1, videos: [] });
        const b = await start(ids.good, { tenantId: t, runGuid: 'r1', extra: 1, videos: [{ source: '/a.mp4' }] });
        return Promise.all([a.result().catch((e: unknown) => e), b.result().catch((e: unknown) => e)]);
      },
      m.gpu,
    );
    const badFailure = failureOf(bad);
    expect([badFailure.type, badFailure.nonRetryable]).toEqual(['InvalidInput', true]);
    expect(badFailure.message).toMatch(/^tenantId "a b": must match/);
    const badFacts = await historyFacts(client, ids.bad);
    expect(badFacts).toMatchObject({ workflowTaskFailures: 0, activities: [] });

    const goodFailure = failureOf(good);
    expect(goodFailure.message).toBe('input.extra: unknown field (allowed: tenantId, runGuid, videos, options)');
    expect((await historyFacts(client, ids.good)).activities).toEqual(['recordRunEnd']);
    const info = await store.getJson<Record<string, any>>(new RunLayout(t, 'r1').pipelineInfo);
    expect(info).toMatchObject({ status: 'failed', error: { type: 'InvalidInput', message: goodFailure.message }, input: { tenantId: t, extra: 1 } });
    await store.deletePrefix(new RunLayout(t, 'r1').prefix);
  });
});

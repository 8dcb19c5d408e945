/**
 * Replay tests: the recorded workflow histories of test/fixtures/histories (scripts/record-histories.ts;
 * one folder per recording, each made with one generation of the workflow code) are replayed with
 * `Worker.runReplayHistories` against the current workflow bundle (`bundlePipelineWorkflows`), which
 * must reproduce every one of them (no nondeterminism). A deliberately changed `processVideo`
 * (test/fixtures/changed-workflow) shows what such a test catches: without a patch it fails replay with a
 * DeterminismViolationError; behind `patched()` it replays every old history, while new executions take
 * the new branch and record a patch marker.
 *
 * Replay itself needs no server; the last test runs one execution on the test stack's dev server.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config';
import { startRun } from '../src/cli/client';
import { legacyVideoWorkflowId, segmentWorkflowId, videoWorkflowId } from '../src/workflows/ids';
import { bundlePipelineWorkflows, createPipelineWorkers, WORKFLOWS_PATH } from '../src/workers/worker';
import { CURRENT_RECORDING, loadHistory, patchIds, readManifest, SCENARIOS, type History, type HistoryFixture } from './fixtures/histories/fixtures';
import { PATCH_ID } from './fixtures/changed-workflow/extraStep';
import { PATCH_CLASS_BATCHES, PATCH_PROBE_WORKER, PATCH_RELEASE_OWN_QUEUES, PATCH_SEGMENT_WORKFLOWS, PATCH_VIDEO_SEGMENTS } from '../src/workflows/processVideo';
import { PATCH_RUN_DATASET } from '../src/workflows/trainPipeline';
import { mockActivities } from './helpers/mockActivities';
import { testClient, workflowBundle } from './helpers/temporal';

// Core logs each expected nondeterminism as a WARN "Failing workflow task"; the tests check the errors themselves.
Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });

const CHANGED_WORKFLOW_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'changed-workflow');
const manifest = readManifest();
const fixtures = manifest.histories;
const processVideoFixtures = fixtures.filter((f) => f.workflowType === 'processVideo');

/** Bundles one of the changed workflow modules of test/fixtures/changed-workflow (with the pipeline's interceptors). */
function changedBundle(module: 'unversioned' | 'patched'): Promise<WorkflowBundleWithSourceMap> {
  return bundlePipelineWorkflows(path.join(CHANGED_WORKFLOW_DIR, `${module}.ts`));
}

/** Replays `list` against `bundle`; returns per fixture file the replay error's class and message, or null. */
async function replay(bundle: WorkflowBundleWithSourceMap, list: HistoryFixture[] = fixtures): Promise<Record<string, string | null>> {
  const byId = new Map(list.map((f) => [f.workflowId, f.file]));
  const out: Record<string, string | null> = {};
  for await (const r of Worker.runReplayHistories({ workflowBundle: bundle, replayName: 'replay-test' }, list.map(loadHistory))) {
    out[byId.get(r.workflowId)!] = r.error ? `${r.error.name}: ${r.error.message}` : null;
  }
  return out;
}

/** The workflow type a history's first event names. */
const typeOf = (history: History) => history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;

let current: WorkflowBundleWithSourceMap;
let unversioned: WorkflowBundleWithSourceMap;
let patchedBundle: WorkflowBundleWithSourceMap;
beforeAll(async () => {
  current = await workflowBundle();
  unversioned = await changedBundle('unversioned');
  patchedBundle = await changedBundle('patched');
});

describe('recorded workflow histories', () => {
  it('cover every scenario of each recording, with the run, its processVideo children and the cancel helper', () => {
    // The older recordings (`-` ids; `:` ids before the worker ping; before the run-level dataset) are kept
    // next to the current one, which covers every scenario.
    expect(Object.keys(manifest.recordings).sort()).toEqual(['legacy-ids', 'unambiguous-ids', 'probe-worker', 'run-dataset', 'video-segments', 'class-batches', CURRENT_RECORDING].sort());
    expect(manifest.recordings[CURRENT_RECORDING].scenarios).toEqual([...SCENARIOS]);
    for (const [recording, { scenarios }] of Object.entries(manifest.recordings)) {
      const mine = fixtures.filter((f) => f.recording === recording);
      for (const scenario of scenarios) expect(mine.filter((f) => f.scenario === scenario && f.workflowType === 'trainPipeline'), `${recording} ${scenario}`).toHaveLength(1);
      const count = (scenario: string, type: string) => mine.filter((f) => f.scenario === scenario && f.workflowType === type).length;
      expect([count('completed', 'processVideo'), count('cancelled', 'processVideo'), count('rerouted', 'processVideo'), count('rejected', 'processVideo')], recording).toEqual([2, 1, 1, 0]);
      expect(count('cancelled', 'requestCancellation'), recording).toBe(1);
      expect(Object.fromEntries(mine.map((f) => [path.basename(f.file), f.status])), recording).toMatchObject({
        'completed.trainPipeline.json': 'COMPLETED',
        'cancelled.trainPipeline.json': 'CANCELLED',
        'cancelled.processVideo.json': 'CANCELLED',
        'rerouted.trainPipeline.json': 'COMPLETED',
        'rejected.trainPipeline.json': 'FAILED',
      });
    }
    expect(fixtures.filter((f) => f.recording === CURRENT_RECORDING && f.scenario === 'undecodable-signal').map((f) => f.status)).toEqual(['COMPLETED', 'COMPLETED']);
    for (const f of fixtures) {
      const { history } = loadHistory(f);
      // File name, manifest and the history itself agree on the workflow type; children carry the id
      // convention of their recording (src/workflows/ids.ts).
      expect(f.file.startsWith(`${f.recording}/`), f.file).toBe(true);
      expect(path.basename(f.file).split('.')[1], f.file).toBe(f.workflowType);
      expect(typeOf(history), f.file).toBe(f.workflowType);
      if (f.workflowType === 'processVideo') {
        const started = history.events![0].workflowExecutionStartedEventAttributes!;
        const parent = started.parentWorkflowExecution!.workflowId!;
        const videoGuid = (JSON.parse(Buffer.from(started.input!.payloads![0].data as Uint8Array).toString('utf8')) as { videoGuid: string }).videoGuid;
        expect(f.workflowId, f.file).toBe(f.recording === 'legacy-ids' ? legacyVideoWorkflowId(parent, videoGuid) : videoWorkflowId(parent, videoGuid));
      }
      if (f.workflowType === 'trackSegment') {
        const started = history.events![0].workflowExecutionStartedEventAttributes!;
        const input = JSON.parse(Buffer.from(started.input!.payloads![0].data as Uint8Array).toString('utf8')) as { segment: { segment: { index: number } } };
        expect(f.workflowId, f.file).toBe(segmentWorkflowId(started.parentWorkflowExecution!.workflowId!, input.segment.segment.index));
      }
    }
    // The hung step went through the new path: 8 heartbeat timeouts, the patch marker, the ping answered, and the
    // video failed with step, attempts and cause.
    const hung = fixtures.find((f) => f.file === `${CURRENT_RECORDING}/hung-step.processVideo.json`)!;
    expect(hung.status).toBe('FAILED');
    const hungEvents = loadHistory(hung).history.events!;
    expect(patchIds({ events: hungEvents })).toContain(PATCH_PROBE_WORKER);
    expect(hungEvents.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'pingWorker')).toHaveLength(1);
    expect(hungEvents.some((e) => e.activityTaskCompletedEventAttributes)).toBe(true);
    const hungFailure = hungEvents.find((e) => e.workflowExecutionFailedEventAttributes)!.workflowExecutionFailedEventAttributes!.failure!;
    expect(hungFailure.message).toMatch(/^step 6 extractCrops failed on attempt 8 of 8: Timeout: no heartbeat within the heartbeat timeout/);
    // The completed two-video run of the current recording merged the run-level dataset behind its patch; the
    // same scenario of the previous recording did not, and replays without it.
    const mergesOf = (file: string) => {
      const events = loadHistory(fixtures.find((f) => f.file === file)!).history.events!;
      return { patched: patchIds({ events }).includes(PATCH_RUN_DATASET), merges: events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'mergeRunDataset').length };
    };
    expect(mergesOf(`${CURRENT_RECORDING}/completed.trainPipeline.json`)).toEqual({ patched: true, merges: 1 });
    expect(mergesOf('probe-worker/completed.trainPipeline.json')).toEqual({ patched: false, merges: 0 });
    expect(mergesOf('run-dataset/completed.trainPipeline.json')).toEqual({ patched: true, merges: 1 });
    // The segmented run of the current recording fanned step 5 out over three segments behind its patches, each a
    // trackSegment child that scheduled its detectSegment, all before step 5 itself; in `class-batches` the video
    // scheduled the three activities itself. The one-segment videos of every recording have no such marker.
    const segmented = loadHistory(fixtures.find((f) => f.file === `${CURRENT_RECORDING}/segmented.processVideo.json`)!).history.events!;
    const commandsOf = (events: typeof segmented) =>
      events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType!.name!] : e.startChildWorkflowExecutionInitiatedEventAttributes ? [e.startChildWorkflowExecutionInitiatedEventAttributes.workflowType!.name!] : []));
    const scheduledNames = commandsOf(segmented);
    expect(scheduledNames.filter((n) => n === 'trackSegment')).toHaveLength(3);
    expect(scheduledNames).not.toContain('detectSegment');
    expect(scheduledNames.lastIndexOf('trackSegment')).toBeLessThan(scheduledNames.indexOf('detectPlayers'));
    const patchesOf = (events: typeof segmented) => patchIds({ events });
    expect(patchesOf(segmented)).toContain(PATCH_VIDEO_SEGMENTS);
    expect(patchesOf(segmented)).toContain(PATCH_SEGMENT_WORKFLOWS);
    const segmentChildren = fixtures.filter((f) => f.recording === CURRENT_RECORDING && f.workflowType === 'trackSegment');
    expect(segmentChildren.map((f) => [f.scenario, f.status])).toEqual([['segmented', 'COMPLETED'], ['segmented', 'COMPLETED'], ['segmented', 'COMPLETED']]);
    for (const f of segmentChildren) expect(commandsOf(loadHistory(f).history.events!), f.file).toEqual(['detectSegment']);
    const before = loadHistory(fixtures.find((f) => f.file === 'class-batches/segmented.processVideo.json')!).history.events!;
    expect(commandsOf(before).filter((n) => n === 'detectSegment')).toHaveLength(3);
    expect(patchesOf(before)).toContain(PATCH_VIDEO_SEGMENTS);
    expect(patchesOf(before)).not.toContain(PATCH_SEGMENT_WORKFLOWS);
    expect(patchesOf(loadHistory(fixtures.find((f) => f.file === `${CURRENT_RECORDING}/rerouted.processVideo.json`)!).history.events!)).not.toContain(PATCH_VIDEO_SEGMENTS);
    // The batched run of the current recording fanned steps 6, 7 and 8 out over three class batches behind its
    // patch, each before the step itself; the one-batch videos have no such marker.
    const batched = loadHistory(fixtures.find((f) => f.file === `${CURRENT_RECORDING}/batched.processVideo.json`)!).history.events!;
    const batchedNames = batched.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType!.name!] : []));
    expect(batchedNames.filter((n) => n === 'cropBatch')).toHaveLength(3);
    expect(batchedNames.indexOf('detectPlayers')).toBeLessThan(batchedNames.indexOf('cropBatch'));
    expect(batchedNames.lastIndexOf('cropBatch')).toBeLessThan(batchedNames.indexOf('extractCrops'));
    expect(batchedNames.filter((n) => n === 'backgroundBatch')).toHaveLength(3);
    expect(batchedNames.lastIndexOf('backgroundBatch')).toBeLessThan(batchedNames.indexOf('removeCropBackground'));
    expect(batchedNames.filter((n) => n === 'augmentBatch')).toHaveLength(3);
    expect(batchedNames.indexOf('removeCropBackground')).toBeLessThan(batchedNames.indexOf('augmentBatch'));
    expect(batchedNames.lastIndexOf('augmentBatch')).toBeLessThan(batchedNames.indexOf('augmentCrops'));
    expect(patchesOf(batched)).toContain(PATCH_CLASS_BATCHES);
    expect(patchesOf(segmented)).not.toContain(PATCH_CLASS_BATCHES);
    // The re-routed runs really went through a lost worker: their first step timed out on the ghost's queue.
    for (const f of fixtures.filter((x) => path.basename(x.file) === 'rerouted.processVideo.json')) {
      expect(loadHistory(f).history.events!.some((e) => e.activityTaskTimedOutEventAttributes), f.file).toBe(true);
    }
    // The undecodable signal is in the recorded history (and was dropped, since the run completed).
    const undecodable = loadHistory(fixtures.find((f) => f.file === `${CURRENT_RECORDING}/undecodable-signal.trainPipeline.json`)!).history;
    const encodings = undecodable.events!.flatMap((e) => e.workflowExecutionSignaledEventAttributes?.input?.payloads ?? []).map((p) => Buffer.from(p.metadata!.encoding as Uint8Array).toString());
    expect(encodings).toContain('binary/garbage');
  });

  it('replay against the current workflow code without nondeterminism', async () => {
    const results = await replay(current);
    expect(results).toEqual(Object.fromEntries(fixtures.map((f) => [f.file, null])));
  });

  it('include an undecodable signal that only a bundle with the pipeline interceptors can get past', async () => {
    // Without src/workflows/interceptors.ts, decoding the signal fails the workflow task (every retry alike).
    const bare = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
    const { history, workflowId } = loadHistory(fixtures.find((f) => f.file === `${CURRENT_RECORDING}/undecodable-signal.trainPipeline.json`)!);
    const err = await Worker.runReplayHistory({ workflowBundle: bare, replayName: 'replay-test' }, history, workflowId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/Unknown encoding: binary\/garbage/);
    await Worker.runReplayHistory({ workflowBundle: current, replayName: 'replay-test' }, history, workflowId);
  });
});

describe('a changed processVideo', () => {
  it('fails replay of the recorded processVideo histories with a DeterminismViolationError', async () => {
    const completed = loadHistory(processVideoFixtures[0]);
    const err = await Worker.runReplayHistory({ workflowBundle: unversioned, replayName: 'replay-test' }, completed.history, completed.workflowId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeterminismViolationError);
    // Core names the mismatch: the history scheduled claimWorker where the code now schedules releaseVideoCache.
    expect((err as Error).message).toMatch(/claimWorker/);
    expect((err as Error).message).toMatch(/releaseVideoCache/);

    // Every processVideo history fails the same way; the parent's and the cancel helper's still replay.
    const results = await replay(unversioned);
    for (const f of fixtures) {
      if (f.workflowType === 'processVideo') expect(results[f.file], f.file).toMatch(/^DeterminismViolationError: /);
      else expect(results[f.file], f.file).toBeNull();
    }
  });

  it(`replays every recorded history when the change is behind patched('${PATCH_ID}')`, async () => {
    const results = await replay(patchedBundle);
    expect(results).toEqual(Object.fromEntries(fixtures.map((f) => [f.file, null])));
  });

  describe('new executions with the patched code (test stack)', () => {
    let client: Client;
    beforeAll(async () => {
      client = await testClient();
    });
    afterAll(async () => {
      await client?.connection.close();
    });

    it('take the new branch and record the patch marker, which the unpatched code cannot replay', async () => {
      const m = mockActivities();
      const cfg = loadConfig();
      const taskQueue = `replay-${Math.random().toString(36).slice(2, 10)}`;
      const connection = await NativeConnection.connect({ address: cfg.temporalAddress });
      const { workers } = await createPipelineWorkers({
        connection,
        namespace: cfg.temporalNamespace,
        taskQueue,
        workflowBundle: patchedBundle,
        cpuActivities: m.cpu,
        gpuActivities: m.gpu,
        shutdownGraceTime: '5s',
      });
      const others = workers.slice(1).map((w) => w.run());
      let history: History;
      let childId: string;
      try {
        const tenantId = `t${Math.random().toString(36).slice(2, 10)}`;
        const summary = await workers[0].runUntil(async () => {
          const run = await startRun(client, { ...cfg, taskQueue }, { tenantId, videos: [{ source: '/a.mp4' }] });
          return run.handle.result();
        });
        expect(summary.status).toBe('completed');
        childId = videoWorkflowId(summary.workflowId, summary.videos[0].videoGuid);
        history = await client.workflow.getHandle(childId).fetchHistory();
      } finally {
        for (const w of workers.slice(1)) w.shutdown();
        await Promise.allSettled(others);
        await connection.close();
      }
      // The extra release ran first, on the shared queue, before the two releases at the end of the video.
      expect(m.releases.map((r) => r.queue)[0]).toBe(taskQueue);
      expect(m.releases).toHaveLength(3);
      // One patch marker per patch id the execution met: the test's, and src/workflows' own cache-release patch.
      const markers = history.events!.flatMap((e) => {
        const m = e.markerRecordedEventAttributes;
        if (!m) return [];
        // Core records `{ id, deprecated }` as a JSON payload under details["patch-data"].
        const payload = m.details?.['patch-data']?.payloads?.[0]?.data;
        const id = payload ? (JSON.parse(Buffer.from(payload as Uint8Array).toString('utf8')) as { id: string }).id : undefined;
        return [`${m.markerName}:${id}`];
      });
      expect(markers.sort()).toEqual([`core_patch:${PATCH_ID}`, `core_patch:${PATCH_RELEASE_OWN_QUEUES}`].sort());
      // The new history replays with the patched code, but not with the code in src/workflows.
      await Worker.runReplayHistory({ workflowBundle: patchedBundle, replayName: 'replay-test' }, history, childId);
      await expect(Worker.runReplayHistory({ workflowBundle: current, replayName: 'replay-test' }, history, childId)).rejects.toBeInstanceOf(DeterminismViolationError);
    });
  });
});

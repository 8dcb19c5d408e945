/**
 * Workflow ids are unambiguous across tenants (src/workflows/ids.ts): the id convention itself, two runs whose
 * legacy `-` ids coincided, a run whose legacy id was another run's child id, the client attaching only to a
 * run of the same input, and the workflow refusing a conventional id that names another run. Runs use the
 * real dev server and the real workflows with mocked activities (test/helpers/mockActivities.ts).
 */
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRun } from '../src/cli/client';
import { loadConfig } from '../src/config';
import { PipelineError } from '../src/errors';
import {
  assertWorkflowIdMatches,
  cancelHelperWorkflowId,
  legacyCancelHelperWorkflowId,
  legacyRunGuidOf,
  legacyVideoWorkflowId,
  parseRunWorkflowId,
  runWorkflowId,
  segmentWorkflowId,
  videoWorkflowId,
} from '../src/workflows/ids';
import type { StepInput } from '../src/workflows/types';
import { mockActivities, type MockActivities } from './helpers/mockActivities';
import { testClient, withWorkers } from './helpers/temporal';

/** A fresh tenant id (letters and digits) per test, so reruns on a kept test stack never meet old runs. */
const uniq = () => `t${Math.random().toString(36).slice(2, 10)}`;

/** Polls `cond` every 100 ms, at most `tries` times; returns whether it became true. */
async function until(cond: () => boolean | Promise<boolean>, tries = 300): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** Tenant and run GUID of every `importVideo` call the mocks saw. */
const importsOf = (m: MockActivities) =>
  m.calls.filter((c) => c.name === 'importVideo').map((c) => `${(c.input as StepInput).tenantId}/${(c.input as StepInput).runGuid}/${(c.input as StepInput).videoGuid}`);

describe('workflow id convention', () => {
  it('joins tenant, run and video with ":", which neither may contain', () => {
    expect(runWorkflowId('acme', 'r1')).toBe('train-pipeline:acme:r1');
    expect(videoWorkflowId('train-pipeline:acme:r1', 'v1')).toBe('train-pipeline:acme:r1:video:v1');
    expect(cancelHelperWorkflowId('train-pipeline:acme:r1')).toBe('train-pipeline:acme:r1:cancel');
    expect(() => runWorkflowId('ac:me', 'r1')).toThrow(PipelineError);
    expect(() => runWorkflowId('acme', 'r:1')).toThrow(PipelineError);
    expect(() => videoWorkflowId('train-pipeline:acme:r1', 'V1')).toThrow(PipelineError);
    expect(segmentWorkflowId('train-pipeline:acme:r1:video:v1', 0)).toBe('train-pipeline:acme:r1:video:v1:segment:0');
    for (const bad of [-1, 1.5, Number.NaN]) expect(() => segmentWorkflowId('train-pipeline:acme:r1:video:v1', bad)).toThrow(PipelineError);
  });

  it('gives different ids to the runs whose legacy ids coincided', () => {
    // Tenant acme run x-r1 and tenant acme-x run r1 (legacy: both train-pipeline-acme-x-r1).
    expect(runWorkflowId('acme', 'x-r1')).not.toBe(runWorkflowId('acme-x', 'r1'));
    // Tenant acme-r3 run video-v1 against acme's child for run r3, video v1.
    expect(legacyVideoWorkflowId('train-pipeline-acme-r3', 'v1')).toBe('train-pipeline-acme-r3-video-v1');
    expect(runWorkflowId('acme-r3', 'video-v1')).not.toBe(videoWorkflowId(runWorkflowId('acme', 'r3'), 'v1'));
    expect(runWorkflowId('acme', 'r3-cancel')).not.toBe(cancelHelperWorkflowId(runWorkflowId('acme', 'r3')));
    expect(legacyCancelHelperWorkflowId('train-pipeline-acme-r3')).toBe('train-pipeline-acme-r3-cancel');
  });

  it('reads a run id back to exactly its tenant and run GUID, and nothing else as a run id', () => {
    const tenants = ['a', 'acme', 'acme-x', 'acme-r3', 'A_b-C', '9-video-1', 'x'.repeat(63)];
    const guids = ['r', 'x-r1', 'video-v1', 'r3-cancel', '0-0-0', 'g'.repeat(64)];
    const ids = new Set<string>();
    for (const tenantId of tenants) {
      for (const runGuid of guids) {
        const id = runWorkflowId(tenantId, runGuid);
        expect(parseRunWorkflowId(id)).toEqual({ tenantId, runGuid });
        ids.add(id);
        const child = videoWorkflowId(id, runGuid);
        expect(parseRunWorkflowId(child)).toBeUndefined();
        expect(parseRunWorkflowId(cancelHelperWorkflowId(id))).toBeUndefined();
        ids.add(child);
        ids.add(cancelHelperWorkflowId(id));
        for (const k of [0, 12]) {
          expect(parseRunWorkflowId(segmentWorkflowId(child, k))).toBeUndefined();
          ids.add(segmentWorkflowId(child, k));
        }
      }
    }
    expect(ids.size).toBe(tenants.length * guids.length * 5);
    for (const other of ['train-pipeline-acme-r1', 'train-pipeline:acme', 'train-pipeline:ac/me:r1', 'train-pipeline:acme:R1', 'other:acme:r1', '']) {
      expect(parseRunWorkflowId(other), other).toBeUndefined();
    }
  });

  it('keeps reading the legacy form for a known tenant (executions started before the change only)', () => {
    expect(legacyRunGuidOf('train-pipeline-acme-x-r1', 'acme')).toBe('x-r1');
    expect(legacyRunGuidOf('train-pipeline-acme-x-r1', 'acme-x')).toBe('r1');
    expect(legacyRunGuidOf('train-pipeline:acme:r1', 'acme')).toBeUndefined();
  });

  it('lets a conventional id hold only the run it names', () => {
    expect(() => assertWorkflowIdMatches('train-pipeline:acme:r1', 'acme', 'r1')).not.toThrow();
    expect(() => assertWorkflowIdMatches('train-pipeline:acme:r3:video:v1:segment:0', 'acme', 'r3')).toThrow(/must run as train-pipeline:acme:r3$/);
    expect(() => assertWorkflowIdMatches('my-own-id', 'acme', 'r1')).not.toThrow();
    expect(() => assertWorkflowIdMatches('train-pipeline:acme:r1', 'acme-x', 'r1')).toThrow(/reserved for runs.*train-pipeline:acme-x:r1/);
    expect(() => assertWorkflowIdMatches('train-pipeline:acme:r3:video:v1', 'acme', 'r3')).toThrow(/must run as train-pipeline:acme:r3$/);
  });
});

describe('runs of tenants whose legacy ids collided (real dev server, mocked activities)', () => {
  let client: Client;
  beforeAll(async () => {
    client = await testClient();
  });
  afterAll(async () => {
    await client?.connection.close();
  });

  it('tenant T run x-r1 and tenant T-x run r1 each run, with their own result and output prefix', async () => {
    const m = mockActivities();
    const t = uniq();
    const [a, b] = await withWorkers(
      m.cpu,
      async (taskQueue) => {
        const cfg = { ...loadConfig(), taskQueue };
        const first = await startRun(client, cfg, { tenantId: t, runGuid: 'x-r1', videos: [{ source: '/a.mp4', videoGuid: 'va' }] });
        const firstSummary = await first.handle.result();
        const second = await startRun(client, cfg, { tenantId: `${t}-x`, runGuid: 'r1', videos: [{ source: '/b.mp4', videoGuid: 'vb' }] });
        expect(second.started).toBe(true);
        expect(second.workflowId).not.toBe(first.workflowId);
        return [firstSummary, await second.handle.result()];
      },
      m.gpu,
    );
    expect([a.tenantId, a.runGuid, a.outputPrefix]).toEqual([t, 'x-r1', `gs://b/${t}/user/process/train_pipeline/run_x-r1/`]);
    expect([b.tenantId, b.runGuid, b.outputPrefix]).toEqual([`${t}-x`, 'r1', `gs://b/${t}-x/user/process/train_pipeline/run_r1/`]);
    expect(b.videos.map((v) => v.source)).toEqual(['/b.mp4']);
    expect(importsOf(m)).toEqual([`${t}/x-r1/va`, `${t}-x/r1/vb`]);
  });

  it("a run of tenant T-r3 with GUID video-v1 and tenant T's run r3 with video v1 both complete", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // A CPU step is held: the GPU queue runs one activity at a time, so a held GPU step would block the other run.
    const m = mockActivities({ hold: 'extractFramesForDetections', gate });
    const t = uniq();
    const held = (tenantId: string) => m.calls.some((c) => c.name === 'extractFramesForDetections' && (c.input as StepInput).tenantId === tenantId);
    const [other, own] = await withWorkers(
      m.cpu,
      async (taskQueue) => {
        const cfg = { ...loadConfig(), taskQueue };
        // This run held the legacy id of T's child `train-pipeline-T-r3-video-v1` while T's run started.
        const squatter = await startRun(client, cfg, { tenantId: `${t}-r3`, runGuid: 'video-v1', videos: [{ source: '/s.mp4' }] });
        expect(await until(() => held(`${t}-r3`))).toBe(true);
        const run = await startRun(client, cfg, { tenantId: t, runGuid: 'r3', videos: [{ source: '/v.mp4', videoGuid: 'v1' }] });
        // T's video must reach the held step too (its child started), not fail on a taken id.
        await until(async () => held(t) || (await run.handle.describe()).status.name !== 'RUNNING');
        expect(held(t)).toBe(true);
        release();
        return Promise.all([squatter.handle.result(), run.handle.result()]);
      },
      m.gpu,
    );
    expect([other.status, other.tenantId, other.runGuid]).toEqual(['completed', `${t}-r3`, 'video-v1']);
    expect([own.status, own.tenantId, own.runGuid, own.videos[0].videoGuid]).toEqual(['completed', t, 'r3', 'v1']);
    expect(own.outputPrefix).toBe(`gs://b/${t}/user/process/train_pipeline/run_r3/`);
  });

  it('attaches to an existing run only when its input is the same, running or completed', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const m = mockActivities({ hold: 'detectPlayers', gate });
    const t = uniq();
    const input = { tenantId: t, runGuid: 'r1', videos: [{ source: '/a.mp4' }] };
    const other = { ...input, videos: [{ source: '/b.mp4' }] };
    const refusal = new RegExp(`^workflowId train-pipeline:${t}:r1: already holds a run \\(tenantId "${t}", runGuid "r1"\\) started with a different input \\((running|completed)\\)`);
    await withWorkers(
      m.cpu,
      async (taskQueue) => {
        const cfg = { ...loadConfig(), taskQueue };
        const run = await startRun(client, cfg, input);
        expect(run.started).toBe(true);
        expect(await until(() => m.calls.some((c) => c.name === 'detectPlayers'))).toBe(true);
        // Running: another input is refused, the same input attaches.
        const err = await startRun(client, cfg, other).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(PipelineError);
        expect((err as PipelineError).message).toMatch(refusal);
        expect((err as PipelineError).message).toContain('(running)');
        const same = await startRun(client, cfg, input);
        expect([same.started, (await same.handle.describe()).runId]).toEqual([false, (await run.handle.describe()).runId]);
        release();
        const summary = await run.handle.result();
        // Completed: another input is refused, the same input reuses the result.
        const late = await startRun(client, cfg, other).catch((e: unknown) => e);
        expect((late as PipelineError).message).toMatch(refusal);
        expect((late as PipelineError).message).toContain('(completed)');
        const again = await startRun(client, cfg, input);
        expect(again.started).toBe(false);
        expect(await again.handle.result()).toEqual(summary);
      },
      m.gpu,
    );
    expect(importsOf(m)).toHaveLength(1);
  });

  it('refuses a run under a conventional id that names another run (or a child), and records nothing', async () => {
    const m = mockActivities();
    const t = uniq();
    const cases = [
      { workflowId: runWorkflowId(t, 'r1'), input: { tenantId: `${t}-x`, runGuid: 'r1', videos: [{ source: '/a.mp4' }] }, expected: runWorkflowId(`${t}-x`, 'r1') },
      { workflowId: runWorkflowId(t, 'r1'), input: { tenantId: t, runGuid: 'r2', videos: [{ source: '/a.mp4' }] }, expected: runWorkflowId(t, 'r2') },
      { workflowId: videoWorkflowId(runWorkflowId(t, 'r3'), 'v1'), input: { tenantId: t, runGuid: 'r3', videos: [{ source: '/a.mp4' }] }, expected: runWorkflowId(t, 'r3') },
    ];
    const errors = await withWorkers(
      m.cpu,
      async (taskQueue) => {
        const out: unknown[] = [];
        for (const c of cases) {
          // Started directly (as from the Temporal CLI), bypassing the client.
          const handle = await client.workflow.start('trainPipeline', { taskQueue, workflowId: c.workflowId, args: [c.input] });
          out.push(await handle.result().catch((e: unknown) => e));
        }
        return out;
      },
      m.gpu,
    );
    errors.forEach((err, i) => {
      expect(err, cases[i].workflowId).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
      expect([cause.type, cause.nonRetryable]).toEqual(['InvalidInput', true]);
      expect(cause.message).toBe(
        `workflowId "${cases[i].workflowId}": ids starting with "train-pipeline:" are reserved for runs; this input (tenantId ${cases[i].input.tenantId}, runGuid ${cases[i].expected.split(':')[2]}) must run as ${cases[i].expected}`,
      );
    });
    expect(m.calls).toHaveLength(0);
    expect(m.records).toHaveLength(0);
  });

  it('takes a missing run GUID from the conventional id, and not from the legacy form', async () => {
    const m = mockActivities();
    const t = uniq();
    const [conventional, legacy] = await withWorkers(
      m.cpu,
      async (taskQueue) => {
        const start = (workflowId: string) => client.workflow.start('trainPipeline', { taskQueue, workflowId, args: [{ tenantId: t, videos: [{ source: '/a.mp4' }] }] });
        const a = await start(runWorkflowId(t, 'r5'));
        const b = await start(`train-pipeline-${t}-r6`);
        return Promise.all([a.result(), b.result()]);
      },
      m.gpu,
    );
    expect([conventional.runGuid, conventional.outputPrefix]).toEqual(['r5', `gs://b/${t}/user/process/train_pipeline/run_r5/`]);
    // The legacy form is ambiguous (tenant T-r6? run r6 of tenant T?): new executions generate a GUID instead.
    expect(legacy.runGuid).not.toBe('r6');
    expect(legacy.runGuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

/**
 * Client-side helpers shared by the command-line tools: connecting, starting a run idempotently, following
 * it with a progress bar, and turning its outcome into the one-line JSON summary (README "What `npm run pipeline` does").
 */
import path from 'node:path';
import cliProgress from 'cli-progress';
import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { CancelledFailure, defaultPayloadConverter } from '@temporalio/common';
import type { Config } from '../config';
import { invalidInput } from '../errors';
import { parseArtifact, pipelineInfoSchema } from '../storage/artifacts';
import { createObjectStore } from '../storage/gcs';
import { RunLayout } from '../storage/layout';
import { sha256 } from '../util/hash';
import { parseSource } from '../sources';
import { validateInput, type TrainPipelineInput, type VideoInput } from '../validation';
import { runWorkflowId } from '../workflows/ids';
import { stageLocalSources, type StagedSource } from './uploads';
import { progressQuery, RUN_GUID, TENANT_ID } from '../workflows/messages';
import type { trainPipeline } from '../workflows/trainPipeline';
import { isBatchedStep, STEP_NAMES, stepNumber } from '../workflows/steps';
import type { RunProgress, RunSummary, StepIo } from '../workflows/types';

/** Connects a Temporal client to `cfg.temporalAddress` / `cfg.temporalNamespace`. */
export async function connectClient(cfg: Config): Promise<Client> {
  const connection = await Connection.connect({ address: cfg.temporalAddress, connectTimeout: '10 seconds' });
  return new Client({ connection, namespace: cfg.temporalNamespace });
}

/** Formats the first 32 hex digits of a sha256 as a lowercase 8-4-4-4-12 GUID. */
function hashGuid(text: string): string {
  const h = sha256(text);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * Completes a run input on the client side: local paths (sources and tracks) become absolute, missing video GUIDs are derived
 * from the source (first 16 hex digits of its sha256), and a missing run GUID is derived from tenant, videos
 * and options, so starting the same run twice yields the same workflow id and does not run it twice.
 * Sources are parsed with the same parser as the workflow and the importer (src/sources.ts).
 * @throws PipelineError(InvalidInput) for invalid input (validated exactly as the workflow does).
 */
export function prepareInput(input: TrainPipelineInput): Required<Pick<TrainPipelineInput, 'tenantId' | 'runGuid' | 'videos'>> & TrainPipelineInput {
  const absolute = (s: string) => {
    const parsed = parseSource(s);
    return parsed.kind === 'local' ? path.resolve(parsed.path) : s;
  };
  const videos: VideoInput[] = input.videos.map((v) => {
    const source = absolute(v.source);
    return { source, videoGuid: v.videoGuid ?? sha256(source).slice(0, 16), ...(v.tracks !== undefined ? { tracks: absolute(v.tracks) } : {}) };
  });
  const withGuids = { ...input, videos };
  validateInput(withGuids);
  const runGuid = input.runGuid ?? hashGuid(JSON.stringify({ tenantId: input.tenantId, videos, options: input.options ?? {} }));
  const full = { ...withGuids, runGuid };
  validateInput(full);
  return full as ReturnType<typeof prepareInput>;
}

/** A started (or re-attached) run. */
export interface StartedRun {
  handle: WorkflowHandle<typeof trainPipeline>;
  workflowId: string;
  runGuid: string;
  tenantId: string;
  /** False when a run with this workflow id already existed and was attached to instead. */
  started: boolean;
  /** What happened to each video's source before the start (local files uploaded to the tenant's inbox). */
  staged: StagedSource[];
}

/** `value` as JSON with the keys of every object sorted, so equal values give equal text. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/**
 * The input the execution `runId` of `workflowId` was started with (first event of its history), decoded by
 * the default payload converter; `undefined` when it has none or it cannot be decoded.
 */
async function startInputOf(client: Client, workflowId: string, runId: string): Promise<{ workflowType?: string; input: unknown }> {
  const res = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId, runId },
    maximumPageSize: 1,
  });
  const started = res.history?.events?.[0]?.workflowExecutionStartedEventAttributes;
  const payload = started?.input?.payloads?.[0];
  let input: unknown;
  try {
    input = payload ? defaultPayloadConverter.fromPayload(payload) : undefined;
  } catch {
    input = undefined;
  }
  return { workflowType: started?.workflowType?.name ?? undefined, input };
}

/**
 * Attaches to the existing execution with workflow id `workflowId` (running, or completed and therefore not
 * run again), after checking that it is a `trainPipeline` run of exactly `input` (same tenant, run GUID,
 * videos and options): a run is never handed another input's result or output prefix.
 * @throws PipelineError(InvalidInput) naming the workflow id when the existing execution differs.
 */
async function attachToExisting(client: Client, workflowId: string, input: ReturnType<typeof prepareInput>): Promise<WorkflowHandle<typeof trainPipeline>> {
  const desc = await client.workflow.getHandle(workflowId).describe();
  const existing = await startInputOf(client, workflowId, desc.runId);
  const subject = `workflowId ${workflowId}`;
  if (desc.type !== 'trainPipeline' || existing.workflowType !== 'trainPipeline') {
    throw invalidInput(subject, `is held by a ${desc.type} execution, not a trainPipeline run; choose another run GUID`);
  }
  if (canonicalJson(existing.input) !== canonicalJson(JSON.parse(JSON.stringify(input)))) {
    const other = existing.input as Partial<TrainPipelineInput> | undefined;
    const who = other && typeof other === 'object' ? ` (tenantId ${JSON.stringify(other.tenantId)}, runGuid ${JSON.stringify(other.runGuid)})` : '';
    throw invalidInput(
      subject,
      `already holds a run${who} started with a different input (${desc.status.name.toLowerCase()}); its result is not this input's. Start this input with another run GUID`,
    );
  }
  return client.workflow.getHandle<typeof trainPipeline>(workflowId, desc.runId);
}

/**
 * Starts `trainPipeline` with workflow id `train-pipeline:{tenantId}:{runGuid}` (src/workflows/ids.ts). A run
 * of the same input that is already running is attached to; one that already completed is not run again
 * (its result is reused); a failed or cancelled one may be started again (Temporal's
 * `ALLOW_DUPLICATE_FAILED_ONLY` reuse policy). An existing execution with that id but another input (or of
 * another type) is never attached to. Of several concurrent calls for one run exactly one gets `started: true`;
 * the others attach to its execution.
 *
 * Local files the workers may not read (outside `cfg.sourceRoots`) are first uploaded to the tenant's inbox
 * in the bucket and imported from there (src/cli/uploads.ts); the video and run GUIDs are still derived from
 * the local paths, so the same command attaches to the same run.
 * @throws PipelineError(InvalidInput) for invalid input (checked as the workflow does, limits included), a
 *   local file that cannot be uploaded (missing, too large), and when the workflow id is held by an
 *   execution of another input.
 */
export async function startRun(client: Client, cfg: Config, rawInput: TrainPipelineInput): Promise<StartedRun> {
  const prepared = prepareInput(rawInput);
  const { videos, staged } = await stageLocalSources(cfg, prepared.tenantId, prepared.videos);
  const input = { ...prepared, videos };
  const workflowId = runWorkflowId(input.tenantId, input.runGuid);
  try {
    const handle = await client.workflow.start<typeof trainPipeline>('trainPipeline', {
      taskQueue: cfg.taskQueue,
      workflowId,
      args: [input],
      workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
      // Conflict policy FAIL (not USE_EXISTING): a start that finds the run open throws
      // WorkflowExecutionAlreadyStartedError, so only the call that really started it reports `started`, and
      // the existing run is checked before it is attached to.
      workflowIdConflictPolicy: 'FAIL',
      typedSearchAttributes: [
        { key: TENANT_ID, value: input.tenantId },
        { key: RUN_GUID, value: input.runGuid },
      ],
    });
    return { handle, workflowId, runGuid: input.runGuid, tenantId: input.tenantId, started: true, staged };
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const handle = await attachToExisting(client, workflowId, input);
    return { handle, workflowId, runGuid: input.runGuid, tenantId: input.tenantId, started: false, staged };
  }
}

/** Final outcome of a run as printed on the last line of `npm run pipeline`. */
export interface RunOutcome {
  status: 'completed' | 'failed' | 'cancelled' | 'terminated' | 'timed_out';
  tenantId: string;
  runGuid: string;
  workflowId: string;
  bucket: string;
  outputPrefix: string;
  webUi: string;
  videos: RunSummary['videos'];
  cache?: RunSummary['cache'];
  storage?: RunSummary['storage'];
  /** The run-level dataset of a completed run with several videos. */
  dataset?: RunSummary['dataset'];
  error?: string;
}

/**
 * Waits for the run to end, drawing a progress bar on stderr from the `progress` query (when `stderr` is
 * a terminal or `forceBar`), and returns the outcome. Never throws for a failed or cancelled run.
 */
export async function followRun(run: StartedRun, cfg: Config, opts: { showProgress?: boolean; log?: (line: string) => void } = {}): Promise<RunOutcome> {
  const bar = opts.showProgress
    ? new cliProgress.SingleBar(
        { format: ' {bar} {percentage}% | {step} | frames {frames} dets {detections} tracks {tracks} crops {crops}', stream: process.stderr, hideCursor: true, noTTYOutput: !process.stderr.isTTY, notTTYSchedule: 5000 },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  bar?.start(100, 0, { step: 'starting', frames: 0, detections: 0, tracks: 0, crops: 0 });
  let last: RunProgress | undefined;
  let done = false;
  const poll = (async () => {
    while (!done) {
      try {
        last = await run.handle.query(progressQuery);
        const sum = (k: 'frames' | 'detections' | 'tracks' | 'crops') => last!.videos.reduce((s, v) => s + (v.counts[k] ?? 0), 0);
        // A fanned-out step says how many parts are done (e.g. `detectPlayers 3/8 segments`, `augmentCrops 1/4 batches`).
        const stepOf = (v: RunProgress['videos'][number]) =>
          v.currentStep === 'detectPlayers' && v.segments
            ? `detectPlayers ${v.segments.done}/${v.segments.total} segments`
            : isBatchedStep(v.currentStep) && v.batches
              ? `${v.currentStep} ${v.batches.done}/${v.batches.total} batches`
              : (v.currentStep ?? v.status);
        const steps = [...new Set(last.videos.map(stepOf))].join(',');
        bar?.update(Math.round(last.fraction * 100), { step: steps, frames: sum('frames'), detections: sum('detections'), tracks: sum('tracks'), crops: sum('crops') });
      } catch {
        // The query fails before the first workflow task and after the run closed; keep polling until done.
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  const base = {
    tenantId: run.tenantId,
    runGuid: run.runGuid,
    workflowId: run.workflowId,
    bucket: cfg.bucket,
    outputPrefix: `gs://${cfg.bucket}/${run.tenantId}/user/process/train_pipeline/run_${run.runGuid}/`,
    webUi: `http://localhost:${cfg.temporalUiPort}/namespaces/${cfg.temporalNamespace}/workflows/${encodeURIComponent(run.workflowId)}`,
  };
  try {
    const summary = await run.handle.result();
    const sum = (k: 'frames' | 'detections' | 'tracks' | 'crops') => summary.videos.reduce((s, v) => s + (v.counts[k] ?? 0), 0);
    bar?.update(100, { step: 'completed', frames: sum('frames'), detections: sum('detections'), tracks: sum('tracks'), crops: sum('crops') });
    return {
      status: 'completed',
      ...base,
      bucket: summary.bucket,
      outputPrefix: summary.outputPrefix,
      videos: summary.videos,
      cache: summary.cache,
      storage: summary.storage,
      ...(summary.dataset ? { dataset: summary.dataset } : {}),
    };
  } catch (err) {
    const videos = last?.videos.map((v) => ({ videoGuid: v.videoGuid, source: v.source, status: v.status === 'pending' ? 'failed' : v.status, counts: v.counts, pitch: v.pitch, error: v.error })) ?? [];
    if (err instanceof WorkflowFailedError) {
      const cancelled = err.cause instanceof CancelledFailure;
      const desc = await run.handle.describe().catch(() => undefined);
      const status = cancelled ? 'cancelled' : desc?.status.name === 'TERMINATED' ? 'terminated' : desc?.status.name === 'TIMED_OUT' ? 'timed_out' : 'failed';
      return { status, ...base, videos: videos as RunOutcome['videos'], error: err.cause?.message ?? err.message };
    }
    throw err;
  } finally {
    done = true;
    bar?.stop();
    await poll;
  }
}

/** The counts and the reason of a refused pitch, the counts once (a shape refusal's reason starts with them). */
function noPitchWhy(frames: string, reason: string | undefined): string {
  if (!reason) return frames;
  return reason.startsWith(frames.replace(/ pitch-like$/, '')) ? reason : `${frames}; ${reason}`;
}

/**
 * The stderr lines of one video of a finished run: its counts, and whether step 4 found a pitch. Without a
 * pitch the line says so plainly and what it means for the dataset: every detected person was kept (no
 * feet-on-pitch filter) and no grass was keyed out of the crops.
 * @returns one or two lines (no pitch line when the video stopped before step 4)
 */
export function videoLines(v: Pick<RunOutcome['videos'][number], 'videoGuid' | 'source' | 'counts' | 'pitch'>): string[] {
  const lines = [`video ${v.videoGuid}: ${JSON.stringify(v.counts)} (${v.source})`];
  const p = v.pitch;
  if (p) {
    const frames = p.framesPitchLike !== undefined ? `${p.framesPitchLike} of ${p.framesSampled} sampled frames pitch-like` : `${p.framesSampled} frames sampled`;
    lines.push(
      p.found
        ? `video ${v.videoGuid}: pitch found (${frames}); people whose feet are off the pitch were dropped`
        : `video ${v.videoGuid}: NO PITCH FOUND (${noPitchWhy(frames, p.reason)}): every detected person was kept (no feet-on-pitch filter) and no grass was keyed out of crops`,
    );
  }
  return lines;
}

/** One row of {@link stepIoTable}: a step of a video and its storage and cache counters. */
export interface StepIoRow {
  video: string;
  step: string;
  queue: string;
  'cache hits': number;
  'cache misses': number;
  'MB from cache': number;
  'GCS downloads': number;
  'MB down': number;
  'MB up': number;
  'GCS requests': number;
  'uploads skipped': number;
  /** Longest event-loop stall of the worker while the step ran. */
  'loop max ms': number;
}

/**
 * Per-step storage and cache statistics of a finished run, from its `.pipeline_info.json` (each step records
 * its {@link StepIo} and task queue there). Empty when the record cannot be read.
 */
export async function stepIoTable(cfg: Config, tenantId: string, runGuid: string): Promise<StepIoRow[]> {
  const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost, projectId: cfg.gcsProjectId, maxRetries: 1 });
  const name = new RunLayout(tenantId, runGuid).pipelineInfo;
  const info = await store
    .getJson<unknown>(name)
    .then((raw) => (raw === undefined ? undefined : parseArtifact(pipelineInfoSchema, name, raw)))
    .catch(() => undefined);
  const mb = (b: number | undefined) => Math.round(((b ?? 0) / 1e6) * 100) / 100;
  const rows: StepIoRow[] = [];
  for (const [videoGuid, steps] of Object.entries(info?.steps ?? {})) {
    // In the order of the step table (src/workflows/steps.ts), numbered by it.
    for (const step of STEP_NAMES) {
      const s = steps[step];
      if (!s) continue;
      const io = s.io;
      rows.push({
        video: videoGuid.slice(0, 12),
        step: `${stepNumber(step)} ${step}`,
        queue: s.taskQueue ?? '',
        'cache hits': io?.cacheHits ?? 0,
        'cache misses': io?.cacheMisses ?? 0,
        'MB from cache': mb(io?.bytesFromCache),
        'GCS downloads': io?.artifactDownloads ?? 0,
        'MB down': mb(io?.bytesDownloaded),
        'MB up': mb(io?.bytesUploaded),
        'GCS requests': io?.gcsRequests ?? 0,
        'uploads skipped': io?.uploadsSkipped ?? 0,
        'loop max ms': s.eventLoopDelayMs?.max ?? 0,
      });
    }
  }
  return rows;
}

/** Prints the per-step statistics table and the run totals of `outcome` to stderr (stdout stays JSON only). */
export async function printRunStats(cfg: Config, outcome: RunOutcome): Promise<void> {
  const err = new console.Console(process.stderr);
  const rows = await stepIoTable(cfg, outcome.tenantId, outcome.runGuid);
  if (rows.length) err.table(rows);
  const s = outcome.storage;
  const c = outcome.cache;
  if (s && c) {
    err.log(
      `run totals: ${s.requests} GCS requests, ${(s.bytesUploaded / 1e6).toFixed(1)} MB up, ${(s.bytesDownloaded / 1e6).toFixed(1)} MB down, ` +
        `${c.artifactDownloads} artifact downloads; run cache ${c.hits} hits / ${c.misses} misses, ${(c.bytesFromCache / 1e6).toFixed(1)} MB served from memory`,
    );
  }
}

/**
 * `trainPipeline`: the parent workflow of a run (docs/ARCHITECTURE.md "Workflow contract"). Validates the input, records the run in
 * `.pipeline_info.json`, starts one `processVideo` child per video, answers the `progress` query, honours
 * the `cancel` signal and native cancellation alike, and returns the run summary.
 *
 * Deterministic workflow code: no Node built-ins, no I/O, activities imported as types only.
 */
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ChildWorkflowCancellationType,
  ParentClosePolicy,
  executeChild,
  getExternalWorkflowHandle,
  startChild,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  setWorkflowOptions,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { ErrorType, NON_RETRYABLE_ERROR_TYPES, PipelineError, toApplicationFailure } from '../errors';
import {
  jsonByteLength,
  sanitizeCancelRequest,
  validateInput,
  GUID_PATTERN,
  MAX_INPUT_BYTES,
  MAX_VIDEO_PROGRESS_BYTES,
  TENANT_ID_PATTERN,
  type TrainPipelineInput,
  type ValidatedInput,
} from '../validation';
import {
  assertWorkflowIdMatches,
  cancelHelperWorkflowId,
  legacyCancelHelperWorkflowId,
  legacyRunGuidOf,
  legacyVideoWorkflowId,
  parseRunWorkflowId,
  PATCH_UNAMBIGUOUS_IDS,
  videoWorkflowId,
} from './ids';
import { cancelSignal, PIPELINE_STEP, progressQuery, RUN_GUID, TENANT_ID, videoProgressSignal } from './messages';
import { processVideo } from './processVideo';
import { sanitizeVideoProgress, stepsDoneOf } from './progress';
import { STEP_NAMES } from './steps';
import { summarizeRun, type SettledVideo } from './summary';
import type { CancelRequest, RunProgress, RunStatus, RunSummary, VideoProgress } from './types';

const bookkeeping = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
});

/**
 * The run-level dataset's merge (src/activities/runDataset.ts) on the workflow's (CPU) task queue: one
 * server-side copy per image, so it runs longer than bookkeeping; it heartbeats per copy, and a worker lost
 * mid-merge is noticed by the heartbeat timeout.
 */
const runDataset = proxyActivities<Activities>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
});

/**
 * Patch id: a completed run with several videos merges their datasets into the run-level dataset
 * (`mergeRunDataset`) before its final record. Executions recorded before it replay without the merge.
 */
export const PATCH_RUN_DATASET = 'run-level-dataset';

/**
 * Patch id: a video may carry corrected `tracks` (src/validation.ts `VideoInput`). Asked only of inputs that
 * have them, so executions without them record nothing; one recorded before the patch refused the field as
 * unknown and replays so.
 */
export const PATCH_VIDEO_TRACKS = 'video-tracks';

/** Whether a raw input names `tracks` on any video (before validation, so without trusting its shape). */
function hasVideoTracks(raw: unknown): boolean {
  const videos = raw && typeof raw === 'object' ? (raw as { videos?: unknown }).videos : undefined;
  return Array.isArray(videos) && videos.some((v) => v !== null && typeof v === 'object' && 'tracks' in v);
}

/**
 * The run GUID: the input's, else the one embedded in the workflow id when it is the conventional id of
 * this tenant's run (`train-pipeline:{tenantId}:{runGuid}`, src/workflows/ids.ts), else a
 * workflow-deterministic UUID (stable under replay). Executions started before {@link PATCH_UNAMBIGUOUS_IDS}
 * (`unambiguousIds` false) read the legacy form `train-pipeline-{tenantId}-{runGuid}` instead, as they did;
 * new executions do not, since that form names different runs for tenants `acme` and `acme-x`.
 */
function resolveRunGuid(tenantId: string, runGuid: string | undefined, workflowId: string, unambiguousIds: boolean): string {
  if (runGuid) return runGuid;
  if (unambiguousIds) {
    const parsed = parseRunWorkflowId(workflowId);
    if (parsed?.tenantId === tenantId) return parsed.runGuid;
  } else {
    const legacy = legacyRunGuidOf(workflowId, tenantId);
    if (legacy) return legacy;
  }
  return uuid4();
}

/**
 * Where a refused input's failure is recorded: the tenant and run GUID of the run's own prefix, or
 * `undefined` when there is none (tenant id or run GUID breaks its pattern, or a conventional workflow id
 * names another run). Decided from the identifiers themselves, never from which validation error came first.
 * Executions started before {@link PATCH_UNAMBIGUOUS_IDS} keep their old rule (recorded unless the first
 * error, unknown fields being checked before the tenant id, was about the tenant id), so they replay.
 */
function refusalPrefix(raw: unknown, workflowId: string, unambiguousIds: boolean): { tenantId: string; runGuid: string } | undefined {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const o = raw as Record<string, unknown>;
  const tenantId = o.tenantId;
  if (typeof tenantId !== 'string') return undefined;
  if (o.runGuid !== undefined && !(typeof o.runGuid === 'string' && GUID_PATTERN.test(o.runGuid))) return undefined;
  const runGuidIn = o.runGuid as string | undefined;
  if (!unambiguousIds) {
    const unknownFirst = Object.keys(o).some((k) => !['tenantId', 'runGuid', 'videos', 'options'].includes(k));
    if (!unknownFirst && !TENANT_ID_PATTERN.test(tenantId)) return undefined;
    return { tenantId, runGuid: resolveRunGuid(tenantId, runGuidIn, workflowId, false) };
  }
  if (!TENANT_ID_PATTERN.test(tenantId)) return undefined;
  const runGuid = resolveRunGuid(tenantId, runGuidIn, workflowId, true);
  try {
    assertWorkflowIdMatches(workflowId, tenantId, runGuid);
  } catch {
    return undefined;
  }
  return { tenantId, runGuid };
}

function errorOf(err: unknown): { type: string; message: string } {
  let e: unknown = err;
  // Unwrap ChildWorkflowFailure / ActivityFailure to the application failure that explains it.
  while (e && typeof e === 'object' && 'cause' in e && (e as { cause?: unknown }).cause && !(e instanceof ApplicationFailure)) e = (e as { cause: unknown }).cause;
  if (e instanceof ApplicationFailure) return { type: e.type ?? ErrorType.Internal, message: e.message };
  return { type: ErrorType.Internal, message: err instanceof Error ? err.message : String(err) };
}

/**
 * Requests cancellation of workflow `workflowId` (native cancellation). Started by `trainPipeline` as a
 * child when it receives the `cancel` signal.
 */
export async function requestCancellation(workflowId: string): Promise<void> {
  await getExternalWorkflowHandle(workflowId).cancel();
}

/**
 * Runs the whole pipeline on every video of `rawInput`; see docs/ARCHITECTURE.md "Workflow contract".
 *
 * The input is checked first (src/validation.ts, limits included); a refusal fails the run at once as
 * InvalidInput and is recorded in the run's own prefix when it has one. Signals are checked as they come:
 * `cancel` payloads are brought to `{ reason?, by? }` within their limits, `videoProgress` reports that
 * are not about a video of this run are dropped (undecodable signals never get here:
 * src/workflows/interceptors.ts).
 */
export async function trainPipeline(rawInput: TrainPipelineInput): Promise<RunSummary> {
  const info = workflowInfo();
  // New executions use the `:` ids of src/workflows/ids.ts and the input limits; older histories replay
  // with the legacy ids and rules they were recorded with.
  const unambiguousIds = patched(PATCH_UNAMBIGUOUS_IDS);
  let v: ValidatedInput;
  let runGuid: string;
  try {
    v = validateInput(rawInput, { legacy: !unambiguousIds, tracks: hasVideoTracks(rawInput) && patched(PATCH_VIDEO_TRACKS) });
    runGuid = resolveRunGuid(v.tenantId, v.runGuid, info.workflowId, unambiguousIds);
    if (unambiguousIds) assertWorkflowIdMatches(info.workflowId, v.tenantId, runGuid);
  } catch (err) {
    const failure = toApplicationFailure(err);
    const where = refusalPrefix(rawInput, info.workflowId, unambiguousIds);
    if (where) {
      // The input itself is recorded only within the size limit: an oversized one would make this
      // activity's payload too large (it is the refusal's subject, and its size is in the message).
      const input = !unambiguousIds || jsonByteLength(rawInput) <= MAX_INPUT_BYTES ? rawInput : undefined;
      try {
        await bookkeeping.recordRunEnd({
          ...where,
          workflowId: info.workflowId,
          status: 'failed',
          input,
          error: { type: failure.type ?? ErrorType.InvalidInput, message: failure.message },
        });
      } catch (recordErr) {
        // The refusal stands whether or not it could be recorded.
        log.warn('the refusal of the input could not be recorded', { error: errorOf(recordErr).message });
      }
    }
    throw failure;
  }

  const videos = v.videos.map((video) => ({ source: video.source, videoGuid: video.videoGuid ?? uuid4(), ...(video.tracks ? { tracks: video.tracks } : {}) }));
  upsertSearchAttributes([
    { key: TENANT_ID, value: v.tenantId },
    { key: RUN_GUID, value: runGuid },
    { key: PIPELINE_STEP, value: 'started' },
  ]);

  let status: RunStatus = 'running';
  let cancelRequest: (CancelRequest & { at: string }) | undefined;
  const videoProgress = new Map<string, VideoProgress>(
    videos.map((video) => [
      video.videoGuid,
      { videoGuid: video.videoGuid, source: video.source, status: 'pending', currentStep: null, stepsDone: 0, totalSteps: STEP_NAMES.length, counts: {} },
    ]),
  );
  setHandler(progressQuery, (): RunProgress => {
    const list = [...videoProgress.values()];
    const done = list.reduce((s, p) => s + stepsDoneOf(p), 0);
    const total = list.reduce((s, p) => s + p.totalSteps, 0);
    return { runGuid, tenantId: v.tenantId, status, videos: list, fraction: total ? done / total : 0, cancelRequested: cancelRequest };
  });
  setHandler(videoProgressSignal, (p) => {
    // Only reports about this run's videos, of a size a child's report has, are kept, and only in the shape
    // a child sends (src/workflows/progress.ts): anyone may send this signal, and a failed video's summary is
    // built from its last report, so a forged one must not grow the query answer or the summary.
    const videoGuid = p && typeof p === 'object' ? (p as Partial<VideoProgress>).videoGuid : undefined;
    const bytes = jsonByteLength(p);
    if (typeof videoGuid !== 'string' || !videoProgress.has(videoGuid) || bytes > MAX_VIDEO_PROGRESS_BYTES) {
      log.warn('videoProgress signal dropped: not a report about a video of this run', { videoGuid: typeof videoGuid === 'string' ? videoGuid.slice(0, 80) : undefined, bytes });
      return;
    }
    videoProgress.set(videoGuid, sanitizeVideoProgress(p, videoProgress.get(videoGuid)!));
  });
  setHandler(cancelSignal, async (raw) => {
    const { request, changes } = sanitizeCancelRequest(raw);
    if (changes.length) log.warn('cancel signal payload brought to { reason?, by? }', { changes });
    if (cancelRequest) return;
    cancelRequest = { reason: request.reason, by: request.by, at: new Date().toISOString() };
    // Route the signal through native cancellation so both paths behave the same and the workflow ends
    // with status Canceled: the SDK reports Canceled only when cancellation was requested of the workflow,
    // and the server refuses a workflow's request to cancel itself, so a tiny child asks on its behalf.
    await startChild(requestCancellation, {
      workflowId: unambiguousIds ? cancelHelperWorkflowId(info.workflowId) : legacyCancelHelperWorkflowId(info.workflowId),
      args: [info.workflowId],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      cancellationType: ChildWorkflowCancellationType.ABANDON,
    });
  });

  const started = await bookkeeping.recordRunStart({
    tenantId: v.tenantId,
    runGuid,
    workflowId: info.workflowId,
    input: rawInput,
    videoGuids: videos.map((video) => video.videoGuid),
  });

  const outcomes = await CancellationScope.cancellable(() =>
    Promise.allSettled(
      videos.map((video) =>
        executeChild(processVideo, {
          workflowId: unambiguousIds ? videoWorkflowId(info.workflowId, video.videoGuid) : legacyVideoWorkflowId(info.workflowId, video.videoGuid),
          cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
          parentClosePolicy: ParentClosePolicy.TERMINATE,
          typedSearchAttributes: [
            { key: TENANT_ID, value: v.tenantId },
            { key: RUN_GUID, value: runGuid },
          ],
          args: [{ tenantId: v.tenantId, runGuid, videoGuid: video.videoGuid, workflowId: info.workflowId, source: video.source, ...(video.tracks ? { tracks: video.tracks } : {}), options: v.options }],
        }),
      ),
    ),
  );

  const conclusion = summarizeRun(
    { tenantId: v.tenantId, runGuid, workflowId: info.workflowId, bucket: started.bucket, outputPrefix: started.outputPrefix },
    outcomes.map((o, i): SettledVideo => ({
      ...videos[i],
      outcome:
        o.status === 'fulfilled'
          ? { status: 'completed', summary: o.value }
          : isCancellation(o.reason)
            ? { status: 'cancelled' }
            : { status: 'failed', error: errorOf(o.reason) },
      last: videoProgress.get(videos[i].videoGuid)!,
    })),
    cancelRequest !== undefined || CancellationScope.current().consideredCancelled,
  );
  status = conclusion.status;
  const { failedVideo } = conclusion;
  let { summary, error } = conclusion;
  // A completed run with several videos gets one dataset of them all (README "Loading the dataset").
  let mergeFailed = false;
  if (status === 'completed' && videos.length > 1 && patched(PATCH_RUN_DATASET)) {
    try {
      summary = { ...summary, dataset: await runDataset.mergeRunDataset({ tenantId: v.tenantId, runGuid, videoGuids: videos.map((video) => video.videoGuid) }) };
    } catch (err) {
      if (isCancellation(err)) status = 'cancelled';
      else {
        status = 'failed';
        error = errorOf(err);
        mergeFailed = true;
      }
      summary = { ...summary, status };
    }
  }
  for (const s of summary.videos) videoProgress.set(s.videoGuid, { ...videoProgress.get(s.videoGuid)!, status: s.status, error: s.error });
  const cancelled = status === 'cancelled';

  // The final record is written even when the run was cancelled: it must not be cancellable itself.
  await CancellationScope.nonCancellable(async () => {
    upsertSearchAttributes([{ key: PIPELINE_STEP, value: status }]);
    await bookkeeping.recordRunEnd({
      tenantId: v.tenantId,
      runGuid,
      workflowId: info.workflowId,
      status,
      error,
      cancellation: cancelled ? { reason: cancelRequest?.reason ?? 'workflow cancellation requested', by: cancelRequest?.by, at: cancelRequest?.at ?? new Date().toISOString() } : undefined,
      summary,
    });
  });

  if (status === 'cancelled') {
    // Rethrowing the cancellation ends the workflow as Canceled (native and signal paths alike).
    throw new CancelledFailure(cancelRequest?.reason ?? 'workflow cancellation requested');
  }
  if (error && mergeFailed) {
    throw ApplicationFailure.create({ type: error.type, message: `run-level dataset: ${error.message}`, nonRetryable: true });
  }
  if (error) {
    const video = failedVideo!;
    throw ApplicationFailure.create({
      type: error.type,
      message: `video ${video.videoGuid} (${video.source}): ${error.message}`,
      nonRetryable: true,
    });
  }
  return summary;
}

// A PipelineError that escapes the workflow function or a handler is about the input (workflow code does no
// I/O), so retrying the workflow task cannot help: it fails the execution instead. Other errors (bugs,
// nondeterminism) keep failing the workflow task, so that a fixed worker can resume the execution.
setWorkflowOptions({ failureExceptionTypes: [PipelineError] }, trainPipeline);

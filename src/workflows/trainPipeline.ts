/**
 * `trainPipeline`: the parent workflow of a run (SPEC section 3). Validates the input, records the run in
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
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { ErrorType, NON_RETRYABLE_ERROR_TYPES, PipelineError, toApplicationFailure } from '../errors';
import { addIo, emptyIo } from './io';
import { validateInput, GUID_PATTERN, type TrainPipelineInput, type ValidatedInput } from '../validation';
import { cancelSignal, PIPELINE_STEP, progressQuery, RUN_GUID, TENANT_ID, videoProgressSignal, videoWorkflowId } from './messages';
import { processVideo } from './processVideo';
import { STEP_NAMES, type CancelRequest, type RunProgress, type RunStatus, type RunSummary, type VideoProgress, type VideoSummary } from './types';

const bookkeeping = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
});

/**
 * The run GUID: the input's, else the one embedded in a conventional workflow id
 * (`train-pipeline-{tenantId}-{runGuid}`), else a workflow-deterministic UUID (stable under replay).
 */
function resolveRunGuid(v: ValidatedInput, workflowId: string): string {
  if (v.runGuid) return v.runGuid;
  const prefix = `train-pipeline-${v.tenantId}-`;
  if (workflowId.startsWith(prefix) && GUID_PATTERN.test(workflowId.slice(prefix.length))) return workflowId.slice(prefix.length);
  return uuid4();
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

/** Runs the whole pipeline on every video of `rawInput`; see SPEC section 3 for the contract. */
export async function trainPipeline(rawInput: TrainPipelineInput): Promise<RunSummary> {
  const info = workflowInfo();
  let v: ValidatedInput;
  try {
    v = validateInput(rawInput);
  } catch (err) {
    // Record the refusal where the run's own prefix is well defined; never write elsewhere.
    const raw = rawInput as Partial<TrainPipelineInput> | undefined;
    const tenantOk = typeof raw?.tenantId === 'string' && !(err instanceof PipelineError && err.subject.startsWith('tenantId'));
    const guidOk = raw?.runGuid === undefined || (typeof raw.runGuid === 'string' && GUID_PATTERN.test(raw.runGuid));
    const failure = toApplicationFailure(err);
    if (tenantOk && guidOk) {
      const tenantId = raw!.tenantId as string;
      const runGuid = resolveRunGuid({ tenantId, runGuid: raw!.runGuid, videos: [], options: undefined as never }, info.workflowId);
      await bookkeeping.recordRunEnd({
        tenantId,
        runGuid,
        workflowId: info.workflowId,
        status: 'failed',
        input: rawInput,
        error: { type: failure.type ?? ErrorType.InvalidInput, message: failure.message },
      });
    }
    throw failure;
  }

  const runGuid = resolveRunGuid(v, info.workflowId);
  const videos = v.videos.map((video) => ({ source: video.source, videoGuid: video.videoGuid ?? uuid4() }));
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
    const done = list.reduce((s, p) => s + p.stepsDone, 0);
    const total = list.reduce((s, p) => s + p.totalSteps, 0);
    return { runGuid, tenantId: v.tenantId, status, videos: list, fraction: total ? done / total : 0, cancelRequested: cancelRequest };
  });
  setHandler(videoProgressSignal, (p) => {
    videoProgress.set(p.videoGuid, p);
  });
  setHandler(cancelSignal, async (req) => {
    if (cancelRequest) return;
    cancelRequest = { reason: req?.reason, by: req?.by, at: new Date().toISOString() };
    // Route the signal through native cancellation so both paths behave the same and the workflow ends
    // with status Canceled: the SDK reports Canceled only when cancellation was requested of the workflow,
    // and the server refuses a workflow's request to cancel itself, so a tiny child asks on its behalf.
    await startChild(requestCancellation, {
      workflowId: `${info.workflowId}-cancel`,
      args: [info.workflowId],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      cancellationType: ChildWorkflowCancellationType.ABANDON,
    });
  });

  const started = await bookkeeping.recordRunStart({
    tenantId: v.tenantId,
    runGuid,
    workflowId: info.workflowId,
    status: 'running',
    input: rawInput,
    options: v.options,
    videos,
  });

  const outcomes = await CancellationScope.cancellable(() =>
    Promise.allSettled(
      videos.map((video) =>
        executeChild(processVideo, {
          workflowId: videoWorkflowId(info.workflowId, video.videoGuid),
          cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
          parentClosePolicy: ParentClosePolicy.TERMINATE,
          typedSearchAttributes: [
            { key: TENANT_ID, value: v.tenantId },
            { key: RUN_GUID, value: runGuid },
          ],
          args: [{ tenantId: v.tenantId, runGuid, videoGuid: video.videoGuid, workflowId: info.workflowId, source: video.source, options: v.options }],
        }),
      ),
    ),
  );

  const summaries: VideoSummary[] = outcomes.map((o, i) => {
    const video = videos[i];
    const p = videoProgress.get(video.videoGuid)!;
    if (o.status === 'fulfilled') return o.value;
    const cancelled = isCancellation(o.reason);
    return {
      videoGuid: video.videoGuid,
      source: video.source,
      status: cancelled ? 'cancelled' : 'failed',
      counts: p.counts,
      pitch: p.pitch,
      io: p.io,
      routing: p.routing,
      error: cancelled ? undefined : errorOf(o.reason).message,
    };
  });
  for (const s of summaries) videoProgress.set(s.videoGuid, { ...videoProgress.get(s.videoGuid)!, status: s.status, error: s.error });

  const cancelled = cancelRequest !== undefined || CancellationScope.current().consideredCancelled || summaries.some((s) => s.status === 'cancelled');
  const firstFailure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected' && !isCancellation(o.reason));
  status = cancelled ? 'cancelled' : firstFailure ? 'failed' : 'completed';

  const totals = summaries.reduce((t, s) => addIo(t, s.io), emptyIo());
  const summary: RunSummary = {
    status,
    tenantId: v.tenantId,
    runGuid,
    workflowId: info.workflowId,
    bucket: started.bucket,
    outputPrefix: started.outputPrefix,
    videos: summaries,
    cache: { hits: totals.cacheHits, misses: totals.cacheMisses, bytesFromCache: totals.bytesFromCache, artifactDownloads: totals.artifactDownloads },
    storage: { requests: totals.gcsRequests, bytesUploaded: totals.bytesUploaded, bytesDownloaded: totals.bytesDownloaded },
  };
  const error = firstFailure ? errorOf(firstFailure.reason) : undefined;

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
  if (error) {
    const video = summaries.find((s) => s.status === 'failed')!;
    throw ApplicationFailure.create({
      type: error.type,
      message: `video ${video.videoGuid} (${video.source}): ${error.message}`,
      nonRetryable: true,
    });
  }
  return summary;
}

/**
 * `processVideo`: the per-video child workflow of `trainPipeline`. Runs the nine steps of SPEC section 4 in
 * order, CPU steps on the parent's task queue and GPU steps (detection, background removal) on
 * `{taskQueue}-gpu`, reports progress to its parent, and keeps `PipelineStep` current for the Web UI.
 *
 * Deterministic workflow code: activities are imported as types only.
 */
import {
  ActivityCancellationType,
  getExternalWorkflowHandle,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { NON_RETRYABLE_ERROR_TYPES } from '../errors';
import { PIPELINE_STEP, videoProgressQuery, videoProgressSignal } from './messages';
import { STEP_NAMES, type GrassModel, type ProcessVideoInput, type StepInput, type StepName, type StepResultBase, type VideoProgress, type VideoSummary } from './types';

/**
 * Activity options shared by every step. Heartbeat timeout 30 s: long steps heartbeat every frame or crop, so
 * a dead worker is noticed within half a minute and the step is retried elsewhere (workers cap heartbeat
 * throttling at {@link https://typescript.temporal.io/api/interfaces/worker.WorkerOptions#maxheartbeatthrottleinterval | 2 s}
 * so cancellation reaches a running step within seconds). Retries back off from 1 s to
 * 1 min; the error classification in `src/errors.ts` decides what is not retried.
 */
function stepOptions(taskQueue: string): ActivityOptions {
  return {
    taskQueue,
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: '30 seconds',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      maximumAttempts: 8,
      nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
    },
  };
}

/** Processes one video through the nine steps and returns its counts. */
export async function processVideo(input: ProcessVideoInput): Promise<VideoSummary> {
  const info = workflowInfo();
  const cpu = proxyActivities<Activities>(stepOptions(info.taskQueue));
  const gpu = proxyActivities<Activities>(stepOptions(`${info.taskQueue}-gpu`));
  const parent = info.parent ? getExternalWorkflowHandle(info.parent.workflowId, info.parent.runId) : undefined;

  const progress: VideoProgress = {
    videoGuid: input.videoGuid,
    source: input.source,
    status: 'running',
    currentStep: null,
    stepsDone: 0,
    totalSteps: STEP_NAMES.length,
    counts: {},
    io: { gcsRequests: 0, bytesUploaded: 0, bytesDownloaded: 0, cacheHits: 0, cacheMisses: 0 },
  };
  setHandler(videoProgressQuery, () => progress);

  const report = async (): Promise<void> => {
    if (parent) await parent.signal(videoProgressSignal, { ...progress, counts: { ...progress.counts }, io: { ...progress.io! } });
  };

  const base: StepInput = {
    tenantId: input.tenantId,
    runGuid: input.runGuid,
    videoGuid: input.videoGuid,
    workflowId: input.workflowId,
    source: input.source,
    options: input.options,
  };

  /** Runs one step: marks it current (search attribute + parent), awaits it, counts it done. */
  async function step<R extends StepResultBase>(name: StepName, run: () => Promise<R>): Promise<R> {
    progress.currentStep = name;
    upsertSearchAttributes([{ key: PIPELINE_STEP, value: name }]);
    await report();
    const result = await run();
    progress.stepsDone++;
    const io = progress.io!;
    io.gcsRequests += result.io.gcsRequests;
    io.bytesUploaded += result.io.bytesUploaded;
    io.bytesDownloaded += result.io.bytesDownloaded;
    io.cacheHits += result.io.cacheHits;
    io.cacheMisses += result.io.cacheMisses;
    return result;
  }

  await step('importVideo', () => cpu.importVideo(base));
  await step('loadVideo', () => cpu.loadVideo(base));
  const frames = await step('extractFramesForDetections', () => cpu.extractFramesForDetections(base));
  progress.counts.frames = frames.frames;
  const grassResult = await step('initializeGrassMask', () => cpu.initializeGrassMask(base));
  const grass: GrassModel = grassResult.grass;
  const detected = await step('detectPlayers', () => gpu.detectPlayers({ ...base, grass }));
  progress.counts.detections = detected.detections;
  progress.counts.tracks = detected.tracks;
  const crops = await step('extractCrops', () => cpu.extractCrops({ ...base, grass }));
  progress.counts.crops = crops.crops;
  await step('removeCropBackground', () => gpu.removeCropBackground({ ...base, grass }));
  await step('augmentCrops', () => cpu.augmentCrops({ ...base, grass }));
  const split = await step('createTrainingAndValidationSets', () => cpu.createTrainingAndValidationSets({ ...base, grass }));
  progress.counts.train = split.train;
  progress.counts.val = split.val;

  progress.status = 'completed';
  progress.currentStep = null;
  upsertSearchAttributes([{ key: PIPELINE_STEP, value: 'completed' }]);
  await report();
  return { videoGuid: input.videoGuid, source: input.source, status: 'completed', counts: { ...progress.counts }, io: { ...progress.io! } };
}

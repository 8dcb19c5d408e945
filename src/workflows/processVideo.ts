/**
 * `processVideo`: the per-video child workflow of `trainPipeline`. Runs the nine steps in order
 * (docs/ARCHITECTURE.md "The nine steps"), each on the queue the step table gives it (src/workflows/steps.ts:
 * CPU steps on the parent's task queue, GPU steps on its GPU queue, or the claimed workers' own queues:
 * src/workflows/routing.ts), reports progress to its parent, and keeps `PipelineStep` current for the Web UI.
 *
 * Deterministic workflow code: activities are imported as types only.
 */
import {
  ActivityFailure,
  CancellationScope,
  ChildWorkflowCancellationType,
  executeChild,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  ParentClosePolicy,
  patched,
  TimeoutFailure,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import type { Activities, RoutingActivities } from '../activities';
import { addIo, emptyIo } from './io';
import { stepFailure } from '../errors';
import { STEP_MAX_ATTEMPTS, stepOptions } from './activityOptions';
import { PIPELINE_STEP, RUN_GUID, TENANT_ID, videoProgressQuery, videoProgressSignal } from './messages';
import { segmentWorkflowId } from './ids';
import { segmentSummary, trackSegment } from './trackSegment';
import { DEFAULT_OPTIONS } from '../validation';
import { VideoRouter } from './routing';
import { CLASS_BATCH_PARTS, gpuTaskQueueFor, STEP_NAMES, stepNumber, stepQueue, type BatchedStepName, type StepName } from './steps';
import type { BatchProgress, ProcessVideoInput, SegmentProgress, SegmentRange, StepInput, StepResultBase, VideoProgress, VideoSummary } from './types';
import type { ClassBatch } from '../dataset/batches';
import type { PitchModel } from '../vision/pitch/model';

/** Attempts of a step before it fails for good (see src/workflows/activityOptions.ts). */
export { STEP_MAX_ATTEMPTS } from './activityOptions';

/** Patch id: cache release also on the video's own queues and never on a lost worker's (see releaseCaches). */
export const PATCH_RELEASE_OWN_QUEUES = 'release-cache-on-own-queues';

/**
 * Patch id: a step whose last attempt timed out on heartbeats counts as a lost worker only when the worker also
 * does not answer a ping on its own queue (a live worker whose step hung is not re-routed), and a step that
 * fails for good fails the video with a failure naming the step, its attempts and the root cause.
 */
export const PATCH_PROBE_WORKER = 'probe-worker-on-heartbeat-timeout';

/**
 * Patch id: a video longer than one segment (step 3's `segments`, `options.segments`) has each segment's
 * detection and tracking done by its own `detectSegment` activity on the shared GPU queue, all at once (any
 * GPU worker takes one), before step 5 stitches them (docs/ARCHITECTURE.md "Segments"). Executions that
 * started before this rule track the video in one piece.
 */
export const PATCH_VIDEO_SEGMENTS = 'video-segments';

/**
 * Patch id: each segment of step 5's fan-out (see {@link PATCH_VIDEO_SEGMENTS}) is a `trackSegment` child workflow
 * (src/workflows/trackSegment.ts) running the `detectSegment` activity, instead of the activity scheduled by
 * `processVideo` itself, so that the Web UI lists every segment with its own id, search attributes and history.
 * Executions that started before this rule schedule the activities themselves.
 */
export const PATCH_SEGMENT_WORKFLOWS = 'segment-workflows';

/**
 * Patch id: a video of more than one class batch (step 5's `classBatches`, `options.batches`) has each batch's crops
 * cut by its own `cropBatch` activity before step 6 merges them, each batch's backgrounds removed by its own
 * `backgroundBatch` before step 7 gathers them, and each batch's augmented copies made by its own
 * `augmentBatch` before step 8 counts them and step 9 copies them into the dataset; each fan-out runs all at
 * once on the step's shared queue (CPU, GPU for step 7), so any worker of that kind takes a batch
 * (docs/ARCHITECTURE.md "Class batches"). Executions that started before this rule run those steps in one piece.
 */
export const PATCH_CLASS_BATCHES = 'class-batches';

/**
 * Whether an activity failure may mean its worker is gone: the attempt's heartbeats stopped, or nobody took the
 * task from the worker's own queue in time (Temporal timeout types HEARTBEAT and SCHEDULE_TO_START). A
 * schedule-to-start timeout is conclusive (Temporal does not retry it); a heartbeat timeout is also what a live
 * worker with a stuck step gives, so `processVideo` pings the worker before re-routing.
 */
export function isWorkerLost(err: unknown): boolean {
  const t = timeoutOf(err);
  return t === TimeoutType.SCHEDULE_TO_START || t === TimeoutType.HEARTBEAT;
}

/** The Temporal timeout type of an activity failure, if a timeout caused it. */
function timeoutOf(err: unknown): TimeoutType | undefined {
  if (!(err instanceof ActivityFailure) || !(err.cause instanceof TimeoutFailure)) return undefined;
  return err.cause.timeoutType;
}

/**
 * Processes one video through the nine steps and returns its counts. With `routing.workerAffinity`, the
 * video's CPU steps go to one worker's own queue and its GPU steps to one worker's own queue (the same
 * process when it serves both), so each step reads its inputs from that worker's run cache; when such a
 * worker is lost, the step and every later one go to the shared queue and read from GCS. When the video
 * ends (completed, failed or cancelled) the run cache of every worker that holds its artifacts is released.
 */
export async function processVideo(input: ProcessVideoInput): Promise<VideoSummary> {
  const info = workflowInfo();
  const routing = input.options.routing ?? DEFAULT_OPTIONS.routing;
  const router = new VideoRouter({ cpu: info.taskQueue, gpu: gpuTaskQueueFor(info.taskQueue) });
  const proxies = new Map<string, Activities>();
  const acts = (queue: string): Activities => {
    let p = proxies.get(queue);
    if (!p) {
      p = proxyActivities<Activities>(stepOptions(queue, routing, router.isOwnQueue(queue)));
      proxies.set(queue, p);
    }
    return p;
  };
  const parent = info.parent ? getExternalWorkflowHandle(info.parent.workflowId, info.parent.runId) : undefined;

  const progress: VideoProgress = {
    videoGuid: input.videoGuid,
    source: input.source,
    status: 'running',
    currentStep: null,
    stepsDone: 0,
    totalSteps: STEP_NAMES.length,
    counts: {},
    io: emptyIo(),
    routing: router.routing,
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
    ...(input.tracks ? { tracks: input.tracks } : {}),
    options: input.options,
  };

  /** Picks this video's workers (claims on the shared queues); keeps the shared queues when none answers. */
  async function claimWorkers(): Promise<void> {
    const claimOptions: ActivityOptions = { scheduleToCloseTimeout: `${routing.scheduleToStartSeconds} seconds`, retry: { maximumAttempts: 1 } };
    try {
      const w = await proxyActivities<RoutingActivities>({ ...claimOptions, taskQueue: router.shared.cpu }).claimWorker();
      if (!router.claimCpu(w)) return;
      const g = await proxyActivities<RoutingActivities>({ ...claimOptions, taskQueue: router.shared.gpu }).claimGpuWorker();
      router.claimGpu(g);
    } catch (err) {
      if (isCancellation(err)) throw err;
      log.warn('no worker claimed; steps use the shared queues', { error: String(err) });
    }
  }

  /**
   * Runs `call` on the video's worker for its queue kind; when that worker is lost, re-routes every step
   * still pinned to it (CPU and GPU alike when one process served both) to the shared queues and runs `call`
   * there.
   */
  async function onWorker<R extends StepResultBase>(name: StepName, call: (a: Activities) => Promise<R>): Promise<R> {
    const kind = stepQueue(name);
    const queue = router.queueFor(kind);
    let result: R;
    if (!router.isOwnQueue(queue)) {
      result = await call(acts(queue));
    } else {
      try {
        result = await call(acts(queue));
      } catch (err) {
        if (!isWorkerLost(err) || !(await workerGone(err, queue))) throw err;
        const reason = `${(err as ActivityFailure).cause?.message ?? 'timeout'}: worker ${router.workerOf(kind)} is gone`;
        log.warn('worker lost; re-routing to the shared queue', { step: name, queue, reason });
        result = await call(acts(router.reroute(kind, name, reason)));
      }
    }
    router.cached(result.cachedOn);
    return result;
  }

  /**
   * After a heartbeat timeout on `queue` (a worker's own queue): whether that worker is gone. It is alive when it
   * takes a ping from its own queue within the schedule-to-start timeout; then the step hung on a live worker
   * and re-routing would only repeat it. Executions that started before this rule re-route on any heartbeat
   * timeout (patching API: https://docs.temporal.io/develop/typescript/versioning).
   */
  async function workerGone(err: unknown, queue: string): Promise<boolean> {
    if (timeoutOf(err) !== TimeoutType.HEARTBEAT || !patched(PATCH_PROBE_WORKER)) return true;
    try {
      const answer = await proxyActivities<RoutingActivities>({ taskQueue: queue, scheduleToStartTimeout: `${routing.scheduleToStartSeconds} seconds`, startToCloseTimeout: '10 seconds', retry: { maximumAttempts: 1 } }).pingWorker();
      log.warn('step timed out on heartbeats, but its worker answers: not re-routed', { queue, workerId: answer.workerId });
      return false;
    } catch (e) {
      if (isCancellation(e)) throw e;
      return true;
    }
  }

  /**
   * Runs one step: marks it current (search attribute + parent), awaits it, counts it done. A step that fails
   * for good fails the video with {@link stepFailure} (step, attempts, root cause); cancellation passes as is.
   */
  async function step<R extends StepResultBase>(name: StepName, call: (a: Activities) => Promise<R>): Promise<R> {
    progress.currentStep = name;
    upsertSearchAttributes([{ key: PIPELINE_STEP, value: name }]);
    await report();
    let result: R;
    try {
      result = await onWorker(name, call);
    } catch (err) {
      if (isCancellation(err) || !patched(PATCH_PROBE_WORKER)) throw err;
      throw stepFailure(name, stepNumber(name), err, STEP_MAX_ATTEMPTS);
    }
    progress.stepsDone++;
    addIo(progress.io!, result.io);
    return result;
  }

  /**
   * Runs the parts of a fanned-out step all at once (`run` starts one part: an activity on a shared queue, so that
   * every worker serving it takes some, or a child workflow); marks the step current first. A part that fails for
   * good cancels the others and fails the video with {@link stepFailure} naming the step. With `settle` (child
   * workflow parts), a failed or cancelled fan-out first waits until every part has ended, so each child closes
   * as cancelled rather than being terminated when the video closes (the parent close policy).
   */
  async function fanOut<P, R extends StepResultBase>(name: StepName, parts: P[], run: (p: P) => Promise<R>, done: (r: R) => void, settle = false): Promise<void> {
    progress.currentStep = name;
    upsertSearchAttributes([{ key: PIPELINE_STEP, value: name }]);
    await report();
    const scope = new CancellationScope();
    let running: Promise<void>[] = [];
    const all = scope.run(() => {
      running = parts.map(async (p) => {
        const r = await run(p);
        done(r);
        addIo(progress.io!, r.io);
        router.cached(r.cachedOn);
        await report();
      });
      return Promise.all(running);
    });
    try {
      await all;
    } catch (err) {
      if (!isCancellation(err)) scope.cancel();
      if (settle) await CancellationScope.nonCancellable(() => Promise.allSettled(running));
      if (isCancellation(err)) throw err;
      throw stepFailure(name, stepNumber(name), err, STEP_MAX_ATTEMPTS);
    }
  }

  /** `run` of {@link fanOut} for activity parts: `call` on shared queue `queue`, named in the Web UI by `named`. */
  function activityParts<P, R>(queue: string, named: (p: P) => { activityId: string; summary: string }, call: (a: Activities, p: P) => Promise<R>): (p: P) => Promise<R> {
    return (p) => call(proxyActivities<Activities>({ ...stepOptions(queue, routing, false), ...named(p) }), p);
  }

  /**
   * The fan-out of step 5 over time segments, on the shared GPU queue so that every GPU worker takes some; counts
   * segments and frames in progress. Each segment is a `trackSegment` child workflow (its own id, search
   * attributes and history in the Web UI) running `detectSegment`; executions that started before
   * {@link PATCH_SEGMENT_WORKFLOWS} schedule the `detectSegment` activities themselves.
   */
  async function trackSegments(segments: SegmentRange[], grass: PitchModel): Promise<void> {
    const counter: SegmentProgress = { total: segments.length, done: 0, framesDone: 0 };
    progress.segments = counter;
    const gpu = router.shared.gpu;
    const asChildren = patched(PATCH_SEGMENT_WORKFLOWS);
    await fanOut(
      'detectPlayers',
      segments,
      asChildren
        ? (segment) =>
            executeChild(trackSegment, {
              workflowId: segmentWorkflowId(info.workflowId, segment.index),
              cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
              parentClosePolicy: ParentClosePolicy.TERMINATE,
              staticSummary: segmentSummary(segment, segments.length),
              typedSearchAttributes: [
                { key: TENANT_ID, value: input.tenantId },
                { key: RUN_GUID, value: input.runGuid },
              ],
              args: [{ segment: { ...base, grass, segment }, taskQueue: gpu, segments: segments.length, routing }],
            })
        : activityParts(
            gpu,
            (segment) => ({ activityId: `detectSegment-${segment.index}`, summary: segmentSummary(segment, segments.length) }),
            (a, segment) => a.detectSegment({ ...base, grass, segment }),
          ),
      (r) => {
        counter.done++;
        counter.framesDone += r.frames;
      },
      asChildren,
    );
  }

  /**
   * The fan-out of a step over class batches, on the step's shared queue so that every worker of its kind takes
   * some: step 6 (one `cropBatch` per batch, CPU), step 7 (`backgroundBatch`, GPU) or step 8 (`augmentBatch`,
   * CPU); counts batches in progress.
   */
  async function classBatches(name: BatchedStepName, batches: ClassBatch[], grass: PitchModel): Promise<void> {
    const counter: BatchProgress = { total: batches.length, done: 0 };
    progress.batches = counter;
    const activity = CLASS_BATCH_PARTS[name];
    const n = stepNumber(name);
    await fanOut<ClassBatch, StepResultBase>(
      name,
      batches,
      activityParts<ClassBatch, StepResultBase>(
        stepQueue(name) === 'gpu' ? router.shared.gpu : router.shared.cpu,
        (batch) => ({ activityId: `${activity}-${batch.index}`, summary: `step ${n}, class batch ${batch.index + 1} of ${batches.length}: tracks ${batch.from}-${batch.to}, ${batch.boxes} boxes` }),
        (a, batch) => a[activity]({ ...base, grass, batch }),
      ),
      () => void counter.done++,
    );
  }

  /** Best effort: drops this video's entries from every worker cache that holds some (cache TTL otherwise). */
  async function releaseCaches(): Promise<void> {
    const release = (queue: string) =>
      proxyActivities<Activities>({ taskQueue: queue, scheduleToStartTimeout: '10 seconds', startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 2 } })
        .releaseVideoCache({ tenantId: input.tenantId, runGuid: input.runGuid, videoGuid: input.videoGuid })
        .catch((err) => log.warn('cache release failed; the entries expire by TTL', { queue, error: String(err) }));
    // Completed steps say where they cached; a step that failed or was cancelled may have cached something
    // on the video's own workers too, and a lost worker's queue would only time out. Executions that started
    // before this rule replay without it (patching API: https://docs.temporal.io/develop/typescript/versioning).
    await Promise.all(router.releaseQueues(patched(PATCH_RELEASE_OWN_QUEUES)).map(release));
  }

  try {
    if (routing.workerAffinity) await claimWorkers();
    await step('importVideo', (a) => a.importVideo(base));
    await step('loadVideo', (a) => a.loadVideo(base));
    const frames = await step('extractFramesForDetections', (a) => a.extractFramesForDetections(base));
    progress.counts.frames = frames.frames;
    const grassResult = await step('initializeGrassMask', (a) => a.initializeGrassMask(base));
    const grass: PitchModel = grassResult.grass;
    progress.pitch = { found: grass.pitchFound, framesPitchLike: grass.pitch?.framesPitchLike, framesSampled: grassResult.framesSampled, reason: grass.pitch?.reason };
    // A video longer than one segment: its segments are tracked apart, on every GPU worker, then stitched.
    const segments = frames.segments && frames.segments.length > 1 && patched(PATCH_VIDEO_SEGMENTS) ? frames.segments : undefined;
    if (segments) await trackSegments(segments, grass);
    const detected = await step('detectPlayers', (a) => a.detectPlayers({ ...base, grass, ...(segments ? { segments } : {}) }));
    progress.counts.detections = detected.detections;
    progress.counts.tracks = detected.tracks;
    // A video of several class batches: their crops, backgrounds and augmented copies are made on every worker.
    const batches = detected.classBatches && detected.classBatches.length > 1 && patched(PATCH_CLASS_BATCHES) ? detected.classBatches : undefined;
    const batched = batches ? { batches } : {};
    if (batches) await classBatches('extractCrops', batches, grass);
    const crops = await step('extractCrops', (a) => a.extractCrops({ ...base, grass, ...batched }));
    progress.counts.crops = crops.crops;
    if (batches) await classBatches('removeCropBackground', batches, grass);
    await step('removeCropBackground', (a) => a.removeCropBackground({ ...base, grass, ...batched }));
    if (batches) await classBatches('augmentCrops', batches, grass);
    await step('augmentCrops', (a) => a.augmentCrops({ ...base, grass, ...batched }));
    const split = await step('createTrainingAndValidationSets', (a) => a.createTrainingAndValidationSets({ ...base, grass, ...batched }));
    progress.counts.train = split.train;
    progress.counts.val = split.val;
    if (split.test !== undefined) progress.counts.test = split.test;
    if (split.classes !== undefined) progress.counts.classes = split.classes;
  } finally {
    await CancellationScope.nonCancellable(releaseCaches);
  }

  progress.status = 'completed';
  progress.currentStep = null;
  upsertSearchAttributes([{ key: PIPELINE_STEP, value: 'completed' }]);
  await report();
  return { videoGuid: input.videoGuid, source: input.source, status: 'completed', counts: { ...progress.counts }, pitch: progress.pitch, io: { ...progress.io! }, routing: router.routing };
}

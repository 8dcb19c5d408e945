/**
 * {@link runStep}: what every step activity shares. It gives the step body a {@link RunFiles} over the
 * worker's run cache and GCS, heartbeats, records the step's result in `intermediate/step{N}_result.json`
 * and its status and timing in `.pipeline_info.json`, and classifies failures (src/errors.ts).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { CancelledFailure } from '@temporalio/common';
import type { RunCache } from '../cache/runCache';
import { toApplicationFailure } from '../errors';
import { pipelineInfoSchema, stepResultFileSchema, updateArtifact, type StepStatus } from '../storage/artifacts';
import type { ObjectStore } from '../storage/gcs';
import { RunLayout } from '../storage/layout';
import { RunFiles, type FrameCodec } from '../storage/runFiles';
import { decodeImage, type RgbFrame } from '../vision/image/rgb';
import { stepNumber, workerQueueFor, type StepName } from '../workflows/steps';
import type { StepInput, StepResultBase } from '../workflows/types';
import type { ActivityDeps } from './deps';
import { currentLiveness, reportProgress } from './liveness';
import { explainLocalFault, workerFolders } from './localDisk';
import { activityAttempt, activityTaskQueue, heartbeat } from './temporal';

/** The stored frames of every step: JPEGs (as cached and stored) decoded to RGB24 ({@link decodeImage}). */
export const RGB_FRAME_CODEC: FrameCodec<RgbFrame> = { decode: decodeImage };

/** What step bodies get: the run's artifacts as decoded RGB frames, JSON and files. */
export type StepFiles = RunFiles<RgbFrame>;


/** What a step body returns: the small result for the workflow, and optional details for GCS only. */
export interface StepOutput<R> {
  result: R;
  /** Extra fields written into `step{N}_result.json` but not returned to the workflow (e.g. crop index). */
  details?: Record<string, unknown>;
}

/**
 * Runs one step for one video: gives the body a {@link RunFiles}, heartbeats at start, then writes the
 * result under `videos.{videoGuid}` of `intermediate/step{N}_result.json` and the step's status and timings
 * into `.pipeline_info.json`. Any error is recorded there and rethrown classified (`toApplicationFailure`;
 * faults of the worker's cache and scratch folders as `LocalDisk`, naming the folder).
 *
 * With `part`, the body is one part of the step ({@link StepPart}: a segment of step 5 or a class batch of
 * steps 6-8): its result goes under `{group}.{index}` of the video's entry, and `.pipeline_info.json` gets the
 * step's status only when the part fails (the step itself records completion). The step's own entry keeps its
 * parts' results.
 */
export async function runStep<R extends object>(
  deps: ActivityDeps,
  name: StepName,
  input: StepInput,
  body: (files: StepFiles, layout: RunLayout) => Promise<StepOutput<R>>,
  part?: StepPart,
): Promise<R & StepResultBase> {
  const startedAt = new Date();
  const layout = new RunLayout(input.tenantId, input.runGuid);
  const files: StepFiles = new RunFiles(deps.store.scoped(), deps.cache, input.tenantId, input.runGuid, input.videoGuid, path.join(deps.workDir, `${name}-${randomUUID()}`), {
    codec: RGB_FRAME_CODEC,
    onProgress: () => reportProgress(),
  });
  const n = stepNumber(name);
  // How long this process's event loop (which carries heartbeats and cancellation) stalled during the step.
  const loop = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
  loop.enable();
  heartbeat({ step: name, phase: 'started' });
  try {
    // A stalled attempt (no progress for the stall limit: src/activities/liveness.ts) fails here, recorded.
    const liveness = currentLiveness();
    const out = await (liveness ? Promise.race([body(files, layout), liveness.stalled]) : body(files, layout));
    // A step cancelled while its last phase ran must not be recorded as completed.
    heartbeat({ step: name, phase: 'recording' });
    const finishedAt = new Date();
    const result = {
      ...out.result,
      step: n,
      name,
      videoGuid: input.videoGuid,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs: finishedAt.getTime() - startedAt.getTime(),
      io: files.finalIo(),
      taskQueue: activityTaskQueue(),
      cachedOn: deps.cache.enabled ? cacheQueue(deps.workerId) : undefined,
      eventLoopDelayMs: eventLoopDelay(loop),
      liveness: liveness?.stats(),
    } as R & StepResultBase;
    const memory = workerMemory(deps.cache);
    await updateArtifact(files.store, layout.stepResult(n), stepResultFileSchema, (cur) => {
      const entry = { ...result, ...(out.details ?? {}), memory };
      const prev = cur?.videos?.[input.videoGuid];
      // The step's own entry keeps the results of its parts (segments or class batches).
      const parts = Object.fromEntries(PART_GROUPS.filter((g) => prev?.[g]).map((g) => [g, prev![g]]));
      const video = part
        ? { ...prev, videoGuid: input.videoGuid, [part.group]: { ...((prev?.[part.group] ?? {}) as Record<string, unknown>), [part.index]: entry } }
        : { ...entry, ...parts };
      return { step: n, name, videos: { ...(cur?.videos ?? {}), [input.videoGuid]: video } };
    });
    if (part) return result;
    await recordStepStatus(files.store, layout, input.videoGuid, name, {
      status: 'completed',
      startedAt: result.startedAt,
      finishedAt: result.finishedAt,
      durationMs: result.durationMs,
      taskQueue: result.taskQueue,
      io: result.io,
      eventLoopDelayMs: result.eventLoopDelayMs,
      liveness: result.liveness,
    });
    return result;
  } catch (err) {
    const attempt = activityAttempt();
    // A fault of the worker's own folders is reported as such, naming the folder (src/activities/localDisk.ts).
    const failure = toApplicationFailure(explainLocalFault(err, workerFolders(deps)), attempt);
    const cancelled = err instanceof CancelledFailure;
    await recordStepStatus(files.store, layout, input.videoGuid, name, {
      status: cancelled ? 'cancelled' : failure.nonRetryable ? 'failed' : 'retrying',
      attempt,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      error: cancelled ? undefined : { type: failure.type, message: failure.message },
    }).catch(() => undefined);
    throw cancelled ? err : failure;
  } finally {
    loop.disable();
    await files.cleanup();
  }
}

/**
 * One part of a fanned-out step: a time segment of step 5 (`segments`, docs/ARCHITECTURE.md "Segments") or a
 * class batch of steps 6-8 (`batches`, "Class batches"), by its 0-based index.
 */
export interface StepPart {
  group: (typeof PART_GROUPS)[number];
  index: number;
}

/** Keys under which a step's entry in `step{N}_result.json` keeps its parts' results. */
const PART_GROUPS = ['segments', 'batches'] as const;

/** Sampling interval of the per-step event-loop delay histogram (Node's `perf_hooks.monitorEventLoopDelay`). */
const EVENT_LOOP_RESOLUTION_MS = 20;

/**
 * p99 and maximum of an event-loop delay histogram, in milliseconds (the histogram counts nanoseconds;
 * https://nodejs.org/api/perf_hooks.html#perf_hooksmonitoreventloopdelayoptions). A step whose maximum nears
 * the heartbeat throttle interval (`WORKER_TUNING`, 2 s) would delay heartbeats and the notice of a cancel.
 */
function eventLoopDelay(h: IntervalHistogram): { p99: number; max: number } {
  const ms = (ns: number) => (Number.isFinite(ns) ? Math.round(ns / 1e5) / 10 : 0);
  return { p99: ms(h.percentile(99)), max: ms(h.max) };
}

/**
 * The worker-specific queue of this process that belongs to the current activity's queue: where
 * `releaseVideoCache` reaches this process's run cache (the queue itself when it already is one).
 */
function cacheQueue(workerId: string): string | undefined {
  const tq = activityTaskQueue();
  if (!tq) return undefined;
  return tq.includes('@') ? tq : workerQueueFor(tq, workerId);
}


/** Sets `steps.{videoGuid}.{step}` of `.pipeline_info.json` (concurrency-safe read-modify-write). */
export async function recordStepStatus(store: ObjectStore, layout: RunLayout, videoGuid: string, step: StepName, status: Omit<StepStatus, 'step'>): Promise<void> {
  await updateArtifact(store, layout.pipelineInfo, pipelineInfoSchema, (cur) => {
    const info = cur ?? {};
    const steps = { ...(info.steps ?? {}) };
    const entry = { step: stepNumber(step), ...status } as StepStatus;
    steps[videoGuid] = { ...(steps[videoGuid] ?? {}), [step]: entry };
    return { ...info, steps, updatedAt: new Date().toISOString() };
  });
}

/** The malloc a process runs with ({@link mallocInUse}). */
export type MallocName = 'jemalloc' | 'glibc' | 'unknown';

let malloc: MallocName | undefined;

/**
 * The malloc this process runs with: `jemalloc` when libjemalloc is mapped into it (scripts/worker.sh preloads
 * it when installed), else `glibc`; `unknown` where `/proc/self/maps` cannot be read (not Linux). Read once.
 */
export function mallocInUse(): MallocName {
  if (malloc === undefined) {
    try {
      malloc = readFileSync('/proc/self/maps', 'utf8').includes('libjemalloc') ? 'jemalloc' : 'glibc';
    } catch {
      malloc = 'unknown';
    }
  }
  return malloc;
}

/**
 * The worker process's memory when a step ends, MiB (one decimal): `rss`, V8's `heapTotal` (committed) and
 * `heapUsed`, `external` and `arrayBuffers` (Node's `process.memoryUsage()`), and `peakRss`, the most RSS the process has had so far
 * (`process.resourceUsage().maxRSS`, KiB on Linux), and with `cache` given the bytes its entries hold now
 * (`RunCache.stats`; part of `rss`, bounded by `CACHE_MAX_BYTES`), and the allocator ({@link mallocInUse}). Kept in the step result file only (not in the workflow's
 * history), so `npm run bench:scale` can say which step holds what.
 */
export function workerMemory(cache?: RunCache): { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number; peakRss: number; cache?: number; malloc: MallocName } {
  const m = process.memoryUsage();
  const mib = (b: number) => Math.round((b / 1024 ** 2) * 10) / 10;
  const held = cache ? { cache: mib(cache.stats().bytes) } : {};
  return { rss: mib(m.rss), heapTotal: mib(m.heapTotal), heapUsed: mib(m.heapUsed), external: mib(m.external), arrayBuffers: mib(m.arrayBuffers), peakRss: mib(process.resourceUsage().maxRSS * 1024), ...held, malloc: mallocInUse() };
}

/**
 * What every step activity shares: its dependencies ({@link ActivityDeps}), the run's artifacts
 * ({@link RunFiles}: the worker's run cache first, GCS on a miss; GCS first, then the cache, on write), heartbeats with
 * cancellation checks, and {@link runStep}, which records the step's result in
 * `intermediate/step{N}_result.json` and its status and timing in `.pipeline_info.json`.
 */
import { randomUUID } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { cacheKey, type RunCache } from '../cache/runCache';
import type { SourcePolicy } from '../config';
import { toApplicationFailure } from '../errors';
import type { ObjectInfo, ObjectStore } from '../storage/gcs';
import { RunLayout } from '../storage/layout';
import { moveFile } from '../util/fs';
import { md5Base64 } from '../util/hash';
import type { Detector, RgbFrame } from '../vision/detector';
import type { FfmpegBinaries } from '../vision/ffmpeg';
import { decodeFrame } from '../vision/players';
import { currentLiveness, reportProgress } from './liveness';
import { explainLocalFault, workerFolders } from './localDisk';
import { workerQueueFor } from './routing';
import type { Segmenter } from '../vision/segment';
import { emptyIo } from '../workflows/io';
import { stepNumber, type StepInput, type StepIo, type StepName, type StepResultBase } from '../workflows/types';

/** Dependencies that activity factories close over (SPEC section 2). */
export interface ActivityDeps {
  /** The run store; activities take a {@link ObjectStore.scoped} view per call for accounting. */
  store: ObjectStore;
  /** The worker's run cache (in memory, plus the video files it holds on disk). */
  cache: RunCache;
  /** Folder for temporary files of activity calls (each call uses and removes its own subfolder). */
  workDir: string;
  /** Reported in `.pipeline_info.json`. */
  codeVersion: string;
  /** ffmpeg and ffprobe executables. */
  ffmpeg: FfmpegBinaries;
  /** What `importVideo` accepts as a source: confinement of local paths, size and frame-size limits. */
  sourcePolicy: SourcePolicy;
  /** The detector session for a model file name (one session per process, created on first use). */
  getDetector(modelName: string): Promise<Detector>;
  /** The background segmentation session (u2netp), one per process, created on first use. */
  getSegmenter(): Promise<Segmenter>;
  /** Name, path and sha256 of a model file in `models/`. */
  modelInfo(modelName: string): Promise<{ name: string; path: string; sha256: string }>;
}

/**
 * One activity's access to a video's artifacts: the worker's {@link RunCache} first, GCS on a miss (and the
 * value is then cached for the next step); writes go to GCS first and only then into the cache, so GCS is
 * always complete and every step also works cold, on any worker (the fallback path).
 *
 * Counters of this activity call are in {@link RunFiles.io}; GCS requests and bytes come from the scoped
 * store ({@link RunFiles.finalIo}).
 */
export class RunFiles {
  readonly io: StepIo = emptyIo();
  /** Objects already in GCS (name → size and MD5), listed by {@link loadPriorOutputs}. */
  private readonly prior = new Map<string, ObjectInfo>();
  /**
   * @param store a scoped store whose counters belong to this activity call.
   * @param cache the worker's run cache (possibly disabled).
   * @param scratchDir a folder this call may use for temporary files (removed by {@link cleanup}).
   */
  constructor(
    readonly store: ObjectStore,
    readonly cache: RunCache,
    readonly tenantId: string,
    readonly runGuid: string,
    readonly videoGuid: string,
    readonly scratchDir: string,
  ) {}

  private key(artifact: string): string {
    return cacheKey(this.tenantId, this.runGuid, this.videoGuid, artifact);
  }

  private hit(bytes: number): void {
    this.io.cacheHits++;
    this.io.bytesFromCache += bytes;
    reportProgress();
  }

  /** Reads an object: from the cache, else downloaded from GCS (then cached). @throws on a GCS 404. */
  async read(objectName: string): Promise<Buffer> {
    const cached = this.cache.get<Buffer>(this.key(`obj:${objectName}`));
    if (cached) {
      this.hit(cached.length);
      return cached;
    }
    this.io.cacheMisses++;
    this.io.artifactDownloads++;
    const buf = await this.store.get(objectName);
    this.cache.set(this.key(`obj:${objectName}`), buf, buf.length);
    reportProgress();
    return buf;
  }

  /**
   * Resume support (issue 6): lists the objects under `prefixes` that are already in GCS, so that
   * {@link write}, {@link writeFrame} and {@link copy} skip every upload whose object is already stored with
   * exactly the bytes they would write (same size and MD5; GCS computes `md5Hash` from the stored bytes,
   * https://cloud.google.com/storage/docs/hashes-etags). A write skipped this way counts in
   * `io.uploadsSkipped`. Steps call it on retried attempts ({@link activityAttempt} > 1), when an earlier
   * attempt may have uploaded part of the outputs. Returns the listing (name → info).
   */
  async loadPriorOutputs(prefixes: readonly string[]): Promise<ReadonlyMap<string, ObjectInfo>> {
    for (const prefix of prefixes) for (const o of await this.store.list(prefix)) this.prior.set(o.name, o);
    return this.prior;
  }

  /** Whether `objectName` is stored (per {@link loadPriorOutputs}) with exactly the bytes `buf`. */
  private isStored(objectName: string, buf: Buffer): boolean {
    const o = this.prior.get(objectName);
    return !!o?.md5 && o.size === buf.length && o.md5 === md5Base64(buf);
  }

  /** Uploads `data` to GCS (unless already stored: {@link loadPriorOutputs}), then caches it. */
  async write(objectName: string, data: Buffer | string, contentType?: string): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (this.isStored(objectName, buf)) this.io.uploadsSkipped++;
    else await this.store.put(objectName, buf, { contentType });
    this.cache.set(this.key(`obj:${objectName}`), buf, buf.length);
    reportProgress();
  }

  /**
   * Copies object `from` to `to` inside the bucket (server-side: no bytes transferred), unless both are
   * listed by {@link loadPriorOutputs} with the same size and MD5. When `from` is in the cache, `to` is
   * cached with the same bytes, so later steps find it in memory too.
   */
  async copy(from: string, to: string): Promise<void> {
    const [src, dst] = [this.prior.get(from), this.prior.get(to)];
    if (src?.md5 && dst && src.md5 === dst.md5 && src.size === dst.size) this.io.uploadsSkipped++;
    else await this.store.copy(from, to);
    reportProgress();
    const cached = this.cache.peek<Buffer>(this.key(`obj:${from}`));
    if (cached) this.cache.set(this.key(`obj:${to}`), cached, cached.length);
  }

  /** Writes JSON to GCS and the cache. */
  async writeJson(objectName: string, value: unknown): Promise<void> {
    await this.write(objectName, `${JSON.stringify(value, null, 2)}\n`, 'application/json');
  }

  /** Reads JSON (cache first). */
  async readJson<T>(objectName: string): Promise<T> {
    return JSON.parse((await this.read(objectName)).toString('utf8')) as T;
  }

  /**
   * A stored frame JPEG as decoded pixels: the cached decode, else the JPEG from GCS decoded (then cached).
   * Both paths give the same pixels: the cache holds the decode of the very JPEG that was uploaded.
   */
  async readFrame(objectName: string): Promise<RgbFrame> {
    const cached = this.cache.get<RgbFrame>(this.key(`rgb:${objectName}`));
    if (cached) {
      this.hit(cached.rgb.length);
      return cached;
    }
    this.io.cacheMisses++;
    this.io.artifactDownloads++;
    const frame = await decodeFrame(await this.store.get(objectName));
    this.cache.set(this.key(`rgb:${objectName}`), frame, frame.rgb.length);
    reportProgress();
    return frame;
  }

  /**
   * Uploads a frame's JPEG and, when the cache is on, caches its decoded pixels (decoded from `jpeg`, so a
   * later {@link readFrame} gives exactly what a cold worker decoding the stored JPEG would).
   */
  async writeFrame(objectName: string, jpeg: Buffer): Promise<void> {
    if (this.isStored(objectName, jpeg)) this.io.uploadsSkipped++;
    else await this.store.put(objectName, jpeg, { contentType: 'image/jpeg' });
    reportProgress();
    if (!this.cache.enabled) return;
    const frame = await decodeFrame(jpeg);
    this.cache.set(this.key(`rgb:${objectName}`), frame, frame.rgb.length);
  }

  /**
   * Uploads the local file `file` to `objectName`; when the cache is on the file moves into the cache as
   * that object's local copy (copied and deleted where the cache folder is on another file system:
   * {@link moveFile}), otherwise it is deleted.
   */
  async writeFile(objectName: string, file: string, contentType?: string): Promise<void> {
    await this.store.putFile(objectName, file, { contentType });
    reportProgress();
    const key = this.key(`file:${objectName}`);
    const dest = this.cache.newFilePath(key);
    if (!dest) return void (await rm(file, { force: true }));
    const { size } = await stat(file);
    await moveFile(file, dest);
    this.cache.setFile(key, dest, size);
  }

  /**
   * Runs `fn` with a local copy of `objectName` (large files that tools read from disk, e.g. the video for
   * ffmpeg): the cached file, else a download into the cache (or, with the cache off, into a temporary
   * file deleted after `fn`). Returns what `fn` returns and whether the copy was cached already.
   */
  async withLocalFile<T>(objectName: string, fn: (file: string) => Promise<T>): Promise<{ value: T; wasCached: boolean; sizeBytes: number }> {
    const key = this.key(`file:${objectName}`);
    const cached = this.cache.get<string>(key);
    const st = cached ? await stat(cached).catch(() => undefined) : undefined;
    if (cached && st) {
      const size = st.size;
      this.hit(size);
      return { value: await fn(cached), wasCached: true, sizeBytes: size };
    }
    this.io.cacheMisses++;
    this.io.artifactDownloads++;
    const dest = this.cache.newFilePath(key) ?? path.join(this.scratchDir, `download-${randomUUID()}`);
    await this.store.getFile(objectName, dest);
    reportProgress();
    const { size } = await stat(dest);
    if (this.cache.enabled) {
      this.cache.setFile(key, dest, size);
      return { value: await fn(dest), wasCached: false, sizeBytes: size };
    }
    try {
      return { value: await fn(dest), wasCached: false, sizeBytes: size };
    } finally {
      await rm(dest, { force: true });
    }
  }

  /**
   * A worker-local derived value that is not an object in GCS (e.g. augmented copies, the frame id list):
   * undefined on a miss; the caller recomputes it (deterministically) and may {@link setLocal} it.
   */
  getLocal<T>(artifact: string, bytesOf: (v: T) => number): T | undefined {
    const v = this.cache.get<T>(this.key(`local:${artifact}`));
    if (v === undefined) {
      this.io.cacheMisses++;
      return undefined;
    }
    this.hit(bytesOf(v));
    return v;
  }

  /** Caches a worker-local derived value (see {@link getLocal}). */
  setLocal(artifact: string, value: unknown, bytes: number): void {
    this.cache.set(this.key(`local:${artifact}`), value, bytes);
  }

  /** Removes this call's temporary files. */
  async cleanup(): Promise<void> {
    await rm(this.scratchDir, { recursive: true, force: true });
  }

  /** Final I/O counters: cache counters plus the scoped store's GCS counters. */
  finalIo(): StepIo {
    const s = this.store.stats();
    return { ...this.io, gcsRequests: s.requests, bytesUploaded: s.bytesUploaded, bytesDownloaded: s.bytesDownloaded };
  }
}

/**
 * Records progress `details` of the current activity and sends them as a heartbeat, then throws
 * `CancelledFailure` when the activity has been cancelled or its watchdog gave up (cancellation reaches an
 * activity only through heartbeats: SPEC section 10). Liveness does not depend on calling it: the activity's
 * {@link ActivityLiveness} timer keeps sending the latest details (src/activities/liveness.ts); calling it
 * marks progress and updates what is sent. Safe outside an activity context (does nothing), so domain code
 * can be tested without Temporal.
 */
export function heartbeat(details?: unknown): void {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return;
  }
  reportProgress(details);
  ctx.heartbeat(details);
  if (ctx.cancellationSignal.aborted) throw new CancelledFailure(`activity cancelled: ${String(ctx.cancellationSignal.reason ?? 'cancel requested')}`);
  const gaveUp = currentLiveness()?.signal;
  if (gaveUp?.aborted) throw gaveUp.reason;
}

/**
 * Records progress in a heartbeat without the cancellation check of {@link heartbeat}: for event callbacks
 * (e.g. ffmpeg progress lines), where a thrown CancelledFailure would escape as an uncaught exception and
 * bring the worker down. Code using it must stop through {@link cancellationSignal} instead.
 */
export function heartbeatProgress(details?: unknown): void {
  try {
    const ctx = Context.current();
    reportProgress(details);
    ctx.heartbeat(details);
  } catch {
    // outside an activity: nothing to record
  }
}

/** The current activity's attempt number (1 for the first; Temporal `info.attempt`), 1 outside activities. */
export function activityAttempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1;
  }
}

/**
 * The activity's AbortSignal: fires on cancellation and when the activity's liveness watchdog gives up on a
 * stalled attempt (so ffmpeg and downloads bound to it stop too); a never-firing one outside an activity.
 */
export function cancellationSignal(): AbortSignal {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return new AbortController().signal;
  }
  return currentLiveness()?.signalWith(ctx.cancellationSignal) ?? ctx.cancellationSignal;
}

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
 */
export async function runStep<R extends object>(
  deps: ActivityDeps,
  name: StepName,
  input: StepInput,
  body: (files: RunFiles, layout: RunLayout) => Promise<StepOutput<R>>,
): Promise<R & StepResultBase> {
  const startedAt = new Date();
  const layout = new RunLayout(input.tenantId, input.runGuid);
  const files = new RunFiles(deps.store.scoped(), deps.cache, input.tenantId, input.runGuid, input.videoGuid, path.join(deps.workDir, `${name}-${randomUUID()}`));
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
      cachedOn: deps.cache.enabled ? cacheQueue() : undefined,
      eventLoopDelayMs: eventLoopDelay(loop),
      liveness: liveness?.stats(),
    } as R & StepResultBase;
    await files.store.updateJson<{ step: number; name: string; videos: Record<string, unknown> }>(layout.stepResult(n), (cur) => ({
      step: n,
      name,
      videos: { ...(cur?.videos ?? {}), [input.videoGuid]: { ...result, ...(out.details ?? {}) } },
    }));
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
function cacheQueue(): string | undefined {
  const tq = activityTaskQueue();
  if (!tq) return undefined;
  return tq.includes('@') ? tq : workerQueueFor(tq);
}

/** The task queue the current activity was taken from (a worker-specific or a shared one), if any. */
export function activityTaskQueue(): string | undefined {
  try {
    return Context.current().info.taskQueue;
  } catch {
    return undefined;
  }
}

/** Sets `steps.{videoGuid}.{step}` of `.pipeline_info.json` (concurrency-safe read-modify-write). */
export async function recordStepStatus(store: ObjectStore, layout: RunLayout, videoGuid: string, step: StepName, status: Record<string, unknown>): Promise<void> {
  await store.updateJson<Record<string, unknown>>(layout.pipelineInfo, (cur) => {
    const info = cur ?? {};
    const steps = { ...((info.steps as Record<string, Record<string, unknown>>) ?? {}) };
    steps[videoGuid] = { ...(steps[videoGuid] ?? {}), [step]: { step: stepNumber(step), ...status } };
    return { ...info, steps, updatedAt: new Date().toISOString() };
  });
}

/**
 * What every step activity shares: its dependencies ({@link ActivityDeps}), the worker-local run files
 * ({@link RunFiles}: read local first, fall back to GCS; write GCS first, then local), heartbeats with
 * cancellation checks, and {@link runStep}, which records the step's result in
 * `intermediate/step{N}_result.json` and its status and timing in `.pipeline_info.json`.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { toApplicationFailure } from '../errors';
import type { ObjectStore } from '../storage/gcs';
import { RunLayout } from '../storage/layout';
import type { Detector } from '../vision/detector';
import type { FfmpegBinaries } from '../vision/ffmpeg';
import type { Segmenter } from '../vision/segment';
import { stepNumber, type StepInput, type StepIo, type StepName, type StepResultBase } from '../workflows/types';

/** Dependencies that activity factories close over (SPEC section 2). */
export interface ActivityDeps {
  /** The run store; activities take a {@link ObjectStore.scoped} view per call for accounting. */
  store: ObjectStore;
  /** Root of this worker's local files (video copies, frames, crops), one folder per run GUID. */
  workDir: string;
  /** Reported in `.pipeline_info.json`. */
  codeVersion: string;
  /** ffmpeg and ffprobe executables. */
  ffmpeg: FfmpegBinaries;
  /** The detector session for a model file name (one session per process, created on first use). */
  getDetector(modelName: string): Promise<Detector>;
  /** The background segmentation session (u2netp), one per process, created on first use. */
  getSegmenter(): Promise<Segmenter>;
  /** Name, path and sha256 of a model file in `models/`. */
  modelInfo(modelName: string): Promise<{ name: string; path: string; sha256: string }>;
}

async function atomicWrite(file: string, data: Buffer | string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/**
 * Worker-local mirror of a run's objects under `{workDir}/{runGuid}/objects/{objectName}`. Reads look
 * locally first (a cache hit) and otherwise download from GCS (a miss) and keep the copy; writes upload to
 * GCS first and only then keep the local copy, so GCS is always complete and every step works cold.
 */
export class RunFiles {
  readonly io: StepIo = { gcsRequests: 0, bytesUploaded: 0, bytesDownloaded: 0, cacheHits: 0, cacheMisses: 0 };
  /** @param store a scoped store whose counters belong to this activity call. */
  constructor(
    readonly store: ObjectStore,
    readonly runDir: string,
  ) {}

  /** Local path where `objectName` is (or would be) mirrored. */
  localPath(objectName: string): string {
    return path.join(this.runDir, 'objects', objectName);
  }

  /** Path of a local-only scratch file of this run (never uploaded), e.g. augmented crops. */
  scratchPath(name: string): string {
    return path.join(this.runDir, 'scratch', name);
  }

  /** Reads an object: local copy if present, else GCS (then mirrored locally). */
  async read(objectName: string): Promise<Buffer> {
    const local = this.localPath(objectName);
    try {
      const buf = await readFile(local);
      this.io.cacheHits++;
      return buf;
    } catch {
      this.io.cacheMisses++;
      const buf = await this.store.get(objectName);
      await atomicWrite(local, buf);
      return buf;
    }
  }

  /** Makes sure the object is mirrored locally and returns the local path (large files: streamed). */
  async readToFile(objectName: string): Promise<{ path: string; wasLocal: boolean }> {
    const local = this.localPath(objectName);
    if (await exists(local)) {
      this.io.cacheHits++;
      return { path: local, wasLocal: true };
    }
    this.io.cacheMisses++;
    await this.store.getFile(objectName, local);
    return { path: local, wasLocal: false };
  }

  /** Uploads `data` to GCS, then keeps a local copy. */
  async write(objectName: string, data: Buffer | string, contentType?: string): Promise<void> {
    await this.store.put(objectName, data, { contentType });
    await atomicWrite(this.localPath(objectName), data);
  }

  /** Uploads a local file to GCS and keeps it as the local copy (moved into the mirror). */
  async writeFile(objectName: string, file: string, contentType?: string): Promise<void> {
    await this.store.putFile(objectName, file, { contentType });
    const local = this.localPath(objectName);
    if (path.resolve(file) !== local) {
      await mkdir(path.dirname(local), { recursive: true });
      await rename(file, local);
    }
  }

  /** Writes JSON to GCS and locally. */
  async writeJson(objectName: string, value: unknown): Promise<void> {
    await this.write(objectName, `${JSON.stringify(value, null, 2)}\n`, 'application/json');
  }

  /** Reads JSON (local first). */
  async readJson<T>(objectName: string): Promise<T> {
    return JSON.parse((await this.read(objectName)).toString('utf8')) as T;
  }

  /** Reads a local-only scratch file, or undefined. */
  async readScratch(name: string): Promise<Buffer | undefined> {
    return readFile(this.scratchPath(name)).catch(() => undefined);
  }

  /** Writes a local-only scratch file. */
  async writeScratch(name: string, data: Buffer): Promise<void> {
    await atomicWrite(this.scratchPath(name), data);
  }

  /** Removes this run's local files on this worker. */
  async release(): Promise<void> {
    await rm(this.runDir, { recursive: true, force: true });
  }

  /** Final I/O counters: cache counters plus the scoped store's GCS counters. */
  finalIo(): StepIo {
    const s = this.store.stats();
    return { ...this.io, gcsRequests: s.requests, bytesUploaded: s.bytesUploaded, bytesDownloaded: s.bytesDownloaded };
  }
}

/**
 * Records a heartbeat with progress `details` and throws `CancelledFailure` when the activity has been
 * cancelled (cancellation reaches an activity only through heartbeats: SPEC section 10). Safe outside an
 * activity context (does nothing), so domain code can be tested without Temporal.
 */
export function heartbeat(details?: unknown): void {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return;
  }
  ctx.heartbeat(details);
  if (ctx.cancellationSignal.aborted) throw new CancelledFailure(`activity cancelled: ${String(ctx.cancellationSignal.reason ?? 'cancel requested')}`);
}

/** The activity's AbortSignal (fires on cancellation), or a never-firing one outside an activity. */
export function cancellationSignal(): AbortSignal {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return new AbortController().signal;
  }
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
 * into `.pipeline_info.json`. Any error is recorded there and rethrown classified (`toApplicationFailure`).
 */
export async function runStep<R extends object>(
  deps: ActivityDeps,
  name: StepName,
  input: StepInput,
  body: (files: RunFiles, layout: RunLayout) => Promise<StepOutput<R>>,
): Promise<R & StepResultBase> {
  const startedAt = new Date();
  const layout = new RunLayout(input.tenantId, input.runGuid);
  const files = new RunFiles(deps.store.scoped(), path.join(deps.workDir, input.runGuid, input.videoGuid));
  const n = stepNumber(name);
  heartbeat({ step: name, phase: 'started' });
  try {
    const out = await body(files, layout);
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
    });
    return result;
  } catch (err) {
    const failure = toApplicationFailure(err);
    const cancelled = err instanceof CancelledFailure;
    await recordStepStatus(files.store, layout, input.videoGuid, name, {
      status: cancelled ? 'cancelled' : failure.nonRetryable ? 'failed' : 'retrying',
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      error: cancelled ? undefined : { type: failure.type, message: failure.message },
    }).catch(() => undefined);
    throw cancelled ? err : failure;
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

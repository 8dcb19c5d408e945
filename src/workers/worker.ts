/**
 * Builds the pipeline workers: a CPU worker on `{taskQueue}` (workflows plus CPU-bound activities) and a
 * GPU worker on `{taskQueue}-gpu` (detection and background removal): docs/ARCHITECTURE.md "Layers". One process can
 * run both (the embedded default, `main.ts`) or either alone (`cpu.ts`, `gpu.ts`).
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Duration } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode, type LogLevel, type WorkflowBundle, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import pino from 'pino';
import { createActivities, createRoutingActivities, type Activities, type ActivityDeps, type WorkerQueues } from '../activities';
import { mallocInUse } from '../activities/runStep';
import { createLivenessInterceptor, DEFAULT_STALL_MS, LIVENESS_INTERVAL_MS, type LivenessOptions } from '../activities/liveness';
import { RunCache, removeOrphanedCacheFiles } from '../cache/runCache';
import { loadConfig, PROJECT_ROOT, sourcePolicyOf, type Config } from '../config';
import { createObjectStore } from '../storage/gcs';
import { probeFolder } from '../util/fs';
import { sha256File } from '../util/hash';
import { createDetector, type Detector } from '../vision/detection/detector';
import { resolveFfmpeg } from '../vision/media/ffmpeg';
import { createSegmenter, type Segmenter } from '../vision/segmentation/u2netp';
import { GPU_PART_ACTIVITIES, GPU_STEP_NAMES, gpuTaskQueueFor, workerQueueFor } from '../workflows/steps';

/**
 * This process's worker id: host name, pid and a random suffix (unique across restarts and hosts), the
 * suffix of its own task queues ({@link createPipelineWorkers}). Given to the activities as
 * `ActivityDeps.workerId` ({@link createDeps}).
 */
export const WORKER_ID = `${hostname().replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 40)}-${process.pid}-${randomUUID().slice(0, 6)}`;

// Every GPU step is an activity of the pipeline (compile-time check of the step table against the activities).
GPU_STEP_NAMES satisfies readonly (keyof Activities)[];
GPU_PART_ACTIVITIES satisfies readonly (keyof Activities)[];

/** Which queues a worker process serves. */
export type WorkerRole = 'cpu' | 'gpu';

/** Line logged when every requested worker polls its queue (the local stack waits for it). */
export const WORKER_READY_MESSAGE = 'workers ready';

/**
 * Why a worker process cannot start (e.g. an unwritable cache folder). Its message is printed as
 * `worker cannot start: <message>` ({@link exitOnWorkerFailure}), the line the local stack reports.
 */
export class WorkerStartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WorkerStartupError';
  }
}

/**
 * Checks that the worker can create, write and remove a file in `dir` (creating `dir` first).
 * @param label what the folder is for ("run cache", "scratch"); @param setting the variable that moves it.
 * @throws WorkerStartupError naming the folder, what it is for, and the errno, e.g.
 *   `run cache folder /data/worker-cache is not writable (EROFS: read-only file system, open '…')`.
 */
export function assertWritableFolder(dir: string, label: string, setting: string): void {
  const err = probeFolder(dir);
  if (err) throw new WorkerStartupError(`${label} folder ${dir} is not writable (${err.message}); make it writable or set ${setting} to another folder`, { cause: err });
}

/**
 * Ends a worker process that failed: prints `worker cannot start: <message>` for a {@link WorkerStartupError}
 * (the line the local stack shows), else the error with its stack; exit status 1.
 */
export function exitOnWorkerFailure(err: unknown): never {
  if (err instanceof WorkerStartupError) console.error(`worker cannot start: ${err.message}`);
  else console.error(err);
  process.exit(1);
}

const log = pino({ name: 'worker', level: process.env.LOG_LEVEL ?? 'info' });

function codeVersion(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}

/**
 * Real dependencies of the activities from configuration: the GCS store, the run cache (its file folder
 * `{dataDir}/worker-cache/`, where folders of dead worker processes are removed first), a scratch folder,
 * ffmpeg, and one detector session per model and process (created on first use, released on shutdown).
 * @throws WorkerStartupError when the run cache's folder (cache on) or the scratch folder cannot be created
 *   or written ({@link assertWritableFolder}): better no worker than one that reports ready and fails
 *   every step.
 */
export function createDeps(cfg: Config): ActivityDeps & { release(): Promise<void> } {
  const store = createObjectStore({
    bucket: cfg.bucket,
    emulatorHost: cfg.storageEmulatorHost,
    projectId: cfg.gcsProjectId,
    concurrency: cfg.storageConcurrency,
    maxRetries: cfg.storageMaxRetries,
  });
  const modelsDir = path.dirname(cfg.detectorModelPath);
  const detectors = new Map<string, Promise<Detector>>();
  const hashes = new Map<string, Promise<string>>();
  let segmenter: Promise<Segmenter> | undefined;
  const modelPath = (name: string) => (name === path.basename(cfg.detectorModelPath) ? cfg.detectorModelPath : path.join(modelsDir, name));
  const cacheDir = path.join(cfg.dataDir, 'worker-cache');
  removeOrphanedCacheFiles(cacheDir);
  const cache = new RunCache({ enabled: cfg.cacheEnabled, maxBytes: cfg.cacheMaxBytes, ttlMs: cfg.cacheTtlMs, fileDir: cacheDir });
  const scratchDir = path.join(cfg.dataDir, 'worker-scratch');
  // The shared parents are probed; this process's own subfolders are created when first used.
  if (cache.enabled) assertWritableFolder(cacheDir, 'run cache', 'DATAPREP_DATA_DIR');
  assertWritableFolder(scratchDir, 'scratch', 'DATAPREP_DATA_DIR');
  const workDir = path.join(scratchDir, `${process.pid}`);
  return {
    store,
    cache,
    workDir,
    workerId: WORKER_ID,
    codeVersion: codeVersion(),
    ffmpeg: resolveFfmpeg({ ffmpegPath: cfg.ffmpegPath, ffprobePath: cfg.ffprobePath }),
    sourcePolicy: sourcePolicyOf(cfg),
    getDetector(name) {
      let d = detectors.get(name);
      if (!d) {
        d = createDetector({ modelPath: modelPath(name), executionProviders: cfg.ortExecutionProviders, intraOpNumThreads: cfg.ortIntraOpThreads });
        d.catch(() => detectors.delete(name));
        detectors.set(name, d);
      }
      return d;
    },
    getSegmenter() {
      if (!segmenter) {
        segmenter = createSegmenter({ modelPath: cfg.segmenterModelPath, executionProviders: cfg.ortExecutionProviders, intraOpNumThreads: cfg.ortIntraOpThreads });
        segmenter.catch(() => (segmenter = undefined));
      }
      return segmenter;
    },
    async modelInfo(name) {
      const p = modelPath(name);
      let h = hashes.get(p);
      if (!h) {
        h = sha256File(p);
        h.catch(() => hashes.delete(p));
        hashes.set(p, h);
      }
      return { name, path: p, sha256: await h };
    },
    async release() {
      for (const d of detectors.values()) await (await d.catch(() => undefined))?.release();
      await (await segmenter?.catch(() => undefined))?.release();
      cache.clear();
    },
  };
}

/**
 * Worker options shared by every pipeline worker (and the tests' workers). Heartbeats are throttled to at
 * most one per 2 s: cancellation reaches an activity only in a heartbeat response, and the SDK default
 * (80% of the heartbeat timeout) would delay a cancel by up to ~24 s.
 */
export const WORKER_TUNING = { maxHeartbeatThrottleInterval: '2 seconds' } as const;

/** Path of the workflow entry module bundled into every CPU worker. */
export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/** Path of the workflow interceptor module bundled with the workflows (undecodable payloads, src/workflows/interceptors.ts). */
export const WORKFLOW_INTERCEPTORS_PATH = fileURLToPath(new URL('../workflows/interceptors.ts', import.meta.url));

/**
 * Bundles the pipeline's workflows (`workflowsPath`, default {@link WORKFLOWS_PATH}) with the pipeline's workflow
 * interceptors. Every worker and test bundle goes through here, so no bundle runs without the guard against
 * undecodable payloads. @returns the bundle for `Worker.create({ workflowBundle })` or replay.
 */
export function bundlePipelineWorkflows(workflowsPath: string = WORKFLOWS_PATH): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath, workflowInterceptorModules: [WORKFLOW_INTERCEPTORS_PATH], logger: new DefaultLogger('WARN') });
}

/** Options of {@link createPipelineWorkers}. */
export interface PipelineWorkersOptions {
  connection: NativeConnection;
  namespace: string;
  /** The shared CPU queue; the GPU queue is `{taskQueue}-gpu`. */
  taskQueue: string;
  /** Workflow code for the shared CPU worker; without it no worker runs workflows. */
  workflowBundle?: WorkflowBundle;
  /**
   * Activities of the CPU role (every activity but the GPU steps of `STEPS`, src/workflows/steps.ts); none: no CPU workers.
   * A `claimWorker` / `claimGpuWorker` here replaces the built-in one (fault-injection tests).
   */
  cpuActivities?: Record<string, unknown>;
  /** Activities of the GPU role; none: no GPU workers. */
  gpuActivities?: Record<string, unknown>;
  maxConcurrentActivities?: number;
  shutdownGraceTime?: Duration;
  /** Process id in worker-specific queue names (default {@link WORKER_ID}). */
  workerId?: string;
  /**
   * Liveness of every activity (src/activities/liveness.ts): heartbeat interval and stall limit. Default
   * {@link LIVENESS_INTERVAL_MS} and {@link DEFAULT_STALL_MS} (`ACTIVITY_STALL_SECONDS`).
   */
  liveness?: Partial<LivenessOptions>;
}

/**
 * The workers of one process (docs/ARCHITECTURE.md "Routing", worker-specific task queues):
 * - shared CPU queue `{taskQueue}`: workflows, CPU steps, run bookkeeping and `claimWorker`;
 * - own CPU queue `{taskQueue}@{workerId}`: CPU steps, `releaseVideoCache` and `pingWorker`;
 * - shared GPU queue `{taskQueue}-gpu`: GPU steps and `claimGpuWorker`;
 * - own GPU queue `{taskQueue}-gpu@{workerId}`: GPU steps, `releaseVideoCache` and `pingWorker`.
 * GPU workers run one activity at a time per queue (one inference session per process).
 * @returns the workers (not yet running) and this process's own queues
 */
export async function createPipelineWorkers(o: PipelineWorkersOptions): Promise<{ workers: Worker[]; queues: WorkerQueues }> {
  const workerId = o.workerId ?? WORKER_ID;
  const gpuQueue = gpuTaskQueueFor(o.taskQueue);
  const queues: WorkerQueues = {
    workerId,
    cpu: o.cpuActivities ? workerQueueFor(o.taskQueue, workerId) : undefined,
    gpu: o.gpuActivities ? workerQueueFor(gpuQueue, workerId) : undefined,
  };
  const routing = createRoutingActivities(queues);
  const release = (o.cpuActivities?.releaseVideoCache ?? o.gpuActivities?.releaseVideoCache) as unknown;
  // Served on every own queue of this process: the cache release, and the ping that proves it alive.
  const releaseOnly = { ...(release ? { releaseVideoCache: release } : {}), pingWorker: routing.pingWorker };
  // Worker.create rejects keys present with an undefined value; leave unset options out.
  const liveness = createLivenessInterceptor({ intervalMs: o.liveness?.intervalMs ?? LIVENESS_INTERVAL_MS, stallMs: o.liveness?.stallMs ?? DEFAULT_STALL_MS });
  const common = {
    connection: o.connection,
    namespace: o.namespace,
    ...(o.shutdownGraceTime !== undefined && { shutdownGraceTime: o.shutdownGraceTime }),
    ...WORKER_TUNING,
    interceptors: { activity: [liveness] },
  };
  const workers: Worker[] = [];
  if (o.cpuActivities) {
    const steps = { ...o.cpuActivities, ...releaseOnly };
    const max = o.maxConcurrentActivities !== undefined ? { maxConcurrentActivityTaskExecutions: o.maxConcurrentActivities } : {};
    workers.push(
      await Worker.create({ ...common, taskQueue: o.taskQueue, ...(o.workflowBundle && { workflowBundle: o.workflowBundle }), activities: { claimWorker: routing.claimWorker, ...steps }, ...max }),
      await Worker.create({ ...common, taskQueue: queues.cpu!, activities: steps, ...max }),
    );
  }
  if (o.gpuActivities) {
    const steps = { ...o.gpuActivities, ...releaseOnly };
    workers.push(
      await Worker.create({ ...common, taskQueue: gpuQueue, activities: { claimGpuWorker: routing.claimGpuWorker, ...steps }, maxConcurrentActivityTaskExecutions: 1 }),
      await Worker.create({ ...common, taskQueue: queues.gpu!, activities: steps, maxConcurrentActivityTaskExecutions: 1 }),
    );
  }
  return { workers, queues };
}

/** Splits `createActivities` output into the CPU and GPU roles' activities. */
export function splitActivities(all: Record<string, unknown>): { cpu: Record<string, unknown>; gpu: Record<string, unknown> } {
  const gpuNames = new Set<string>([...GPU_STEP_NAMES, ...GPU_PART_ACTIVITIES]);
  return {
    cpu: Object.fromEntries(Object.entries(all).filter(([name]) => !gpuNames.has(name))),
    gpu: Object.fromEntries(Object.entries(all).filter(([name]) => gpuNames.has(name))),
  };
}

/**
 * Creates the workers for `roles` and runs them until SIGINT/SIGTERM; on a signal, running activities get
 * `workerShutdownGraceMs` to finish or heartbeat out (docs/ARCHITECTURE.md "Pitfalls"), then the detector is released.
 * @throws WorkerStartupError from {@link createDeps} before connecting, when a worker folder is unusable.
 */
export async function runWorkers(roles: WorkerRole[], cfg: Config = loadConfig()): Promise<void> {
  // Folder checks first: a worker that cannot use its folders must not connect and report ready.
  const deps = createDeps(cfg);
  Runtime.install({ logger: new DefaultLogger((cfg.logLevel === 'trace' ? 'TRACE' : cfg.logLevel === 'debug' ? 'DEBUG' : 'WARN') as LogLevel) });
  const connection = await NativeConnection.connect({ address: cfg.temporalAddress });
  const { cpu, gpu } = splitActivities(createActivities(deps));
  const { workers, queues } = await createPipelineWorkers({
    connection,
    namespace: cfg.temporalNamespace,
    taskQueue: cfg.taskQueue,
    workflowBundle: roles.includes('cpu') ? await bundlePipelineWorkflows() : undefined,
    cpuActivities: roles.includes('cpu') ? cpu : undefined,
    gpuActivities: roles.includes('gpu') ? gpu : undefined,
    maxConcurrentActivities: cfg.maxConcurrentActivities,
    shutdownGraceTime: cfg.workerShutdownGraceMs,
    liveness: { stallMs: cfg.activityStallMs },
  });
  log.info(
    { roles, taskQueue: cfg.taskQueue, gpuTaskQueue: cfg.gpuTaskQueue, ownQueues: queues, cache: { enabled: deps.cache.enabled, maxBytes: deps.cache.maxBytes }, malloc: mallocInUse(), address: cfg.temporalAddress, pid: process.pid },
    WORKER_READY_MESSAGE,
  );
  try {
    await Promise.all(workers.map((w) => w.run()));
  } finally {
    log.info({ cache: deps.cache.stats() }, 'run cache at shutdown');
    await deps.release();
    await connection.close();
    log.info('workers stopped');
  }
}

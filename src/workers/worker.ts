/**
 * Builds the pipeline workers: a CPU worker on `{taskQueue}` (workflows plus CPU-bound activities) and a
 * GPU worker on `{taskQueue}-gpu` (detection and background removal), per SPEC section 2. One process can
 * run both (the embedded default, `main.ts`) or either alone (`cpu.ts`, `gpu.ts`).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode, type LogLevel } from '@temporalio/worker';
import pino from 'pino';
import { createActivities, GPU_ACTIVITY_NAMES, type ActivityDeps, type Activities } from '../activities';
import { loadConfig, PROJECT_ROOT, type Config } from '../config';
import { createObjectStore } from '../storage/gcs';
import { sha256File } from '../util/hash';
import { resolveFfmpeg } from '../vision/ffmpeg';
import { createDetector, type Detector } from '../vision/detector';
import { createSegmenter, type Segmenter } from '../vision/segment';

/** Which queues a worker process serves. */
export type WorkerRole = 'cpu' | 'gpu';

/** Line logged when every requested worker polls its queue (the local stack waits for it). */
export const WORKER_READY_MESSAGE = 'workers ready';

const log = pino({ name: 'worker', level: process.env.LOG_LEVEL ?? 'info' });

function codeVersion(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}

/**
 * Real dependencies of the activities from configuration: the GCS store, the local work folder, ffmpeg,
 * and one detector session per model and process (created on first use, released on shutdown).
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
  return {
    store,
    workDir: path.join(cfg.dataDir, 'worker-cache'),
    codeVersion: codeVersion(),
    ffmpeg: resolveFfmpeg({ ffmpegPath: cfg.ffmpegPath, ffprobePath: cfg.ffprobePath }),
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

/**
 * Creates the workers for `roles` and runs them until SIGINT/SIGTERM; on a signal, running activities get
 * `workerShutdownGraceMs` to finish or heartbeat out (SPEC section 10), then the detector is released.
 */
export async function runWorkers(roles: WorkerRole[], cfg: Config = loadConfig()): Promise<void> {
  Runtime.install({ logger: new DefaultLogger((cfg.logLevel === 'trace' ? 'TRACE' : cfg.logLevel === 'debug' ? 'DEBUG' : 'WARN') as LogLevel) });
  const connection = await NativeConnection.connect({ address: cfg.temporalAddress });
  const deps = createDeps(cfg);
  const all = createActivities(deps);
  const gpuNames = new Set<string>(GPU_ACTIVITY_NAMES);
  const pick = (gpu: boolean) =>
    Object.fromEntries(Object.entries(all).filter(([name]) => gpuNames.has(name) === gpu)) as Partial<Activities>;
  const workers: Worker[] = [];
  if (roles.includes('cpu')) {
    const workflowBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
    workers.push(
      await Worker.create({
        connection,
        namespace: cfg.temporalNamespace,
        taskQueue: cfg.taskQueue,
        workflowBundle,
        activities: pick(false),
        maxConcurrentActivityTaskExecutions: cfg.maxConcurrentActivities,
        shutdownGraceTime: cfg.workerShutdownGraceMs,
        ...WORKER_TUNING,
      }),
    );
  }
  if (roles.includes('gpu')) {
    workers.push(
      await Worker.create({
        connection,
        namespace: cfg.temporalNamespace,
        taskQueue: cfg.gpuTaskQueue,
        activities: pick(true),
        // One inference session per process; more than one detect at a time only queues on it.
        maxConcurrentActivityTaskExecutions: 1,
        shutdownGraceTime: cfg.workerShutdownGraceMs,
        ...WORKER_TUNING,
      }),
    );
  }
  log.info({ roles, taskQueue: cfg.taskQueue, gpuTaskQueue: cfg.gpuTaskQueue, address: cfg.temporalAddress, pid: process.pid }, WORKER_READY_MESSAGE);
  try {
    await Promise.all(workers.map((w) => w.run()));
  } finally {
    await deps.release();
    await connection.close();
    log.info('workers stopped');
  }
}

/**
 * Environment variables and their defaults: the single source of runtime configuration for workers,
 * the CLI and the local stack. Not for workflow code (workflows must not read the environment).
 *
 * Every variable is documented in README.md ("Configuration"). Defaults suit the local stack of SPEC
 * section 6 (Temporal dev server on 7233, Web UI on 8233, fake-gcs-server on 4443).
 */
import { cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** Absolute path of the repository root (the folder holding package.json). */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const intFromEnv = (def: number) => z.coerce.number().int().positive().default(def);

const schema = z.object({
  DATAPREP_DATA_DIR: z.string().default(path.join(PROJECT_ROOT, '.data')),
  DATAPREP_TOOLS_DIR: z.string().default(path.join(PROJECT_ROOT, '.tools')),
  TEMPORAL_ADDRESS: z.string().default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_UI_PORT: intFromEnv(8233),
  TASK_QUEUE: z.string().min(1).default('train-pipeline'),
  GCS_BUCKET: z.string().min(3).default('dataprep-pipeline'),
  /** Empty string means "talk to real GCS with the usual credentials". */
  STORAGE_EMULATOR_HOST: z.string().default('http://127.0.0.1:4443'),
  GCS_PROJECT_ID: z.string().default('dataprep-local'),
  STORAGE_CONCURRENCY: intFromEnv(16),
  STORAGE_MAX_RETRIES: z.coerce.number().int().min(0).default(5),
  DETECTOR_MODEL_PATH: z.string().default(path.join(PROJECT_ROOT, 'models', 'yolov8n.onnx')),
  SEGMENTER_MODEL_PATH: z.string().default(path.join(PROJECT_ROOT, 'models', 'u2netp.onnx')),
  ORT_EXECUTION_PROVIDERS: z.string().default('cpu'),
  ORT_INTRA_OP_THREADS: intFromEnv(Math.max(1, cpus().length)),
  FFMPEG_PATH: z.string().optional(),
  FFPROBE_PATH: z.string().optional(),
  CACHE_ENABLED: z.enum(['true', 'false', '1', '0', 'on', 'off']).default('true'),
  CACHE_MAX_BYTES: intFromEnv(4 * 1024 ** 3),
  CACHE_TTL_SECONDS: intFromEnv(2 * 3600),
  MAX_CONCURRENT_ACTIVITIES: intFromEnv(4),
  WORKER_SHUTDOWN_GRACE_MS: intFromEnv(30_000),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

/** Parsed configuration; see README "Configuration" for each field. */
export interface Config {
  /** Root of local state: stack data, pid files, logs, worker caches. */
  dataDir: string;
  /** Project-local tools (the Python venv carrying the `temporal` and `fake-gcs-server` binaries). */
  toolsDir: string;
  temporalAddress: string;
  temporalNamespace: string;
  temporalUiPort: number;
  /** CPU task queue; the GPU queue is always `${taskQueue}-gpu` (see {@link gpuTaskQueueFor}). */
  taskQueue: string;
  gpuTaskQueue: string;
  bucket: string;
  /** `http://host:port` of the GCS emulator, or undefined for real GCS. */
  storageEmulatorHost: string | undefined;
  gcsProjectId: string;
  storageConcurrency: number;
  storageMaxRetries: number;
  detectorModelPath: string;
  segmenterModelPath: string;
  /** onnxruntime execution providers in preference order, e.g. `['cuda', 'cpu']`. */
  ortExecutionProviders: string[];
  ortIntraOpThreads: number;
  ffmpegPath: string | undefined;
  ffprobePath: string | undefined;
  /** Whether workers keep run artifacts in memory between steps (off: every step reads GCS). */
  cacheEnabled: boolean;
  /** Byte bound of each worker's in-memory run cache. */
  cacheMaxBytes: number;
  /** Time-to-live of a cache entry since its last use, ms. */
  cacheTtlMs: number;
  maxConcurrentActivities: number;
  /** How long a worker waits for running activities on SIGTERM/SIGINT before abandoning them. */
  workerShutdownGraceMs: number;
  logLevel: string;
}

/** Name of the GPU task queue that belongs to CPU queue `taskQueue` (SPEC section 2). */
export function gpuTaskQueueFor(taskQueue: string): string {
  return `${taskQueue}-gpu`;
}

/**
 * Reads the configuration from `env` (default `process.env`).
 * @throws Error naming the variable and the reason when a value is malformed.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`configuration: ${issue.path.join('.')}: ${issue.message}`);
  }
  const e = parsed.data;
  return {
    dataDir: path.resolve(e.DATAPREP_DATA_DIR),
    toolsDir: path.resolve(e.DATAPREP_TOOLS_DIR),
    temporalAddress: e.TEMPORAL_ADDRESS,
    temporalNamespace: e.TEMPORAL_NAMESPACE,
    temporalUiPort: e.TEMPORAL_UI_PORT,
    taskQueue: e.TASK_QUEUE,
    gpuTaskQueue: gpuTaskQueueFor(e.TASK_QUEUE),
    bucket: e.GCS_BUCKET,
    storageEmulatorHost: e.STORAGE_EMULATOR_HOST === '' ? undefined : e.STORAGE_EMULATOR_HOST,
    gcsProjectId: e.GCS_PROJECT_ID,
    storageConcurrency: e.STORAGE_CONCURRENCY,
    storageMaxRetries: e.STORAGE_MAX_RETRIES,
    detectorModelPath: path.resolve(e.DETECTOR_MODEL_PATH),
    segmenterModelPath: path.resolve(e.SEGMENTER_MODEL_PATH),
    ortExecutionProviders: e.ORT_EXECUTION_PROVIDERS.split(',').map((s) => s.trim()).filter(Boolean),
    ortIntraOpThreads: e.ORT_INTRA_OP_THREADS,
    ffmpegPath: e.FFMPEG_PATH || undefined,
    ffprobePath: e.FFPROBE_PATH || undefined,
    cacheEnabled: ['true', '1', 'on'].includes(e.CACHE_ENABLED),
    cacheMaxBytes: e.CACHE_MAX_BYTES,
    cacheTtlMs: e.CACHE_TTL_SECONDS * 1000,
    maxConcurrentActivities: e.MAX_CONCURRENT_ACTIVITIES,
    workerShutdownGraceMs: e.WORKER_SHUTDOWN_GRACE_MS,
    logLevel: e.LOG_LEVEL,
  };
}

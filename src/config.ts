/**
 * Environment variables and their defaults: the single source of runtime configuration for workers,
 * the CLI and the local stack. Not for workflow code (workflows must not read the environment).
 *
 * Every variable is documented in README.md ("Configuration"). Defaults suit the local stack
 * (docs/ARCHITECTURE.md "Local stack": Temporal dev server on 7233, Web UI on 8233, fake-gcs-server on 4443).
 */
import { cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { parseAllowance } from './net/address';
import { isBucketName, objectNameProblem } from './sources';
import { gpuTaskQueueFor } from './workflows/steps';

/** Absolute path of the repository root (the folder holding package.json). */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Default of `MAX_SOURCE_BYTES`: 20 GiB, about 2.5 h of 1080p broadcast at 18 Mbit/s, far above any match half. */
export const DEFAULT_MAX_SOURCE_BYTES = 20 * 1024 ** 3;

/**
 * Default of `MAX_FRAME_PIXELS`: 4096 × 2304 = 9,437,184 pixels, so every 4K format (UHD 3840×2160, DCI
 * 4096×2160) passes and 8K UHD (7680×4320 = 33,177,600 pixels) is rejected as BadMedia before it is decoded.
 * Reasons (our choice, not a standard): one decoded 8K frame is 99.5 MB of RGB24, so the 4 GiB default run
 * cache would hold about 40 sampled frames of a video; tiled detection (640 px tiles, 20 % overlap) needs
 * about 15 × 9 model runs per 8K frame against 8 × 5 for 4K; and sports broadcast footage is at most 4K. An operator
 * who wants 8K raises the limit; the pipeline itself handles 8K frames correctly (tested).
 */
export const DEFAULT_MAX_FRAME_PIXELS = 4096 * 2304;

/**
 * Default of `ACTIVITY_STALL_SECONDS` (src/activities/liveness.ts): 5 minutes. The longest legitimate silence
 * measured between two progress reports of a step is one tiled inference of a 1080p frame (about 1.5 s on 2
 * CPU cores) or one u2netp mask (about 0.5 s); 5 minutes is two orders of magnitude above that and still ends
 * a hung attempt long before the steps' 2-hour start-to-close timeout.
 */
export const DEFAULT_ACTIVITY_STALL_SECONDS = 300;

/**
 * Debian's `opencv-doc` example folder: the demo input `vtest.avi` of `npm run pipeline` lives here, so it is
 * one of the default `SOURCE_ROOTS`.
 */
export const OPENCV_EXAMPLES_DIR = '/usr/share/doc/opencv-doc/examples/data';

/** Placeholder for the tenant id in `GCS_SOURCE_PREFIXES` entries. */
export const TENANT_PLACEHOLDER = '{tenantId}';

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
  ACTIVITY_STALL_SECONDS: intFromEnv(DEFAULT_ACTIVITY_STALL_SECONDS),
  /**
   * Unset or empty: {@link defaultSourceRoots} (empty means default, as for every variable the local stack
   * records for its worker: src/stack/index.ts). Otherwise exactly these folders.
   */
  SOURCE_ROOTS: z.string().optional(),
  GCS_SOURCE_PREFIXES: z.string().default(''),
  HTTPS_SOURCE_ALLOW_PRIVATE: z.string().default(''),
  MAX_SOURCE_BYTES: intFromEnv(DEFAULT_MAX_SOURCE_BYTES),
  MAX_FRAME_PIXELS: intFromEnv(DEFAULT_MAX_FRAME_PIXELS),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

/**
 * Names of every environment variable {@link loadConfig} reads. The local stack records the values its worker
 * was started with (src/stack/index.ts), so a restarted worker keeps its configuration.
 */
export const CONFIG_ENV_VARS: readonly string[] = Object.keys(schema.shape);

/** Parsed configuration; see README "Configuration" for each field. */
export interface Config {
  /** Root of local state: stack data, pid files, logs, worker caches. */
  dataDir: string;
  /** Project-local tools (the Python venv carrying the `temporal` and `fake-gcs-server` binaries). */
  toolsDir: string;
  temporalAddress: string;
  temporalNamespace: string;
  temporalUiPort: number;
  /** CPU task queue; the GPU queue is always `${taskQueue}-gpu` (`gpuTaskQueueFor` in src/workflows/steps.ts). */
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
  /**
   * `ACTIVITY_STALL_SECONDS` in ms: an activity attempt that reports no progress for this long is given up
   * (its heartbeats stop and it fails as `Stalled`); see src/activities/liveness.ts.
   */
  activityStallMs: number;
  /**
   * `SOURCE_ROOTS`: absolute directories that local video sources must lie in, as written and after
   * `realpath` (so `..` and symlinks cannot leave them). Default (unset or empty) {@link defaultSourceRoots}.
   * `/` opts out of confinement (unsafe on workers shared by tenants). Whatever it says,
   * nothing under `dataDir` except `{dataDir}/sources` is readable. See {@link SourcePolicy}.
   */
  sourceRoots: string[];
  /**
   * `GCS_SOURCE_PREFIXES`: further `gs://bucket/prefix/` folders (normalised, ending in `/`) that tenants may
   * import from, beyond their own `gs://{bucket}/{tenantId}/`; a `{tenantId}` segment stands for the tenant.
   * Default none. See {@link parseGcsSourcePrefixes}.
   */
  gcsSourcePrefixes: string[];
  /**
   * `HTTPS_SOURCE_ALLOW_PRIVATE`: host names, IP addresses and CIDR ranges that `https://` sources may reach
   * although they are not public (loopback, private, link-local ...). Default none.
   */
  httpsSourceAllowPrivate: string[];
  /** `MAX_SOURCE_BYTES`: largest accepted video source, bytes (default {@link DEFAULT_MAX_SOURCE_BYTES}). */
  maxSourceBytes: number;
  /** `MAX_FRAME_PIXELS`: largest accepted frame, width × height in pixels (default {@link DEFAULT_MAX_FRAME_PIXELS}). */
  maxFramePixels: number;
  logLevel: string;
}

/**
 * What workers accept as a video source (issue "strict on bad input, closed between tenants"); enforced by
 * `importVideo` (src/activities/ingest.ts, through src/net/sourceAccess.ts) before a source is read.
 */
export interface SourcePolicy {
  /**
   * Absolute, normalised directories that a local source must lie in, as written and after symlinks and
   * `..` are resolved (`realpath`); empty = no local sources.
   */
  roots: string[];
  /**
   * The data folder of the stack and the worker (`DATAPREP_DATA_DIR`: GCS emulator files, Temporal database,
   * logs, caches). Nothing in it is readable as a source, whatever `roots` says, except `{dataDir}/sources`.
   */
  dataDir: string;
  /** Largest accepted source file, bytes. */
  maxBytes: number;
  /** Largest accepted frame, width × height in pixels (checked from ffprobe's stream info, before decoding). */
  maxFramePixels: number;
  /**
   * The pipeline's own bucket (`GCS_BUCKET`). Its top-level folders are tenants: a tenant may import from
   * `gs://{bucket}/{tenantId}/...` and from no other tenant's folder.
   */
  bucket: string;
  /** Further `gs://` folders tenants may import from (`GCS_SOURCE_PREFIXES`, normalised, `{tenantId}` kept). */
  gcsPrefixes: string[];
  /** Non-public hosts, addresses and CIDR ranges `https://` sources may reach (`HTTPS_SOURCE_ALLOW_PRIVATE`). */
  httpsAllowPrivate: string[];
  /**
   * PEM certificates trusted for `https://` sources in addition to Node's root store (embedding and tests;
   * worker processes take extra CAs from Node's `NODE_EXTRA_CA_CERTS`). Default none.
   */
  httpsExtraCa?: string[];
}

/**
 * The {@link SourcePolicy} of a configuration (`SOURCE_ROOTS`, `DATAPREP_DATA_DIR`, `MAX_SOURCE_BYTES`,
 * `MAX_FRAME_PIXELS`, `GCS_BUCKET`, `GCS_SOURCE_PREFIXES`, `HTTPS_SOURCE_ALLOW_PRIVATE`).
 */
export function sourcePolicyOf(
  cfg: Pick<Config, 'sourceRoots' | 'dataDir' | 'maxSourceBytes' | 'maxFramePixels' | 'bucket' | 'gcsSourcePrefixes' | 'httpsSourceAllowPrivate'>,
): SourcePolicy {
  return {
    roots: cfg.sourceRoots,
    dataDir: path.resolve(cfg.dataDir),
    maxBytes: cfg.maxSourceBytes,
    maxFramePixels: cfg.maxFramePixels,
    bucket: cfg.bucket,
    gcsPrefixes: cfg.gcsSourcePrefixes,
    httpsAllowPrivate: cfg.httpsSourceAllowPrivate,
  };
}

/**
 * Default `SOURCE_ROOTS`: `{dataDir}/sources` (a drop folder on the worker) and {@link OPENCV_EXAMPLES_DIR}
 * (the demo input). Other local files reach the pipeline through the CLI, which uploads them to the tenant's
 * own folder in the bucket (src/cli/uploads.ts).
 */
export function defaultSourceRoots(dataDir: string): string[] {
  return [path.join(path.resolve(dataDir), 'sources'), OPENCV_EXAMPLES_DIR];
}

/**
 * Splits `SOURCE_ROOTS` (directories separated by `:`, like `PATH`; empty entries ignored).
 * @throws Error naming the entry when one is not an absolute path (a relative root would depend on the
 *   worker's working directory).
 */
export function parseSourceRoots(value: string): string[] {
  const roots = value.split(':').map((s) => s.trim()).filter(Boolean);
  for (const r of roots) if (!path.isAbsolute(r)) throw new Error(`configuration: SOURCE_ROOTS: ${JSON.stringify(r)} is not an absolute path`);
  return roots.map((r) => path.resolve(r));
}

/**
 * Parses `GCS_SOURCE_PREFIXES`: comma-separated `gs://bucket/` (whole bucket) or `gs://bucket/folder/...`
 * entries, normalised to end in `/` so an entry never matches a sibling folder that merely starts alike.
 * `{tenantId}` may stand for one whole folder segment (`gs://media/{tenantId}/in/`).
 * @param bucket the pipeline bucket (`GCS_BUCKET`): an entry in it must begin with `{tenantId}/`, since its
 *   top-level folders are tenants.
 * @throws Error naming the entry: not `gs://bucket/...`, a bad bucket or folder name (the rules of
 *   src/sources.ts), `{tenantId}` inside a segment, or an entry that would open the pipeline bucket beyond the
 *   tenant's own folder.
 */
export function parseGcsSourcePrefixes(value: string, bucket: string): string[] {
  const out: string[] = [];
  for (const raw of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const fail = (why: string) => new Error(`configuration: GCS_SOURCE_PREFIXES: ${JSON.stringify(raw)}: ${why}`);
    const m = /^gs:\/\/([^/]+)(?:\/(.*))?$/.exec(raw);
    if (!m) throw fail('must look like gs://bucket/ or gs://bucket/folder/');
    const [, b, rest = ''] = m;
    if (!isBucketName(b)) throw fail(`${JSON.stringify(b)} is not a bucket name`);
    const prefix = rest === '' || rest.endsWith('/') ? rest : `${rest}/`;
    if (prefix !== '') {
      const segments = prefix.slice(0, -1).split('/');
      if (segments.some((seg) => seg.includes(TENANT_PLACEHOLDER) && seg !== TENANT_PLACEHOLDER)) throw fail(`${TENANT_PLACEHOLDER} must be a whole folder name`);
      const problem = objectNameProblem(prefix.split(TENANT_PLACEHOLDER).join('t'), true);
      if (problem) throw fail(problem.replace('the object name', 'the folder'));
    }
    if (b === bucket && !prefix.startsWith(`${TENANT_PLACEHOLDER}/`)) {
      throw fail(`in the pipeline bucket ${bucket} tenants may only read their own folder: begin the entry with gs://${bucket}/${TENANT_PLACEHOLDER}/`);
    }
    out.push(`gs://${b}/${prefix}`);
  }
  return out;
}

/** Splits `HTTPS_SOURCE_ALLOW_PRIVATE` at commas and checks each entry. @throws Error naming a bad entry. */
function checkedAllowance(value: string): string[] {
  const entries = value.split(',').map((s) => s.trim()).filter(Boolean);
  try {
    parseAllowance(entries);
  } catch (err) {
    throw new Error(`configuration: ${(err as Error).message}`);
  }
  return entries;
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
    activityStallMs: e.ACTIVITY_STALL_SECONDS * 1000,
    sourceRoots: (e.SOURCE_ROOTS ?? '').trim() === '' ? defaultSourceRoots(e.DATAPREP_DATA_DIR) : parseSourceRoots(e.SOURCE_ROOTS!),
    gcsSourcePrefixes: parseGcsSourcePrefixes(e.GCS_SOURCE_PREFIXES, e.GCS_BUCKET),
    httpsSourceAllowPrivate: checkedAllowance(e.HTTPS_SOURCE_ALLOW_PRIVATE),
    maxSourceBytes: e.MAX_SOURCE_BYTES,
    maxFramePixels: e.MAX_FRAME_PIXELS,
    logLevel: e.LOG_LEVEL,
  };
}

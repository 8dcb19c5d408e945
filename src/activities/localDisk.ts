/**
 * Failures of the worker's own folders (run cache, scratch) explained: which folder, which errno, and for a
 * full disk how much space is left, so that a step fails with "`<folder>`: no space left on device" or
 * "`<folder>`: not writable (EROFS: read-only file system …)" instead of whatever library call happened to
 * hit the fault first (a `write` without a path, Node's misleading `ENOENT` from a recursive `mkdir` on a
 * read-only file system, or an ffmpeg exit status). The classification itself stays in src/errors.ts
 * ({@link ErrorType.LocalDisk}).
 */
import path from 'node:path';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { LOCAL_DISK_CODES, localDisk, localDiskCode, PipelineError } from '../errors';
import { folderSpace, formatBytes, probeFolder } from '../util/fs';
import { ToolError } from '../vision/media/ffmpeg';
import type { ActivityDeps } from './deps';

/** A folder of the worker and what it is for (named in messages). */
export interface WorkerFolder {
  /** e.g. "run cache", "scratch". */
  label: string;
  dir: string;
}

/** Texts that tools (ffmpeg) print for the local-disk errno codes, strerror(3) wording. */
const TOOL_TEXTS: ReadonlyArray<[RegExp, string]> = [
  [/No space left on device/i, 'ENOSPC'],
  [/Disk quota exceeded/i, 'EDQUOT'],
  [/Read-only file system/i, 'EROFS'],
];

/** The first errno-style error (`code` like `EACCES` and a `syscall`) in `err`'s `cause` chain. */
function errnoError(err: unknown): NodeJS.ErrnoException | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    const x = e as NodeJS.ErrnoException;
    if (typeof x.code === 'string' && /^E[A-Z0-9]+$/.test(x.code) && typeof x.syscall === 'string') return x;
  }
  return undefined;
}

/** The folder of `folders` that contains `file` (or is it). */
function folderOf(file: string | undefined, folders: readonly WorkerFolder[]): WorkerFolder | undefined {
  if (!file) return undefined;
  const f = path.resolve(file);
  return folders.find((d) => f === path.resolve(d.dir) || f.startsWith(`${path.resolve(d.dir)}${path.sep}`));
}

/**
 * Explains a step failure caused by the worker's own disk; returns any other error unchanged.
 *
 * - `ENOSPC` or `EDQUOT` ({@link LOCAL_DISK_CODES}), raised by Node or printed by ffmpeg: a
 *   {@link ErrorType.LocalDisk} error about the folder of `folders` that the error's path (or ffmpeg's
 *   message) lies in, else (a `write` carries no path) the folder whose file system has the least space
 *   left. The message gives that file system's free space (now, after the step's partial files were
 *   removed) and its size.
 * - Any other errno error (`EROFS`, `ENOENT`, `EACCES`, `ENOTDIR`, ...): each folder is probed
 *   ({@link probeFolder}), the one the error names first; when one cannot be written, a LocalDisk error
 *   naming it and the probe's errno (the real cause, e.g. `EROFS` behind Node's `ENOENT` from a recursive
 *   `mkdir`). When every folder works, an `EROFS` about one of them is still a LocalDisk error about it, and
 *   anything else is not a fault of the worker's disk (e.g. a missing input file): returned unchanged.
 * - {@link PipelineError}, `ApplicationFailure` and `CancelledFailure` are already classified: unchanged.
 *
 * @param folders the worker's folders, most specific first.
 */
export function explainLocalFault(err: unknown, folders: readonly WorkerFolder[]): unknown {
  if (err instanceof PipelineError || err instanceof ApplicationFailure || err instanceof CancelledFailure) return err;
  const errno = errnoError(err);
  let code = localDiskCode(err);
  if (!code && err instanceof ToolError) code = TOOL_TEXTS.find(([re]) => re.test(err.stderrTail))?.[1];
  if (!code && !errno) return err;
  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0];
  const mentioned = folderOf(errno?.path, folders) ?? folderOf((errno as { dest?: string } | undefined)?.dest, folders) ?? folders.find((d) => message.includes(d.dir) || (err instanceof ToolError && err.stderrTail.includes(d.dir)));

  if (code === 'ENOSPC' || code === 'EDQUOT') {
    const spaces = folders.map((d) => ({ d, space: folderSpace(d.dir) }));
    const fullest = [...spaces].sort((a, b) => (a.space?.freeBytes ?? Infinity) - (b.space?.freeBytes ?? Infinity))[0];
    const pick = spaces.find((s) => s.d === mentioned) ?? fullest;
    if (!pick) return err;
    // Measured now, after the failed step removed its partial files: what is left for a retry.
    const space = pick.space ? `; now ${formatBytes(pick.space.freeBytes)} free of ${formatBytes(pick.space.totalBytes)}` : '';
    return localDisk(pick.d.dir, `${LOCAL_DISK_CODES[code]} (${code}${space}) in the worker's ${pick.d.label} folder; ${message}`, err);
  }

  const order = mentioned ? [mentioned, ...folders.filter((d) => d !== mentioned)] : folders;
  for (const d of order) {
    const probe = probeFolder(d.dir);
    if (probe) return localDisk(d.dir, `the worker's ${d.label} folder is not writable (${probe.message}); ${message}`, err);
  }
  if (code && mentioned) return localDisk(mentioned.dir, `${LOCAL_DISK_CODES[code]} (${code}) in the worker's ${mentioned.label} folder; ${message}`, err);
  return err;
}

/** The folders of a worker's activities: its run cache's file folder (when the cache is on) and its scratch folder. */
export function workerFolders(deps: Pick<ActivityDeps, 'cache' | 'workDir'>): WorkerFolder[] {
  return [...(deps.cache.enabled ? [{ label: 'run cache', dir: deps.cache.fileDir }] : []), { label: 'scratch', dir: deps.workDir }];
}

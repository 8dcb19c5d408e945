/**
 * Failure modes operators hit, on the real activities (ffmpeg, the test stack's GCS emulator and Temporal
 * dev server) with 2 s of vtest.avi:
 * - the run cache folder on its own file system (rename fails with EXDEV): the import still works;
 * - a read-only or unusable cache or scratch folder: the worker refuses to start, naming the folder and the
 *   errno; a folder that becomes unwritable later fails the step with that cause (not Node's `ENOENT` from
 *   `mkdir`);
 * - a full disk (ENOSPC): the step fails as LocalDisk naming the folder and its free space, and once the run
 *   has ended no step is left `retrying` or `running` in `.pipeline_info.json`;
 * - two concurrent starts of the same run: exactly one reports "started", both get the same execution.
 *
 * Real faults come from tmpfs mounts (`mount -t tmpfs`, size-limited or read-only) when this process is root
 * and may mount; otherwise those cases are skipped (said on stderr) and their variants without a mount still
 * run: another file system that already exists (/dev/shm), a file where a folder should be, and injected
 * errors where nothing else can produce the fault.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, promises as fsp, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Client, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../src/activities';
import { recordStepStatus } from '../src/activities/runStep';
import { explainLocalFault } from '../src/activities/localDisk';
import { prepareInput, startRun } from '../src/cli/client';
import { loadConfig } from '../src/config';
import { ErrorType, PipelineError, toApplicationFailure } from '../src/errors';
import { createObjectStore } from '../src/storage/gcs';
import { RunLayout } from '../src/storage/layout';
import { moveFile } from '../src/util/fs';
import { validateInput } from '../src/validation';
import { createDeps, splitActivities } from '../src/workers/worker';
import { testClient, withWorkers } from './helpers/temporal';

const VTEST = '/usr/share/doc/opencv-doc/examples/data/vtest.avi';
const tmp = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'ops-')));
const configured = loadConfig();
/** The test stack's configuration, with this file's temp folder among the source roots (as a deployment lists its video folders). */
const cfg = { ...configured, sourceRoots: [...configured.sourceRoots, tmp] };
const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost });
const clip = path.join(tmp, 'vtest_2s.avi');
/** Mount points made by this file, unmounted in afterAll. */
const mounts: string[] = [];
const cleanups: Array<() => Promise<void>> = [];

/** Whether this process may mount tmpfs (root, and the mount really works): tried once on a scratch folder. */
const MOUNT = (() => {
  if (process.getuid?.() !== 0) return { ok: false, why: 'not root' };
  const dir = mkdtempSync(path.join(tmp, 'mount-check-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) return { ok: false, why: `mount -t tmpfs failed: ${(r.stderr || r.error?.message || '').trim()}` };
  spawnSync('umount', [dir]);
  return { ok: true, why: '' };
})();
if (!MOUNT.ok) console.warn(`ops.e2e: cases that mount a tmpfs are skipped (${MOUNT.why}); their variants without a mount run`);

/** Mounts a tmpfs with `options` (e.g. `size=128k`, `ro`) on `dir` (created), unmounted after the file. */
function mountTmpfs(dir: string, options: string): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  mounts.push(dir);
}

/** Step input for the clip in a fresh run of a fresh tenant. */
function stepInput(source = clip) {
  const tenantId = `ops${Math.random().toString(36).slice(2, 8)}`;
  const options = validateInput({ tenantId, videos: [{ source: '/x' }], options: { frameStride: 1 } }).options;
  return { tenantId, runGuid: 'r1', videoGuid: 'v1', workflowId: 'none', source, options };
}

/** Worker dependencies over `dataDir` (released after the file). */
function depsAt(dataDir: string) {
  const deps = createDeps({ ...cfg, dataDir });
  cleanups.push(() => deps.release());
  return deps;
}

/** What importVideo threw (an ApplicationFailure), or fails the test when it succeeded. */
async function importFailure(deps: ReturnType<typeof createDeps>, input = stepInput()): Promise<{ failure: ApplicationFailure; info: Record<string, any> }> {
  const err = await createActivities(deps).importVideo(input).then(() => undefined, (e: unknown) => e);
  expect(err, 'importVideo should fail').toBeInstanceOf(ApplicationFailure);
  const info = (await store.getJson<Record<string, any>>(new RunLayout(input.tenantId, input.runGuid).pipelineInfo))!;
  await store.deletePrefix(new RunLayout(input.tenantId, input.runGuid).prefix);
  return { failure: err as ApplicationFailure, info };
}

beforeAll(() => {
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', VTEST, '-t', '2', '-c', 'copy', clip]);
});

afterAll(async () => {
  for (const c of cleanups) await c().catch(() => undefined);
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
  await fsp.rm(tmp, { recursive: true, force: true });
});

describe('run cache folder on another file system (rename gives EXDEV)', () => {
  /** Imports the clip with worker data in `dataDir` and checks the video went into the run cache's folder. */
  async function importsIntoCache(dataDir: string): Promise<void> {
    const deps = depsAt(dataDir);
    const acts = createActivities(deps);
    const input = stepInput();
    const imported = await acts.importVideo(input);
    expect(imported.sizeBytes).toBeGreaterThan(0);
    expect(deps.cache.stats().diskBytes).toBe(imported.sizeBytes);
    const cacheDir = path.join(dataDir, 'worker-cache');
    const cached = readdirSync(cacheDir, { recursive: true }).map(String).filter((f) => f.endsWith('.mp4'));
    expect(cached).toHaveLength(1);
    expect(statSync(path.join(cacheDir, cached[0])).size).toBe(imported.sizeBytes);
    // Nothing left behind in the scratch folder (the copy's source is deleted).
    expect(readdirSync(deps.workDir, { recursive: true })).toEqual([]);
    // Step 2 finds it in the cache.
    expect((await acts.loadVideo(input)).alreadyLocal).toBe(true);
    await store.deletePrefix(new RunLayout(input.tenantId, input.runGuid).prefix);
  }

  it.skipIf(!MOUNT.ok)('imports when worker-cache is a tmpfs mount', async () => {
    const dataDir = path.join(tmp, 'exdev-mount');
    mountTmpfs(path.join(dataDir, 'worker-cache'), 'size=64m');
    await importsIntoCache(dataDir);
  });

  const shm = existsSync('/dev/shm') && statSync('/dev/shm').dev !== statSync(tmp).dev;
  it.skipIf(!shm)('imports when worker-cache is a symlink to /dev/shm (another file system, no mount needed)', async () => {
    const dataDir = path.join(tmp, 'exdev-shm');
    const target = mkdtempSync('/dev/shm/ops-cache-');
    cleanups.push(() => fsp.rm(target, { recursive: true, force: true }));
    mkdirSync(dataDir, { recursive: true });
    await fsp.symlink(target, path.join(dataDir, 'worker-cache'));
    await importsIntoCache(dataDir);
  });

  it('moveFile falls back to copy and delete on EXDEV, and leaves no partial copy when the copy fails (injected faults)', async () => {
    const dir = mkdtempSync(path.join(tmp, 'move-'));
    const src = path.join(dir, 'src.bin');
    const dest = path.join(dir, 'dest.bin');
    writeFileSync(src, 'payload');
    const exdev = Object.assign(new Error('EXDEV: cross-device link not permitted'), { code: 'EXDEV', syscall: 'rename' });
    const realRename = fsp.rename;
    const ops = {
      rename: async (a: string, b: string) => {
        if (a === src) throw exdev; // only the direct move crosses "file systems"
        await realRename(a, b);
      },
      copyFile: fsp.copyFile,
      rm: fsp.rm,
    };
    await moveFile(src, dest, ops);
    expect(await fsp.readFile(dest, 'utf8')).toBe('payload');
    expect(existsSync(src)).toBe(false);
    expect(readdirSync(dir)).toEqual(['dest.bin']);

    writeFileSync(src, 'again');
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, copyfile'), { code: 'ENOSPC', syscall: 'copyfile' });
    const failingCopy = { ...ops, copyFile: async (_a: string, b: string) => { writeFileSync(b, 'partial'); throw enospc; } };
    await expect(moveFile(src, path.join(dir, 'other.bin'), failingCopy)).rejects.toBe(enospc);
    expect(readdirSync(dir).sort()).toEqual(['dest.bin', 'src.bin']); // source kept, partial copy removed
  });
});

describe('unwritable cache or scratch folder', () => {
  it.skipIf(!MOUNT.ok)('the worker refuses to start when worker-cache is read-only, naming the folder and EROFS', () => {
    const dataDir = path.join(tmp, 'ro-start');
    mountTmpfs(path.join(dataDir, 'worker-cache'), 'ro,size=64k');
    expect(() => depsAt(dataDir)).toThrow(/run cache folder \S*ro-start\/worker-cache\S* is not writable \(EROFS: read-only file system/);
  });

  it('the worker refuses to start when a folder cannot be created (a file stands in the way), naming it and the errno', () => {
    const cacheBlocked = path.join(tmp, 'blocked-cache');
    mkdirSync(cacheBlocked, { recursive: true });
    writeFileSync(path.join(cacheBlocked, 'worker-cache'), 'not a folder');
    expect(() => depsAt(cacheBlocked)).toThrow(/run cache folder \S*blocked-cache\/worker-cache\S* is not writable \((ENOTDIR|EEXIST)/);
    const scratchBlocked = path.join(tmp, 'blocked-scratch');
    mkdirSync(scratchBlocked, { recursive: true });
    writeFileSync(path.join(scratchBlocked, 'worker-scratch'), 'not a folder');
    expect(() => depsAt(scratchBlocked)).toThrow(/scratch folder \S*blocked-scratch\/worker-scratch\S* is not writable \((ENOTDIR|EEXIST)/);
  });

  /** Checks a LocalDisk failure of importVideo naming `folder` and matching `cause`, recorded as retrying. */
  function expectFolderFault(r: Awaited<ReturnType<typeof importFailure>>, folder: string, cause: RegExp): void {
    expect(r.failure.type).toBe(ErrorType.LocalDisk);
    expect(r.failure.nonRetryable).toBe(false);
    expect(r.failure.message.startsWith(folder), r.failure.message).toBe(true);
    expect(r.failure.message).toMatch(/run cache folder is not writable/);
    expect(r.failure.message).toMatch(cause);
    expect(r.info.steps.v1.importVideo).toMatchObject({ status: 'retrying', error: { type: ErrorType.LocalDisk } });
  }

  it.skipIf(!MOUNT.ok)('a cache folder that turns read-only later fails the step with EROFS naming it, not ENOENT from mkdir', async () => {
    const dataDir = path.join(tmp, 'ro-later');
    const deps = depsAt(dataDir);
    mountTmpfs(path.join(dataDir, 'worker-cache'), 'ro,size=64k');
    expectFolderFault(await importFailure(deps), path.join(dataDir, 'worker-cache'), /EROFS: read-only file system/);
  });

  it('a cache folder replaced by a file later fails the step naming the folder and the errno', async () => {
    const dataDir = path.join(tmp, 'gone-later');
    const deps = depsAt(dataDir);
    await fsp.rm(path.join(dataDir, 'worker-cache'), { recursive: true, force: true });
    writeFileSync(path.join(dataDir, 'worker-cache'), 'not a folder');
    expectFolderFault(await importFailure(deps), path.join(dataDir, 'worker-cache'), /ENOTDIR|EEXIST/);
  });
});

describe('disk full (ENOSPC)', () => {
  let client: Client;
  beforeAll(async () => {
    client = await testClient();
  });

  it.skipIf(!MOUNT.ok)('a full data folder fails the step as LocalDisk naming the folder and its free space', async () => {
    const dataDir = path.join(tmp, 'full-direct');
    mountTmpfs(dataDir, 'size=128k');
    const { failure, info } = await importFailure(depsAt(dataDir));
    expect(failure.type).toBe(ErrorType.LocalDisk);
    expect(failure.nonRetryable).toBe(false);
    expect(failure.message.startsWith(`${dataDir}/`), failure.message).toBe(true);
    expect(failure.message).toMatch(/: no space left on device \(ENOSPC; now [\d.]+ (B|KiB) free of 128\.0 KiB\) in the worker's (scratch|run cache) folder/);
    expect(info.steps.v1.importVideo).toMatchObject({ status: 'retrying', error: { type: ErrorType.LocalDisk } });
  });

  it.skipIf(!MOUNT.ok)('a run cancelled while its step retries ENOSPC ends with that step cancelled, not retrying', async () => {
    const dataDir = path.join(tmp, 'full-run');
    mountTmpfs(dataDir, 'size=128k');
    const deps = depsAt(dataDir);
    const { cpu, gpu } = splitActivities(createActivities(deps));
    const tenantId = `opsfull${Math.random().toString(36).slice(2, 6)}`;
    const videoGuid = prepareInput({ tenantId, videos: [{ source: clip }] }).videos[0].videoGuid!;
    await withWorkers(
      cpu,
      async (taskQueue) => {
        const run = await startRun(client, { ...cfg, taskQueue }, { tenantId, videos: [{ source: clip }], options: { frameStride: 1 } });
        const layout = new RunLayout(tenantId, run.runGuid);
        for (let i = 0; i < 600; i++) {
          const info = await store.getJson<Record<string, any>>(layout.pipelineInfo).catch(() => undefined);
          if (info?.steps?.[videoGuid]?.importVideo?.status === 'retrying') break;
          await new Promise((r) => setTimeout(r, 100));
        }
        await run.handle.cancel();
        const err = await run.handle.result().then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowFailedError);
        expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
        const info = (await store.getJson<Record<string, any>>(layout.pipelineInfo))!;
        expect(info.status).toBe('cancelled');
        const step = info.steps[videoGuid].importVideo;
        expect(step.status).toBe('cancelled');
        expect(step.error.type).toBe(ErrorType.LocalDisk);
        expect(step.error.message).toMatch(/no space left on device \(ENOSPC/);
        await store.deletePrefix(layout.prefix);
      },
      gpu,
    );
  });

  it('recordRunEnd finalises steps still retrying or running: failed (keeping their error) or cancelled', async () => {
    const deps = depsAt(path.join(tmp, 'finalise'));
    const acts = createActivities(deps);
    for (const [status, expected] of [['failed', 'failed'], ['cancelled', 'cancelled']] as const) {
      const tenantId = `opsend${Math.random().toString(36).slice(2, 6)}`;
      const layout = new RunLayout(tenantId, 'r1');
      const diskError = { type: ErrorType.LocalDisk, message: '/data/worker-scratch/1: no space left on device (ENOSPC; now 0 B free of 1.0 MiB)' };
      await recordStepStatus(store, layout, 'v1', 'importVideo', { status: 'completed', durationMs: 5 });
      await recordStepStatus(store, layout, 'v1', 'loadVideo', { status: 'retrying', error: diskError });
      await recordStepStatus(store, layout, 'v2', 'importVideo', { status: 'running' });
      const runError = { type: ErrorType.LocalDisk, message: `video v1: ${diskError.message}` };
      await acts.recordRunEnd({ tenantId, runGuid: 'r1', workflowId: 'w', status, error: status === 'failed' ? runError : undefined });
      const info = (await store.getJson<Record<string, any>>(layout.pipelineInfo))!;
      expect(info.status).toBe(status);
      expect(info.steps.v1.importVideo).toMatchObject({ status: 'completed', durationMs: 5 });
      expect(info.steps.v1.loadVideo).toMatchObject({ status: expected, error: diskError });
      expect(info.steps.v2.importVideo.status).toBe(expected);
      if (status === 'failed') expect(info.steps.v2.importVideo.error).toEqual(runError);
      await store.deletePrefix(layout.prefix);
    }
  });

  it('an ENOSPC without a path names the worker folder with the least space left (injected error)', () => {
    const a = mkdtempSync(path.join(tmp, 'space-'));
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    const explained = explainLocalFault(enospc, [{ label: 'scratch', dir: a }]);
    expect(explained).toBeInstanceOf(PipelineError);
    const failure = toApplicationFailure(explained);
    expect(failure.type).toBe(ErrorType.LocalDisk);
    expect(failure.nonRetryable).toBe(false);
    expect(failure.message).toMatch(new RegExp(`^${a}: no space left on device \\(ENOSPC; now [\\d.]+ \\w+ free of [\\d.]+ \\w+\\) in the worker's scratch folder; ENOSPC: no space left on device, write$`));
    // Outside an activity's folders a raw ENOSPC is still a retryable LocalDisk failure saying what it means.
    const raw = toApplicationFailure(enospc);
    expect(raw.type).toBe(ErrorType.LocalDisk);
    expect(raw.message).toMatch(/^no space left on device \(ENOSPC\)/);
    // An errno error that is not about the worker's (working) folders is left alone.
    const enoent = Object.assign(new Error('ENOENT: no such file or directory, open \'/nope\''), { code: 'ENOENT', syscall: 'open', path: '/nope' });
    expect(explainLocalFault(enoent, [{ label: 'scratch', dir: a }])).toBe(enoent);
  });
});

describe('concurrent starts of the same run', () => {
  it('exactly one caller reports "started"; both get the same execution', async () => {
    const client = await testClient();
    const taskQueue = `ops-nobody-${Math.random().toString(36).slice(2, 8)}`; // no worker: the run stays open
    const input = { tenantId: `opsdup${Math.random().toString(36).slice(2, 6)}`, videos: [{ source: clip }] };
    const runs = await Promise.all([0, 1, 2].map(() => startRun(client, { ...cfg, taskQueue }, input)));
    try {
      expect(runs.filter((r) => r.started)).toHaveLength(1);
      expect(new Set(runs.map((r) => r.workflowId)).size).toBe(1);
      const ids = await Promise.all(runs.map(async (r) => (await r.handle.describe()).runId));
      expect(new Set(ids).size).toBe(1);
      // Starting it again later attaches too.
      expect((await startRun(client, { ...cfg, taskQueue }, input)).started).toBe(false);
    } finally {
      await runs[0].handle.terminate('test done');
    }
  });
});

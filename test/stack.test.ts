/**
 * The local stack against the real binaries (Temporal CLI dev server, fake-gcs-server).
 *
 * - "test stack" tests use the stack that test/globalSetup.ts started (ports 17233/18233/14443) and only
 *   read from it or start it again (which must be a no-op).
 * - "aux stack" tests start their own stack (ports 27233/28233/24443, data dir .data/test-stack-aux) because
 *   they kill processes and restart workers; it is stopped at the end.
 */
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Storage } from '@google-cloud/storage';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PROJECT_ROOT, loadConfig } from '../src/config';
import { SEARCH_ATTRIBUTES, StackError, stackStatus, startStack, stopStack, type ServiceStatus, type StackOptions } from '../src/stack';
import { isAlive, readPidFile, waitUntil } from '../src/stack/process';
import { TEST_STACK } from './globalSetup';
import { testPort } from './helpers/ports';

const byName = (rows: ServiceStatus[]) => Object.fromEntries(rows.map((r) => [r.name, r]));

/**
 * A Storage client for the emulator. @google-cloud/storage 7 uses a set STORAGE_EMULATOR_HOST verbatim as its
 * JSON API base URL (without /storage/v1), which fake-gcs-server answers with 404; so the variable is hidden
 * while the client is built and apiEndpoint is passed instead (no credential lookup with a custom endpoint).
 */
function emulatorStorage(apiEndpoint: string): Storage {
  const saved = process.env.STORAGE_EMULATOR_HOST;
  delete process.env.STORAGE_EMULATOR_HOST;
  try {
    return new Storage({ apiEndpoint, projectId: 'test' });
  } finally {
    if (saved !== undefined) process.env.STORAGE_EMULATOR_HOST = saved;
  }
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk);
  return hash.digest('hex');
}

describe('test stack (globalSetup)', () => {
  it('exports its addresses to test files through process.env and inject()', () => {
    const info = inject('testStack');
    expect(info.temporalAddress).toBe(`127.0.0.1:${testPort(17233)}`);
    expect(process.env.TEMPORAL_ADDRESS).toBe(info.temporalAddress);
    expect(process.env.STORAGE_EMULATOR_HOST).toBe(`http://127.0.0.1:${testPort(14443)}`);
    expect(process.env.GCS_BUCKET).toBe('dataprep-test');
    expect(process.env.DATAPREP_DATA_DIR).toBe(path.join(PROJECT_ROOT, '.data', 'test-stack'));
    const cfg = loadConfig();
    expect(cfg.bucket).toBe('dataprep-test');
    expect(cfg.storageEmulatorHost).toBe(`http://127.0.0.1:${testPort(14443)}`);
  });

  it('status reports temporal and gcs running', async () => {
    const rows = byName(await stackStatus(TEST_STACK));
    expect(rows.temporal.state).toBe('running');
    expect(rows.gcs.state).toBe('running');
    expect(rows.worker).toBeUndefined();
  });

  it('start is idempotent: a second start starts nothing and keeps the pids', async () => {
    const before = byName(await stackStatus(TEST_STACK));
    const after = byName(await startStack(TEST_STACK));
    expect(after.temporal.pid).toBe(before.temporal.pid);
    expect(after.gcs.pid).toBe(before.gcs.pid);
    expect(after.temporal.detail).toMatch(/^already running/);
    expect(after.gcs.detail).toMatch(/^already running/);
  });

  it('registers the search attributes TenantId, RunGuid, PipelineStep as Keyword', async () => {
    const conn = await Connection.connect({ address: inject('testStack').temporalAddress });
    try {
      const res = await conn.operatorService.listSearchAttributes({ namespace: TEST_STACK.namespace });
      for (const name of SEARCH_ATTRIBUTES) {
        expect(res.customAttributes?.[name], name).toBe(2); // INDEXED_VALUE_TYPE_KEYWORD
      }
    } finally {
      await conn.close();
    }
  });

  describe('GCS emulator', () => {
    const storage = emulatorStorage(`http://127.0.0.1:${TEST_STACK.gcsPort}`);
    const bucket = storage.bucket(TEST_STACK.bucket);
    let tmp: string;
    let big: string;
    let bigSha: string;

    beforeAll(async () => {
      tmp = path.join(os.tmpdir(), `stack-test-${process.pid}`);
      await mkdir(tmp, { recursive: true });
      big = path.join(tmp, 'big.bin');
      // 64 MiB + 12345 bytes of random data (not a multiple of any chunk size).
      const out = createWriteStream(big);
      for (let i = 0; i < 64; i++) out.write(randomBytes(1024 ** 2));
      out.end(randomBytes(12_345));
      await new Promise<void>((resolve, reject) => out.on('finish', () => resolve()).on('error', reject));
      bigSha = await sha256File(big);
    });
    afterAll(async () => {
      await rm(tmp, { recursive: true, force: true });
    });

    for (const [label, chunkSize] of [
      ['single-request resumable', undefined],
      ['chunked resumable (16 MiB chunks)', 16 * 1024 ** 2],
    ] as const) {
      it(`round-trips a 64 MiB file with a ${label} upload`, async () => {
        const name = `stack-test/${process.pid}/${chunkSize ?? 'single'}.bin`;
        await bucket.upload(big, { destination: name, resumable: true, chunkSize, validation: 'crc32c' });
        const [meta] = await bucket.file(name).getMetadata();
        expect(Number(meta.size)).toBe(64 * 1024 ** 2 + 12_345);
        const back = path.join(tmp, 'back.bin');
        await pipeline(bucket.file(name).createReadStream({ validation: 'crc32c' }), createWriteStream(back));
        expect(await sha256File(back)).toBe(bigSha);
        await bucket.file(name).delete();
      });
    }
  });
});

describe('aux stack (own ports and data dir)', () => {
  const dataDir = path.join(PROJECT_ROOT, '.data', 'test-stack-aux');
  const fakeRoot = path.join(dataDir, 'fake-root'); // inside the project, so `--import tsx` resolves
  const aux: StackOptions = {
    ...TEST_STACK,
    dataDir,
    temporalPort: testPort(27233),
    uiPort: testPort(28233),
    gcsPort: testPort(24443),
    bucket: 'dataprep-aux',
    withWorker: true,
    rootDir: fakeRoot,
    workerReadyTimeoutMs: 30_000,
    workerStopGraceMs: 5_000,
  };

  beforeAll(async () => {
    await stopStack(aux);
    await rm(dataDir, { recursive: true, force: true });
    await mkdir(path.join(fakeRoot, 'src', 'workers'), { recursive: true });
    await writeFile(path.join(fakeRoot, 'src', 'workers', 'main.ts'), "const msg: string = 'worker ready';\nconsole.log(msg);\nsetInterval(() => undefined, 1000);\n");
    await writeFile(path.join(fakeRoot, 'src', 'code.ts'), 'export const v = 1;\n');
  });
  afterAll(async () => {
    const rows = await stopStack(aux);
    expect(rows.every((r) => r.state === 'stopped')).toBe(true);
    expect(await readPidFile(path.join(dataDir, 'run', 'temporal.json'))).toBeUndefined();
  });

  it('starts temporal, gcs and the (default-command) worker; a second start keeps the pids', async () => {
    const first = byName(await startStack(aux));
    expect(first.temporal.state).toBe('running');
    expect(first.gcs.detail).toMatch(/created bucket dataprep-aux/);
    expect(first.worker.detail).toMatch(/started; ready/);
    const rec = await readPidFile(path.join(dataDir, 'run', 'worker.json'));
    expect(rec?.command).toEqual(['bash', path.join(PROJECT_ROOT, 'scripts', 'worker.sh'), path.join(fakeRoot, 'src', 'workers', 'main.ts')]);
    expect(rec?.codeVersion).toMatch(/^[0-9a-f]{64}$/);
    const second = byName(await startStack(aux));
    for (const n of ['temporal', 'gcs', 'worker']) expect(second[n].pid, n).toBe(first[n].pid);
  });

  it('restarts the worker when the code changes', async () => {
    const before = byName(await stackStatus(aux));
    await writeFile(path.join(fakeRoot, 'src', 'code.ts'), 'export const v = 2;\n');
    expect(byName(await stackStatus(aux)).worker.detail).toMatch(/outdated: code changed/);
    const after = byName(await startStack(aux));
    expect(after.worker.pid).not.toBe(before.worker.pid);
    expect(isAlive(before.worker.pid!), 'the outdated worker is stopped, not left running').toBe(false);
    expect(after.worker.detail).toMatch(/restarted: code changed/);
    expect(after.temporal.pid).toBe(before.temporal.pid);
  });

  it('detects a killed temporal as stale and start recovers it with its state', async () => {
    const before = byName(await stackStatus(aux));
    // A workflow started before the crash must survive it (SQLite persistence). No worker polls its queue.
    const workflowId = `stack-test-persist-${Date.now()}`;
    const address = `127.0.0.1:${aux.temporalPort}`;
    let conn = await Connection.connect({ address });
    await new Client({ connection: conn }).workflow.start('noSuchWorkflow', { taskQueue: 'stack-test-nobody', workflowId });
    await conn.close();
    process.kill(before.temporal.pid!, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    expect(byName(await stackStatus(aux)).temporal.state).toBe('stale');
    const after = byName(await startStack(aux));
    expect(after.temporal.state).toBe('running');
    expect(after.temporal.pid).not.toBe(before.temporal.pid);
    expect(after.temporal.detail).toMatch(/stale pid .* cleaned/);
    expect(after.gcs.pid).toBe(before.gcs.pid);
    conn = await Connection.connect({ address });
    try {
      const desc = await new Client({ connection: conn }).workflow.getHandle(workflowId).describe();
      expect(desc.status.name).toBe('RUNNING');
    } finally {
      await conn.close();
    }
  });

  it('reports a worker that dies during start-up with the tail of its log', async () => {
    const dying = { ...aux, workerCommand: [process.execPath, '-e', "console.error('boom at start-up'); process.exit(3)"] };
    const err = await startStack(dying).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StackError);
    expect((err as Error).message).toMatch(/exited with status 3/);
    expect((err as Error).message).toMatch(/boom at start-up/);
    expect(byName(await stackStatus(aux)).worker.state).toBe('stopped'); // pid file removed
  });

  it('reports a worker that refuses to start (unusable cache folder) with its reason in the first line', async () => {
    const blocked = path.join(dataDir, 'blocked');
    await mkdir(blocked, { recursive: true });
    await writeFile(path.join(blocked, 'worker-cache'), 'a file where the run cache folder should be');
    const real = { ...aux, workerCommand: [process.execPath, '--import', 'tsx', path.join(PROJECT_ROOT, 'src', 'workers', 'main.ts')], workerEnv: { DATAPREP_DATA_DIR: blocked } };
    const err = await startStack(real).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StackError);
    const headline = (err as Error).message.split('\n')[0];
    expect(headline).toMatch(/^worker: cannot start: run cache folder \S*blocked\/worker-cache\S* is not writable \((ENOTDIR|EEXIST)/);
    expect(headline).toMatch(/exited with status 1 during start-up/);
    expect(byName(await stackStatus(aux)).worker.state).toBe('stopped');
  });

  it('a worker restarted after a crash keeps its configuration (SOURCE_ROOTS); a variable set differently is applied and reported', async () => {
    const saved = process.env.SOURCE_ROOTS;
    /** The environment the worker process really has (Linux /proc). */
    const envOf = (pid: number) => Object.fromEntries(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    const crash = async () => {
      const { pid } = byName(await stackStatus(aux)).worker;
      process.kill(pid!, 'SIGKILL');
      await waitUntil(() => !isAlive(pid!), 5_000);
      expect(byName(await stackStatus(aux)).worker.state).toBe('stale');
    };
    try {
      process.env.SOURCE_ROOTS = '/videos/a';
      const first = byName(await startStack(aux)).worker;
      expect(envOf(first.pid!).SOURCE_ROOTS).toBe('/videos/a');
      expect((await readPidFile(path.join(dataDir, 'run', 'worker.json')))?.config?.SOURCE_ROOTS).toBe('/videos/a');

      delete process.env.SOURCE_ROOTS; // a later command run from a shell without it
      expect(byName(await startStack(aux)).worker.pid).toBe(first.pid); // no reason to restart
      await crash();
      const restarted = byName(await startStack(aux)).worker;
      expect(restarted.pid).not.toBe(first.pid);
      expect(envOf(restarted.pid!).SOURCE_ROOTS).toBe('/videos/a');
      expect(restarted.detail).toMatch(/configuration kept from the previous worker: .*SOURCE_ROOTS=\/videos\/a/);

      process.env.SOURCE_ROOTS = '/videos/b';
      expect(byName(await stackStatus(aux)).worker.detail).toMatch(/outdated: configuration changed: SOURCE_ROOTS "\/videos\/a" → "\/videos\/b"/);
      const changed = byName(await startStack(aux)).worker;
      expect(changed.pid).not.toBe(restarted.pid);
      expect(changed.detail).toMatch(/restarted: configuration changed: SOURCE_ROOTS "\/videos\/a" → "\/videos\/b"/);
      expect(envOf(changed.pid!).SOURCE_ROOTS).toBe('/videos/b');

      process.env.SOURCE_ROOTS = ''; // set empty: back to the default (no confinement), said so
      await crash();
      const cleared = byName(await startStack(aux)).worker;
      expect(cleared.detail).toMatch(/configuration changed: SOURCE_ROOTS "\/videos\/b" → ""/);
      expect(envOf(cleared.pid!).SOURCE_ROOTS).toBe('');
    } finally {
      if (saved === undefined) delete process.env.SOURCE_ROOTS;
      else process.env.SOURCE_ROOTS = saved;
    }
  });

  it('refuses a port taken by a foreign process, naming it, without starting anything', async () => {
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
    const port = (squatter.address() as net.AddressInfo).port;
    const other: StackOptions = { ...aux, dataDir: path.join(dataDir, 'other'), temporalPort: testPort(27333), uiPort: testPort(28333), gcsPort: port, withWorker: false };
    try {
      await expect(startStack(other)).rejects.toThrow(new RegExp(`port ${port} \\(GCS emulator\\) is already in use`));
      expect(byName(await stackStatus(other)).temporal.state).toBe('stopped');
    } finally {
      squatter.close();
    }
  });
});

describe('scripts/worker.sh (the launcher of every worker process)', () => {
  const launcher = path.join(PROJECT_ROOT, 'scripts', 'worker.sh');
  // The same lookup as the launcher's (scripts/jemalloc.sh).
  const jemallocInstalled = spawnSync('bash', ['-c', `. ${JSON.stringify(path.join(PROJECT_ROOT, 'scripts', 'jemalloc.sh'))} && jemalloc_path`]).status === 0;
  let entry: string;
  beforeAll(async () => {
    const dir = path.join(PROJECT_ROOT, '.data', 'test-launcher');
    await mkdir(dir, { recursive: true });
    entry = path.join(dir, 'entry.ts');
    // Reports what the worker's own check (`mallocInUse`) sees from inside the launched process.
    await writeFile(entry, `import { mallocInUse } from ${JSON.stringify(path.join(PROJECT_ROOT, 'src', 'activities', 'runStep.ts'))};\nconsole.log(JSON.stringify({ malloc: mallocInUse() }));\n`);
  });
  const launch = (env: Record<string, string>) => {
    const r = spawnSync('bash', [launcher, entry], { cwd: PROJECT_ROOT, env: { ...process.env, LD_PRELOAD: '', DATAPREP_NODE: process.execPath, ...env }, encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, out: r.stdout.trim() ? (JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { malloc: string }) : undefined, err: r.stderr };
  };

  it.skipIf(!jemallocInstalled)('runs the worker with jemalloc when libjemalloc2 is installed (scripts/setup.sh installs it)', () => {
    expect(launch({}).out?.malloc).toBe('jemalloc');
  });
  it("keeps glibc's malloc with DATAPREP_MALLOC=glibc", () => {
    expect(launch({ DATAPREP_MALLOC: 'glibc' }).out?.malloc).toBe('glibc');
  });
  it('refuses an unknown DATAPREP_MALLOC, naming it', () => {
    const r = launch({ DATAPREP_MALLOC: 'tcmalloc' });
    expect(r.status).toBe(2);
    expect(r.err).toMatch(/DATAPREP_MALLOC=tcmalloc is not one of jemalloc, glibc/);
  });
});

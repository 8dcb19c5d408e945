/**
 * The storage module against the real GCS emulator: round trips, retries of injected transient faults,
 * classification of permanent errors, concurrent read-modify-write, and the layout's path rules.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config';
import { isTransientError } from '../src/errors';
import { createObjectStore } from '../src/storage/gcs';
import { RunLayout } from '../src/storage/layout';
import { NOT_READ_AGAIN, RunFiles } from '../src/storage/runFiles';
import { RunCache } from '../src/cache/runCache';
import { tmpdir } from 'node:os';
import { startFaultyProxy, type FaultyProxy } from './helpers/faultyProxy';

const cfg = loadConfig();
const prefix = `storage-test-${Date.now()}/`;
let proxy: FaultyProxy;

beforeAll(async () => {
  proxy = await startFaultyProxy(cfg.storageEmulatorHost!);
});
afterAll(async () => {
  await proxy?.close();
  await createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost }).deletePrefix(prefix);
});

describe('object store', () => {
  it('round-trips bytes, JSON, listings and prefix deletion', async () => {
    const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost });
    const data = randomBytes(100_000);
    await store.put(`${prefix}a/x.bin`, data);
    await store.putJson(`${prefix}a/y.json`, { n: 1 });
    expect(Buffer.compare(await store.get(`${prefix}a/x.bin`), data)).toBe(0);
    expect(await store.getJson(`${prefix}a/y.json`)).toEqual({ n: 1 });
    expect(await store.getJson(`${prefix}a/none.json`)).toBeUndefined();
    expect((await store.list(`${prefix}a/`)).map((o) => [o.name, o.size])).toEqual([
      [`${prefix}a/x.bin`, 100_000],
      [`${prefix}a/y.json`, Buffer.byteLength(`${JSON.stringify({ n: 1 }, null, 2)}\n`)],
    ]);
    expect(await store.deletePrefix(`${prefix}a/`)).toBe(2);
    expect(await store.exists(`${prefix}a/x.bin`)).toBe(false);
    const s = store.stats();
    expect(s.uploads).toBe(2);
    expect(s.bytesUploaded).toBe(100_000 + 13);
  });

  it('lists page by page: every object once, sorted, with its size and MD5', async () => {
    const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost, listPageSize: 4 });
    const blobs = Array.from({ length: 11 }, (_, i) => randomBytes(100 + i));
    await Promise.all(blobs.map((b, i) => store.put(`${prefix}paged/o_${String(i).padStart(2, '0')}.bin`, b)));
    const before = store.stats().requests;
    const listed = await store.list(`${prefix}paged/`);
    expect(store.stats().requests - before).toBe(3); // pages of 4, 4 and 3
    expect(listed).toEqual(blobs.map((b, i) => ({ name: `${prefix}paged/o_${String(i).padStart(2, '0')}.bin`, size: b.length, md5: createHash('md5').update(b).digest('base64') })));
    // Counting and pages hold a page at a time; deleting goes page by page and leaves nothing.
    expect(await store.count(`${prefix}paged/`)).toBe(11);
    const pages: number[] = [];
    for await (const page of store.listPages(`${prefix}paged/`)) pages.push(page.length);
    expect(pages).toEqual([4, 4, 3]);
    const deleting = store.stats().requests;
    expect(await store.deletePrefix(`${prefix}paged/`)).toBe(11);
    expect(store.stats().requests - deleting).toBe(4 + 11); // 3 pages and the empty one, 11 deletes
    expect(await store.count(`${prefix}paged/`)).toBe(0);
  });

  it.each(['503', 'reset'] as const)('retries injected transient faults (%s) and leaves identical bytes', async (mode) => {
    const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: proxy.url, minRetryDelayMs: 10 });
    const data = randomBytes(50_000);
    proxy.failNext(2, mode);
    await store.put(`${prefix}retry-${mode}.bin`, data);
    proxy.failNext(2, mode);
    const back = await store.get(`${prefix}retry-${mode}.bin`);
    expect(Buffer.compare(back, data)).toBe(0);
    expect(store.stats().retries).toBe(4);
  });

  it('gives up after maxRetries and does not retry permanent errors', async () => {
    const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: proxy.url, minRetryDelayMs: 5, maxRetries: 2 });
    proxy.failNext(10, '503');
    const err = await store.put(`${prefix}never.bin`, 'x').catch((e: unknown) => e);
    expect(isTransientError(err)).toBe(true);
    expect(store.stats().requests).toBe(3);
    proxy.failNext(0, '503');
    const missing = await store.get(`${prefix}does-not-exist`).catch((e: unknown) => e);
    expect((missing as { code?: number }).code).toBe(404);
    expect(isTransientError(missing)).toBe(false);
  });

  it('uploads a video-sized object through a resumable session', async () => {
    const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost, resumableThreshold: 1024 * 1024 });
    const data = randomBytes(24 * 1024 * 1024);
    await store.put(`${prefix}big.bin`, data);
    expect(Buffer.compare(await store.get(`${prefix}big.bin`), data)).toBe(0);
  });

  it('updateJson never loses concurrent updates', async () => {
    const stores = Array.from({ length: 4 }, () => createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost }));
    const name = `${prefix}counter.json`;
    await Promise.all(
      Array.from({ length: 16 }, (_, i) => stores[i % 4].updateJson<Record<string, number>>(name, (cur) => ({ ...(cur ?? {}), [`k${i}`]: i }))),
    );
    const final = await stores[0].getJson<Record<string, number>>(name);
    expect(Object.keys(final!)).toHaveLength(16);
  });

  it('copies an object server-side without transferring its bytes', async () => {
    const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost });
    const s = store.scoped();
    const data = randomBytes(200_000);
    await s.put(`${prefix}copy-src.bin`, data);
    await s.copy(`${prefix}copy-src.bin`, `${prefix}copy-dst.bin`);
    expect(s.stats()).toMatchObject({ copies: 1, downloads: 0, bytesUploaded: 200_000 });
    expect(Buffer.compare(await store.get(`${prefix}copy-dst.bin`), data)).toBe(0);
    await expect(s.copy(`${prefix}missing.bin`, `${prefix}x.bin`)).rejects.toMatchObject({ code: 404 });
  });

  it('RunFiles caches what it writes and copies, except outputs written NOT_READ_AGAIN (stored in GCS only)', async () => {
    const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost });
    const cache = new RunCache({ enabled: true, maxBytes: 10 * 1024 ** 2, ttlMs: 60_000, fileDir: tmpdir() });
    const files = new RunFiles(store.scoped(), cache, 't', 'r', 'v', tmpdir(), { codec: { decode: async (b: Buffer) => b } });
    const [kept, uncached] = [randomBytes(1000), randomBytes(3000)];
    await files.write(`${prefix}rf-kept.bin`, kept);
    await files.write(`${prefix}rf-uncached.bin`, uncached, undefined, NOT_READ_AGAIN);
    await files.copy(`${prefix}rf-kept.bin`, `${prefix}rf-copy-uncached.bin`, NOT_READ_AGAIN);
    await files.copy(`${prefix}rf-kept.bin`, `${prefix}rf-copy-kept.bin`);
    expect(cache.stats().bytes).toBe(2 * kept.length); // the written and the copied kept object
    for (const [name, data] of [['rf-kept.bin', kept], ['rf-uncached.bin', uncached], ['rf-copy-uncached.bin', kept], ['rf-copy-kept.bin', kept]] as const) {
      expect(Buffer.compare(await store.get(`${prefix}${name}`), data)).toBe(0);
    }
    expect(Buffer.compare(await files.read(`${prefix}rf-uncached.bin`), uncached)).toBe(0);
    expect(files.io).toMatchObject({ cacheMisses: 1, artifactDownloads: 1 }); // it came from GCS
    cache.clear();
  });

  it('updateJson skips the read after its own write, and still sees another writer', async () => {
    const a = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost });
    const b = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost });
    const name = `${prefix}remembered.json`;
    await a.updateJson<Record<string, number>>(name, (cur) => ({ ...(cur ?? {}), a1: 1 }));
    const before = a.stats().downloads;
    await a.updateJson<Record<string, number>>(name, (cur) => ({ ...(cur ?? {}), a2: 2 }));
    expect(a.stats().downloads).toBe(before); // its own last write was assumed current
    await b.updateJson<Record<string, number>>(name, (cur) => ({ ...(cur ?? {}), b1: 3 }));
    await a.updateJson<Record<string, number>>(name, (cur) => ({ ...(cur ?? {}), a3: 4 }));
    expect(a.stats().downloads).toBe(before + 1); // the precondition failed, so it read b's version
    expect(await a.getJson(name)).toEqual({ a1: 1, a2: 2, b1: 3, a3: 4 });
  });
});

describe('storage layout', () => {
  it('builds the layout paths', () => {
    const run = new RunLayout('acme', 'r1');
    const v = run.video('v1');
    expect(run.pipelineInfo).toBe('acme/user/process/train_pipeline/run_r1/.pipeline_info.json');
    expect(run.stepResult(3)).toBe('acme/user/process/train_pipeline/run_r1/intermediate/step3_result.json');
    expect(v.video).toBe('acme/user/process/train_pipeline/run_r1/video_v1/v1.mp4');
    expect(v.frame(100)).toBe('acme/user/process/train_pipeline/run_r1/video_v1/selected_frames/frame_100.jpg');
    expect(v.crop('modified', 3, 0)).toBe('acme/user/process/train_pipeline/run_r1/video_v1/crops/modified/track_3/crop_0.jpg');
    expect(v.datasetImage('val', 2, 'crop_4.jpg')).toBe('acme/user/process/train_pipeline/run_r1/video_v1/datasets/val/track_2/crop_4.jpg');
    expect(v.manifest).toBe('acme/user/process/train_pipeline/run_r1/video_v1/datasets/manifest.json');
  });

  it.each([
    ['..', 'r1', 'v1'],
    ['a/b', 'r1', 'v1'],
    ['', 'r1', 'v1'],
    ['acme', '../x', 'v1'],
    ['acme', 'R1', 'v1'],
    ['acme', 'r1', 'v/1'],
  ])('refuses identifiers that could escape the tenant prefix (%s, %s, %s)', (tenant, run, video) => {
    expect(() => new RunLayout(tenant, run).video(video)).toThrow(/InvalidInput|must match/);
  });

  it('refuses negative or fractional track ids and frame ids', () => {
    const v = new RunLayout('acme', 'r1').video('v1');
    expect(() => v.crop('original', -1, 0)).toThrow(/track_id/);
    expect(() => v.frame(1.5)).toThrow(/frame_id/);
    expect(() => v.datasetImage('train', 1, '../x.jpg')).toThrow(/plain \.jpg/);
  });
});

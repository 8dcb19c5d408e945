/**
 * {@link RunFiles}: one activity call's access to a video's artifacts, through the worker's run cache first
 * and GCS on a miss (docs/ARCHITECTURE.md "How data moves between steps").
 */
import { randomUUID } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { cacheKey, type RunCache } from '../cache/runCache';
import { moveFile } from '../util/fs';
import { md5Base64 } from '../util/hash';
import { emptyIo } from '../workflows/io';
import type { StepIo } from '../workflows/types';
import type { z } from 'zod';
import { parseArtifact } from './artifacts';
import type { ObjectInfo, ObjectStore } from './gcs';

/**
 * How stored frames (JPEG objects) become the decoded frames steps work on. Injected, so storage knows no
 * image library (the activities pass `decodeImage` of src/vision/image/rgb.ts).
 */
export interface FrameCodec<F> {
  /** Decodes a stored frame's bytes. */
  decode(encoded: Buffer): Promise<F>;
}

/** What a {@link RunFiles} needs besides the store and the cache. */
export interface RunFilesOptions<F> {
  /** Decoder of stored frames ({@link RunFiles.readFrame}, {@link RunFiles.writeFrame}). */
  codec: FrameCodec<F>;
  /**
   * Called after every read or write of an artifact (the activity's liveness counts each as progress:
   * src/activities/liveness.ts); default nothing.
   */
  onProgress?: () => void;
}

/**
 * Write option for outputs that no later step of the run reads ({@link RunFiles.write}, {@link RunFiles.copy},
 * {@link RunFiles.writeFile}):
 * they go to GCS only and leave the worker's run cache to the artifacts later steps do read.
 */
export const NOT_READ_AGAIN = { cache: false } as const;

/** Options of {@link RunFiles.write}, {@link RunFiles.copy} and {@link RunFiles.writeFile}. */
export interface WriteOptions {
  /** false: store in GCS only, not in the run cache ({@link NOT_READ_AGAIN}); default true. */
  cache?: boolean;
}

/**
 * One activity's access to a video's artifacts: the worker's {@link RunCache} first, GCS on a miss (and the
 * value is then cached for the next step); writes go to GCS first and only then into the cache, so GCS is
 * always complete and every step also works cold, on any worker (the fallback path).
 *
 * Counters of this activity call are in {@link RunFiles.io}; GCS requests and bytes come from the scoped
 * store ({@link RunFiles.finalIo}).
 */
export class RunFiles<F> {
  readonly io: StepIo = emptyIo();
  /** Objects already in GCS (name → size and MD5), listed by {@link loadPriorOutputs}. */
  private readonly prior = new Map<string, ObjectInfo>();
  /**
   * @param store a scoped store whose counters belong to this activity call.
   * @param cache the worker's run cache (possibly disabled).
   * @param scratchDir a folder this call may use for temporary files (removed by {@link cleanup}).
   * @param options the frame codec and the progress callback ({@link RunFilesOptions}).
   */
  constructor(
    readonly store: ObjectStore,
    readonly cache: RunCache,
    readonly tenantId: string,
    readonly runGuid: string,
    readonly videoGuid: string,
    readonly scratchDir: string,
    private readonly options: RunFilesOptions<F>,
  ) {}

  private progress(): void {
    this.options.onProgress?.();
  }

  private key(artifact: string): string {
    return cacheKey(this.tenantId, this.runGuid, this.videoGuid, artifact);
  }

  private hit(bytes: number): void {
    this.io.cacheHits++;
    this.io.bytesFromCache += bytes;
    this.progress();
  }

  /** Reads an object: from the cache, else downloaded from GCS (then cached). @throws on a GCS 404. */
  async read(objectName: string): Promise<Buffer> {
    return this.cached(objectName) ?? this.download(objectName);
  }

  /** An object's bytes from the cache (counted as a hit), or undefined. Synchronous. */
  private cached(objectName: string): Buffer | undefined {
    const cached = this.cache.get<Buffer>(this.key(`obj:${objectName}`));
    if (cached) this.hit(cached.length);
    return cached;
  }

  /** Downloads an object from GCS and caches it (a miss). @throws on a GCS 404. */
  private async download(objectName: string): Promise<Buffer> {
    this.io.cacheMisses++;
    this.io.artifactDownloads++;
    const buf = await this.store.get(objectName);
    this.cache.set(this.key(`obj:${objectName}`), buf, buf.length);
    this.progress();
    return buf;
  }

  /**
   * Resume support (docs/ARCHITECTURE.md "Resuming a step"): lists the objects under `prefixes` that are already in GCS, so that
   * {@link write}, {@link writeFrame} and {@link copy} skip every upload whose object is already stored with
   * exactly the bytes they would write (same size and MD5; GCS computes `md5Hash` from the stored bytes,
   * https://cloud.google.com/storage/docs/hashes-etags). A write skipped this way counts in
   * `io.uploadsSkipped`. Steps call it on retried attempts ({@link activityAttempt} > 1), when an earlier
   * attempt may have uploaded part of the outputs. Returns the listing (name → info).
   */
  async loadPriorOutputs(prefixes: readonly string[]): Promise<ReadonlyMap<string, ObjectInfo>> {
    for (const prefix of prefixes) for (const o of await this.store.list(prefix)) this.prior.set(o.name, o);
    return this.prior;
  }

  /** Whether `objectName` is stored (per {@link loadPriorOutputs}) with exactly the bytes `buf`. */
  private isStored(objectName: string, buf: Buffer): boolean {
    const o = this.prior.get(objectName);
    return !!o?.md5 && o.size === buf.length && o.md5 === md5Base64(buf);
  }

  /**
   * Uploads `data` to GCS (unless already stored: {@link loadPriorOutputs}), then caches it unless
   * `options.cache` is false: an output that no later step of the run reads (a dataset image, an augmented
   * copy that step 9 copies server-side) would only evict entries that later steps do read.
   */
  async write(objectName: string, data: Buffer | string, contentType?: string, options: WriteOptions = {}): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (this.isStored(objectName, buf)) this.io.uploadsSkipped++;
    else await this.store.put(objectName, buf, { contentType });
    if (options.cache !== false) this.cache.set(this.key(`obj:${objectName}`), buf, buf.length);
    this.progress();
  }

  /**
   * Copies object `from` to `to` inside the bucket (server-side: no bytes transferred), unless both are
   * listed by {@link loadPriorOutputs} with the same size and MD5. When `from` is in the cache, `to` is
   * cached with the same bytes, so later steps find it in memory too, unless `options.cache` is false (as
   * for {@link write}).
   */
  async copy(from: string, to: string, options: WriteOptions = {}): Promise<void> {
    const [src, dst] = [this.prior.get(from), this.prior.get(to)];
    if (src?.md5 && dst && src.md5 === dst.md5 && src.size === dst.size) this.io.uploadsSkipped++;
    else await this.store.copy(from, to);
    this.progress();
    const cached = options.cache === false ? undefined : this.cache.peek<Buffer>(this.key(`obj:${from}`));
    if (cached) this.cache.set(this.key(`obj:${to}`), cached, cached.length);
  }

  /** Writes JSON to GCS and the cache. */
  async writeJson(objectName: string, value: unknown): Promise<void> {
    await this.write(objectName, `${JSON.stringify(value, null, 2)}\n`, 'application/json');
  }

  /**
   * Reads a JSON artifact (cache first) and validates it with its schema (./artifacts.ts).
   * @throws PipelineError(Internal, objectName) when it does not match the schema ({@link parseArtifact})
   */
  async readJson<S extends z.ZodType>(objectName: string, schema: S): Promise<z.output<S>> {
    return parseArtifact(schema, objectName, JSON.parse((await this.read(objectName)).toString('utf8')));
  }

  /**
   * A stored frame as decoded pixels: its JPEG from the cache, else from GCS (then cached), decoded on every
   * read. The cache holds the JPEG, not the pixels: 12-21 times fewer bytes per frame (1280x720: about
   * 130 KiB against 2.7 MiB), so a long video's frames fit the cache's bound and a worker's memory grows
   * little with video length, for one JPEG decode per read (3.5-5 ms on one core; README "Scaling one long
   * video"). Both paths decode the very bytes that were uploaded, so they give the same pixels.
   */
  readFrame(objectName: string): Promise<F> {
    // On a hit the decode starts in this call, not a microtask later: a caller that reads ahead and then
    // runs blocking work (step 5's inference) gets the decode done meanwhile on sharp's threads.
    const cached = this.cached(objectName);
    return cached ? this.options.codec.decode(cached) : this.download(objectName).then((b) => this.options.codec.decode(b));
  }

  /**
   * Decodes a frame's JPEG as {@link readFrame} does, for a caller that read the bytes itself ({@link read}),
   * e.g. to download outside a bound on decoding work. The same bytes give the same pixels.
   */
  decodeFrame(jpeg: Buffer): Promise<F> {
    return this.options.codec.decode(jpeg);
  }

  /** Uploads a frame's JPEG (unless already stored: {@link loadPriorOutputs}), then caches the JPEG. */
  async writeFrame(objectName: string, jpeg: Buffer): Promise<void> {
    await this.write(objectName, jpeg, 'image/jpeg');
  }

  /**
   * Uploads the local file `file` to `objectName`; when the cache is on the file moves into the cache as
   * that object's local copy (copied and deleted where the cache folder is on another file system:
   * {@link moveFile}), otherwise (or with `options.cache` false, as for {@link write}) it is deleted.
   */
  async writeFile(objectName: string, file: string, contentType?: string, options: WriteOptions = {}): Promise<void> {
    await this.store.putFile(objectName, file, { contentType });
    this.progress();
    const key = this.key(`file:${objectName}`);
    const dest = options.cache === false ? undefined : this.cache.newFilePath(key);
    if (!dest) return void (await rm(file, { force: true }));
    const { size } = await stat(file);
    await moveFile(file, dest);
    this.cache.setFile(key, dest, size);
  }

  /**
   * Runs `fn` with a local copy of `objectName` (large files that tools read from disk, e.g. the video for
   * ffmpeg): the cached file, else a download into the cache (or, with the cache off, into a temporary
   * file deleted after `fn`). Returns what `fn` returns and whether the copy was cached already.
   */
  async withLocalFile<T>(objectName: string, fn: (file: string) => Promise<T>): Promise<{ value: T; wasCached: boolean; sizeBytes: number }> {
    const key = this.key(`file:${objectName}`);
    const cached = this.cache.get<string>(key);
    const st = cached ? await stat(cached).catch(() => undefined) : undefined;
    if (cached && st) {
      const size = st.size;
      this.hit(size);
      return { value: await fn(cached), wasCached: true, sizeBytes: size };
    }
    this.io.cacheMisses++;
    this.io.artifactDownloads++;
    const dest = this.cache.newFilePath(key) ?? path.join(this.scratchDir, `download-${randomUUID()}`);
    await this.store.getFile(objectName, dest);
    this.progress();
    const { size } = await stat(dest);
    if (this.cache.enabled) {
      this.cache.setFile(key, dest, size);
      return { value: await fn(dest), wasCached: false, sizeBytes: size };
    }
    try {
      return { value: await fn(dest), wasCached: false, sizeBytes: size };
    } finally {
      await rm(dest, { force: true });
    }
  }

  /**
   * A worker-local derived value that is not an object in GCS (e.g. augmented copies, the frame id list):
   * undefined on a miss; the caller recomputes it (deterministically) and may {@link setLocal} it.
   */
  getLocal<T>(artifact: string, bytesOf: (v: T) => number): T | undefined {
    const v = this.cache.get<T>(this.key(`local:${artifact}`));
    if (v === undefined) {
      this.io.cacheMisses++;
      return undefined;
    }
    this.hit(bytesOf(v));
    return v;
  }

  /** Caches a worker-local derived value (see {@link getLocal}). */
  setLocal(artifact: string, value: unknown, bytes: number): void {
    this.cache.set(this.key(`local:${artifact}`), value, bytes);
  }

  /** Removes this call's temporary files. */
  async cleanup(): Promise<void> {
    await rm(this.scratchDir, { recursive: true, force: true });
  }

  /** Final I/O counters: cache counters plus the scoped store's GCS counters. */
  finalIo(): StepIo {
    const s = this.store.stats();
    return { ...this.io, gcsRequests: s.requests, bytesUploaded: s.bytesUploaded, bytesDownloaded: s.bytesDownloaded };
  }
}

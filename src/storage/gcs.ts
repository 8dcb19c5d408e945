/**
 * The object store: the one module through which every byte reaches Google Cloud Storage (docs/ARCHITECTURE.md "Layers").
 *
 * Wraps `@google-cloud/storage`. Locally it talks to fake-gcs-server through `STORAGE_EMULATOR_HOST`;
 * in production to real GCS with Application Default Credentials. All calls
 * - are bounded in parallelism (`p-limit`, `concurrency` requests in flight per store),
 * - are retried on transient faults with exponential backoff (`p-retry`; classification in `src/errors.ts`),
 *   the library's own retries being switched off so that there is one retry policy, visible and testable,
 * - are counted in {@link StorageStats}.
 * Writes are whole-object and atomic in GCS, so a retried upload leaves identical bytes.
 */
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { Storage, type File } from '@google-cloud/storage';
import pLimit, { type LimitFunction } from 'p-limit';
import { LRUCache } from 'lru-cache';
import pRetry from 'p-retry';
import { isTransientError } from '../errors';

/** Counters of one store (or one activity's view of it); bytes are payload bytes, requests are API calls. */
export interface StorageStats {
  requests: number;
  uploads: number;
  downloads: number;
  bytesUploaded: number;
  bytesDownloaded: number;
  retries: number;
  /** Server-side copies (no payload bytes transferred). */
  copies: number;
}

/** A stored object's name, size in bytes and MD5 (base64, GCS `md5Hash`; absent for composite objects). */
export interface ObjectInfo {
  name: string;
  size: number;
  md5?: string;
}

/** Options of {@link createObjectStore}. */
export interface ObjectStoreOptions {
  bucket: string;
  /** `http://host:port` of an emulator; undefined for real GCS. */
  emulatorHost?: string;
  projectId?: string;
  /** Requests in flight at once (default 8). */
  concurrency?: number;
  /** Retries of a transient failure (default 5); backoff 200 ms doubling up to 5 s. */
  maxRetries?: number;
  /** Minimum backoff in ms (default 200; tests lower it). */
  minRetryDelayMs?: number;
  /** Objects at least this large are uploaded with a resumable session (default 8 MiB). */
  resumableThreshold?: number;
  /**
   * Objects asked for per page of a listing (default 10,000; tests lower it). GCS returns at most 1000 per page
   * whatever is asked (`maxResults`, https://cloud.google.com/storage/docs/json_api/v1/objects/list); the
   * emulator returns what is asked and reads its whole listing for every page, so large pages keep its
   * listings fast (20,000 objects: 14.7 s in pages of 1000, 0.9 s in one).
   */
  listPageSize?: number;
}

/**
 * The fields a listing asks for (JSON API partial response, https://cloud.google.com/storage/docs/json_api#partial-response):
 * what {@link ObjectInfo} keeps, and the next page's token.
 */
const LIST_FIELDS = 'items(name,size,md5Hash),nextPageToken';

/** One item of a listing asked for with {@link LIST_FIELDS} (JSON API object resource; `size` is a decimal string). */
interface ListedItem {
  name: string;
  size?: string;
  md5Hash?: string;
}

/** Upload options. */
export interface PutOptions {
  contentType?: string;
}

/** Operations on one bucket. All names are object names relative to the bucket. */
export interface ObjectStore {
  readonly bucket: string;
  /** Uploads bytes (or a UTF-8 string) to `name`, replacing any existing object. */
  put(name: string, data: Buffer | string, opts?: PutOptions): Promise<void>;
  /** Uploads a local file to `name`. */
  putFile(name: string, localPath: string, opts?: PutOptions): Promise<void>;
  /** Downloads `name`. @throws an error with `code` 404 when missing. */
  get(name: string): Promise<Buffer>;
  /** Downloads `name` into `localPath` (written to a temp file, then renamed). */
  getFile(name: string, localPath: string): Promise<void>;
  /** Whether `name` exists. */
  exists(name: string): Promise<boolean>;
  /**
   * Server-side copy of `from` to `to` in this bucket (GCS `objects.rewrite`): no payload bytes cross the
   * network. @throws an error with `code` 404 when `from` is missing.
   */
  copy(from: string, to: string): Promise<void>;
  /** Lists objects under `prefix`, sorted by name. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /**
   * Lists objects under `prefix` one page (at most `listPageSize` objects) at a time, in the store's order, so a
   * caller that needs only a page at once (counting, deleting) never holds a long video's whole listing.
   */
  listPages(prefix: string): AsyncGenerator<ObjectInfo[]>;
  /** How many objects are under `prefix` (counted page by page: {@link listPages}). */
  count(prefix: string): Promise<number>;
  /**
   * Deletes every object under `prefix`, a page of the listing at a time; returns how many. `prefix` must end
   * in `/`.
   */
  deletePrefix(prefix: string): Promise<number>;
  /** Deletes the objects `names` (missing ones are ignored); returns how many were asked for. */
  delete(names: readonly string[]): Promise<number>;
  /** Writes `value` as pretty JSON. */
  putJson(name: string, value: unknown): Promise<void>;
  /** Reads JSON, or undefined when the object does not exist. */
  getJson<T>(name: string): Promise<T | undefined>;
  /**
   * Read-modify-write of a JSON object under optimistic concurrency (GCS `ifGenerationMatch`
   * preconditions, https://cloud.google.com/storage/docs/request-preconditions): concurrent writers of the
   * same object (one per video of a run) never lose each other's updates. The version this process wrote
   * last is kept in memory and assumed current, so a lone writer does not re-download the object before
   * each update; a stale assumption fails the precondition and the object is read again.
   * @param update receives the current value (undefined when absent) and returns the new one.
   */
  updateJson<T>(name: string, update: (current: T | undefined) => T): Promise<T>;
  /** Creates the bucket if it does not exist (emulator and first-time set-up). */
  ensureBucket(): Promise<void>;
  /** A snapshot of the counters since creation. */
  stats(): StorageStats;
  /**
   * A view of the same bucket with its own counters (also counted in this store's): per-activity accounting
   * that concurrent activities cannot disturb.
   */
  scoped(): ObjectStore;
  /**
   * Downloads object `name` of bucket `bucket` (any bucket: video sources) into `localPath`. Callers check
   * that the object may be read (src/net/sourceAccess.ts). @throws an error with `code` 404 when missing.
   */
  getObjectToFile(bucket: string, name: string, localPath: string): Promise<void>;
}

const emptyStats = (): StorageStats => ({ requests: 0, uploads: 0, downloads: 0, bytesUploaded: 0, bytesDownloaded: 0, retries: 0, copies: 0 });

/** Whether `err` is the store's answer for a missing object (`code` 404, as {@link ObjectStore.get} and `copy` throw). */
export function isNotFound(err: unknown): boolean {
  return (err as { code?: unknown })?.code === 404;
}
function isPreconditionFailed(err: unknown): boolean {
  return (err as { code?: unknown })?.code === 412;
}

/**
 * A `Storage` client for `opts`. `@google-cloud/storage` also reads `STORAGE_EMULATOR_HOST` in its
 * constructor and then uses the variable verbatim as its JSON API base URL, without `/storage/v1`, which
 * fake-gcs-server answers with 404 for reads (uploads still work). The variable is therefore hidden from the
 * constructor and the emulator is passed as `apiEndpoint`, which yields the correct `{endpoint}/storage/v1`.
 */
function newStorageClient(opts: ObjectStoreOptions): Storage {
  const saved = process.env.STORAGE_EMULATOR_HOST;
  delete process.env.STORAGE_EMULATOR_HOST;
  try {
    return new Storage({
      projectId: opts.projectId ?? 'dataprep-local',
      ...(opts.emulatorHost ? { apiEndpoint: opts.emulatorHost } : {}),
      retryOptions: { autoRetry: false },
    });
  } finally {
    if (saved !== undefined) process.env.STORAGE_EMULATOR_HOST = saved;
  }
}

/**
 * Creates an {@link ObjectStore} over `@google-cloud/storage`.
 * @param storage an existing client (tests); by default one is created from `opts`.
 */
export function createObjectStore(opts: ObjectStoreOptions, storage?: Storage): ObjectStore {
  const client = storage ?? newStorageClient(opts);
  return buildStore(opts, client, pLimit(opts.concurrency ?? 8), [], new LRUCache({ max: 256 }));
}

/** The last version of a JSON object this process wrote (see `updateJson`). */
interface JsonVersion {
  generation: number;
  text: string;
}

function buildStore(opts: ObjectStoreOptions, client: Storage, limit: LimitFunction, parentSinks: StorageStats[], jsonVersions: LRUCache<string, JsonVersion>): ObjectStore {
  const bucket = client.bucket(opts.bucket);
  const maxRetries = opts.maxRetries ?? 5;
  const minTimeout = opts.minRetryDelayMs ?? 200;
  const resumableThreshold = opts.resumableThreshold ?? 8 * 1024 * 1024;
  const listPageSize = opts.listPageSize ?? 10_000;
  const counters = emptyStats();
  const sinks = [counters, ...parentSinks];
  /** Adds `delta` to this store's counters and to those of the stores it was scoped from. */
  const count = (delta: Partial<StorageStats>): void => {
    for (const sink of sinks) for (const [k, v] of Object.entries(delta)) sink[k as keyof StorageStats] += v as number;
  };

  /** Runs one API call with the concurrency bound and the retry policy. */
  function call<T>(fn: () => Promise<T>): Promise<T> {
    return pRetry(
      () =>
        limit(() => {
          count({ requests: 1 });
          return fn();
        }),
      {
        retries: maxRetries,
        minTimeout,
        maxTimeout: 5000,
        factor: 2,
        shouldRetry: (err) => isTransientError(err),
        onFailedAttempt: (err) => {
          if (err.retriesLeft > 0 && isTransientError(err)) count({ retries: 1 });
        },
      },
    );
  }

  const file = (name: string, generation?: number): File => bucket.file(name, generation ? { generation } : undefined);

  const store: ObjectStore = {
    bucket: opts.bucket,

    async put(name, data, putOpts) {
      const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      await call(() => file(name).save(buf, { resumable: buf.length >= resumableThreshold, contentType: putOpts?.contentType, validation: false }));
      count({ uploads: 1, bytesUploaded: buf.length });
    },

    async putFile(name, localPath, putOpts) {
      const { size } = await stat(localPath);
      await call(() =>
        pipeline(
          createReadStream(localPath),
          file(name).createWriteStream({ resumable: size >= resumableThreshold, contentType: putOpts?.contentType, validation: false }),
        ),
      );
      count({ uploads: 1, bytesUploaded: size });
    },

    async get(name) {
      const [buf] = await call(() => file(name).download({ validation: false }));
      count({ downloads: 1, bytesDownloaded: buf.length });
      return buf;
    },

    async getFile(name, localPath) {
      await mkdir(path.dirname(localPath), { recursive: true });
      const tmp = `${localPath}.part-${process.pid}-${Date.now()}`;
      try {
        await call(() => pipeline(file(name).createReadStream({ validation: false }), createWriteStream(tmp)));
        await rename(tmp, localPath);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
      const { size } = await stat(localPath);
      count({ downloads: 1, bytesDownloaded: size });
    },

    async exists(name) {
      const [ok] = await call(() => file(name).exists());
      return ok;
    },

    async copy(from, to) {
      await call(() => file(from).copy(file(to)));
      count({ copies: 1 });
    },

    async *listPages(prefix) {
      // Page by page, asking only for the fields kept. Without `fields` the library makes a File object holding
      // every field of every listed object (about 7 KiB of heap each: 20,000 objects took 144 MiB), and one
      // listing of a long video's augmented copies held them all at once; with `fields` it hands out the
      // response's items as they are (`Bucket.getFiles` in @google-cloud/storage 7).
      let pageToken: string | undefined;
      do {
        const [files, next] = await call(() => bucket.getFiles({ prefix, autoPaginate: false, maxResults: listPageSize, pageToken, fields: LIST_FIELDS }));
        yield (files as unknown as ListedItem[]).map((f) => ({ name: f.name, size: Number(f.size ?? 0), md5: f.md5Hash }));
        pageToken = (next as { pageToken?: string } | null)?.pageToken;
      } while (pageToken);
    },

    async list(prefix) {
      const out: ObjectInfo[] = [];
      for await (const page of store.listPages(prefix)) out.push(...page);
      return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },

    async count(prefix) {
      let n = 0;
      for await (const page of store.listPages(prefix)) n += page.length;
      return n;
    },

    async deletePrefix(prefix) {
      if (!prefix.endsWith('/')) throw new Error(`deletePrefix: prefix ${prefix} must end in "/"`);
      // Always the first page again: a page token need not stay valid once the objects before it are gone.
      let deleted = 0;
      let previous: string | undefined;
      for (;;) {
        const page = (await store.listPages(prefix).next()).value as ObjectInfo[] | undefined;
        if (!page?.length) return deleted;
        // A store that lists what it has just deleted would loop here for ever.
        if (page[0].name === previous) throw new Error(`deletePrefix: ${page[0].name} is still listed after it was deleted`);
        previous = page[0].name;
        deleted += await store.delete(page.map((o) => o.name));
      }
    },

    async delete(names) {
      await Promise.all(
        names.map((name) =>
          call(async () => {
            try {
              await file(name).delete();
            } catch (err) {
              if (!isNotFound(err)) throw err;
            }
          }),
        ),
      );
      return names.length;
    },

    async putJson(name, value) {
      await store.put(name, `${JSON.stringify(value, null, 2)}\n`, { contentType: 'application/json' });
    },

    async getJson<T>(name: string) {
      try {
        return JSON.parse((await store.get(name)).toString('utf8')) as T;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },

    async updateJson<T>(name: string, update: (current: T | undefined) => T) {
      for (let attempt = 0; ; attempt++) {
        let generation = 0;
        let current: T | undefined;
        // The version this process wrote last is assumed current (no read); the generation precondition
        // catches any other writer since, and then the object is read again.
        const known = attempt === 0 ? jsonVersions.get(name) : undefined;
        if (known) {
          generation = known.generation;
          current = JSON.parse(known.text) as T;
        } else {
          try {
            const [meta] = await call(() => file(name).getMetadata());
            generation = Number(meta.generation);
            const [buf] = await call(() => file(name, generation).download({ validation: false }));
            count({ downloads: 1, bytesDownloaded: buf.length });
            current = JSON.parse(buf.toString('utf8')) as T;
          } catch (err) {
            if (!isNotFound(err)) throw err;
            generation = 0; // precondition "object must not exist"
          }
        }
        const next = update(current);
        const text = `${JSON.stringify(next, null, 2)}\n`;
        const body = Buffer.from(text, 'utf8');
        try {
          const f = file(name);
          await call(() => f.save(body, { resumable: false, contentType: 'application/json', validation: false, preconditionOpts: { ifGenerationMatch: generation } }));
          count({ uploads: 1, bytesUploaded: body.length });
          const written = Number(f.metadata?.generation);
          if (written > 0) jsonVersions.set(name, { generation: written, text });
          else jsonVersions.delete(name);
          return next;
        } catch (err) {
          jsonVersions.delete(name);
          if (!isPreconditionFailed(err) || attempt >= 20) throw err;
          await new Promise((r) => setTimeout(r, 10 + Math.floor(Math.random() * 40 * (attempt + 1))));
        }
      }
    },

    async ensureBucket() {
      const [ok] = await call(() => bucket.exists());
      if (ok) return;
      try {
        await call(() => bucket.create());
      } catch (err) {
        if ((err as { code?: unknown }).code !== 409) throw err; // created concurrently
      }
    },

    stats: () => ({ ...counters }),

    scoped: () => buildStore(opts, client, limit, sinks, jsonVersions),

    async getObjectToFile(bucketName, name, localPath) {
      await mkdir(path.dirname(localPath), { recursive: true });
      const tmp = `${localPath}.part-${process.pid}-${Date.now()}`;
      try {
        await call(() => pipeline(client.bucket(bucketName).file(name).createReadStream({ validation: false }), createWriteStream(tmp)));
        await rename(tmp, localPath);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
      count({ downloads: 1, bytesDownloaded: (await stat(localPath)).size });
    },
  };
  return store;
}

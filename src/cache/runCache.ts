/**
 * The worker-local run cache (docs/ARCHITECTURE.md "How data flows for one video": large data in memory, always persisted to GCS):
 * one per worker process, shared by every activity of that process, holding the large artifacts that
 * consecutive steps of a video hand to each other: frame JPEGs, the imported video file, detections,
 * crop JPEGs, background-removed crops and augmented copies.
 *
 * - Keys are `{tenantId}/{runGuid}/{videoGuid}/{artifact}`, so tenants, runs and videos never see each
 *   other's entries (even two tenants that pick the same run GUID) and a whole run (or one video of it) can
 *   be released at once.
 * - Bounded in bytes with least-recently-used eviction and a time-to-live, by
 *   {@link https://github.com/isaacs/node-lru-cache | lru-cache} (`maxSize` + `sizeCalculation`, `ttl`).
 *   An entry larger than the whole bound is not stored.
 * - The cache is only ever an accelerator: every artifact is in GCS before it is put here
 *   (`RunFiles` uploads first), so a miss, an eviction or a dead worker costs a download, never data.
 * - Files (the imported video, which ffmpeg reads from disk) live under the cache's own folder; the
 *   in-memory entry holds only the path and the file is deleted when the entry is evicted, expires or is
 *   released. Their disk bytes are reported separately and do not count against the memory bound.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, rmdirSync, rmSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { LRUCache } from 'lru-cache';

/** A cached value and the bytes it occupies in memory. */
interface Entry {
  value: unknown;
  /** Bytes counted against the bound (payload bytes; a file entry counts {@link FILE_ENTRY_BYTES}). */
  bytes: number;
  /** For file entries: the file to delete when the entry goes. */
  file?: string;
  fileBytes?: number;
}

/** Memory charged for a file entry (the path and bookkeeping), bytes. */
export const FILE_ENTRY_BYTES = 1024;

/** Options of {@link RunCache}. */
export interface RunCacheOptions {
  /** false turns the cache off: every get misses, nothing is stored (the emergency and comparison switch). */
  enabled: boolean;
  /** Upper bound of the bytes held in memory. */
  maxBytes: number;
  /** Time-to-live of an entry since it was last stored or read, ms: a vanished run cannot pin memory. */
  ttlMs: number;
  /** Folder for file entries; a process-unique subfolder is created in it. */
  fileDir: string;
}

/** Process-wide counters of a {@link RunCache}. */
export interface RunCacheStats {
  enabled: boolean;
  maxBytes: number;
  /** Bytes held now and the most ever held (never above `maxBytes`). */
  bytes: number;
  peakBytes: number;
  entries: number;
  /** Bytes of file entries on disk now. */
  diskBytes: number;
  hits: number;
  misses: number;
  /** Payload bytes served from memory by hits. */
  bytesServed: number;
  /** Entries dropped to stay within the bound, expired by the TTL, or released with their run. */
  evicted: number;
  expired: number;
  released: number;
  /** Values not stored because they alone exceed the bound. */
  tooLarge: number;
}

/** Cache key of an artifact of one video of one run of one tenant. */
export function cacheKey(tenantId: string, runGuid: string, videoGuid: string, artifact: string): string {
  return `${tenantId}/${runGuid}/${videoGuid}/${artifact}`;
}

/** Key prefix of one video of a run (`release` it when the video ends). */
export function videoPrefix(tenantId: string, runGuid: string, videoGuid: string): string {
  return `${tenantId}/${runGuid}/${videoGuid}/`;
}

/**
 * The per-process run cache; see the module comment. Methods never throw on a miss; they return undefined.
 */
export class RunCache {
  readonly enabled: boolean;
  readonly maxBytes: number;
  /** This process's folder for file entries. */
  readonly fileDir: string;
  private readonly lru: LRUCache<string, Entry> | undefined;
  private readonly counters = { hits: 0, misses: 0, bytesServed: 0, evicted: 0, expired: 0, released: 0, tooLarge: 0, peakBytes: 0, diskBytes: 0 };

  constructor(opts: RunCacheOptions) {
    this.enabled = opts.enabled && opts.maxBytes > 0;
    this.maxBytes = opts.maxBytes;
    this.fileDir = path.join(opts.fileDir, `${process.pid}-${randomUUID().slice(0, 8)}`);
    if (!this.enabled) return;
    this.lru = new LRUCache<string, Entry>({
      maxSize: opts.maxBytes,
      sizeCalculation: (e) => Math.max(1, e.bytes),
      ttl: opts.ttlMs,
      ttlAutopurge: true,
      updateAgeOnGet: true,
      dispose: (e, _key, reason) => {
        if (reason === 'evict') this.counters.evicted++;
        else if (reason === 'expire') this.counters.expired++;
        if (e.file) {
          this.counters.diskBytes -= e.fileBytes ?? 0;
          try {
            unlinkSync(e.file);
          } catch {
            // already gone
          }
        }
      },
    });
  }

  /** The value of `key`, or undefined (counted as a miss). */
  get<T>(key: string): T | undefined {
    const e = this.lru?.get(key);
    if (!e) {
      this.counters.misses++;
      return undefined;
    }
    this.counters.hits++;
    this.counters.bytesServed += e.file ? (e.fileBytes ?? 0) : e.bytes;
    return e.value as T;
  }

  /** The value of `key` without counting a hit or miss or refreshing its recency (bookkeeping lookups). */
  peek<T>(key: string): T | undefined {
    return this.lru?.peek(key)?.value as T | undefined;
  }

  /**
   * Stores `value` under `key`, charging `bytes` against the bound (evicting least-recently-used entries
   * first). Returns false when the cache is off or the value alone exceeds the bound (then not stored).
   */
  set(key: string, value: unknown, bytes: number): boolean {
    if (!this.lru) return false;
    if (bytes > this.maxBytes) {
      this.counters.tooLarge++;
      this.lru.delete(key);
      return false;
    }
    this.lru.set(key, { value, bytes });
    this.counters.peakBytes = Math.max(this.counters.peakBytes, this.lru.calculatedSize);
    return true;
  }

  /**
   * A fresh path under this cache's folder for a file entry of `key` (the caller writes the file there,
   * then calls {@link setFile}). Undefined when the cache is off.
   */
  newFilePath(key: string): string | undefined {
    if (!this.lru) return undefined;
    const dir = path.join(this.fileDir, ...key.split('/').slice(0, 3));
    mkdirSync(dir, { recursive: true });
    return path.join(dir, `${randomUUID()}-${path.basename(key)}`);
  }

  /**
   * Registers the file at `file` (created via {@link newFilePath}) as the value of `key`; the file is deleted
   * when the entry is evicted, expires or is released. Returns false (and deletes the file) when off.
   */
  setFile(key: string, file: string, fileBytes: number): boolean {
    if (!this.lru) {
      rmSync(file, { force: true });
      return false;
    }
    this.lru.set(key, { value: file, bytes: FILE_ENTRY_BYTES, file, fileBytes });
    this.counters.diskBytes += fileBytes;
    this.counters.peakBytes = Math.max(this.counters.peakBytes, this.lru.calculatedSize);
    return true;
  }

  /**
   * Drops every entry whose key starts with `prefix` (`{tenantId}/{runGuid}/` for a run,
   * `{tenantId}/{runGuid}/{videoGuid}/` for one video) and deletes their files. Returns how many entries
   * were released.
   */
  release(prefix: string): number {
    if (!this.lru) return 0;
    let n = 0;
    for (const key of [...this.lru.keys()]) {
      if (key.startsWith(prefix)) {
        this.lru.delete(key);
        n++;
      }
    }
    this.counters.released += n;
    const parts = prefix.split('/').filter(Boolean);
    if (parts.length > 0) {
      rmSync(path.join(this.fileDir, ...parts), { recursive: true, force: true });
      // Parent folders (run, tenant) go with their last child.
      for (let k = parts.length - 1; k > 0; k--) {
        try {
          rmdirSync(path.join(this.fileDir, ...parts.slice(0, k)));
        } catch {
          break; // not empty (another video or run still cached) or never created
        }
      }
    }
    return n;
  }

  /** Entries held for keys starting with `prefix` (tests and diagnostics). */
  count(prefix = ''): number {
    if (!this.lru) return 0;
    let n = 0;
    for (const key of this.lru.keys()) if (key.startsWith(prefix)) n++;
    return n;
  }

  /** Drops everything and removes this process's folder (worker shutdown). */
  clear(): void {
    this.lru?.clear();
    rmSync(this.fileDir, { recursive: true, force: true });
  }

  /** A snapshot of the counters. */
  stats(): RunCacheStats {
    return {
      enabled: this.enabled,
      maxBytes: this.maxBytes,
      bytes: this.lru?.calculatedSize ?? 0,
      entries: this.lru?.size ?? 0,
      ...this.counters,
    };
  }
}

/**
 * Removes file-entry folders under `fileDir` left by worker processes that no longer run (their names start
 * with the dead process's pid). A crashed worker's memory is gone, so its files can only be garbage.
 */
export function removeOrphanedCacheFiles(fileDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(fileDir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(/^(\d+)-/.exec(name)?.[1]);
    if (!pid) continue;
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) {
      rmSync(path.join(fileDir, name), { recursive: true, force: true });
      removed.push(name);
    }
  }
  return removed;
}

/**
 * The run cache on its own: byte bound with LRU eviction, TTL, per-run and per-video release (files
 * included), the off switch, and removal of folders left by dead worker processes.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cacheKey, FILE_ENTRY_BYTES, RunCache, removeOrphanedCacheFiles } from '../src/cache/runCache';

const dir = () => mkdtempSync(path.join(tmpdir(), 'runcache-'));
const buf = (n: number, fill = 1) => Buffer.alloc(n, fill);

describe('RunCache', () => {
  it('never holds more than its byte bound and evicts the least recently used entry first', () => {
    const cache = new RunCache({ enabled: true, maxBytes: 1000, ttlMs: 60_000, fileDir: dir() });
    cache.set(cacheKey('t', 'r1', 'v1', 'a'), buf(400), 400);
    cache.set(cacheKey('t', 'r1', 'v1', 'b'), buf(400), 400);
    expect(cache.get(cacheKey('t', 'r1', 'v1', 'a'))).toBeDefined(); // a is now more recent than b
    cache.set(cacheKey('t', 'r1', 'v1', 'c'), buf(400), 400);
    expect(cache.get(cacheKey('t', 'r1', 'v1', 'b'))).toBeUndefined();
    expect(cache.get(cacheKey('t', 'r1', 'v1', 'a'))).toBeDefined();
    for (let i = 0; i < 50; i++) cache.set(cacheKey('t', 'r2', 'v', `x${i}`), buf(90 + i), 90 + i);
    const s = cache.stats();
    expect(s.bytes).toBeLessThanOrEqual(1000);
    expect(s.peakBytes).toBeLessThanOrEqual(1000);
    expect(s.evicted).toBeGreaterThan(40);
    expect(s.hits).toBe(2);
    expect(s.misses).toBe(1);
    expect(s.bytesServed).toBe(800);
  });

  it('does not store a value larger than the whole bound', () => {
    const cache = new RunCache({ enabled: true, maxBytes: 100, ttlMs: 60_000, fileDir: dir() });
    expect(cache.set('r/v/big', buf(101), 101)).toBe(false);
    expect(cache.get('r/v/big')).toBeUndefined();
    expect(cache.stats().tooLarge).toBe(1);
  });

  it('expires entries after the TTL so a vanished run cannot pin memory', async () => {
    const cache = new RunCache({ enabled: true, maxBytes: 1000, ttlMs: 50, fileDir: dir() });
    cache.set('r/v/a', buf(10), 10);
    await new Promise((r) => setTimeout(r, 120));
    expect(cache.get('r/v/a')).toBeUndefined();
    expect(cache.stats().bytes).toBe(0);
    expect(cache.stats().expired).toBe(1);
  });

  it('releases one video or a whole run, deleting file entries from disk', () => {
    const cache = new RunCache({ enabled: true, maxBytes: 1 << 20, ttlMs: 60_000, fileDir: dir() });
    cache.set(cacheKey('t', 'run1', 'v1', 'a'), buf(10), 10);
    cache.set(cacheKey('t', 'run1', 'v2', 'a'), buf(10), 10);
    cache.set(cacheKey('t', 'run10', 'v1', 'a'), buf(10), 10); // prefix of another run must not match
    const key = cacheKey('t', 'run1', 'v1', 'file:video.mp4');
    const file = cache.newFilePath(key)!;
    writeFileSync(file, buf(5000));
    cache.setFile(key, file, 5000);
    expect(cache.stats().diskBytes).toBe(5000);
    expect(cache.stats().bytes).toBe(30 + FILE_ENTRY_BYTES);
    expect(cache.get<string>(key)).toBe(file);

    expect(cache.release('t/run1/v1/')).toBe(2);
    expect(existsSync(file)).toBe(false);
    expect(cache.stats().diskBytes).toBe(0);
    expect(cache.count('t/run1/')).toBe(1);
    expect(cache.release('t/run1/')).toBe(1);
    expect(cache.count('t/run1/')).toBe(0);
    expect(cache.count('t/run10/')).toBe(1);
  });

  it('keeps two tenants apart even when they use the same run GUID', () => {
    const cache = new RunCache({ enabled: true, maxBytes: 1 << 20, ttlMs: 60_000, fileDir: dir() });
    cache.set(cacheKey('acme', 'run', 'v', 'obj:x'), buf(10, 1), 10);
    expect(cache.get(cacheKey('other', 'run', 'v', 'obj:x'))).toBeUndefined();
    cache.release('other/run/v/');
    expect(cache.get<Buffer>(cacheKey('acme', 'run', 'v', 'obj:x'))?.[0]).toBe(1);
  });

  it('evicting a file entry deletes its file', () => {
    const cache = new RunCache({ enabled: true, maxBytes: FILE_ENTRY_BYTES + 100, ttlMs: 60_000, fileDir: dir() });
    const key = cacheKey('t', 'r', 'v', 'file:a.mp4');
    const file = cache.newFilePath(key)!;
    writeFileSync(file, 'x');
    cache.setFile(key, file, 1);
    cache.set('r/v/other', buf(200), 200);
    expect(existsSync(file)).toBe(false);
    expect(cache.stats().evicted).toBe(1);
  });

  it('switched off, stores nothing and misses every time', () => {
    const cache = new RunCache({ enabled: false, maxBytes: 1 << 20, ttlMs: 60_000, fileDir: dir() });
    expect(cache.set('r/v/a', buf(10), 10)).toBe(false);
    expect(cache.get('r/v/a')).toBeUndefined();
    expect(cache.newFilePath('r/v/f')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ enabled: false, bytes: 0, entries: 0, misses: 1 });
  });

  it('removes file folders of dead worker processes only', () => {
    const root = dir();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    mkdirSync(path.join(root, `${dead}-abc`));
    mkdirSync(path.join(root, `${process.pid}-def`));
    expect(removeOrphanedCacheFiles(root)).toEqual([`${dead}-abc`]);
    expect(existsSync(path.join(root, `${process.pid}-def`))).toBe(true);
  });
});

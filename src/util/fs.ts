/**
 * Local file-system helpers for the worker's own folders (run cache, scratch): moving a file that may cross
 * file systems, creating a folder so that failures carry the real errno, and probing that a folder is
 * writable and how much space its file system has left.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { copyFile, open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** The file operations {@link moveFile} uses; tests replace one to inject a fault. */
export interface MoveOps {
  rename: (from: string, to: string) => Promise<void>;
  copyFile: (from: string, to: string) => Promise<void>;
  rm: (file: string, opts: { force: boolean }) => Promise<void>;
}

const NODE_MOVE_OPS: MoveOps = { rename, copyFile, rm };

/**
 * Moves file `src` to `dest` the way mv(1) does: a rename, and where the two lie on different file systems
 * (rename(2) fails with `EXDEV`, https://man7.org/linux/man-pages/man2/rename.2.html) a copy followed by
 * deleting `src`. The copy goes to a temporary name beside `dest` that is then renamed onto `dest`, so `dest`
 * never holds a partial file.
 * @throws the errno error of the failing operation other than `EXDEV` (e.g. `ENOSPC` while copying); a
 *   partial temporary copy is removed first and `src` is left in place.
 */
export async function moveFile(src: string, dest: string, ops: MoveOps = NODE_MOVE_OPS): Promise<void> {
  try {
    await ops.rename(src, dest);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
  }
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.${randomUUID().slice(0, 8)}.part`);
  try {
    await ops.copyFile(src, tmp);
    await ops.rename(tmp, dest);
  } catch (err) {
    await ops.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await ops.rm(src, { force: true });
}

/**
 * Creates folder `dir` and its missing parents. Unlike `mkdirSync(dir, { recursive: true })`, which reports
 * `ENOENT` when a parent cannot be created on a read-only file system, the error names the real cause
 * (`EROFS`, `EACCES`, `ENOTDIR`, `ENOSPC`, ...) and the folder that could not be created.
 * @throws the errno error of the first folder that cannot be created.
 */
export function makeFolder(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const missing: string[] = [];
  for (let d = path.resolve(dir); !existsSync(d) && path.dirname(d) !== d; d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) mkdirSync(d);
}

/**
 * Whether the process can use folder `dir`: creates it (with {@link makeFolder}), then creates, writes and
 * removes a small probe file in it. Returns undefined when all of that works, else the errno error of the
 * first step that failed (`EROFS`, `EACCES`, `ENOSPC`, `ENOTDIR`, ...). Synchronous: it runs at worker start
 * and after a failed step only.
 */
export function probeFolder(dir: string): NodeJS.ErrnoException | undefined {
  try {
    makeFolder(dir);
    const probe = path.join(dir, `.write-probe-${process.pid}-${randomUUID().slice(0, 8)}`);
    try {
      writeFileSync(probe, 'probe\n');
    } finally {
      try {
        unlinkSync(probe);
      } catch {
        // never created
      }
    }
    return undefined;
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
}

/** Free and total bytes of the file system holding `dir` (statfs(2): `bavail × bsize`, `blocks × bsize`); undefined if unknown. */
export function folderSpace(dir: string): { freeBytes: number; totalBytes: number } | undefined {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    try {
      const s = statfsSync(d);
      return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
    } catch {
      if (path.dirname(d) === d) return undefined; // try the nearest existing parent
    }
  }
}

/** `n` bytes as a short human-readable size with binary units (B, KiB, MiB, GiB, TiB). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** Characters a {@link TextSpool} gathers before it writes them to its file. */
const SPOOL_FLUSH_CHARS = 1 << 20;

/**
 * A text file written piece by piece, in order, with at most about {@link SPOOL_FLUSH_CHARS} characters held in
 * memory: a long table (step 9's manifest and its CSV and JSONL forms) is spooled to a local file and
 * uploaded from there, instead of being built as one string. Writes must be awaited one after another.
 */
export class TextSpool {
  private parts: string[] = [];
  private size = 0;
  private closed = false;
  private constructor(
    private readonly handle: FileHandle,
    /** The file written. */
    readonly file: string,
  ) {}

  /** Creates (or truncates) `file`. @throws the errno error of open(2) */
  static async create(file: string): Promise<TextSpool> {
    return new TextSpool(await open(file, 'w'), file);
  }

  /** Appends `text` (UTF-8). @throws the errno error of write(2) (e.g. `ENOSPC`) */
  async write(text: string): Promise<void> {
    this.parts.push(text);
    this.size += text.length;
    if (this.size >= SPOOL_FLUSH_CHARS) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.parts.length === 0) return;
    const text = this.parts.join('');
    this.parts = [];
    this.size = 0;
    await this.handle.appendFile(text, 'utf8');
  }

  /** Writes what is gathered and closes the file; `abandon` closes it without writing (after a failure). Once only: later calls do nothing. */
  async close(abandon = false): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (!abandon) await this.flush();
    } finally {
      await this.handle.close();
    }
  }
}

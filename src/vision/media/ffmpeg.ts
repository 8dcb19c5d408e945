/**
 * Locating the ffmpeg/ffprobe binaries and running them.
 *
 * Every ffmpeg/ffprobe process in the project is started through {@link startTool} (or its convenience
 * wrapper {@link runTool}), which
 * - keeps only a bounded tail of stderr (for error messages) while streaming stderr lines to a callback,
 * - honours an `AbortSignal` with a real kill: SIGTERM, then SIGKILL after a short grace period, and only
 *   settles once the child has exited,
 * - rejects with a {@link ToolError} that names the binary, the exit status and the stderr tail.
 *
 * Binary resolution (docs/ARCHITECTURE.md "Local stack"): `FFMPEG_PATH`/`FFPROBE_PATH` (or explicit config), else the
 * `ffmpeg-static` npm package when it is installed, else `ffmpeg`/`ffprobe` on `PATH`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Readable } from 'node:stream';
import { loadConfig } from '../../config';

/** Where {@link resolveFfmpeg} found the ffmpeg binary. */
export type FfmpegSource = 'env' | 'ffmpeg-static' | 'system';

/** Absolute (or PATH-resolved) paths of the two binaries and where ffmpeg came from. */
export interface FfmpegBinaries {
  ffmpeg: string;
  ffprobe: string;
  source: FfmpegSource;
}

/** Explicit binary paths; when omitted, {@link resolveFfmpeg} reads `FFMPEG_PATH`/`FFPROBE_PATH` via `loadConfig()`. */
export interface FfmpegPathConfig {
  ffmpegPath?: string;
  ffprobePath?: string;
}

const req = createRequire(import.meta.url);

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Looks `name` up on `PATH` (like `which`); returns the absolute path or undefined. */
function findOnPath(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  const exts = process.platform === 'win32' ? ['.exe', ''] : [''];
  for (const dir of dirs) {
    for (const ext of exts) {
      const candidate = path.join(dir, name + ext);
      if (isExecutableFile(candidate)) return candidate;
    }
  }
  return undefined;
}

/** Path exported by an optional npm package (`ffmpeg-static` exports a string, `ffprobe-static` `{ path }`). */
function optionalPackageBinary(pkg: string): string | undefined {
  try {
    const mod: unknown = req(pkg);
    const p =
      typeof mod === 'string'
        ? mod
        : mod && typeof mod === 'object' && typeof (mod as { path?: unknown }).path === 'string'
          ? (mod as { path: string }).path
          : mod && typeof mod === 'object' && typeof (mod as { default?: unknown }).default === 'string'
            ? (mod as { default: string }).default
            : undefined;
    return p && isExecutableFile(p) ? p : undefined;
  } catch {
    return undefined; // not installed (the normal case here)
  }
}

/**
 * Finds ffmpeg and ffprobe (docs/ARCHITECTURE.md "Local stack").
 *
 * ffmpeg: `cfg.ffmpegPath` (default: `FFMPEG_PATH` from the environment) → the `ffmpeg-static` package's
 * binary if the package is installed and the file exists → `ffmpeg` on `PATH`.
 * ffprobe (ffmpeg-static ships none): `cfg.ffprobePath` (default `FFPROBE_PATH`) → `ffprobe-static` if
 * installed → an `ffprobe` next to the chosen ffmpeg → `ffprobe` on `PATH`.
 *
 * @param cfg explicit paths; when undefined the environment is read through `loadConfig()`.
 * @returns the two paths and the source of ffmpeg (`env` when it came from config/environment).
 * @throws Error when a configured path is not an executable file, or when no binary can be found
 *   (message says what to install or which variable to set).
 */
export function resolveFfmpeg(cfg?: FfmpegPathConfig): FfmpegBinaries {
  const c = cfg ?? (() => {
    const { ffmpegPath, ffprobePath } = loadConfig();
    return { ffmpegPath, ffprobePath };
  })();

  let ffmpeg: string | undefined;
  let source: FfmpegSource;
  if (c.ffmpegPath) {
    if (!isExecutableFile(c.ffmpegPath)) {
      throw new Error(`FFMPEG_PATH=${c.ffmpegPath} is not an executable file`);
    }
    ffmpeg = c.ffmpegPath;
    source = 'env';
  } else if ((ffmpeg = optionalPackageBinary('ffmpeg-static'))) {
    source = 'ffmpeg-static';
  } else if ((ffmpeg = findOnPath('ffmpeg'))) {
    source = 'system';
  } else {
    throw new Error(
      'ffmpeg not found: set FFMPEG_PATH, install the ffmpeg-static npm package, or install ffmpeg on PATH (apt-get install ffmpeg)',
    );
  }

  let ffprobe: string | undefined;
  if (c.ffprobePath) {
    if (!isExecutableFile(c.ffprobePath)) {
      throw new Error(`FFPROBE_PATH=${c.ffprobePath} is not an executable file`);
    }
    ffprobe = c.ffprobePath;
  } else {
    const sibling = path.join(path.dirname(ffmpeg), path.basename(ffmpeg).replace(/ffmpeg/i, 'ffprobe'));
    ffprobe =
      optionalPackageBinary('ffprobe-static') ??
      (sibling !== ffmpeg && isExecutableFile(sibling) ? sibling : undefined) ??
      findOnPath('ffprobe');
  }
  if (!ffprobe) {
    throw new Error(
      `ffprobe not found (ffmpeg is ${ffmpeg}): set FFPROBE_PATH, install the ffprobe-static npm package, or install ffmpeg on PATH`,
    );
  }
  return { ffmpeg, ffprobe, source };
}

let cachedDefault: FfmpegBinaries | undefined;

/** {@link resolveFfmpeg} with the environment's settings, resolved once per process. */
export function defaultFfmpeg(): FfmpegBinaries {
  cachedDefault ??= resolveFfmpeg();
  return cachedDefault;
}

/** A failed ffmpeg/ffprobe run: non-zero exit, death by signal, or failure to start. */
export class ToolError extends Error {
  /**
   * @param tool the binary that was run; @param exitCode its exit status (null when killed by a signal or
   * never started); @param signal the signal that killed it, if any; @param stderrTail last lines of stderr.
   */
  constructor(
    readonly tool: string,
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly stderrTail: string,
    message?: string,
    options?: { cause?: unknown },
  ) {
    super(
      message ??
        `${path.basename(tool)} ${exitCode !== null ? `exited with code ${exitCode}` : `was killed by ${signal}`}` +
          (stderrTail ? `: ${stderrTail}` : ''),
      options,
    );
    this.name = 'ToolError';
  }
}

/** How a started tool ended. */
export interface ToolExit {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Last lines of stderr (at most {@link StartToolOptions.tailLines} lines, 4 KiB). */
  stderrTail: string;
}

/** Options of {@link startTool}. */
export interface StartToolOptions {
  /** Aborting kills the child (SIGTERM, SIGKILL after `killGraceMs`); `done` then rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Called with each stderr line (split on `\n` and `\r`, so ffmpeg's `\r` status lines are lines too). */
  onStderrLine?: (line: string) => void;
  /** `pipe` (default) exposes stdout as a stream; `ignore` discards it. */
  stdout?: 'pipe' | 'ignore';
  /** Milliseconds between SIGTERM and SIGKILL when killing. Default 1000. */
  killGraceMs?: number;
  /** Number of stderr lines kept for error messages. Default 20. */
  tailLines?: number;
}

/** A running tool started by {@link startTool}. */
export interface ToolProcess {
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  /** The child's stdout (an empty ended stream when `stdout: 'ignore'`). Reading it applies back-pressure. */
  readonly stdout: Readable;
  /**
   * Settles once the child has exited and its stdio closed. Resolves with the exit status (any status,
   * including non-zero); rejects with `signal.reason` when aborted, or a {@link ToolError} when it could
   * not start (e.g. ENOENT).
   */
  readonly done: Promise<ToolExit>;
  /** True once the child has exited. */
  readonly exited: boolean;
  /** Kills the child (SIGTERM, then SIGKILL after the grace period); resolves once it has exited. */
  kill(): Promise<void>;
  /** Current stderr tail. */
  stderrTail(): string;
}

const MAX_TAIL_CHARS = 4096;

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
}

/**
 * Starts `bin args` with stdin ignored, stderr collected and stdout piped (or ignored).
 * See {@link ToolProcess} for the lifecycle. If `opts.signal` is already aborted the child is not started
 * and `done` rejects with its reason.
 */
export function startTool(bin: string, args: readonly string[], opts: StartToolOptions = {}): ToolProcess {
  const { signal, onStderrLine, killGraceMs = 1000, tailLines = 20 } = opts;
  const child = spawn(bin, args, {
    stdio: ['ignore', opts.stdout === 'ignore' ? 'ignore' : 'pipe', 'pipe'],
    windowsHide: true,
  });

  const tail: string[] = [];
  let partial = '';
  const pushLine = (line: string) => {
    if (!line) return;
    tail.push(line);
    if (tail.length > tailLines) tail.shift();
    onStderrLine?.(line);
  };
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    const parts = (partial + chunk).split(/\r\n|\r|\n/);
    partial = parts.pop() ?? '';
    if (partial.length > 65536) partial = partial.slice(-65536);
    for (const p of parts) pushLine(p);
  });
  const stderrTail = () => {
    const s = [...tail, partial].filter(Boolean).join('\n');
    return s.length > MAX_TAIL_CHARS ? s.slice(-MAX_TAIL_CHARS) : s;
  };

  let exited = false;
  let killTimer: NodeJS.Timeout | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      if (killTimer) clearTimeout(killTimer);
      resolve();
    });
    child.once('error', () => {
      // spawn failure: there is no process to wait for
      if (child.pid === undefined) {
        exited = true;
        resolve();
      }
    });
  });

  const kill = async (): Promise<void> => {
    if (!exited && child.pid !== undefined) {
      // Closing our end of the pipes makes a blocked write fail fast (EPIPE) instead of waiting for SIGKILL.
      child.stdout?.destroy();
      child.kill('SIGTERM');
      killTimer ??= setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, killGraceMs);
      killTimer.unref?.();
    }
    await exitPromise;
  };

  let aborted = false;
  const onAbort = () => {
    aborted = true;
    void kill();
  };
  if (signal) {
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  }

  const done = new Promise<ToolExit>((resolve, reject) => {
    let settled = false;
    child.once('error', (err) => {
      if (settled || child.pid !== undefined) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (aborted && signal) reject(abortReason(signal));
      else reject(new ToolError(bin, null, null, '', `cannot run ${bin}: ${(err as Error).message}`, { cause: err }));
    });
    child.once('close', (exitCode, sig) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      pushLine(partial);
      partial = '';
      if (aborted && signal) reject(abortReason(signal));
      else resolve({ exitCode, signal: sig, stderrTail: stderrTail() });
    });
  });
  // Callers that only use `stdout` must not get an unhandled rejection from `done`.
  done.catch(() => undefined);

  // stdout ignored: hand out an already-ended stream
  const stdout: Readable = child.stdout ?? Readable.from([]);

  return {
    child,
    pid: child.pid,
    stdout,
    done,
    get exited() {
      return exited;
    },
    kill,
    stderrTail,
  };
}

/** Options of {@link runTool}: those of {@link startTool} plus stdout handling. */
export interface RunToolOptions extends Omit<StartToolOptions, 'stdout'> {
  /** Called with each stdout line (split on `\n`); stdout is then not collected. */
  onStdoutLine?: (line: string) => void;
  /** Collect stdout into the result (default true unless `onStdoutLine` is given). Limit 256 MiB. */
  collectStdout?: boolean;
}

/** Result of a successful {@link runTool}. */
export interface RunToolResult {
  /** Collected stdout (utf8), or '' when not collected. */
  stdout: string;
  stderrTail: string;
}

/**
 * Runs `bin args` to completion.
 * @returns stdout and the stderr tail when the exit status is 0.
 * @throws ToolError on a non-zero exit, death by signal, or failure to start;
 *   `signal.reason` when aborted (the child is gone by then).
 */
export async function runTool(bin: string, args: readonly string[], opts: RunToolOptions = {}): Promise<RunToolResult> {
  const collect = opts.collectStdout ?? !opts.onStdoutLine;
  const wantStdout = collect || !!opts.onStdoutLine;
  const proc = startTool(bin, args, { ...opts, stdout: wantStdout ? 'pipe' : 'ignore' });
  const chunks: string[] = [];
  let size = 0;
  let partial = '';
  if (wantStdout) {
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      if (collect) {
        size += chunk.length;
        if (size > 256 * 1024 * 1024) {
          void proc.kill();
          return;
        }
        chunks.push(chunk);
      }
      if (opts.onStdoutLine) {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop() ?? '';
        for (const p of parts) opts.onStdoutLine(p);
      }
    });
  }
  const exit = await proc.done;
  if (opts.onStdoutLine && partial) opts.onStdoutLine(partial);
  if (exit.exitCode !== 0) throw new ToolError(bin, exit.exitCode, exit.signal, exit.stderrTail);
  return { stdout: chunks.join(''), stderrTail: exit.stderrTail };
}

const fpsModeCache = new Map<string, Promise<string[]>>();

/**
 * The output option that passes every decoded frame through with its own timestamp (no duplication or
 * dropping): `-fps_mode passthrough` on ffmpeg ≥ 5.1 (where `-fps_mode` was introduced), `-vsync
 * passthrough` before that. The version is read once per binary from `ffmpeg -version`; unparseable
 * versions (git builds such as `N-112233-g…`) are assumed new.
 */
export function passthroughFpsArgs(ffmpeg: string): Promise<string[]> {
  let p = fpsModeCache.get(ffmpeg);
  if (!p) {
    p = runTool(ffmpeg, ['-hide_banner', '-version'])
      .then(({ stdout }) => {
        const m = /ffmpeg version n?(\d+)\.(\d+)/.exec(stdout);
        const old = m ? Number(m[1]) < 5 || (Number(m[1]) === 5 && Number(m[2]) < 1) : false;
        return old ? ['-vsync', 'passthrough'] : ['-fps_mode', 'passthrough'];
      })
      .catch(() => ['-fps_mode', 'passthrough']);
    fpsModeCache.set(ffmpeg, p);
  }
  return p;
}

/**
 * The demuxers (ffmpeg format names, as `ffmpeg -demuxers` lists them) that may open a video source: video
 * containers and elementary streams, the common audio containers (so an audio-only file is reported as
 * such), and the single-image `*_pipe` demuxers (so a picture is reported as a still image).
 *
 * Left out on purpose are the formats whose files make ffmpeg open other files or URLs: playlists and
 * manifests (`hls`, `dash`, `imf`), scripts (`concat`), session descriptions (`sdp`, `rtsp`) and image
 * sequences (`image2`, which reads numbered or globbed sibling files). With them a tenant's upload could
 * name any file the worker can read with a media extension (another tenant's video, the emulator's
 * objects) and have it imported as its own. Within these demuxers `mov` does not follow external data
 * references (its `enable_drefs` option is off by default, https://ffmpeg.org/ffmpeg-formats.html#mov_002c-mp4_002c-3gp_002c-quicktime).
 */
export const SOURCE_DEMUXERS: readonly string[] = [
  // video containers and elementary streams
  'mov', 'matroska', 'avi', 'mpegts', 'mpeg', 'mpegvideo', 'm4v', 'h264', 'hevc', 'vc1', 'av1', 'obu', 'ivf',
  'flv', 'live_flv', 'asf', 'ogg', 'mxf', 'nut', 'dv', 'gif', 'mjpeg', 'yuv4mpegpipe', 'wtv', 'rm', 'gxf',
  // audio containers
  'wav', 'w64', 'mp3', 'aac', 'flac', 'ac3', 'eac3',
  // single images
  'png_pipe', 'jpeg_pipe', 'bmp_pipe', 'gif_pipe', 'webp_pipe', 'tiff_pipe', 'j2k_pipe', 'jpegls_pipe',
  'jpegxl_pipe', 'qoi_pipe', 'ppm_pipe', 'pgm_pipe', 'pgmyuv_pipe', 'pbm_pipe', 'pam_pipe', 'psd_pipe',
  'sgi_pipe', 'dpx_pipe', 'exr_pipe', 'svg_pipe', 'xbm_pipe', 'xwd_pipe', 'pcx_pipe',
];

/**
 * The input options and `-i file` for ffmpeg or ffprobe reading a video source (or a file made from one):
 * only the `file` protocol (`-protocol_whitelist`) and only {@link SOURCE_DEMUXERS} (`-format_whitelist`),
 * so the file cannot make ffmpeg read anything but itself. ffmpeg still probes the format from the content;
 * a format outside the list fails before its demuxer reads a byte past the probe, with stderr
 * `[{format} @ 0x…] Format not on whitelist '…'` (see {@link refusedFormat}). Both options are AVFormatContext
 * options (https://ffmpeg.org/ffmpeg-formats.html#Format-Options).
 * @param file an absolute path, or one that does not start with a protocol name and `:`.
 */
export function sourceInputArgs(file: string): string[] {
  return ['-protocol_whitelist', 'file', '-format_whitelist', SOURCE_DEMUXERS.join(','), '-i', file];
}

/**
 * The format ffmpeg detected and refused because it is not in {@link SOURCE_DEMUXERS}, read from its stderr
 * (`[hls @ 0x55d0a5e56280] Format not on whitelist 'mov,…'`), or undefined when stderr has no such line.
 */
export function refusedFormat(stderr: string): string | undefined {
  const m = /^\[([^\] ]+) @ 0x[0-9a-f]+\] Format not on whitelist/m.exec(stderr);
  return m ? m[1] : undefined;
}

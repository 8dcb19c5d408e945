/**
 * Frame sampling (step 3, `extractFramesForDetections`): every `stride`-th decoded frame of a video as RGB24,
 * upright, with its true frame index.
 */
import { badMedia, invalidInput } from '../../errors';
import { defaultFfmpeg, passthroughFpsArgs, sourceInputArgs, startTool } from './ffmpeg';
import { throwIfAborted, type MediaOptions } from './probe';


/** One decoded frame handed out by {@link extractFrames}. */
export interface VideoFrame {
  /** 0-based index of the frame among all decoded frames of the source stream. */
  frameId: number;
  /** Display width in pixels (rotation applied). */
  width: number;
  /** Display height in pixels (rotation applied). */
  height: number;
  /** Packed RGB24 pixels, row-major, `width * height * 3` bytes. */
  rgb: Buffer;
}

/** Options of {@link extractFrames}. */
export interface ExtractOptions extends MediaOptions {
  /** Keep frames 0, stride, 2·stride, …; integer ≥ 1. */
  stride: number;
  /** Stop after this many kept frames (integer ≥ 1); default all. */
  maxFrames?: number;
  /** Index of the video stream in the file (from {@link VideoMetadata.videoStreamIndex}); default `0:V:0`. */
  streamIndex?: number;
}

/** Incremental parser of a concatenation of binary PPM (P6, maxval < 256) images. */
class PpmStreamParser {
  private header = Buffer.alloc(0);
  private frame: Buffer | null = null;
  private filled = 0;
  private width = 0;
  private height = 0;

  /** Feeds a chunk; returns the frames completed by it. @throws Error on a malformed header. */
  push(chunk: Buffer): Array<{ width: number; height: number; rgb: Buffer }> {
    const out: Array<{ width: number; height: number; rgb: Buffer }> = [];
    let off = 0;
    while (off < chunk.length) {
      if (!this.frame) {
        // Header: "P6" <ws> width <ws> height <ws> maxval <one ws byte>; ffmpeg writes no comments.
        const take = Math.min(chunk.length - off, 64 - this.header.length);
        const head = Buffer.concat([this.header, chunk.subarray(off, off + take)]);
        const m = /^P6\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(head.toString('latin1'));
        if (!m) {
          if (head.length >= 64 || (head.length >= 2 && head.toString('latin1', 0, 2) !== 'P6')) {
            throw new Error(`malformed PPM header from ffmpeg: ${JSON.stringify(head.toString('latin1', 0, 20))}`);
          }
          this.header = head;
          off += take;
          continue;
        }
        const used = m[0].length - this.header.length; // bytes of this chunk that belonged to the header
        this.width = Number(m[1]);
        this.height = Number(m[2]);
        if (Number(m[3]) > 255) throw new Error(`unsupported PPM maxval ${m[3]}`);
        this.header = Buffer.alloc(0);
        this.frame = Buffer.allocUnsafe(this.width * this.height * 3);
        this.filled = 0;
        off += used;
        continue;
      }
      const n = Math.min(this.frame.length - this.filled, chunk.length - off);
      chunk.copy(this.frame, this.filled, off, off + n);
      this.filled += n;
      off += n;
      if (this.filled === this.frame.length) {
        out.push({ width: this.width, height: this.height, rgb: this.frame });
        this.frame = null;
      }
    }
    return out;
  }

  /** True when a frame or header is partially received. */
  get incomplete(): boolean {
    return this.frame !== null || this.header.length > 0;
  }
}

/**
 * Decodes a video and yields every `stride`-th frame as RGB24, upright.
 *
 * Runs `ffmpeg -map 0:N -vf select='not(mod(n\,stride))' -fps_mode passthrough -f image2pipe -c:v ppm`:
 * the select filter's `n` counts every decoded frame (edit lists applied, nothing dropped or duplicated
 * thanks to passthrough), so the k-th yielded frame is source frame k·stride also for variable frame
 * rate input. Frames are read from the pipe one at a time (back-pressure: ffmpeg blocks while the
 * consumer is busy; memory stays at a few frames). Frame size comes from each PPM header, so it always
 * matches the autorotated output. Leaving the loop early, or aborting, kills ffmpeg.
 *
 * @throws invalidInput for a bad `stride`/`maxFrames`; badMedia (with ffmpeg's stderr tail) when ffmpeg
 *   exits non-zero or its output is cut short; `signal.reason` when aborted; ToolError when ffmpeg
 *   cannot be started.
 */
export async function* extractFrames(file: string, opts: ExtractOptions): AsyncGenerator<VideoFrame> {
  const { stride, maxFrames, signal } = opts;
  if (!Number.isInteger(stride) || stride < 1) throw invalidInput('stride', `must be an integer >= 1, got ${stride}`);
  if (maxFrames !== undefined && (!Number.isInteger(maxFrames) || maxFrames < 1)) {
    throw invalidInput('maxFrames', `must be an integer >= 1, got ${maxFrames}`);
  }
  throwIfAborted(signal);
  const bins = opts.bins ?? defaultFfmpeg();
  const map = opts.streamIndex === undefined ? '0:V:0' : `0:${opts.streamIndex}`;
  const args = ['-nostdin', '-hide_banner', '-nostats', '-v', 'error', ...sourceInputArgs(file), '-map', map];
  if (stride > 1) args.push('-vf', `select=not(mod(n\\,${stride}))`);
  args.push(...(await passthroughFpsArgs(bins.ffmpeg)));
  if (maxFrames !== undefined) args.push('-frames:v', String(maxFrames));
  args.push('-an', '-sn', '-dn', '-f', 'image2pipe', '-c:v', 'ppm', '-pix_fmt', 'rgb24', 'pipe:1');

  const proc = startTool(bins.ffmpeg, args, { signal });
  const parser = new PpmStreamParser();
  let index = 0;
  try {
    for await (const chunk of proc.stdout as AsyncIterable<Buffer>) {
      for (const f of parser.push(chunk)) {
        throwIfAborted(signal); // frames already parsed from the last chunk are not handed out after an abort
        yield { frameId: index * stride, width: f.width, height: f.height, rgb: f.rgb };
        index++;
      }
    }
    const exit = await proc.done; // rejects with signal.reason when aborted
    if (exit.exitCode !== 0) {
      throw badMedia(file, `frame extraction failed (ffmpeg exit ${exit.exitCode ?? exit.signal}): ${exit.stderrTail || 'no message'}`);
    }
    if (parser.incomplete) throw badMedia(file, `frame extraction output was cut short: ${exit.stderrTail || 'no message'}`);
  } catch (err) {
    throwIfAborted(signal);
    throw err;
  } finally {
    if (!proc.exited) await proc.kill();
  }
}

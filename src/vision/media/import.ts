/**
 * Import of a source video to an MP4 whose video decodes to exactly the source's frames (step 1,
 * `importVideo`).
 */
import { randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { badMedia, ErrorType, PipelineError } from '../../errors';
import { defaultFfmpeg, passthroughFpsArgs, runTool, sourceInputArgs, ToolError, type FfmpegBinaries } from './ffmpeg';
import { countDecodedFrames, lastErrorLine, throwIfAborted, type MediaOptions, type VideoMetadata } from './probe';

/** Codecs that are stored in MP4 as they are by {@link importToMp4}. */
const MP4_COPY_VIDEO = new Set(['h264', 'hevc', 'av1']);
/** Audio codecs copied into the MP4; any other audio is dropped (the pipeline never uses audio). */
const MP4_COPY_AUDIO = new Set(['aac', 'mp3']);

/** Options of {@link importToMp4}. */
export interface ImportOptions extends MediaOptions {
  /**
   * Called with the number of video frames written so far (from `ffmpeg -progress`; in copy mode packets,
   * clamped to `meta.frameCount`). Called again from 0 if a failed copy falls back to transcoding.
   */
  onProgress?: (framesDone: number) => void;
}

/** ffmpeg messages that point at the output side (or the machine), not at the input file. */
const OUTPUT_FAULT = /No space left on device|Read-only file system|Disk quota exceeded/;

async function removeQuietly(file: string): Promise<void> {
  await fsp.rm(file, { force: true }).catch(() => undefined);
}

/**
 * Writes `src` as an MP4 at `dest` whose video decodes to exactly the source's frames.
 *
 * - `copy` mode when the codec can live in MP4 (h264, hevc, av1): stream copy, which keeps the edit list
 *   (so an edit-listed source still decodes to `meta.frameCount`) and the display matrix (rotation stays
 *   metadata; ffmpeg-based readers autorotate). HEVC is tagged `hvc1`.
 * - `transcode` mode otherwise, or when the copy fails or does not verify: H.264 (libx264 `-preset veryfast
 *   -crf 20`, yuv420p) with `-fps_mode passthrough` so every frame is kept with its own timestamp
 *   (`-enc_time_base -1` keeps the source time base so VFR timestamps do not collide). Rotation is
 *   applied to the pixels (ffmpeg autorotate) and not written as metadata, so the output is upright. An
 *   odd display width/height (illegal for yuv420p) is padded by one black column/row at the right/bottom,
 *   so source pixel coordinates stay valid.
 * - Only the chosen video stream is written, plus the first audio stream when it is AAC or MP3 (copied);
 *   other audio, subtitles and data are dropped. `-movflags +faststart` puts the index first.
 *
 * Output goes to a temporary file next to `dest` that is renamed onto `dest` only after verification;
 * on any failure or abort the temporary file is removed and ffmpeg is killed.
 *
 * @param meta the result of {@link probeVideo} on `src`.
 * @returns the mode actually used.
 * @throws badMedia when ffmpeg fails on the input, or when the output's decoded frame count differs from
 *   `meta.frameCount`; `signal.reason` when aborted; ToolError (retryable) when ffmpeg cannot be started
 *   or fails writing the output (message mentions the temporary file, or disk full / read-only).
 */
export async function importToMp4(
  src: string,
  dest: string,
  meta: VideoMetadata,
  opts: ImportOptions = {},
): Promise<{ mode: 'copy' | 'transcode' }> {
  throwIfAborted(opts.signal);
  const bins = opts.bins ?? defaultFfmpeg();
  if (MP4_COPY_VIDEO.has(meta.codec)) {
    try {
      await importOnce(src, dest, meta, 'copy', bins, opts);
      return { mode: 'copy' };
    } catch (err) {
      throwIfAborted(opts.signal);
      // A copy can fail where a transcode works (e.g. a raw elementary stream without timestamps, or an
      // edit list the MP4 muxer cannot reproduce): fall through to transcoding.
      if (!(err instanceof ToolError) && !(err instanceof PipelineError && err.type === ErrorType.BadMedia)) throw err;
    }
  }
  await importOnce(src, dest, meta, 'transcode', bins, opts);
  return { mode: 'transcode' };
}

async function importOnce(
  src: string,
  dest: string,
  meta: VideoMetadata,
  mode: 'copy' | 'transcode',
  bins: FfmpegBinaries,
  opts: ImportOptions,
): Promise<void> {
  await fsp.mkdir(path.dirname(dest), { recursive: true });
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.${process.pid}.${randomUUID().slice(0, 8)}.part`);
  const args = ['-nostdin', '-hide_banner', '-nostats', '-v', 'error', '-y', ...sourceInputArgs(src), '-map', `0:${meta.videoStreamIndex}`];
  if (meta.audioStreamIndex !== null && meta.audioCodec && MP4_COPY_AUDIO.has(meta.audioCodec)) {
    args.push('-map', `0:${meta.audioStreamIndex}`, '-c:a', 'copy');
  }
  if (mode === 'copy') {
    args.push('-c:v', 'copy');
    if (meta.codec === 'hevc') args.push('-tag:v', 'hvc1');
  } else {
    if (meta.width % 2 || meta.height % 2) args.push('-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2');
    args.push(
      '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20', '-pix_fmt', 'yuv420p',
      ...(await passthroughFpsArgs(bins.ffmpeg)), '-enc_time_base', '-1',
    );
  }
  args.push('-map_chapters', '-1', '-max_muxing_queue_size', '4096', '-movflags', '+faststart', '-progress', 'pipe:1', '-f', 'mp4', tmp);

  try {
    try {
      await runTool(bins.ffmpeg, args, {
        signal: opts.signal,
        onStdoutLine: (line) => {
          const m = /^frame=(\d+)/.exec(line);
          // In copy mode ffmpeg counts packets, which include those an edit list hides: clamp.
          if (m && opts.onProgress) opts.onProgress(Math.min(Number(m[1]), meta.frameCount));
        },
      });
    } catch (err) {
      // Failures writing the output (disk full, permissions) are not the input's fault: keep them retryable.
      const outputFault = err instanceof ToolError && (err.stderrTail.includes(tmp) || OUTPUT_FAULT.test(err.stderrTail));
      if (err instanceof ToolError && err.exitCode !== null && !outputFault) {
        throw badMedia(src, `import (${mode}) failed: ${lastErrorLine(err.stderrTail, src)}`, err);
      }
      throw err;
    }
    const check = await countDecodedFrames(tmp, { signal: opts.signal, bins });
    if (check.frameCount !== meta.frameCount) {
      throw badMedia(src, `import (${mode}) changed the frame count: source decodes to ${meta.frameCount} frames, MP4 to ${check.frameCount}`);
    }
    await fsp.rename(tmp, dest);
  } catch (err) {
    await removeQuietly(tmp);
    throw err;
  }
}

/**
 * Video probing, import to MP4 and frame extraction with real ffmpeg/ffprobe (SPEC sections 4, 8, 10).
 *
 * Conventions used throughout:
 * - The video stream is chosen once by {@link probeVideo}: the first video stream that is not an attached
 *   picture (cover art). Its index in the file is `videoStreamIndex`; it is not always 0. Without an
 *   explicit index, ffmpeg commands map `0:V:0`, which selects the same stream (capital `V` skips
 *   attached pictures).
 * - Frame ids are the 0-based index of a frame among all frames the decoder outputs for that stream
 *   (after edit lists are applied), i.e. what `ffprobe -count_frames` counts. Header frame counts and
 *   `duration × fps` are never used for this (SPEC section 10).
 * - Frames are always handed out upright: ffmpeg's default autorotation applies the display matrix, so
 *   extracted frames have the display size (`width × height` of {@link VideoMetadata}).
 * - Every ffmpeg run passes frames through unchanged in number (`-fps_mode passthrough`), so variable
 *   frame rate input is neither duplicated nor dropped.
 */
import { randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { badMedia, ErrorType, invalidInput, PipelineError } from '../errors';
import { defaultFfmpeg, passthroughFpsArgs, refusedFormat, runTool, sourceInputArgs, SOURCE_DEMUXERS, startTool, ToolError, type FfmpegBinaries } from './ffmpeg';

/** What {@link probeVideo} reports about a video file (written to `metadata.json`, SPEC section 5). */
export interface VideoMetadata {
  /** Seconds: the video stream's duration (edit lists applied), else the container's, else frameCount / fps. */
  durationSec: number;
  /** Average frames per second, from the stream's `avg_frame_rate` (fallback `r_frame_rate`, then frameCount / durationSec). */
  fps: number;
  /** Display width in pixels, after rotation (coded width and height are swapped for ±90°). */
  width: number;
  /** Display height in pixels, after rotation. */
  height: number;
  /** Width of the frames as stored in the stream, before rotation (ffprobe `width`). */
  codedWidth: number;
  /** Height of the frames as stored in the stream, before rotation (ffprobe `height`). */
  codedHeight: number;
  /**
   * Degrees in [0, 360) by which the display rotates the stored frames counter-clockwise: ffprobe's
   * display-matrix `rotation` (libavutil `av_display_rotation_get`), or the negated legacy `rotate` tag
   * (which counts clockwise) when there is no display matrix. 0 when neither is present.
   */
  rotation: number;
  /** Video codec name as ffprobe spells it (`h264`, `msmpeg4v3`, …). */
  codec: string;
  /** Pixel format of the stream (`yuv420p`, …); '' when unknown. */
  pixelFormat: string;
  /** Index of the chosen video stream in the file (not always 0). */
  videoStreamIndex: number;
  /** True when the file has at least one audio stream. */
  hasAudio: boolean;
  /** Index of the first audio stream, or null. */
  audioStreamIndex: number | null;
  /** Codec of the first audio stream, or null. */
  audioCodec: string | null;
  /** True number of decodable frames of the video stream, counted by decoding it completely. */
  frameCount: number;
  /** Frame count the container header claims (`nb_frames`), or null; may disagree with `frameCount`. */
  headerFrameCount: number | null;
  /**
   * True when the video stream's timestamps are not uniform, i.e. not a constant frame interval up to the
   * rounding of the time base ({@link isVariableFrameRate}); then a frame's time is not `frame_id / fps`.
   * `frame_id` is the decoded frame's index either way.
   */
  variableFrameRate: boolean;
  /** ffprobe `format_name` (`avi`, `mov,mp4,m4a,3gp,3g2,mj2`, …). */
  container: string;
  /** File size in bytes. */
  sizeBytes: number;
}

/** Common options: cancellation and an explicit ffmpeg/ffprobe pair (default {@link defaultFfmpeg}). */
export interface MediaOptions {
  signal?: AbortSignal;
  bins?: FfmpegBinaries;
}

/** Options of {@link probeVideo}. */
export interface ProbeOptions extends MediaOptions {
  /**
   * Largest accepted frame, width × height in pixels (`MAX_FRAME_PIXELS`); checked from ffprobe's stream
   * info before anything is decoded. Default: no limit.
   */
  maxFramePixels?: number;
}

/** Result of decoding a video stream completely ({@link countDecodedFrames}). */
export interface DecodeReport {
  /** Frames the decoder output (edit lists applied). */
  frameCount: number;
  /** Packets the demuxer read for the stream (includes packets an edit list discards). */
  packetCount: number | null;
  /** Frames the decoder flagged as corrupt (ffmpeg: "corrupt decoded frame in stream N"). */
  corruptFrames: number;
  /** Packets the decoder rejected ("Error while decoding stream") plus packets the demuxer flagged corrupt. */
  decodeErrors: number;
  /** Up to 5 distinct error/warning lines from ffmpeg, for error messages. */
  sampleErrors: string[];
}

/** Codecs that are stored in MP4 as they are by {@link importToMp4}. */
const MP4_COPY_VIDEO = new Set(['h264', 'hevc', 'av1']);
/** Audio codecs copied into the MP4; any other audio is dropped (the pipeline never uses audio). */
const MP4_COPY_AUDIO = new Set(['aac', 'mp3']);
/** Codecs of still-image formats: a file with one frame of these is a picture, not a video. */
const STILL_IMAGE_CODECS = new Set([
  'mjpeg', 'png', 'apng', 'bmp', 'tiff', 'webp', 'gif', 'jpeg2000', 'jpegls', 'targa', 'ppm', 'pgm', 'pgmyuv',
  'pbm', 'pam', 'sgi', 'xbm', 'xwd', 'pcx', 'qoi', 'dpx', 'exr', 'psd', 'svg', 'hdr', 'jpegxl', 'avif',
]);

/**
 * Damage thresholds of {@link probeVideo} (chosen here, not from a standard): a video is rejected when
 * more than max(2, 2 % of its frames) are corrupt or undecodable, or when it shows any damage and decodes
 * to less than half of the frames its header claims (a truncated file).
 */
const MAX_DAMAGED_FRACTION = 0.02;
const MAX_DAMAGED_ABSOLUTE = 2;
const TRUNCATED_FRACTION = 0.5;

interface ProbeStream {
  index: number;
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  pix_fmt?: string;
  r_frame_rate?: string;
  avg_frame_rate?: string;
  time_base?: string;
  duration?: string;
  nb_frames?: string;
  disposition?: { attached_pic?: number };
  tags?: Record<string, string>;
  side_data_list?: Array<{ side_data_type?: string; rotation?: number }>;
}

interface ProbeJson {
  streams?: ProbeStream[];
  format?: { format_name?: string; duration?: string };
}

function parseRational(s: string | undefined): number {
  if (!s) return 0;
  const [n, d] = s.split('/').map(Number);
  if (d === undefined) return Number.isFinite(n) ? n : 0;
  return d && Number.isFinite(n) && Number.isFinite(d) ? n / d : 0;
}

function positive(s: string | undefined): number | undefined {
  const v = s === undefined ? NaN : Number(s);
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

/** Last meaningful line of ffmpeg/ffprobe stderr, without the `path: ` prefix ffmpeg puts before errors. */
function lastErrorLine(stderrTail: string, file: string): string {
  const lines = stderrTail.split('\n').map((l) => l.trim()).filter(Boolean);
  const last = lines[lines.length - 1] ?? 'unknown error';
  return last.startsWith(`${file}: `) ? last.slice(file.length + 2) : last;
}

/**
 * {@link lastErrorLine} followed by the distinct messages of the earlier lines that carry a component
 * prefix (`[mov,mp4,... @ 0x...] moov atom not found`), which often say why: e.g. `Invalid data found when
 * processing input; moov atom not found` for an MP4 cut before its index.
 */
function errorSummary(stderrTail: string, file: string): string {
  const last = lastErrorLine(stderrTail, file);
  const causes = stderrTail
    .split('\n')
    .map((l) => /^\[[^\]]+ @ 0x[0-9a-f]+\]\s*(.+)$/.exec(l.trim())?.[1]?.trim())
    .filter((m): m is string => !!m && m !== last);
  return [last, ...new Set(causes)].slice(0, 3).join('; ');
}

async function statMedia(file: string): Promise<number> {
  let st;
  try {
    st = await fsp.stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw badMedia(file, 'file does not exist', err);
    throw badMedia(file, `cannot read file (${code ?? (err as Error).message})`, err);
  }
  if (!st.isFile()) throw badMedia(file, 'not a regular file');
  if (st.size === 0) throw badMedia(file, 'empty file (0 bytes)');
  return st.size;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
}

/**
 * Decodes one video stream completely (`ffmpeg -map 0:N -f null -`) and counts what came out.
 *
 * @param file a local media file.
 * @param opts.streamIndex the stream's index in the file; default the first non-cover-art video stream.
 * @returns counts of decoded frames, packets and damage; never judges the file (see {@link probeVideo}).
 * @throws badMedia when ffmpeg fails (exit ≠ 0) on the file, with the last stderr line;
 *   `signal.reason` when aborted; ToolError when ffmpeg cannot be started.
 */
export async function countDecodedFrames(
  file: string,
  opts: MediaOptions & { streamIndex?: number } = {},
): Promise<DecodeReport> {
  const bins = opts.bins ?? defaultFfmpeg();
  const map = opts.streamIndex === undefined ? '0:V:0' : `0:${opts.streamIndex}`;
  const fps = await passthroughFpsArgs(bins.ffmpeg);
  let verboseFrames: number | null = null;
  let packetCount: number | null = null;
  let progressFrames = 0;
  let corruptFrames = 0;
  let decodeErrors = 0;
  let reportedErrors: number | null = null;
  const samples = new Set<string>();
  const sample = (line: string) => {
    const clean = line.replace(/ @ 0x[0-9a-f]+\]/, ']');
    if (samples.size < 5) samples.add(clean.startsWith(`${file}: `) ? clean.slice(file.length + 2) : clean);
  };
  try {
    await runTool(
      bins.ffmpeg,
      ['-nostdin', '-hide_banner', '-nostats', '-v', 'verbose', ...sourceInputArgs(file), '-map', map, ...fps, '-f', 'null', '-progress', 'pipe:1', '-'],
      {
        signal: opts.signal,
        onStdoutLine: (line) => {
          const m = /^frame=(\d+)/.exec(line);
          if (m) progressFrames = Number(m[1]);
        },
        onStderrLine: (line) => {
          // ffmpeg 5.1: "Input stream #0:0 (video): 772 packets read (2573785 bytes); 630 frames decoded;"
          // ffmpeg ≥ 7 appends "; N decode errors".
          const stats = /Input stream #\d+:\d+ \(video\): (\d+) packets read .*?; (\d+) frames decoded(?:; (\d+) decode errors)?/.exec(line);
          if (stats) {
            packetCount = Number(stats[1]);
            verboseFrames = Number(stats[2]);
            if (stats[3] !== undefined) reportedErrors = Number(stats[3]);
            return;
          }
          if (/corrupt decoded frame in stream/.test(line)) {
            corruptFrames++;
            sample(line);
          } else if (/Error while decoding stream|corrupt input packet/.test(line)) {
            // ("corrupt input packet" is ffmpeg's generic line for a packet the demuxer flagged; the demuxer's
            // own message, e.g. avi's "Packet corrupt", is only sampled so the packet is not counted twice)
            decodeErrors++;
            sample(line);
          } else if (/error|damaged|conceal/i.test(line) && !/^\s/.test(line)) {
            sample(line);
          }
        },
      },
    );
  } catch (err) {
    if (err instanceof ToolError && err.exitCode !== null) {
      throw badMedia(file, `cannot be decoded: ${lastErrorLine(err.stderrTail, file)}`, err);
    }
    throw err;
  }
  return {
    frameCount: verboseFrames ?? progressFrames,
    packetCount,
    corruptFrames,
    decodeErrors: Math.max(decodeErrors, reportedErrors ?? 0),
    sampleErrors: [...samples],
  };
}

/** Packet timestamps of one stream (pts, else dts) in stream time-base ticks, sorted. */
async function packetTimestamps(file: string, streamIndex: number, bins: FfmpegBinaries, signal?: AbortSignal): Promise<number[]> {
  const ts: number[] = [];
  await runTool(
    bins.ffprobe,
    ['-v', 'error', '-select_streams', String(streamIndex), '-show_entries', 'packet=pts,dts', '-of', 'csv=p=0', ...sourceInputArgs(file)],
    {
      signal,
      onStdoutLine: (line) => {
        const [pts, dts] = line.trim().split(',');
        const v = Number(pts !== 'N/A' && pts !== '' && pts !== undefined ? pts : dts);
        if (Number.isFinite(v)) ts.push(v);
      },
    },
  );
  return ts.sort((a, b) => a - b);
}

const gcd = (a: number, b: number): number => {
  while (b) [a, b] = [b, a % b];
  return a;
};

/**
 * Whether a stream's timestamps are not uniform: variable frame rate (VFR).
 *
 * A constant-frame-rate stream stores a uniform grid t_i = t_0 + i x T, rounded to its time base. The rule,
 * on the distinct sorted timestamps and their gaps:
 *  1. every gap the same: constant.
 *  2. g = the greatest common divisor of the gaps: the precision the timestamps were written with (1 tick,
 *     or coarser, e.g. 16 ticks when millisecond timestamps were rescaled to a 1/16000 time base).
 *  3. When the nominal interval (from `r_frame_rate`) is a whole multiple of g, the time base represents
 *     the frame rate exactly, so unequal gaps are not rounding: variable. This is the phone clip whose
 *     `r_frame_rate` is 60 in a 1/600 time base, gaps 10 ticks and sometimes 11, average 59.98 fps.
 *  4. Gaps that differ by more than g, or a precision g coarser than half the smallest gap (a dropped
 *     frame in a 1/30000 stream: gaps 1001 and 2002, g = 1001): variable. Rounding a uniform grid gives
 *     only two gaps, floor(T) and ceil(T), and needs a time base finer than the frame interval.
 *  5. Otherwise constant exactly when the points (i, t_i) lie in a strip of vertical width <= g, i.e. some
 *     uniform grid reproduces every timestamp to within g / 2: 29.97 fps in a 1/1000 time base (gaps 33, 33,
 *     34 ms) is constant; gaps of 33 and 34 ms in an uneven order are not.
 * Why not compare `r_frame_rate` with `avg_frame_rate` under a tolerance (the rule before this one, at
 * 1 %): ffprobe documents `r_frame_rate` as a guess ("the lowest framerate with which all timestamps can be
 * represented accurately ... just a guess", libavformat/avformat.h) and `avg_frame_rate` as frames over
 * duration. On constant-rate clips they differ by up to 0.2 % from rounding and the last frame's duration
 * (29.97 fps x264 clips in a 1/1000 time base, 10-100 frames: 0.02-0.2 %, ffmpeg 5.1), on the VFR phone
 * clip above by 0.03 %: no tolerance separates them. ffmpeg's `vfrdet` filter (libavfilter/vf_vfrdet.c)
 * compares consecutive gaps exactly, which counts time-base rounding as VFR; steps 2 and 5 forgive that
 * rounding and nothing more.
 *
 * @param timestamps the stream's packet timestamps (pts, else dts) in ticks of its time base, any order
 * @param nominalTicks the nominal frame interval in ticks, 1 / (r_frame_rate x time_base); undefined when
 *   unknown (step 3 is then skipped)
 * @returns false when there are fewer than 3 distinct timestamps (nothing to tell)
 */
export function isVariableFrameRate(timestamps: readonly number[], nominalTicks?: number): boolean {
  const ts = [...new Set(timestamps.map(Math.round))].sort((a, b) => a - b);
  if (ts.length < 3) return false;
  const gaps = ts.slice(1).map((t, i) => t - ts[i]);
  // (a loop, not Math.min(...gaps): an hour of video has ~10^5 gaps, too many for spread arguments)
  const dmin = gaps.reduce((m, d) => (d < m ? d : m), Infinity);
  const dmax = gaps.reduce((m, d) => (d > m ? d : m), -Infinity);
  if (dmin === dmax) return false;
  const g = gaps.reduce(gcd);
  if (nominalTicks !== undefined && Number.isFinite(nominalTicks) && nominalTicks > 0) {
    const k = nominalTicks / g;
    if (Math.abs(k - Math.round(k)) < 1e-9) return true;
  }
  if (dmax - dmin > g || 2 * g > dmin) return true;
  // Vertical width of the narrowest strip holding (i, t_i): a convex function of the slope s, minimised
  // over s in [dmin, dmax] by ternary search.
  const t0 = ts[0];
  const width = (s: number) => {
    let hi = -Infinity;
    let lo = Infinity;
    for (let i = 0; i < ts.length; i++) {
      const r = ts[i] - t0 - s * i;
      if (r > hi) hi = r;
      if (r < lo) lo = r;
    }
    return hi - lo;
  };
  let a = dmin;
  let b = dmax;
  for (let it = 0; it < 100 && b - a > 1e-12 * dmax; it++) {
    const m1 = a + (b - a) / 3;
    const m2 = b - (b - a) / 3;
    if (width(m1) <= width(m2)) b = m2;
    else a = m1;
  }
  return width((a + b) / 2) > g * (1 + 1e-9);
}

/**
 * Reads a video file's metadata with ffprobe and decodes its video stream once to count frames and
 * check for damage.
 *
 * @param file a local path.
 * @param opts.maxFramePixels frame-size limit in pixels, checked before decoding (default none).
 * @returns {@link VideoMetadata}.
 * @throws PipelineError of type BadMedia (message `file: reason`) when the file is missing, empty, not a
 *   regular file, not a media file ffprobe can read (e.g. an MP4 cut before its `moov` index), has no
 *   video stream (e.g. audio only), is a still image (`image2`/`*_pipe` formats, or one frame of an image
 *   codec), has frames larger than `opts.maxFramePixels`, decodes to zero frames, or is
 *   damaged beyond the thresholds above (more than max(2, 2 %) corrupt/undecodable frames, or damage
 *   plus fewer than half the frames the header claims).
 * @throws PipelineError of type InvalidInput when ffprobe detects a format outside `SOURCE_DEMUXERS`
 *   (src/vision/ffmpeg.ts), e.g. an HLS or DASH playlist or an ffconcat script, which would make ffmpeg read
 *   other files; the message names the format.
 * @throws `signal.reason` when aborted; ToolError when ffprobe/ffmpeg cannot be started.
 */
export async function probeVideo(file: string, opts: ProbeOptions = {}): Promise<VideoMetadata> {
  throwIfAborted(opts.signal);
  const bins = opts.bins ?? defaultFfmpeg();
  const sizeBytes = await statMedia(file);

  let probe: ProbeJson;
  try {
    const { stdout } = await runTool(
      bins.ffprobe,
      ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', ...sourceInputArgs(file)],
      { signal: opts.signal },
    );
    probe = JSON.parse(stdout) as ProbeJson;
  } catch (err) {
    if (err instanceof ToolError && err.exitCode !== null) {
      const format = refusedFormat(err.stderrTail);
      // image2 is picked by an image file extension; it is refused for the sibling files it can read, and the
      // file is a picture either way.
      if (format === 'image2') throw badMedia(file, 'is a still image (image2), not a video', err);
      if (format) throw invalidInput(file, `is a ${format} file, not a video format the pipeline reads (${SOURCE_DEMUXERS.filter((d) => !d.endsWith('_pipe')).join(', ')}); playlists and scripts that make ffmpeg open other files or URLs (HLS, DASH, concat, SDP) are refused`);
      throw badMedia(file, `not a readable media file (${errorSummary(err.stderrTail, file)})`, err);
    }
    if (err instanceof SyntaxError) throw badMedia(file, 'ffprobe returned unparseable output', err);
    throw err;
  }

  const streams = probe.streams ?? [];
  const container = probe.format?.format_name ?? '';
  const video = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  const audio = streams.find((s) => s.codec_type === 'audio');
  if (!video) {
    throw badMedia(file, audio ? 'no video stream (audio only)' : `no video stream (format ${container || 'unknown'})`);
  }
  const codec = video.codec_name ?? 'unknown';
  if (container === 'image2' || container.endsWith('_pipe')) {
    throw badMedia(file, `is a still image (${container}, ${codec}), not a video`);
  }
  const codedWidth = video.width ?? 0;
  const codedHeight = video.height ?? 0;
  if (!(codedWidth > 0 && codedHeight > 0)) throw badMedia(file, `video stream ${video.index} has no frame size`);
  if (opts.maxFramePixels !== undefined && codedWidth * codedHeight > opts.maxFramePixels) {
    throw badMedia(
      file,
      `frame size ${codedWidth}x${codedHeight} (${codedWidth * codedHeight} pixels) is over the limit of ${opts.maxFramePixels} pixels (MAX_FRAME_PIXELS)`,
    );
  }

  const matrix = video.side_data_list?.find((d) => /display\s*matrix/i.test(d.side_data_type ?? '') && typeof d.rotation === 'number');
  const tag = video.tags?.rotate !== undefined ? Number(video.tags.rotate) : undefined;
  const rawRotation = matrix ? Number(matrix.rotation) : tag !== undefined && Number.isFinite(tag) ? -tag : 0;
  const rotation = ((Math.round(rawRotation) % 360) + 360) % 360;
  const quarter = Math.round(rotation / 90) % 2 === 1 && Math.abs(rotation - Math.round(rotation / 90) * 90) < 1;

  // Both passes run at once; when one fails the other is killed (so no ffmpeg outlives the call).
  const both = new AbortController();
  const relay = () => both.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', relay, { once: true });
  let decoded: DecodeReport;
  let timestamps: number[];
  try {
    [decoded, timestamps] = await Promise.all([
      countDecodedFrames(file, { signal: both.signal, bins, streamIndex: video.index }),
      packetTimestamps(file, video.index, bins, both.signal),
    ]).catch((err: unknown) => {
      both.abort(err);
      throw err;
    });
  } finally {
    opts.signal?.removeEventListener('abort', relay);
  }

  const headerFrameCount = positive(video.nb_frames) ?? null;
  const frameCount = decoded.frameCount;
  const detail = decoded.sampleErrors.length ? `; ffmpeg: ${decoded.sampleErrors.slice(0, 2).join(' | ')}` : '';
  if (frameCount === 0) throw badMedia(file, `no decodable video frames in stream ${video.index} (${codec})${detail}`);
  const damaged = decoded.corruptFrames + decoded.decodeErrors;
  if (damaged > Math.max(MAX_DAMAGED_ABSOLUTE, MAX_DAMAGED_FRACTION * (frameCount + decoded.decodeErrors))) {
    throw badMedia(file, `damaged video: ${damaged} of ${frameCount + decoded.decodeErrors} frames are corrupt or undecodable${detail}`);
  }
  if (damaged > 0 && headerFrameCount !== null && frameCount < TRUNCATED_FRACTION * headerFrameCount) {
    throw badMedia(file, `truncated or damaged video: only ${frameCount} of the ${headerFrameCount} frames the header declares decode${detail}`);
  }
  if (frameCount <= 1 && STILL_IMAGE_CODECS.has(codec)) {
    throw badMedia(file, `is a still image (${codec} in ${container}), not a video`);
  }

  const rFps = parseRational(video.r_frame_rate);
  const avgFps = parseRational(video.avg_frame_rate);
  const durationSec =
    positive(video.duration) ?? positive(probe.format?.duration) ?? (avgFps || rFps ? frameCount / (avgFps || rFps) : 0);
  const fps = avgFps || rFps || (durationSec > 0 ? frameCount / durationSec : 0);
  const timeBase = parseRational(video.time_base);
  const variableFrameRate = isVariableFrameRate(timestamps, rFps > 0 && timeBase > 0 ? 1 / (rFps * timeBase) : undefined);

  return {
    durationSec,
    fps,
    width: quarter ? codedHeight : codedWidth,
    height: quarter ? codedWidth : codedHeight,
    codedWidth,
    codedHeight,
    rotation,
    codec,
    pixelFormat: video.pix_fmt ?? '',
    videoStreamIndex: video.index,
    hasAudio: !!audio,
    audioStreamIndex: audio ? audio.index : null,
    audioCodec: audio ? (audio.codec_name ?? 'unknown') : null,
    frameCount,
    headerFrameCount,
    variableFrameRate,
    container,
    sizeBytes,
  };
}

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

/**
 * Encodes an RGB24 frame as a baseline JPEG with sharp (libjpeg-turbo, 4:2:0 chroma, no metadata).
 * The bytes depend only on the pixels and `quality`, so the same input always gives the same file.
 *
 * @param frame `width × height` RGB24 pixels (`rgb.length === width * height * 3`).
 * @param quality JPEG quality, integer 1–100.
 * @throws invalidInput on a bad quality or a buffer of the wrong size.
 */
export async function encodeJpeg(frame: Pick<VideoFrame, 'width' | 'height' | 'rgb'>, quality: number): Promise<Buffer> {
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) throw invalidInput('quality', `must be an integer 1-100, got ${quality}`);
  if (frame.rgb.length !== frame.width * frame.height * 3) {
    throw invalidInput('frame', `rgb has ${frame.rgb.length} bytes, expected ${frame.width}x${frame.height}x3`);
  }
  return sharp(frame.rgb, { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .jpeg({ quality, chromaSubsampling: '4:2:0', mozjpeg: false })
    .toBuffer();
}

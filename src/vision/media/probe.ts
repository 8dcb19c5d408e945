/**
 * Video probing with real ffmpeg/ffprobe (step 1, `importVideo`; docs/ARCHITECTURE.md "The nine steps"): the
 * video's metadata (`metadata.json`), its true decoded frame count and a damage check.
 *
 * Conventions used throughout src/vision/media:
 * - The video stream is chosen once by {@link probeVideo}: the first video stream that is not an attached
 *   picture (cover art). Its index in the file is `videoStreamIndex`; it is not always 0. Without an
 *   explicit index, ffmpeg commands map `0:V:0`, which selects the same stream (capital `V` skips
 *   attached pictures).
 * - Frame ids are the 0-based index of a frame among all frames the decoder outputs for that stream
 *   (after edit lists are applied), i.e. what `ffprobe -count_frames` counts. Header frame counts and
 *   `duration × fps` are never used for this (docs/ARCHITECTURE.md "Pitfalls").
 * - Frames are always handed out upright: ffmpeg's default autorotation applies the display matrix, so
 *   extracted frames have the display size (`width × height` of {@link VideoMetadata}).
 * - Every ffmpeg run passes frames through unchanged in number (`-fps_mode passthrough`), so variable
 *   frame rate input is neither duplicated nor dropped.
 */
import { promises as fsp } from 'node:fs';
import { badMedia, invalidInput } from '../../errors';
import { defaultFfmpeg, passthroughFpsArgs, refusedFormat, runTool, sourceInputArgs, SOURCE_DEMUXERS, ToolError, type FfmpegBinaries } from './ffmpeg';
import { isVariableFrameRate, packetTimestamps } from './frameRate';

/** What {@link probeVideo} reports about a video file (written to `metadata.json`, docs/ARCHITECTURE.md "Stored artifacts"). */
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
export function lastErrorLine(stderrTail: string, file: string): string {
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

export function throwIfAborted(signal: AbortSignal | undefined): void {
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
 *   (src/vision/media/ffmpeg.ts), e.g. an HLS or DASH playlist or an ffconcat script, which would make ffmpeg read
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

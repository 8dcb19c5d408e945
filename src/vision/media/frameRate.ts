/**
 * Variable-frame-rate detection from a stream's packet timestamps (`variableFrameRate` of `metadata.json`).
 */
import { runTool, sourceInputArgs, type FfmpegBinaries } from './ffmpeg';

/** Packet timestamps of one stream (pts, else dts) in stream time-base ticks, sorted. */
export async function packetTimestamps(file: string, streamIndex: number, bins: FfmpegBinaries, signal?: AbortSignal): Promise<number[]> {
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


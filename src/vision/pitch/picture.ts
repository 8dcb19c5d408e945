/**
 * The picture inside a video's baked-in black bars (step 4): a phone or TV recording often carries the
 * picture inside black bars (pillarbox left and right, letterbox top and bottom). The rows and columns that
 * are not black, scanned in from each border as ffmpeg's `cropdetect` filter does, united over the sampled
 * frames so only bars present in every frame count. Every pitch statistic is measured inside it (`./fit`).
 */
import type { RgbFrame } from '../image/rgb';
import type { PictureArea, PictureBox } from './model';

/**
 * Mean of (R + G + B) / 3 over a row or column of a frame at or below which the line is black: the default
 * `limit` of ffmpeg's `cropdetect` filter (24 of 255, compared with a line's mean in
 * libavfilter/vf_cropdetect.c), which tolerates the noise and ringing a codec leaves in black bars.
 */
export const BAR_MEAN_MAX = 24;

/**
 * The picture area of one frame: the rows, then (within those rows) the columns, that are not black
 * (mean <= {@link BAR_MEAN_MAX}), scanned in from each border until the first line that is not; the black
 * lines at the borders are bars.
 * @returns the box in frame pixels, or null when the whole frame is black (a fade, a cut)
 */
export function framePicture(frame: RgbFrame): PictureBox | null {
  const { rgb, width: W, height: H } = frame;
  const rowBlack = (y: number) => {
    let sum = 0;
    for (let i = y * W * 3, e = i + W * 3; i < e; i++) sum += rgb[i];
    return sum <= BAR_MEAN_MAX * 3 * W;
  };
  let y1 = 0;
  while (y1 < H && rowBlack(y1)) y1++;
  if (y1 === H) return null;
  let y2 = H;
  while (y2 > y1 && rowBlack(y2 - 1)) y2--;
  const colBlack = (x: number) => {
    let sum = 0;
    for (let y = y1; y < y2; y++) {
      const i = (y * W + x) * 3;
      sum += rgb[i] + rgb[i + 1] + rgb[i + 2];
    }
    return sum <= BAR_MEAN_MAX * 3 * (y2 - y1);
  };
  let x1 = 0;
  while (x1 < W && colBlack(x1)) x1++;
  let x2 = W;
  while (x2 > x1 && colBlack(x2 - 1)) x2--;
  return [x1, y1, x2, y2];
}

/**
 * Bars thinner than this fraction of the frame's width (left, right) or height (top, bottom) are ignored.
 * Our choice: broadcast frames often carry a black line or two at an edge (the soccer test clip's top row;
 * blanking, encoder padding), which changes no statistic measurably; baked-in bars are tens of pixels or
 * more (98 px beside a 1280 px picture).
 */
export const MIN_BAR_FRACTION = 0.01;

/**
 * The picture area of a video from its sampled frames: the union of {@link framePicture} over the frames
 * of the first frame's size (so a border line is a bar only when it is black in every sampled frame, and a
 * dark scene does not shrink the picture), without bars thinner than {@link MIN_BAR_FRACTION}. All-black
 * frames do not count; when every frame is black, the whole frame.
 * @param frames decoded frames of one video
 * @throws Error when `frames` is empty
 */
export function findPicture(frames: readonly RgbFrame[]): PictureArea {
  if (frames.length === 0) throw new Error('findPicture: no frames');
  const { width: W, height: H } = frames[0];
  let box: PictureBox | null = null;
  for (const f of frames) {
    if (f.width !== W || f.height !== H) continue;
    const b = framePicture(f);
    if (!b) continue;
    box = box ? [Math.min(box[0], b[0]), Math.min(box[1], b[1]), Math.max(box[2], b[2]), Math.max(box[3], b[3])] : b;
  }
  const [x1, y1, x2, y2] = box ?? [0, 0, W, H];
  const thin = (bar: number, size: number) => bar < MIN_BAR_FRACTION * size;
  return {
    box: [thin(x1, W) ? 0 : x1, thin(y1, H) ? 0 : y1, thin(W - x2, W) ? W : x2, thin(H - y2, H) ? H : y2],
    frameWidth: W,
    frameHeight: H,
  };
}

/** Whether a picture area is the whole frame (no bars). */
export function isWholeFrame(p: PictureArea): boolean {
  return p.box[0] <= 0 && p.box[1] <= 0 && p.box[2] >= p.frameWidth && p.box[3] >= p.frameHeight;
}

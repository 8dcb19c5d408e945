/**
 * Where the pitch is: per-frame pitch masks, the "is there a pitch in this video" decision, and the
 * feet-on-pitch filter for detections (steps 4 and 5).
 *
 * Per frame (`computePitchMask`), at a reduced resolution (default 320 px wide):
 *
 *   grass pixels (colour window of `./grass`) --close (dilate, then erode; square 5x5)--> largest
 *   4-connected grass region --fill holes--> --fill each row between its first and last pitch pixel-->
 *   pitch mask
 *
 * - Closing (Serra, "Image Analysis and Mathematical Morphology", 1982) bridges the white pitch lines, which
 *   are 1-2 px wide at 320 px and would otherwise cut the pitch in two along the halfway line.
 * - The LARGEST region is the pitch (playfield-region detection as in Ekin, Tekalp & Mehrotra, IEEE TIP
 *   12(7), 2003); green bits in the crowd, the advertising boards or a scoreboard are separate regions.
 * - Filling holes (background pixels not 4-connected to the image border) puts players standing on the pitch
 *   inside it; the row fill also covers players cut by the bottom frame edge and notches at the pitch edges.
 *
 * "No pitch" rule (shape, not colour): a frame is pitch-like when its pitch region covers at least
 * `minPitchFraction` of the frame (default 0.15) AND at least `minFullWidthRows` (default 0.6) of the rows
 * it touches are "full width" (region covers >= 90 % of the row). A broadcast pitch fills the lower part of
 * the frame from edge to edge in every row below the far touchline (soccer clip, wide views: 0.94-0.98;
 * messi5.jpg, where the pitch is only the bottom quarter: 0.76), whereas a lawn beside a road (vtest.avi:
 * the lawn is a triangle in the lower left, full width only in the bottom third of its rows: 0.31) is not a
 * pitch, so the feet filter does not drop the walkers on the road. A video has a pitch (`fitPitchModel`)
 * when at least half of its sampled frames are pitch-like, so corner views (the soccer clip's view of a goal
 * has a diagonal far edge: 0.51), replays, close-ups and crowd shots do not flip the decision; once a video
 * has a pitch, every frame's mask is used as it is, whatever its own shape.
 * This is in the spirit of the "playfield ratio" used to classify broadcast shots (Ekin et al. 2003;
 * Halin et al., "Semantic shot classification in soccer videos via playfield ratio and object size", 2013);
 * the thresholds are our own, chosen on the test images (values above).
 *
 * Black bars: a phone or TV recording often carries the picture inside baked-in black bars (pillarbox left
 * and right, letterbox top and bottom). Step 4 finds the picture area of the video ({@link findPicture}: the
 * rows and columns that are not black, scanned in from each border as ffmpeg's `cropdetect` filter does,
 * united over the sampled frames so only bars present in every frame count), and every frame statistic
 * above is measured inside it: colour samples, region fraction, and "full width" (a row is full when the
 * region covers 90 % of the PICTURE's width; with 98 px bars beside a 1280 px picture no row of the frame
 * can be 90 % covered). The mask is computed as for the picture cropped out of the frame, `maskWidth`
 * pixels across the picture; the bars are never pitch.
 *
 * Grass, not any floor: the pitch colour must look like grass. The hue peak must be a true peak inside the
 * search range (`./grass`), and the pixels of the fitted window must have a median saturation of at least
 * `minGrassSaturation` (default 0.4). Measured medians: grass 0.88 (soccer broadcast clip), 0.64
 * (messi5.jpg), 0.68 (vtest.avi lawn); beige sports floors 0.29-0.30 (the floorball stand-ins of the tests,
 * test/helpers/floorball.ts: planks of hue 40-56 or 56-72 degrees, saturation 0.26-0.34; with yellow-green
 * bibs at 68 degrees the window grown from the hue peak takes in the floor, which then fills every frame
 * edge to edge and passes the shape rule). Without this rule such a floor is a "pitch", and keying its
 * colour window out of crops blacks out the yellow-green bibs. Limitation: a floor painted in a grass-like
 * green (some sports halls) cannot be told from grass by colour and shape; it is taken for a pitch.
 */
import sharp from 'sharp';
import type { GrassModel } from '../workflows/types';
import type { Detection, RgbFrame } from './detector';
import { dominantHue, fitGrassColour, isGrassRgb, sampleFramesHsv, smoothedHueHistogram, type GrassParams } from './grass';

/** Parameters of the per-frame pitch mask and of the "no pitch" rule (defaults in {@link PITCH_DEFAULTS}). */
export interface PitchParams {
  /**
   * Width of the mask across the picture (the frame without black bars), pixels; the mask covers the whole
   * frame at that scale (frames narrower than this are not enlarged).
   */
  maskWidth: number;
  /** Radius of the square closing element, mask pixels (2 = 5x5). */
  closeRadius: number;
  /** Fill each row of the region between its first and last pixel. */
  rowFill: boolean;
  /** Minimum pitch-region fraction of a frame (0-1) for the frame to be pitch-like. */
  minPitchFraction: number;
  /** A row is "full width" when the region covers at least this fraction of it (0-1). */
  fullRowCoverage: number;
  /** Minimum share of the region's rows that are full width (0-1) for the frame to be pitch-like. */
  minFullWidthRows: number;
  /** Minimum share of sampled frames that are pitch-like (0-1) for the video to have a pitch. */
  minPitchFrames: number;
  /** Minimum median saturation (0-1) of the pixels in the fitted colour window for it to be grass. */
  minGrassSaturation: number;
}

/** Defaults of {@link PitchParams} (reasons in the module comment). */
export const PITCH_DEFAULTS: Readonly<PitchParams> = Object.freeze({
  maskWidth: 320,
  closeRadius: 2,
  rowFill: true,
  minPitchFraction: 0.15,
  fullRowCoverage: 0.9,
  minFullWidthRows: 0.6,
  minPitchFrames: 0.5,
  minGrassSaturation: 0.4,
});

/**
 * The {@link PitchParams} part of a larger options object (e.g. `options.grassMask`): its fields that are
 * set, {@link PITCH_DEFAULTS} for the rest; other fields are ignored.
 */
export function pitchParamsOf(o: Partial<PitchParams>): PitchParams {
  const pick = <K extends keyof PitchParams>(k: K): PitchParams[K] => (o[k] !== undefined ? (o[k] as PitchParams[K]) : PITCH_DEFAULTS[k]);
  return {
    maskWidth: pick('maskWidth'),
    closeRadius: pick('closeRadius'),
    rowFill: pick('rowFill'),
    minPitchFraction: pick('minPitchFraction'),
    fullRowCoverage: pick('fullRowCoverage'),
    minFullWidthRows: pick('minFullWidthRows'),
    minPitchFrames: pick('minPitchFrames'),
    minGrassSaturation: pick('minGrassSaturation'),
  };
}

/** The colour window a mask needs (a {@link GrassModel} or {@link PitchModel} fits). */
export type PitchColour = Pick<GrassModel, 'hue' | 'sat' | 'val'>;

/** Shape statistics of one frame's pitch region. */
export interface PitchShape {
  /** Region pixels / mask pixels of the picture area (the whole mask when there are no bars), 0-1. */
  fraction: number;
  /** Share of the region's rows covered >= `fullRowCoverage` of the picture's width, 0-1 (0 for an empty region). */
  fullWidthRows: number;
  /** First mask row of the region (mask pixels), or -1 when empty. */
  topRow: number;
  /** Whether the frame passes the "pitch-like" rule of the module comment. */
  pitchLike: boolean;
}

/**
 * A per-frame pitch mask at reduced resolution.
 * Mask pixel (mx, my) covers frame pixels [mx / scale, (mx + 1) / scale) x [my / scale, (my + 1) / scale)
 * (the mask height is rounded, so the vertical mapping is off by < 1 frame pixel at most).
 */
export interface PitchMask extends PitchShape {
  /** Mask width and height, pixels. */
  width: number;
  height: number;
  /** Mask pixels per frame pixel (e.g. 0.25 for a 1280 px frame and a 320 px mask). */
  scale: number;
  /** Frame size the mask was computed for, pixels. */
  frameWidth: number;
  frameHeight: number;
  /** `width * height` bytes, row-major, 1 = pitch, 0 = not pitch. */
  data: Uint8Array;
  /** The picture area the mask was computed in, frame pixels (see {@link PictureBox}); absent: the whole frame. */
  picture?: PictureBox;
}

/** An area of a frame: [x1, y1, x2, y2] in pixels, x2 and y2 exclusive (columns x1 to x2 - 1). */
export type PictureBox = [number, number, number, number];

/** The picture inside a video's baked-in black bars ({@link findPicture}), for frames of the given size. */
export interface PictureArea {
  /** The picture, frame pixels; `[0, 0, frameWidth, frameHeight]` when there are no bars. */
  box: PictureBox;
  frameWidth: number;
  frameHeight: number;
}

/** Pitch-region statistics of the sampled frames, recorded with the model (step 4 result). */
export interface PitchStats {
  /**
   * Name of the decision rule, for `detections.json` readers: v2 measures inside the picture area (black
   * bars excluded) and requires a grass-like saturation; v1 (older runs) measured the whole frame.
   */
  rule: 'largest-region-full-width-rows-v1' | 'largest-region-full-width-rows-v2';
  framesSampled: number;
  framesPitchLike: number;
  /** Medians over the sampled frames. */
  medianFraction: number;
  medianFullWidthRows: number;
  /** The thresholds used. */
  params: PitchParams;
  /** The picture area of the video's frames (black bars excluded); absent in results of older runs. */
  picture?: PictureArea;
  /** One sentence saying why `pitchFound` is what it is. */
  reason: string;
}

/** A {@link GrassModel} whose `pitchFound` comes from the shape rule, with the evidence in `pitch`. */
export interface PitchModel extends GrassModel {
  pitch: PitchStats;
}

// ---------------------------------------------------------------------------------------------------------
// Binary morphology and regions on Uint8Array masks (1 = set), row-major `w * h`.

/**
 * Dilation (`op` 'max') or erosion ('min') by a (2r+1) x (2r+1) square, separably (rows, then columns).
 * Pixels outside the image count as 0 for dilation and as 1 for erosion, so a closing never eats the border.
 * @returns a new mask
 */
export function morph(src: Uint8Array, w: number, h: number, r: number, op: 'max' | 'min'): Uint8Array {
  if (r <= 0) return src.slice();
  // Sliding-window count of set pixels over the 2r+1 window, with out-of-image pixels counted as `pad`:
  // dilation sets a pixel when the count is > 0, erosion when the count is the whole window.
  const pad = op === 'max' ? 0 : 1;
  const need = op === 'max' ? 1 : 2 * r + 1;
  const tmp = new Uint8Array(w * h);
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    let n = pad * r;
    for (let x = 0; x <= r; x++) n += x < w ? src[row + x] : pad;
    for (let x = 0; x < w; x++) {
      tmp[row + x] = n >= need ? 1 : 0;
      const add = x + r + 1;
      const drop = x - r;
      n += (add < w ? src[row + add] : pad) - (drop >= 0 ? src[row + drop] : pad);
    }
  }
  for (let x = 0; x < w; x++) {
    let n = pad * r;
    for (let y = 0; y <= r; y++) n += y < h ? tmp[y * w + x] : pad;
    for (let y = 0; y < h; y++) {
      out[y * w + x] = n >= need ? 1 : 0;
      const add = y + r + 1;
      const drop = y - r;
      n += (add < h ? tmp[add * w + x] : pad) - (drop >= 0 ? tmp[drop * w + x] : pad);
    }
  }
  return out;
}

/** Morphological closing (dilate, then erode) by a (2r+1)^2 square; see {@link morph}. */
export function closeMask(src: Uint8Array, w: number, h: number, r: number): Uint8Array {
  return morph(morph(src, w, h, r, 'max'), w, h, r, 'min');
}

/**
 * The largest 4-connected set region (ties: the first found in row-major order).
 * @returns a new mask with only that region (all zeros when `src` is empty) and its area in pixels
 */
export function largestRegion(src: Uint8Array, w: number, h: number): { mask: Uint8Array; area: number } {
  const labels = new Int32Array(w * h);
  const queue = new Int32Array(w * h);
  let next = 0;
  let bestLabel = 0;
  let bestArea = 0;
  for (let start = 0; start < w * h; start++) {
    if (!src[start] || labels[start]) continue;
    const label = ++next;
    let head = 0;
    let tail = 0;
    queue[tail++] = start;
    labels[start] = label;
    while (head < tail) {
      const p = queue[head++];
      const x = p % w;
      if (x > 0 && src[p - 1] && !labels[p - 1]) (labels[p - 1] = label), (queue[tail++] = p - 1);
      if (x < w - 1 && src[p + 1] && !labels[p + 1]) (labels[p + 1] = label), (queue[tail++] = p + 1);
      if (p >= w && src[p - w] && !labels[p - w]) (labels[p - w] = label), (queue[tail++] = p - w);
      if (p + w < w * h && src[p + w] && !labels[p + w]) (labels[p + w] = label), (queue[tail++] = p + w);
    }
    if (tail > bestArea) {
      bestArea = tail;
      bestLabel = label;
    }
  }
  const mask = new Uint8Array(w * h);
  if (bestLabel) for (let i = 0; i < w * h; i++) mask[i] = labels[i] === bestLabel ? 1 : 0;
  return { mask, area: bestArea };
}

/**
 * Fills holes: unset pixels that are not 4-connected to the image border through unset pixels.
 * @returns a new mask
 */
export function fillHoles(src: Uint8Array, w: number, h: number): Uint8Array {
  const outside = new Uint8Array(w * h);
  const queue = new Int32Array(w * h);
  let tail = 0;
  const seed = (p: number) => {
    if (!src[p] && !outside[p]) (outside[p] = 1), (queue[tail++] = p);
  };
  for (let x = 0; x < w; x++) seed(x), seed((h - 1) * w + x);
  for (let y = 0; y < h; y++) seed(y * w), seed(y * w + w - 1);
  let head = 0;
  while (head < tail) {
    const p = queue[head++];
    const x = p % w;
    if (x > 0) seed(p - 1);
    if (x < w - 1) seed(p + 1);
    if (p >= w) seed(p - w);
    if (p + w < w * h) seed(p + w);
  }
  const out = new Uint8Array(w * h);
  for (let i = 0; i < w * h; i++) out[i] = outside[i] ? 0 : 1;
  return out;
}

/** Sets every pixel of each row between the row's first and last set pixel. @returns a new mask */
export function fillRowSpans(src: Uint8Array, w: number, h: number): Uint8Array {
  const out = src.slice();
  for (let y = 0; y < h; y++) {
    const row = y * w;
    let a = -1;
    let b = -1;
    for (let x = 0; x < w; x++) {
      if (src[row + x]) {
        if (a < 0) a = x;
        b = x;
      }
    }
    if (a >= 0) out.fill(1, row + a, row + b + 1);
  }
  return out;
}

/** Shape statistics of a region mask (see {@link PitchShape}); thresholds from `params`. */
export function pitchShape(mask: Uint8Array, w: number, h: number, params: Pick<PitchParams, 'fullRowCoverage' | 'minPitchFraction' | 'minFullWidthRows'>): PitchShape {
  let area = 0;
  let rows = 0;
  let full = 0;
  let topRow = -1;
  for (let y = 0; y < h; y++) {
    let n = 0;
    for (let x = 0, i = y * w; x < w; x++, i++) n += mask[i];
    if (n === 0) continue;
    if (topRow < 0) topRow = y;
    area += n;
    rows++;
    if (n >= params.fullRowCoverage * w) full++;
  }
  const fraction = w * h ? area / (w * h) : 0;
  const fullWidthRows = rows ? full / rows : 0;
  return {
    fraction: round3(fraction),
    fullWidthRows: round3(fullWidthRows),
    topRow,
    pitchLike: fraction >= params.minPitchFraction && fullWidthRows >= params.minFullWidthRows,
  };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * The pitch mask from a grass/not-grass mask (pure; closing, largest region, holes, row spans: module
 * comment).
 * @param area the picture area in MASK pixels ({@link PictureBox}); the mask is computed as for that area
 *   cut out of the frame, and is 0 outside it. Absent: the whole mask.
 * @returns the mask (1 = pitch, `w * h`) and its shape statistics, measured inside `area` (`topRow` in
 *   rows of the whole mask)
 */
export function pitchMaskFromGrass(grass: Uint8Array, w: number, h: number, params: Partial<PitchParams> = {}, area?: PictureBox): { data: Uint8Array } & PitchShape {
  const p = pitchParamsOf(params);
  const [ax1, ay1, ax2, ay2] = area ?? [0, 0, w, h];
  if (ax1 <= 0 && ay1 <= 0 && ax2 >= w && ay2 >= h) {
    const closed = closeMask(grass, w, h, p.closeRadius);
    const { mask } = largestRegion(closed, w, h);
    let data = fillHoles(mask, w, h);
    if (p.rowFill) data = fillRowSpans(data, w, h);
    return { data, ...pitchShape(data, w, h, p) };
  }
  const aw = Math.max(0, ax2 - ax1);
  const ah = Math.max(0, ay2 - ay1);
  const sub = new Uint8Array(aw * ah);
  for (let y = 0; y < ah; y++) sub.set(grass.subarray((ay1 + y) * w + ax1, (ay1 + y) * w + ax1 + aw), y * aw);
  const inner = pitchMaskFromGrass(sub, aw, ah, p);
  const data = new Uint8Array(w * h);
  for (let y = 0; y < ah; y++) data.set(inner.data.subarray(y * aw, (y + 1) * aw), (ay1 + y) * w + ax1);
  return { ...inner, data, topRow: inner.topRow < 0 ? -1 : inner.topRow + ay1 };
}

/**
 * The pitch mask of an already reduced RGB image (pure).
 * @param rgb interleaved pixels, `channels` (3 or 4) bytes each, `w * h` pixels
 * @param area picture area in mask pixels, as for {@link pitchMaskFromGrass}
 * @returns the mask (1 = pitch) and its shape statistics
 */
export function pitchMaskFromRgb(rgb: Uint8Array, w: number, h: number, channels: number, colour: PitchColour, params: Partial<PitchParams> = {}, area?: PictureBox): { data: Uint8Array } & PitchShape {
  const grass = new Uint8Array(w * h);
  for (let i = 0, j = 0; i < w * h; i++, j += channels) grass[i] = isGrassRgb(rgb[j], rgb[j + 1], rgb[j + 2], colour) ? 1 : 0;
  return pitchMaskFromGrass(grass, w, h, params, area);
}

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

/**
 * Size of the mask of a `fw x fh` frame: `maskWidth` pixels across the picture (the whole frame when
 * `picture` is absent or for another frame size), never more than one mask pixel per frame pixel, so
 * players in a pillarboxed frame are measured as finely as in the same picture without bars.
 * @returns mask width and height, pixels, and `scale` = mask px per frame px (`width / fw`)
 */
function maskSize(fw: number, fh: number, maskWidth: number, picture?: PictureArea): { width: number; height: number; scale: number } {
  const pw = picture && picture.frameWidth === fw && picture.frameHeight === fh ? Math.max(1, picture.box[2] - picture.box[0]) : fw;
  const width = Math.max(1, Math.min(fw, Math.round(fw * Math.min(1, maskWidth / pw))));
  return { width, height: Math.max(1, Math.round((fh * width) / fw)), scale: width / fw };
}

/**
 * The mask pixels whose centre lies inside a picture area (mask pixel m covers frame pixels
 * [m / scale, (m + 1) / scale), so its centre is inside [x1, x2) when ceil(x1 * scale - 0.5) <= m <
 * ceil(x2 * scale - 0.5)), clamped to the mask; undefined (the whole mask) when `picture` is absent, is for
 * another frame size, covers every mask pixel (a 1 px black line at the edge of a broadcast frame) or none.
 */
function maskArea(picture: PictureArea | undefined, fw: number, fh: number, w: number, h: number, scale: number): PictureBox | undefined {
  if (!picture || picture.frameWidth !== fw || picture.frameHeight !== fh) return undefined;
  const m = (v: number, max: number) => Math.min(max, Math.max(0, Math.ceil(v * scale - 0.5)));
  const [x1, y1, x2, y2] = picture.box;
  const a: PictureBox = [m(x1, w), m(y1, h), m(x2, w), m(y2, h)];
  if (a[2] <= a[0] || a[3] <= a[1] || (a[0] === 0 && a[1] === 0 && a[2] === w && a[3] === h)) return undefined;
  return a;
}

/**
 * Grass/not-grass at `w x h` straight from a full-size raw frame, in plain code (no sharp round trip; ~1-2
 * ms for 1280x720 -> 320x180): each output pixel classifies the mean of the 2x2 source pixels at the centre
 * of its source block. Not a full area average, but the closing removes the little aliasing this leaves
 * (thin lines are bridged anyway).
 * @returns `w * h` bytes, 1 = grass
 */
export function grassFromFrame(frame: RgbFrame, w: number, h: number, colour: PitchColour): Uint8Array {
  const { rgb, width: W, height: H } = frame;
  const out = new Uint8Array(w * h);
  const xs = new Int32Array(w);
  const xs1 = new Int32Array(w);
  for (let x = 0; x < w; x++) {
    xs[x] = Math.min(W - 2, Math.max(0, Math.floor(((x + 0.5) * W) / w) - 1)) * 3;
    xs1[x] = Math.min(W - 1, xs[x] / 3 + 1) * 3;
  }
  for (let y = 0; y < h; y++) {
    const sy = Math.min(H - 2, Math.max(0, Math.floor(((y + 0.5) * H) / h) - 1));
    const r0 = sy * W * 3;
    const r1 = Math.min(H - 1, sy + 1) * W * 3;
    for (let x = 0; x < w; x++) {
      const a = r0 + xs[x];
      const b = r0 + xs1[x];
      const c = r1 + xs[x];
      const d = r1 + xs1[x];
      const R = (rgb[a] + rgb[b] + rgb[c] + rgb[d] + 2) >> 2;
      const G = (rgb[a + 1] + rgb[b + 1] + rgb[c + 1] + rgb[d + 1] + 2) >> 2;
      const B = (rgb[a + 2] + rgb[b + 2] + rgb[c + 2] + rgb[d + 2] + 2) >> 2;
      out[y * w + x] = isGrassRgb(R, G, B, colour) ? 1 : 0;
    }
  }
  return out;
}

/**
 * Computes a frame's pitch mask at `maskWidth` px wide (height by the frame's aspect ratio).
 *
 * @param input an encoded image (JPEG/PNG; EXIF orientation applied, as `loadRgb` in `./draw` does) or a
 *   raw {@link RgbFrame} (as `detectPlayers` decodes it)
 * @param colour the colour window, e.g. the step-4 {@link PitchModel}
 * @param params mask parameters (defaults {@link PITCH_DEFAULTS})
 * @param picture the video's picture area (step 4, `PitchModel.pitch.picture`): the mask and its statistics
 *   are computed inside it and are 0 on the bars. Ignored when absent or made for another frame size.
 * @returns the mask; `scale` = mask px per frame px, `frameWidth/Height` the frame's size
 * @throws Error from sharp when the image cannot be decoded; Error for a malformed RgbFrame
 */
export async function computePitchMask(input: Buffer | RgbFrame, colour: PitchColour, params: Partial<PitchParams> = {}, picture?: PictureArea): Promise<PitchMask> {
  const p = pitchParamsOf(params);
  if (!Buffer.isBuffer(input)) {
    const { width: fw, height: fh } = input;
    if (!(fw > 0 && fh > 0) || input.rgb.length !== fw * fh * 3) {
      throw new Error(`computePitchMask: rgb buffer has ${input.rgb.length} bytes, expected ${fw}x${fh}x3`);
    }
    const { width, height, scale } = maskSize(fw, fh, p.maskWidth, picture);
    const area = maskArea(picture, fw, fh, width, height, scale);
    const res = pitchMaskFromGrass(grassFromFrame(input, width, height, colour), width, height, p, area);
    return { ...res, width, height, scale, frameWidth: fw, frameHeight: fh, ...(area ? { picture: picture!.box } : {}) };
  }
  const meta = await sharp(input).metadata();
  const frameWidth = meta.autoOrient?.width ?? meta.width;
  const frameHeight = meta.autoOrient?.height ?? meta.height;
  const { width, height } = maskSize(frameWidth, frameHeight, p.maskWidth, picture);
  const { data, info } = await sharp(input).rotate().resize(width, height, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const scale = info.width / frameWidth;
  const area = maskArea(picture, frameWidth, frameHeight, info.width, info.height, scale);
  const res = pitchMaskFromRgb(data, info.width, info.height, info.channels, colour, p, area);
  return { ...res, width: info.width, height: info.height, scale, frameWidth, frameHeight, ...(area ? { picture: picture!.box } : {}) };
}

/**
 * Whether frame pixel (x, y) lies on the pitch. Points on the right/bottom frame edge (x = frameWidth or
 * y = frameHeight, where clamped bbox corners lie) map to the last mask column/row.
 * @param x, y frame pixels (not mask pixels)
 * @returns false outside the frame
 */
export function isOnPitch(mask: PitchMask, x: number, y: number): boolean {
  const cell = maskCell(mask, x, y);
  return !!cell && mask.data[cell.my * mask.width + cell.mx] === 1;
}

/** The mask pixel of frame pixel (x, y) (right/bottom frame edge: last column/row), or undefined outside the frame. */
function maskCell(mask: PitchMask, x: number, y: number): { mx: number; my: number } | undefined {
  if (!(x >= 0 && y >= 0 && x <= mask.frameWidth && y <= mask.frameHeight)) return undefined;
  return { mx: Math.min(mask.width - 1, Math.floor(x * mask.scale)), my: Math.min(mask.height - 1, Math.floor(y * mask.scale)) };
}

/**
 * The top edge of the pitch in a frame column: the first frame row whose mask pixel is pitch, in frame
 * pixels, or `frameHeight` when the column has no pitch. Everything above it is off the pitch (crowd,
 * boards, overlays).
 * @param x frame column, pixels
 */
export function pitchTopAt(mask: PitchMask, x: number): number {
  const mx = Math.max(0, Math.min(mask.width - 1, Math.floor(x * mask.scale)));
  for (let my = 0; my < mask.height; my++) if (mask.data[my * mask.width + mx]) return my / mask.scale;
  return mask.frameHeight;
}

/**
 * Length, in frame pixels, of the vertical run of pitch mask pixels through frame pixel (x, y) (the mask
 * column's unbroken stretch of pitch above and below it); 0 when (x, y) is off the pitch.
 * @param x, y frame pixels
 */
export function pitchRunAt(mask: PitchMask, x: number, y: number): number {
  if (!isOnPitch(mask, x, y)) return 0;
  const { mx, my } = maskCell(mask, x, y)!;
  let top = my;
  while (top > 0 && mask.data[(top - 1) * mask.width + mx]) top--;
  let bottom = my;
  while (bottom < mask.height - 1 && mask.data[(bottom + 1) * mask.width + mx]) bottom++;
  return (bottom - top + 1) / mask.scale;
}

/** Options of {@link filterOnPitch}. */
export interface FeetFilterOptions {
  /**
   * Tolerance around the feet point as a fraction of the box height (default 0.05); the tolerance is never
   * smaller than one mask pixel. Our choice: a 70 px tall player gets ~4 px, enough for a foot on a line or
   * on the mask boundary, much less than the gap between the pitch and the stands.
   */
  toleranceFraction?: number;
  /**
   * A point counts as on the pitch only when the pitch runs vertically through it for at least this
   * fraction of the box height (default 0.25), and never less than two mask pixels: the feet must be on the
   * body of the pitch, not on a sliver of green merged into its edge. Our choice, from messi5.jpg: a
   * blurred green patch at the base of the pitch-side wall joins the mask as a strip about 12 px high with
   * a gap below it, and the box of a person in a blue-and-white shirt behind the wall, whose legs the wall
   * hides, ends on it (box height 107 px, so 27 px are needed). A player's feet stand on runs of hundreds
   * of pixels.
   */
  minRunFraction?: number;
}

/** Why {@link filterOnPitch} dropped a detection. */
export type PitchDropReason = 'feet-off-pitch';

/**
 * Feet-on-pitch filter: keeps a detection when its feet point — the bbox bottom centre ((x1 + x2) / 2, y2),
 * where a standing person touches the ground — or one of four points at distance t around it (left,
 * right, above, below; t = max(one mask pixel, toleranceFraction x box height)) is on the pitch mask, where
 * the pitch runs vertically through that point for at least max(two mask pixels, minRunFraction x box
 * height) ({@link pitchRunAt}). Without a mask (`null`/`undefined`, i.e. the video has no pitch) everything
 * is kept.
 *
 * @param dets detections with bbox [x1, y1, x2, y2] in frame pixels
 * @param mask the frame's pitch mask, or null when no pitch was found for the video
 * @returns kept detections (input order) and dropped ones with the reason
 */
export function filterOnPitch<D extends Detection>(
  dets: readonly D[],
  mask: PitchMask | null | undefined,
  opts: FeetFilterOptions = {},
): { kept: D[]; dropped: { det: D; reason: PitchDropReason }[] } {
  if (!mask) return { kept: [...dets], dropped: [] };
  const frac = opts.toleranceFraction ?? 0.05;
  const runFrac = opts.minRunFraction ?? 0.25;
  const kept: D[] = [];
  const dropped: { det: D; reason: PitchDropReason }[] = [];
  for (const d of dets) {
    const [x1, , x2, y2] = d.bbox;
    const cx = (x1 + x2) / 2;
    const h = d.bbox[3] - d.bbox[1];
    const t = Math.max(1 / mask.scale, frac * h);
    const minRun = Math.max(2 / mask.scale, runFrac * h);
    const on = (x: number, y: number) => pitchRunAt(mask, x, y) >= minRun;
    const onPitch = on(cx, y2) || on(cx - t, y2) || on(cx + t, y2) || on(cx, y2 - t) || on(cx, Math.min(y2 + t, mask.frameHeight));
    if (onPitch) kept.push(d);
    else dropped.push({ det: d, reason: 'feet-off-pitch' });
  }
  return { kept, dropped };
}

const median = (xs: number[]) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Decodes an encoded frame to RGB24, EXIF orientation applied (as `loadRgb` in `./draw`). */
async function decodeRgb(img: Buffer): Promise<RgbFrame> {
  const { data, info } = await sharp(img).rotate().toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { rgb: data, width: info.width, height: info.height };
}

/**
 * Step 4: finds the picture area inside black bars ({@link findPicture}), fits the pitch colour
 * (`fitGrassColour` in `./grass`) to the sampled frames' picture, computes each frame's pitch mask with
 * it, and decides whether the video has a pitch (`pitchFound`) by the rules of the module comment: a grass
 * hue peak, a grass-like saturation, and the shape rule (`greenFraction` is still the share of picture
 * pixels in the colour window).
 *
 * @param images sampled frames, encoded (JPEG/PNG) or decoded ({@link RgbFrame}), at least one; 8-16 evenly
 *   spaced frames are plenty. Give the same form every time for reproducible models: a JPEG may be scaled
 *   while decoding, which differs in the last bits from scaling its decoded pixels.
 * @param params colour search range and floors ({@link GrassParams}; its `minPitchFraction` is the minimum
 *   pitch-REGION fraction here) and optional {@link PitchParams} overrides
 * @returns a {@link PitchModel}: the colour window plus `pitch` (per-video evidence, picture area and
 *   thresholds, and a one-sentence reason)
 * @throws Error when `images` is empty or an image cannot be decoded
 */
export async function fitPitchModel(images: (Buffer | RgbFrame)[], params: GrassParams & Partial<PitchParams>): Promise<PitchModel> {
  if (images.length === 0) throw new Error('fitPitchModel: no frames');
  const p = pitchParamsOf(params);
  const decoded: RgbFrame[] = [];
  for (const img of images) decoded.push(Buffer.isBuffer(img) ? await decodeRgb(img) : img);
  const picture = findPicture(decoded);
  const bars = !isWholeFrame(picture);
  const samples = await sampleFramesHsv(images, params, bars ? picture.box : undefined);
  const colour = fitGrassColour(samples, params);
  const found = colour.hue.median > 0; // 0 = no hue peak in the search range (see fitGrassColour)
  const shapes: PitchShape[] = [];
  if (found) {
    for (const img of images) shapes.push(await computePitchMask(img, colour, p, picture));
  }
  const framesPitchLike = shapes.filter((s) => s.pitchLike).length;
  const medianFraction = round3(median(shapes.map((s) => s.fraction)));
  const medianFullWidthRows = round3(median(shapes.map((s) => s.fullWidthRows)));
  const grassLike = found && colour.sat.median >= p.minGrassSaturation;
  const shaped = shapes.length > 0 && framesPitchLike >= p.minPitchFrames * images.length;
  const pitchFound = grassLike && shaped;
  const where = bars ? ` (inside black bars: picture [${picture.box.join(', ')}] of ${picture.frameWidth}x${picture.frameHeight})` : '';
  const shapeReason = `${framesPitchLike} of ${images.length} sampled frames are pitch-like${where} (largest grass region >= ${p.minPitchFraction} of the picture and >= ${p.minFullWidthRows} of its rows >= ${p.fullRowCoverage} full)`;
  let reason: string;
  if (!found) {
    const dominant = dominantHue(smoothedHueHistogram(samples));
    reason =
      dominant < 0
        ? `no pixel with saturation >= ${params.satMin} and value >= ${params.valMin}`
        : `no hue peak in [${params.hueMin}, ${params.hueMax}] deg: the dominant colour's hue is ${dominant} deg, not green`;
  } else if (!grassLike) {
    reason = `the dominant green (hue peak ${colour.hue.median} deg) has median saturation ${colour.sat.median} < ${p.minGrassSaturation}: too pale for grass (a beige, wooden or painted floor); ${shapeReason}`;
  } else {
    reason = `${shapeReason}; ${pitchFound ? '>=' : '<'} ${p.minPitchFrames} of the frames needed`;
  }
  return {
    ...colour,
    pitchFound,
    pitch: { rule: 'largest-region-full-width-rows-v2', framesSampled: images.length, framesPitchLike, medianFraction, medianFullWidthRows, params: p, picture, reason },
  };
}

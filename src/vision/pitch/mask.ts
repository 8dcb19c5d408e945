/**
 * Per-frame pitch masks (steps 4 and 5), at a reduced resolution (default 320 px wide):
 *
 *   grass pixels (colour window of `./colour`) --close (dilate, then erode; square 5x5)--> largest
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
 * The mask of a video's frames is computed inside its picture area (black bars excluded: `./picture`), and
 * whether the video has a pitch at all is decided in `./fit`.
 */
import sharp from 'sharp';
import type { RgbFrame } from '../image/rgb';
import { isGrassRgb } from './colour';
import { pitchParamsOf, type PictureArea, type PictureBox, type PitchColour, type PitchMask, type PitchParams, type PitchShape } from './model';

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
 * @param input an encoded image (JPEG/PNG; EXIF orientation applied, as `decodeImage` in src/vision/image/rgb.ts does) or a
 *   raw {@link RgbFrame} (as `detectPlayers` decodes it)
 * @param colour the colour window, e.g. the step-4 `PitchModel`
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

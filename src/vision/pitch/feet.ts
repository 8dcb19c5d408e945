/**
 * The feet-on-pitch filter of step 5: a detection is kept when its feet stand on the frame's pitch mask.
 */
import type { Detection } from '../detection/geometry';
import type { PitchMask } from './model';

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

/**
 * Kit colour of a player: the colour of the shirt, measured on the torso rows of the player's box with the
 * pitch colour keyed out, in CIELAB (./lab.ts); then one colour per class (track) over all its boxes.
 *
 * Torso region: rows {@link TORSO_TOP} to {@link TORSO_BOTTOM} of the box height from its top, columns
 * {@link TORSO_LEFT} to {@link TORSO_RIGHT} of its width. The rows follow the segment lengths of the human
 * body as fractions of standing height H (Drillis & Contini, "Body segment parameters", 1966, as tabulated
 * in Winter, "Biomechanics and Motor Control of Human Movement", 4th ed., 2009, Fig. 4.1): shoulder at
 * 0.818 H and hip at 0.530 H above the floor, i.e. 0.18 H and 0.47 H below the top of the head. A person
 * box spans about H, so those rows hold the shirt and little of head or shorts. The central half of the
 * width keeps most of the chest and little of arms or background (shoulder width is about 0.26 H, a box
 * about 0.3-0.5 H wide).
 *
 * Pixels of the pitch colour (`isGrassRgb` of src/vision/pitch/colour.ts, the window of the pitch model) are
 * left out, so a thin player whose torso box shows grass between the arms still gets the shirt's colour.
 * The colour of a box is the per-channel median (L*, a*, b*) of the remaining pixels: a shirt number or a
 * stripe, a minority of the pixels, does not move it. The colour of a class is the per-channel median over
 * its boxes, so frames where the player is occluded or blurred, a minority, do not move it either.
 */
import type { RgbFrame } from '../image/rgb';
import { isGrassRgb } from '../pitch/colour';
import type { PitchColour } from '../pitch/model';
import type { ClassKitInput } from './types';
import { deltaE, srgbToLab, type Lab } from './lab';

/** Torso rows, fractions of the box height from its top (see the module comment). */
export const TORSO_TOP = 0.18;
export const TORSO_BOTTOM = 0.47;
/** Torso columns, fractions of the box width from its left. */
export const TORSO_LEFT = 0.25;
export const TORSO_RIGHT = 0.75;
/** At most this many pixels per axis are read from a torso (larger torsos are subsampled on a grid). */
export const TORSO_MAX_SAMPLES_PER_AXIS = 24;
/**
 * Fewest kit (non-grass) pixels for a box to have a kit colour: a torso of a player 12 px wide and 40 px
 * tall at 720p has about 6 x 12 pixels, so 12 leaves room for grass between the arms.
 */
export const MIN_KIT_PIXELS = 12;

/** The kit colour of one box. */
export interface BoxKit {
  /** Per-channel median of the torso's kit pixels, CIELAB. */
  lab: Lab;
  /** Kit pixels the median was taken over. */
  pixels: number;
  /** Share of the torso's sampled pixels that were pitch colour, 0-1. */
  grassShare: number;
}

function median(values: number[]): number {
  const s = values.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * The kit colour of the person in `bbox` (torso region, pitch colour keyed out; module comment).
 * @param frame the decoded frame the box was detected in
 * @param bbox `[x1, y1, x2, y2]` in frame pixels (clamped to the frame here)
 * @param pitch the pitch colour window, or null when the video has no pitch (nothing keyed out)
 * @returns the colour, or null when fewer than {@link MIN_KIT_PIXELS} kit pixels remain (box too small,
 *   off the frame, or all grass)
 */
export function boxKit(frame: RgbFrame, bbox: readonly [number, number, number, number], pitch: PitchColour | null): BoxKit | null {
  const [bx1, by1, bx2, by2] = bbox;
  const w = bx2 - bx1;
  const h = by2 - by1;
  const x1 = Math.max(0, Math.floor(bx1 + TORSO_LEFT * w));
  const x2 = Math.min(frame.width, Math.ceil(bx1 + TORSO_RIGHT * w));
  const y1 = Math.max(0, Math.floor(by1 + TORSO_TOP * h));
  const y2 = Math.min(frame.height, Math.ceil(by1 + TORSO_BOTTOM * h));
  if (x2 <= x1 || y2 <= y1) return null;
  const sx = Math.max(1, (x2 - x1) / TORSO_MAX_SAMPLES_PER_AXIS);
  const sy = Math.max(1, (y2 - y1) / TORSO_MAX_SAMPLES_PER_AXIS);
  const L: number[] = [];
  const A: number[] = [];
  const B: number[] = [];
  let sampled = 0;
  for (let fy = y1; fy < y2; fy += sy) {
    const row = Math.floor(fy) * frame.width;
    for (let fx = x1; fx < x2; fx += sx) {
      const i = (row + Math.floor(fx)) * 3;
      const r = frame.rgb[i];
      const g = frame.rgb[i + 1];
      const b = frame.rgb[i + 2];
      sampled++;
      if (pitch && isGrassRgb(r, g, b, pitch)) continue;
      const lab = srgbToLab(r, g, b);
      L.push(lab[0]);
      A.push(lab[1]);
      B.push(lab[2]);
    }
  }
  if (L.length < MIN_KIT_PIXELS) return null;
  return { lab: [median(L), median(A), median(B)], pixels: L.length, grassShare: (sampled - L.length) / sampled };
}

/**
 * The kit colour of a class: the per-channel median of its boxes' colours.
 * @param boxes the Lab colours of the class's boxes (boxes without a colour left out), at least one
 * @throws Error when `boxes` is empty
 */
export function classKit(boxes: readonly Lab[]): Lab {
  if (boxes.length === 0) throw new Error('classKit: no box colours');
  return [median(boxes.map((c) => c[0])), median(boxes.map((c) => c[1])), median(boxes.map((c) => c[2]))];
}

/**
 * How much a class's box colours vary: the median ΔE (CIE76) of its box colours from the class colour. A
 * class that holds one person in one kit varies with light and pose only; one that mixes two people in
 * different kits has box colours around two centres, so most lie far from the median between them.
 * @returns ΔE, 0 for a single box
 */
export function kitSpread(kit: Lab, boxes: readonly Lab[]): number {
  return median(boxes.map((b) => deltaE(kit, b)));
}

/** The part of a stored frame entry (`detections.json`) that {@link classKitInputs} reads. */
export interface KitFrame {
  frame_id: number;
  detections: readonly { track_id: number; kit?: Lab | null }[];
}

/**
 * Per class (track id), its kit colour ({@link classKit} of the boxes that have one), how many boxes have
 * one, and the frames it appears in: the input of `assignTeams` (./cluster.ts).
 * @returns one entry per track id, ascending
 */
export function classKitInputs(frames: readonly KitFrame[]): ClassKitInput[] {
  const by = new Map<number, { kits: Lab[]; frames: number[] }>();
  for (const f of frames) {
    for (const d of f.detections) {
      let e = by.get(d.track_id);
      if (!e) by.set(d.track_id, (e = { kits: [], frames: [] }));
      e.frames.push(f.frame_id);
      if (d.kit) e.kits.push(d.kit);
    }
  }
  return [...by.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([trackId, e]) => {
      const kit = e.kits.length ? classKit(e.kits) : null;
      return { trackId, kit, boxes: e.kits.length, spread: kit ? kitSpread(kit, e.kits) : null, frames: e.frames };
    });
}

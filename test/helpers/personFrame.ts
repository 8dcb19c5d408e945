/** Synthetic frames with box-shaped people in two colours, for appearance and tracklet tests. */
import type { RgbFrame } from '../../src/vision/image/rgb';
import { extractAppearance, type Appearance } from '../../src/vision/tracking/appearance';
import type { TrackletBoxes } from '../../src/vision/tracking/join';

/** A frame filled with `bg`, with a person box whose top half is `top` and bottom half `bottom`. */
export function personFrame(w: number, h: number, bg: number[], box: number[], top: number[], bottom: number[]): RgbFrame {
  const rgb = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const inBox = x >= box[0] && x < box[2] && y >= box[1] && y < box[3];
      const c = !inBox ? bg : y < (box[1] + box[3]) / 2 ? top : bottom;
      rgb.set(c, (y * w + x) * 3);
    }
  }
  return { rgb, width: w, height: h };
}


/** A person of a synthetic scene: colours and box per frame (undefined: not visible / not detected). */
/** Size (px) and colours (RGB) of the synthetic scenes the tracklet and join tests draw. */
export const SCENE = {
  W: 400,
  H: 200,
  BG: [128, 128, 128],
  RED: [200, 30, 30],
  BLUE: [30, 30, 200],
  YELLOW: [220, 220, 40],
  BLACK: [15, 15, 15],
};

export interface ScenePerson {
  top: number[];
  bottom: number[];
  boxAt: (frameId: number) => number[] | undefined;
}

/** A frame with the persons drawn in order (later ones in front), on `bg`. */
export function sceneFrame(w: number, h: number, bg: number[], persons: readonly ScenePerson[], frameId: number): RgbFrame {
  const rgb = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) rgb.set(bg, i * 3);
  for (const p of persons) {
    const b = p.boxAt(frameId);
    if (!b) continue;
    for (let y = Math.max(0, Math.floor(b[1])); y < Math.min(h, b[3]); y++) {
      const c = y < (b[1] + b[3]) / 2 ? p.top : p.bottom;
      for (let x = Math.max(0, Math.floor(b[0])); x < Math.min(w, b[2]); x++) rgb.set(c, (y * w + x) * 3);
    }
  }
  return { rgb, width: w, height: h };
}

/**
 * Join appearances of tracklets whose people wear the given colours: for each tracklet, the appearance of its
 * first box drawn alone on a {@link SCENE} frame in `dress[trackletId]` = [top, bottom] (RGB), used as both its
 * start and its end appearance (the input `decideJoins` of src/vision/tracking/join.ts takes).
 * @throws TypeError when `dress` has no colours for a tracklet
 */
export function dressedAppearances(ts: readonly TrackletBoxes[], dress: Record<number, number[][]>): Map<number, { start: Appearance | null; end: Appearance | null }> {
  const m = new Map<number, { start: Appearance | null; end: Appearance | null }>();
  for (const t of ts) {
    const [top, bottom] = dress[t.trackletId];
    const b = t.boxes[0].bbox;
    const a = extractAppearance(sceneFrame(SCENE.W, SCENE.H, SCENE.BG, [{ top, bottom, boxAt: () => [...b] }], 0), b);
    m.set(t.trackletId, { start: a, end: a });
  }
  return m;
}

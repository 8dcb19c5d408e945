/** Synthetic frames with box-shaped people in two colours, for appearance and tracklet tests. */
import type { RgbFrame } from '../../src/vision/image/rgb';

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


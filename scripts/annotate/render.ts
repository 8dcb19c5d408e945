/**
 * Annotation tooling: images a person looks at to label tracklets (JPEG contact sheets of crop strips, one
 * row per tracklet or person; an overview of one frame with numbered boxes). Everything is written under
 * `.data/annotate/<video>/` (git-ignored): images of the soccer clip must never enter the repository.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp, { type OverlayOptions } from 'sharp';
import type { BBox } from '../../src/vision/detection/geometry';
import { drawDetections } from '../../src/vision/image/draw';
import { decodeImage, type RgbFrame } from '../../src/vision/image/rgb';
import { framePath } from './boxes';

/** One row of a contact sheet: a label and the crops to show, in order. */
export interface SheetRow {
  label: string;
  /** Second label line (smaller), e.g. positions. */
  sub?: string;
  crops: { frameId: number; bbox: BBox }[];
}

/** Cell geometry of a contact sheet, pixels. */
export interface SheetLayout {
  cellWidth: number;
  cellHeight: number;
  /** Width of the label column. */
  labelWidth: number;
  /** Crops per row; a row with more crops wraps onto further lines. */
  perLine: number;
  /** Padding around each bbox as a fraction of its width/height (the pipeline's default crop padding 0.1). */
  padding: number;
}

export const DEFAULT_LAYOUT: SheetLayout = { cellWidth: 64, cellHeight: 128, labelWidth: 170, perLine: 14, padding: 0.1 };

const esc = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Decoded frames of one video, kept for a few sheets (frames are read in time order, so a small cache suffices). */
export class FrameCache {
  private cache = new Map<number, RgbFrame>();
  constructor(private readonly video: string, private readonly max = 64) {}
  /** The decoded sampled frame. @throws when its JPEG is not cached (run `detect` first) */
  async get(frameId: number): Promise<RgbFrame> {
    const hit = this.cache.get(frameId);
    if (hit) return hit;
    const f = await decodeImage(framePath(this.video, frameId));
    if (this.cache.size >= this.max) this.cache.delete(this.cache.keys().next().value as number);
    this.cache.set(frameId, f);
    return f;
  }
}

/** The padded crop of `bbox` from `frame`, resized to fit `w × h` (letterboxed in grey), as raw RGB. */
async function cell(frame: RgbFrame, bbox: BBox, w: number, h: number, padding: number): Promise<Buffer> {
  const [x1, y1, x2, y2] = bbox;
  const px = (x2 - x1) * padding;
  const py = (y2 - y1) * padding;
  const left = Math.max(0, Math.floor(x1 - px));
  const top = Math.max(0, Math.floor(y1 - py));
  const width = Math.max(1, Math.min(frame.width, Math.ceil(x2 + px)) - left);
  const height = Math.max(1, Math.min(frame.height, Math.ceil(y2 + py)) - top);
  return sharp(frame.rgb, { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .extract({ left, top, width, height })
    .resize({ width: w, height: h, fit: 'contain', background: { r: 60, g: 60, b: 60 }, kernel: 'lanczos3' })
    .removeAlpha()
    .raw()
    .toBuffer();
}

/**
 * Renders rows of crops as one JPEG: per row a label column, then the crops (each captioned with its
 * frame id), wrapping after `layout.perLine` crops.
 * @returns the JPEG bytes
 */
export async function renderSheet(frames: FrameCache, rows: readonly SheetRow[], layout: SheetLayout = DEFAULT_LAYOUT): Promise<Buffer> {
  const { cellWidth: cw, cellHeight: ch, labelWidth: lw, perLine } = layout;
  const capH = 12;
  const lineH = ch + capH;
  const width = lw + perLine * cw;
  const lines = rows.map((r) => Math.max(1, Math.ceil(r.crops.length / perLine)));
  const height = Math.max(1, lines.reduce((s, n) => s + n, 0) * lineH + rows.length * 2);
  const composites: OverlayOptions[] = [];
  const svg: string[] = [];
  let y = 0;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    svg.push(`<rect x="0" y="${y}" width="${width}" height="2" fill="#ff0"/>`);
    y += 2;
    svg.push(`<text x="4" y="${y + 16}" font-family="DejaVu Sans" font-size="14" fill="#fff">${esc(r.label)}</text>`);
    if (r.sub) {
      r.sub.split('\n').forEach((s, k) => svg.push(`<text x="4" y="${y + 34 + k * 14}" font-family="DejaVu Sans" font-size="11" fill="#ccc">${esc(s)}</text>`));
    }
    for (let k = 0; k < r.crops.length; k++) {
      const c = r.crops[k];
      const cx = lw + (k % perLine) * cw;
      const cy = y + Math.floor(k / perLine) * lineH;
      const buf = await cell(await frames.get(c.frameId), c.bbox, cw, ch, layout.padding);
      composites.push({ input: buf, raw: { width: cw, height: ch, channels: 3 }, left: cx, top: cy });
      svg.push(`<text x="${cx + 2}" y="${cy + ch + 10}" font-family="DejaVu Sans" font-size="10" fill="#9f9">${c.frameId}</text>`);
    }
    y += lines[i] * lineH;
  }
  composites.push({ input: Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${svg.join('')}</svg>`), left: 0, top: 0 });
  return sharp({ create: { width, height, channels: 3, background: { r: 20, g: 20, b: 20 } } }).composite(composites).jpeg({ quality: 85 }).toBuffer();
}

/** Up to `n` items of `xs`, evenly spaced, always the first and the last. */
export function evenly<T>(xs: readonly T[], n: number): T[] {
  if (xs.length <= n) return [...xs];
  return Array.from({ length: n }, (_, i) => xs[Math.round((i * (xs.length - 1)) / (n - 1))]);
}

/** Writes `rows` as numbered sheets of at most `rowsPerSheet` rows: `<dir>/<prefix>-NNN.jpg`. @returns the paths */
export async function writeSheets(frames: FrameCache, dir: string, prefix: string, rows: readonly SheetRow[], rowsPerSheet: number, layout?: SheetLayout): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const out: string[] = [];
  for (let i = 0; i < rows.length; i += rowsPerSheet) {
    const p = path.join(dir, `${prefix}-${String(out.length + 1).padStart(3, '0')}.jpg`);
    await writeFile(p, await renderSheet(frames, rows.slice(i, i + rowsPerSheet), layout));
    out.push(p);
  }
  return out;
}

/** One frame with numbered boxes (`labels[i]` drawn on `boxes[i]`), as a JPEG of quality 85. */
export async function renderOverview(frames: FrameCache, frameId: number, boxes: readonly BBox[], labels: readonly number[]): Promise<Buffer> {
  const png = await drawDetections(await frames.get(frameId), boxes.map((bbox, i) => ({ bbox, score: 1, classId: 0, trackId: labels[i] })));
  return sharp(png).jpeg({ quality: 85 }).toBuffer();
}

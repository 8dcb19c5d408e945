/**
 * Debug rendering: draws detection boxes (and track ids) onto an image so a person can look at them.
 * Not part of the dataset outputs.
 */
import sharp from 'sharp';
import type { Detection } from '../detection/geometry';
import { decodeImage, type RgbFrame } from './rgb';

/** Distinct colours, cycled by track id (or class id when untracked). */
const PALETTE = ['#e6194b', '#3cb44b', '#ffe119', '#4363d8', '#f58231', '#911eb4', '#46f0f0', '#f032e6', '#bcf60c', '#fabebe', '#008080', '#e6beff'];

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Draws each detection's bbox [x1, y1, x2, y2] (source pixels) with a label `#trackId score` (or
 * `c{classId} score` without a track id), as an SVG overlay composited by sharp.
 *
 * @param image an encoded image (JPEG/PNG buffer) or a raw {@link RgbFrame}
 * @param dets detections in the image's pixel coordinates; `trackId` is optional
 * @returns the annotated image as PNG bytes
 */
export async function drawDetections(image: Buffer | RgbFrame, dets: readonly (Detection & { trackId?: number })[]): Promise<Buffer> {
  const frame = !Buffer.isBuffer(image) ? image : await decodeImage(image);
  const { width, height } = frame;
  const stroke = Math.max(1, Math.round(Math.min(width, height) / 300));
  const font = Math.max(10, Math.round(Math.min(width, height) / 40));
  const shapes = dets.map((d) => {
    const [x1, y1, x2, y2] = d.bbox;
    const colour = PALETTE[(d.trackId ?? d.classId) % PALETTE.length];
    const label = escapeXml(`${d.trackId !== undefined ? `#${d.trackId}` : `c${d.classId}`} ${d.score.toFixed(2)}`);
    const ty = y1 - stroke > font ? y1 - stroke - 2 : y1 + font;
    // Labels are about 0.6 em per character; right-align those that would run off the right edge.
    const anchorEnd = x1 + label.length * font * 0.6 > width;
    return (
      `<rect x="${x1.toFixed(1)}" y="${y1.toFixed(1)}" width="${(x2 - x1).toFixed(1)}" height="${(y2 - y1).toFixed(1)}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>` +
      `<text x="${anchorEnd ? x2.toFixed(1) : x1.toFixed(1)}" y="${ty.toFixed(1)}" text-anchor="${anchorEnd ? 'end' : 'start'}" font-family="DejaVu Sans, sans-serif" font-size="${font}" fill="${colour}" stroke="black" stroke-width="0.5">${label}</text>`
    );
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${shapes.join('')}</svg>`;
  return sharp(frame.rgb, { raw: { width, height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }]).png().toBuffer();
}

/**
 * Box geometry shared by detection, tracking, pitch filtering and crops: the {@link BBox} convention, one
 * {@link Detection}, intersection over union and non-maximum suppression. Pure; no model, no image library.
 */

/** Axis-aligned box `[x1, y1, x2, y2]` (top-left, bottom-right corners), in pixels; x2 >= x1, y2 >= y1. */
export type BBox = [number, number, number, number];

/** One detected object. */
export interface Detection {
  /** `[x1, y1, x2, y2]`; in source-image pixels once returned by {@link Detector.detect}. */
  bbox: BBox;
  /** Class confidence in 0..1 (YOLOv8 has no separate objectness; this is the best class score). */
  score: number;
  /** Index into the model's class list; for COCO models 0 = person. */
  classId: number;
}

/** Ultralytics default cap on detections kept per image after NMS (`max_det=300`). */
export const DEFAULT_MAX_DETECTIONS = 300;

/**
 * Intersection over union of two boxes `[x1, y1, x2, y2]` (continuous coordinates, no +1, as in
 * torchvision `box_iou`). Returns 0 when the union is empty.
 */
export function iou(a: readonly number[], b: readonly number[]): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Greedy non-maximum suppression: visit detections by descending score (ties keep input order); keep one
 * unless it overlaps an already kept one with IoU > `iouThreshold` (strictly greater, as torchvision `nms`).
 * With `classAware` (the Ultralytics default, `agnostic=False`) only boxes of the same class suppress each
 * other. O(n^2) in the number of candidates.
 *
 * @param dets candidates (not modified)
 * @param iouThreshold IoU above which the lower-scored box is dropped; Ultralytics default 0.7
 * @param classAware suppress only within a class (default true)
 * @param maxDetections keep at most this many (Ultralytics `max_det`, default 300)
 * @returns kept detections, by descending score
 */
export function nms(dets: readonly Detection[], iouThreshold: number, classAware = true, maxDetections = DEFAULT_MAX_DETECTIONS): Detection[] {
  const order = dets.map((d, i) => ({ d, i })).sort((p, q) => q.d.score - p.d.score || p.i - q.i);
  const kept: Detection[] = [];
  for (const { d } of order) {
    if (kept.length >= maxDetections) break;
    let suppressed = false;
    for (const k of kept) {
      if (classAware && k.classId !== d.classId) continue;
      if (iou(k.bbox, d.bbox) > iouThreshold) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) kept.push(d);
  }
  return kept;
}

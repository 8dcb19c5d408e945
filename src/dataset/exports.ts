/**
 * Standard detection exports of a video's tracked boxes (step 9), for opening a run in CVAT or FiftyOne to
 * correct tracks:
 *
 * - MOT Challenge text (Milan et al., "MOT16: A Benchmark for Multi-Object Tracking", arXiv:1603.00831,
 *   section 3.3): one line per box, `frame,id,x,y,w,h,conf,-1,-1,-1`, with `frame` = `frame_id` + 1 (MOT
 *   frames are 1-based) and `id` = `track_id` + 1 (MOT ids are positive), the box's top-left corner, width and
 *   height in source pixels, `conf` the detector score. The same form `parseMotGroundTruth`
 *   (./identity/groundTruth.ts) reads.
 * - COCO object-detection JSON (https://cocodataset.org/#format-data): `images` (the sampled frames),
 *   `annotations` (`bbox` as `[x, y, w, h]`, `area`, `iscrowd` 0, `score`, `track_id`, and CVAT-style
 *   `attributes` with `track_id`, team and role), `categories` (person).
 *
 * And the way back: corrected tracks in MOT form onto a video's sampled frames ({@link tracksFromMot}).
 *
 * Pure.
 */
import { invalidInput } from '../errors';
import { parseMotGroundTruth } from './identity/groundTruth';

/** One tracked box as the exports read it (a `detections.json` box, src/storage/artifacts.ts). */
export interface ExportBox {
  track_id: number;
  /** `[x1, y1, x2, y2]` in source pixels. */
  bbox: readonly [number, number, number, number];
  score: number;
}

/** One sampled frame with its tracked boxes. */
export interface ExportFrame {
  frame_id: number;
  width: number;
  height: number;
  detections: readonly ExportBox[];
}

/**
 * Width or height `b - a` rounded to {@link SIZE_DECIMALS} decimals: stored corners have at most 2 decimals
 * (`round2` in src/vision/players.ts), so this is their exact difference without binary floating-point noise
 * (`684.74 - 640.19` is `44.549999999999955` in IEEE 754 doubles).
 */
function size(a: number, b: number): number {
  return Number((b - a).toFixed(SIZE_DECIMALS));
}

/** Decimals kept in exported widths, heights and areas. */
export const SIZE_DECIMALS = 4;

/**
 * MOT Challenge text of `frames`' boxes, one line per box in frame order, then track order; `\n`-terminated.
 * Numbers are written in their shortest round-trip form (JavaScript `String(number)`), sizes by {@link size}.
 */
export function motText(frames: readonly ExportFrame[]): string {
  return [...motChunks(frames)].join('');
}

/**
 * {@link motText} piece by piece: one string per frame that has boxes (its lines), in frame order, so a long
 * video's export can be written to a file without building it whole. Joined, the pieces are `motText(frames)`.
 */
export function* motChunks(frames: readonly ExportFrame[]): Generator<string> {
  for (const f of [...frames].sort((a, b) => a.frame_id - b.frame_id)) {
    let text = '';
    for (const d of [...f.detections].sort((a, b) => a.track_id - b.track_id)) {
      const [x1, y1, x2, y2] = d.bbox;
      text += `${f.frame_id + 1},${d.track_id + 1},${x1},${y1},${size(x1, x2)},${size(y1, y2)},${d.score},-1,-1,-1\n`;
    }
    if (text) yield text;
  }
}

/** COCO category id of a person (COCO's own id for "person"). */
export const COCO_PERSON_CATEGORY = 1;

/** The COCO JSON {@link cocoJson} returns. */
export interface CocoExport {
  info: { description: string; video_guid: string };
  images: { id: number; file_name: string; width: number; height: number; frame_id: number }[];
  annotations: {
    id: number;
    image_id: number;
    category_id: number;
    bbox: [number, number, number, number];
    area: number;
    iscrowd: 0;
    score: number;
    track_id: number;
    attributes: { track_id: number; team: string | null; role: string | null };
  }[];
  categories: { id: number; name: string; supercategory: string }[];
}

/** What {@link cocoJson} and {@link cocoJsonChunks} take beside the frames. */
export interface CocoOptions {
  videoGuid: string;
  /** The image's file name as the consumer will find it (e.g. `selected_frames/frame_{id}.jpg`). */
  fileName: (frameId: number) => string;
  /** Team and role of a track, when known. */
  labelOf?: (trackId: number) => { team: string | null; role: string | null } | undefined;
}

/**
 * COCO JSON of `frames`: image id = `frame_id` + 1 (COCO ids are positive), annotation ids 1, 2, ... in
 * frame order, then track order.
 */
export function cocoJson(frames: readonly ExportFrame[], o: CocoOptions): CocoExport {
  const sorted = [...frames].sort((a, b) => a.frame_id - b.frame_id);
  return {
    info: cocoInfo(o),
    images: sorted.map((f) => cocoImage(f, o)),
    annotations: [...cocoAnnotations(sorted, o)].flat(),
    categories: COCO_CATEGORIES,
  };
}

/**
 * `JSON.stringify(cocoJson(frames, o))` piece by piece (one piece per image, and per frame for its
 * annotations), so a long video's export can be written to a file without building it whole. Joined, the
 * pieces are exactly those bytes (test/exports.test.ts).
 */
export function* cocoJsonChunks(frames: readonly ExportFrame[], o: CocoOptions): Generator<string> {
  const sorted = [...frames].sort((a, b) => a.frame_id - b.frame_id);
  yield `{"info":${JSON.stringify(cocoInfo(o))},"images":[`;
  for (const [i, f] of sorted.entries()) yield (i ? ',' : '') + JSON.stringify(cocoImage(f, o));
  yield '],"annotations":[';
  let first = true;
  for (const list of cocoAnnotations(sorted, o)) {
    if (list.length === 0) continue;
    yield (first ? '' : ',') + list.map((a) => JSON.stringify(a)).join(',');
    first = false;
  }
  yield `],"categories":${JSON.stringify(COCO_CATEGORIES)}}`;
}

/** The export's one category (COCO's "person"). */
const COCO_CATEGORIES: CocoExport['categories'] = [{ id: COCO_PERSON_CATEGORY, name: 'person', supercategory: 'person' }];

function cocoInfo(o: CocoOptions): CocoExport['info'] {
  return { description: 'DataPrep Pipeline tracked players', video_guid: o.videoGuid };
}

function cocoImage(f: ExportFrame, o: CocoOptions): CocoExport['images'][number] {
  return { id: f.frame_id + 1, file_name: o.fileName(f.frame_id), width: f.width, height: f.height, frame_id: f.frame_id };
}

/** The annotations of each of `sorted` (ascending frame ids), a list per frame, numbered on from 1 across frames. */
function* cocoAnnotations(sorted: readonly ExportFrame[], o: CocoOptions): Generator<CocoExport['annotations']> {
  let id = 0;
  for (const f of sorted) {
    const list: CocoExport['annotations'] = [];
    for (const d of [...f.detections].sort((a, b) => a.track_id - b.track_id)) {
      const [x1, y1, x2, y2] = d.bbox;
      const label = o.labelOf?.(d.track_id);
      list.push({
        id: ++id,
        image_id: f.frame_id + 1,
        category_id: COCO_PERSON_CATEGORY,
        bbox: [x1, y1, size(x1, x2), size(y1, y2)],
        area: Number((size(x1, x2) * size(y1, y2)).toFixed(SIZE_DECIMALS)),
        iscrowd: 0,
        score: d.score,
        track_id: d.track_id,
        attributes: { track_id: d.track_id, team: label?.team ?? null, role: label?.role ?? null },
      });
    }
    yield list;
  }
}

/** A box of an imported MOT file, on a sampled frame. */
export interface ImportedBox {
  /** MOT `id` - 1 (the inverse of {@link motText}). */
  track_id: number;
  /** `[x1, y1, x2, y2]` in source pixels, rounded to 2 decimals as stored boxes are. */
  bbox: [number, number, number, number];
  /** The line's `conf`, or 1 when it has none or a negative one (a hand-drawn box). */
  score: number;
}

/** Result of {@link tracksFromMot}. */
export interface ImportedTracks {
  /** Boxes by sampled frame id (every sampled frame present, possibly with no box), in MOT id order. */
  frames: Map<number, ImportedBox[]>;
  /** Boxes on sampled frames. */
  boxes: number;
  /** Boxes on frames that are not sampled (ignored: interpolated frames of an annotation tool, say). */
  notSampled: number;
  /** Distinct track ids on sampled frames. */
  tracks: number;
}

/**
 * Reads corrected tracks in MOT Challenge form (as {@link motText} writes them, or as CVAT and FiftyOne
 * export them) onto a video's sampled frames: `frame` - 1 is the `frame_id`, `id` - 1 the `track_id`. Lines
 * whose `conf` is 0 are MOT "ignore" entries and are skipped.
 * @param name the file's name in error messages (the caller's source)
 * @param frameIds the video's sampled frame ids
 * @throws PipelineError(InvalidInput, `name:line`) from `parseMotGroundTruth` (./identity/groundTruth.ts) for a
 *   malformed line or a track twice in a frame; PipelineError(InvalidInput, name) when no box falls on a
 *   sampled frame
 */
export function tracksFromMot(text: string, name: string, frameIds: readonly number[]): ImportedTracks {
  const sampled = new Set(frameIds);
  const frames = new Map<number, ImportedBox[]>(frameIds.map((id) => [id, []]));
  let notSampled = 0;
  const ids = new Set<number>();
  for (const b of parseMotGroundTruth(text, name)) {
    if (!sampled.has(b.frameId)) {
      notSampled++;
      continue;
    }
    ids.add(b.personId);
    frames.get(b.frameId)!.push({ track_id: b.personId - 1, bbox: b.bbox.map(round2) as ImportedBox['bbox'], score: b.conf !== undefined && b.conf > 0 ? b.conf : 1 });
  }
  const boxes = [...frames.values()].reduce((s, l) => s + l.length, 0);
  if (boxes === 0) throw invalidInput(name, `no box lies on one of the video's ${frameIds.length} sampled frames (MOT frames are 1-based: frame = frame_id + 1)${notSampled ? `; ${notSampled} boxes are on other frames` : ''}`);
  for (const l of frames.values()) l.sort((a, b) => a.track_id - b.track_id);
  return { frames, boxes, notSampled, tracks: ids.size };
}

/** Rounds to 2 decimals, the precision of stored boxes (`round2` in src/vision/players.ts). */
const round2 = (x: number) => Math.round(x * 100) / 100;

/**
 * Identity ground truth in MOT Challenge format (Milan et al., "MOT16: A Benchmark for Multi-Object
 * Tracking", arXiv:1603.00831, section 3.3), as kept under `test/fixtures/identity/{video}/`:
 *
 * - `gt.txt`: one box per line, `frame,id,x1,y1,w,h,conf,x,y,z`; `frame` is 1-based (= the pipeline's
 *   `frame_id` + 1), `id` the person (positive integer), the box in source-frame pixels; lines whose `conf`
 *   is 0 are "ignore" entries in MOT and are skipped;
 * - `frames.txt`: the annotated frames (same 1-based numbers), one per line: every person visible in them is
 *   in `gt.txt`, so a frame with no box there has nobody in it;
 * - `identities.csv`: `id,team,role` with team `A`, `B` or `-` and role `player`, `goalkeeper`, `referee` or
 *   `other` (a header line is allowed).
 *
 * Pure parsing of the files' text; the caller reads the files. Frames are converted to the pipeline's
 * 0-based `frame_id` here, once.
 */
import { invalidInput } from '../../errors';
import type { BBox } from '../../vision/detection/geometry';

/** A person's role in the footage. */
export type IdentityRole = 'player' | 'goalkeeper' | 'referee' | 'other';
/** Team label (arbitrary names A and B), or null for none (`-`). */
export type TeamLabel = 'A' | 'B' | null;

/** One annotated box. */
export interface GtBox {
  /** The pipeline's frame_id (0-based source frame index) = MOT frame - 1. */
  frameId: number;
  /** Person id (positive integer). */
  personId: number;
  /** [x1, y1, x2, y2] in source-frame pixels. */
  bbox: BBox;
  /** The line's `conf` field (7th), when it has one. */
  conf?: number;
}

/** Team and role of one person. */
export interface IdentityLabel {
  team: TeamLabel;
  role: IdentityRole;
}

/** A video's identity ground truth. */
export interface IdentityGroundTruth {
  /** Annotated frame ids (0-based frame_id), ascending. */
  frameIds: number[];
  boxes: GtBox[];
  /** Team and role per person id; empty when the fixture has no `identities.csv`. */
  identities: Map<number, IdentityLabel>;
}

const ROLES: readonly IdentityRole[] = ['player', 'goalkeeper', 'referee', 'other'];

const dataLines = (text: string) =>
  text
    .split(/\r?\n/)
    .map((l, i) => ({ line: l.trim(), n: i + 1 }))
    .filter((l) => l.line !== '' && !l.line.startsWith('#'));

/**
 * Parses a MOT `gt.txt`.
 * @param name the file's name for error messages
 * @returns boxes with 0-based frame ids, in file order
 * @throws PipelineError(InvalidInput, `name:line`) for a line with fewer than 6 fields, a non-numeric field,
 *   a frame < 1, an id that is not a positive integer, a width or height <= 0, or a person twice in a frame
 */
export function parseMotGroundTruth(text: string, name = 'gt.txt'): GtBox[] {
  const boxes: GtBox[] = [];
  const seen = new Set<string>();
  for (const { line, n } of dataLines(text)) {
    const f = line.split(',').map((s) => Number(s.trim()));
    const where = `${name}:${n}`;
    if (f.length < 6 || f.slice(0, 6).some((v) => !Number.isFinite(v))) throw invalidInput(where, `expected frame,id,x1,y1,w,h[,conf,...] numbers, got "${line}"`);
    const [frame, id, x, y, w, h] = f;
    if (f.length >= 7 && f[6] === 0) continue; // MOT "ignore" entry
    if (!Number.isInteger(frame) || frame < 1) throw invalidInput(where, `frame must be an integer >= 1 (MOT frames are 1-based), got ${frame}`);
    if (!Number.isInteger(id) || id < 1) throw invalidInput(where, `id must be a positive integer, got ${id}`);
    if (!(w > 0 && h > 0)) throw invalidInput(where, `width and height must be > 0, got ${w} x ${h}`);
    const key = `${frame}/${id}`;
    if (seen.has(key)) throw invalidInput(where, `person ${id} appears twice in frame ${frame}`);
    seen.add(key);
    boxes.push({ frameId: frame - 1, personId: id, bbox: [x, y, x + w, y + h], ...(f.length >= 7 ? { conf: f[6] } : {}) });
  }
  return boxes;
}

/**
 * Parses `frames.txt`.
 * @returns 0-based frame ids, ascending, distinct
 * @throws PipelineError(InvalidInput, `name:line`) for a line that is not an integer >= 1
 */
export function parseFrameList(text: string, name = 'frames.txt'): number[] {
  const ids = new Set<number>();
  for (const { line, n } of dataLines(text)) {
    const v = Number(line);
    if (!Number.isInteger(v) || v < 1) throw invalidInput(`${name}:${n}`, `expected a 1-based frame number, got "${line}"`);
    ids.add(v - 1);
  }
  return [...ids].sort((a, b) => a - b);
}

/**
 * Parses `identities.csv` (`id,team,role`; a first line starting with `id` is a header).
 * @throws PipelineError(InvalidInput, `name:line`) for a bad id, team or role, or a repeated id
 */
export function parseIdentities(text: string, name = 'identities.csv'): Map<number, IdentityLabel> {
  const out = new Map<number, IdentityLabel>();
  for (const { line, n } of dataLines(text)) {
    if (/^id\s*,/i.test(line)) continue;
    const [idS, teamS, roleS] = line.split(',').map((s) => s.trim());
    const where = `${name}:${n}`;
    const id = Number(idS);
    if (!Number.isInteger(id) || id < 1) throw invalidInput(where, `id must be a positive integer, got "${idS}"`);
    if (teamS !== 'A' && teamS !== 'B' && teamS !== '-') throw invalidInput(where, `team must be A, B or -, got "${teamS}"`);
    if (!ROLES.includes(roleS as IdentityRole)) throw invalidInput(where, `role must be one of ${ROLES.join(', ')}, got "${roleS}"`);
    if (out.has(id)) throw invalidInput(where, `id ${id} is listed twice`);
    out.set(id, { team: teamS === '-' ? null : teamS, role: roleS as IdentityRole });
  }
  return out;
}

/**
 * A video's ground truth from the texts of its files.
 * @param files `gt` (gt.txt), `frames` (frames.txt, optional: default the frames that have boxes),
 *   `identities` (identities.csv, optional)
 * @throws PipelineError(InvalidInput) as the parsers do, and when a box lies on a frame missing from
 *   `frames.txt`
 */
export function parseIdentityGroundTruth(files: { gt: string; frames?: string; identities?: string }): IdentityGroundTruth {
  const boxes = parseMotGroundTruth(files.gt);
  const frameIds = files.frames !== undefined ? parseFrameList(files.frames) : [...new Set(boxes.map((b) => b.frameId))].sort((a, b) => a - b);
  const annotated = new Set(frameIds);
  const stray = boxes.find((b) => !annotated.has(b.frameId));
  if (stray) throw invalidInput('gt.txt', `frame ${stray.frameId + 1} has boxes but is not listed in frames.txt`);
  return { frameIds, boxes, identities: files.identities !== undefined ? parseIdentities(files.identities) : new Map() };
}

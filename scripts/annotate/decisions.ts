/**
 * Annotation tooling (pure): the decisions a person made by looking (tracklet splits, tracklet -> person,
 * boxes that are not people), a first proposal of tracklet -> person to start from, and the ground-truth
 * files made from them. File formats: test/fixtures/identity/README.md.
 */
import type { AnnotFrame } from './boxes';
import type { Tracklet, TrackletBox, TrackletOptions } from './tracklets';

/** Team of an identity: `A`/`B` by kit, `-` for none (not a player, or footage without teams). */
export type Team = 'A' | 'B' | '-';
/** Role of an identity. */
export type Role = 'player' | 'goalkeeper' | 'referee' | 'other';

/** One person of the decisions file. */
export interface PersonDecision {
  /** Tracklet keys: `"12"` for a whole tracklet, `"12.2"` for the second part of a split one. */
  tracklets: string[];
  team?: Team;
  role?: Role;
  note?: string;
}

/** Contents of `scripts/annotate/<video>-assignments.json`. */
export interface Decisions {
  video: string;
  /** Path of the source video the tracklets were made from. */
  source: string;
  stride: number;
  /** Annotated sampled frames: frame ids first..last inclusive (the pipeline's frame_id). */
  firstFrameId: number;
  lastFrameId: number;
  /**
   * Inclusive frame-id ranges inside first..last that are not annotated (e.g. a camera dissolve, where two
   * shots are superimposed); tracklets never cross them.
   */
  excludeFrameIds?: [number, number][];
  tracklets: TrackletOptions;
  /** Tracklet number -> frame ids where a new part starts (parts are keyed `N.1`, `N.2`, ...). */
  splits: Record<string, number[]>;
  /** Person id (positive integer, as a string key) -> its tracklets and labels. */
  persons: Record<string, PersonDecision>;
  /**
   * Tracklet keys left out of the ground truth: not a person (false detections, a box over two people,
   * a duplicate box of someone already boxed), or a person off the pitch on soccer footage (spectators,
   * bench, ball boys).
   */
  notPerson: string[];
  /**
   * Tracklet keys that show a person who cannot be told by looking (a sliver at the frame edge, a box
   * over two people): left out of the ground truth like `notPerson`, but counted apart in the README.
   */
  ambiguous?: string[];
  /** Free-text notes: misses seen, doubtful cases. */
  notes?: string[];
}

/** True when sampled frame `frameId` is annotated under `d` (inside first..last and not excluded). */
export function annotated(d: Pick<Decisions, 'firstFrameId' | 'lastFrameId' | 'excludeFrameIds'>, frameId: number): boolean {
  return frameId >= d.firstFrameId && frameId <= d.lastFrameId && !(d.excludeFrameIds ?? []).some(([a, b]) => frameId >= a && frameId <= b);
}

/** A tracklet or a part of a split tracklet, with its key. */
export interface TrackletPart {
  key: string;
  boxes: TrackletBox[];
}

/**
 * Applies `splits` to `tracklets`.
 * @returns the parts in tracklet order
 * @throws Error when a split names an unknown tracklet or a frame outside it (a new part must be non-empty)
 */
export function splitTracklets(tracklets: readonly Tracklet[], splits: Record<string, number[]>): TrackletPart[] {
  const byId = new Map(tracklets.map((t) => [String(t.id), t]));
  for (const [k, at] of Object.entries(splits)) {
    const t = byId.get(k);
    if (!t) throw new Error(`split of unknown tracklet ${k}`);
    for (const f of at) {
      if (!(f > t.boxes[0].frameId && f <= t.boxes[t.boxes.length - 1].frameId)) throw new Error(`split of tracklet ${k} at frame ${f} is not inside it`);
    }
  }
  const out: TrackletPart[] = [];
  for (const t of tracklets) {
    const at = [...(splits[String(t.id)] ?? [])].sort((a, b) => a - b);
    if (at.length === 0) {
      out.push({ key: String(t.id), boxes: t.boxes });
      continue;
    }
    const bounds = [-Infinity, ...at, Infinity];
    for (let i = 0; i + 1 < bounds.length; i++) {
      out.push({ key: `${t.id}.${i + 1}`, boxes: t.boxes.filter((b) => b.frameId >= bounds[i] && b.frameId < bounds[i + 1]) });
    }
  }
  return out;
}

/** One ground-truth box: MOT frame (frame_id + 1), person id, bbox [x1, y1, x2, y2] in source pixels. */
export interface GtBox {
  frame: number;
  id: number;
  bbox: [number, number, number, number];
}

/** Result of {@link applyDecisions}. */
export interface GroundTruth {
  boxes: GtBox[];
  /** MOT frame numbers annotated. */
  frames: number[];
  identities: { id: number; team: Team; role: Role }[];
}

/**
 * Turns tracklets and decisions into ground truth: every box of a person's tracklets in the annotated
 * frames becomes a row with the person's id.
 * @throws Error when a tracklet part is assigned twice or not at all (every detector box of the annotated
 *   frames is decided), when a key is unknown, or when a person has two boxes in one frame
 */
export function applyDecisions(frames: readonly AnnotFrame[], tracklets: readonly Tracklet[], d: Decisions): GroundTruth {
  const inRange = (f: number) => annotated(d, f);
  const parts = splitTracklets(tracklets, d.splits).filter((p) => p.boxes.some((b) => inRange(b.frameId)));
  const owner = new Map<string, number>();
  const use = (key: string, id: number) => {
    if (owner.has(key)) throw new Error(`tracklet ${key} is decided twice (${owner.get(key)} and ${id})`);
    owner.set(key, id);
  };
  for (const [pid, p] of Object.entries(d.persons)) {
    const id = Number(pid);
    if (!Number.isInteger(id) || id < 1) throw new Error(`person id ${pid} is not a positive integer`);
    for (const k of p.tracklets) use(k, id);
  }
  for (const k of [...d.notPerson, ...(d.ambiguous ?? [])]) use(k, 0);
  const known = new Set(splitTracklets(tracklets, d.splits).map((p) => p.key));
  for (const k of owner.keys()) if (!known.has(k)) throw new Error(`unknown tracklet key ${k}`);
  const undecided = parts.filter((p) => !owner.has(p.key)).map((p) => p.key);
  if (undecided.length) throw new Error(`${undecided.length} tracklets are not decided: ${undecided.slice(0, 30).join(' ')}`);
  const boxes: GtBox[] = [];
  const seen = new Map<string, string>();
  for (const p of parts) {
    const id = owner.get(p.key)!;
    if (id === 0) continue;
    for (const b of p.boxes) {
      if (!inRange(b.frameId)) continue;
      const k = `${b.frameId}/${id}`;
      if (seen.has(k)) throw new Error(`person ${id} has two boxes in frame ${b.frameId} (tracklets ${seen.get(k)} and ${p.key})`);
      seen.set(k, p.key);
      boxes.push({ frame: b.frameId + 1, id, bbox: b.bbox });
    }
  }
  boxes.sort((a, b) => a.frame - b.frame || a.id - b.id);
  const used = new Set(boxes.map((b) => b.id));
  const identities = Object.entries(d.persons)
    .map(([pid, p]) => ({ id: Number(pid), team: p.team ?? '-', role: p.role ?? 'other' }))
    .filter((x) => used.has(x.id))
    .sort((a, b) => a.id - b.id);
  return { boxes, frames: frames.filter((f) => inRange(f.frameId)).map((f) => f.frameId + 1), identities };
}

/** Formats boxes as MOT Challenge ground truth: `frame,id,x,y,w,h,1,-1,-1,-1`, 2 decimals, one per line. */
export function formatMot(boxes: readonly GtBox[]): string {
  const n = (x: number) => String(Math.round(x * 100) / 100);
  return boxes.map((b) => `${b.frame},${b.id},${n(b.bbox[0])},${n(b.bbox[1])},${n(b.bbox[2] - b.bbox[0])},${n(b.bbox[3] - b.bbox[1])},1,-1,-1,-1\n`).join('');
}

/** Center x, center y and height of a box. */
const geom = (b: TrackletBox) => ({ x: (b.bbox[0] + b.bbox[2]) / 2, y: (b.bbox[1] + b.bbox[3]) / 2, h: b.bbox[3] - b.bbox[1] });

/**
 * A first guess of tracklet -> person for a person to correct: chains a part that ends to one that starts
 * at most `maxGap` sampled frames later, near where the first is predicted (velocity over its last up to 5
 * boxes; distance below `maxDist` box heights, plus 0.1 per sampled frame of gap) and of similar height
 * (ratio within 0.7..1.43). Links are taken greedily by distance, each end and each start once. It is only
 * a starting point: every chain is checked by looking at its sheet.
 * @returns person id -> part keys, persons numbered by first frame
 */
export function proposePersons(parts: readonly TrackletPart[], stride: number, maxGap = 8, maxDist = 0.6): Record<string, string[]> {
  const links: { a: number; b: number; cost: number }[] = [];
  for (let i = 0; i < parts.length; i++) {
    const A = parts[i].boxes;
    const end = A[A.length - 1];
    const e = geom(end);
    const k = Math.min(5, A.length - 1);
    const s0 = geom(A[A.length - 1 - k]);
    const vx = k > 0 ? (e.x - s0.x) / (end.frameId - A[A.length - 1 - k].frameId) : 0;
    const vy = k > 0 ? (e.y - s0.y) / (end.frameId - A[A.length - 1 - k].frameId) : 0;
    for (let j = 0; j < parts.length; j++) {
      const start = parts[j].boxes[0];
      const gap = (start.frameId - end.frameId) / stride;
      if (gap < 1 || gap > maxGap) continue;
      const s = geom(start);
      const dt = start.frameId - end.frameId;
      const dist = Math.hypot(e.x + vx * dt - s.x, e.y + vy * dt - s.y) / e.h;
      const ratio = s.h / e.h;
      if (ratio < 0.7 || ratio > 1.43 || dist > maxDist + 0.1 * gap) continue;
      links.push({ a: i, b: j, cost: dist + 0.05 * gap });
    }
  }
  links.sort((p, q) => p.cost - q.cost);
  const next = new Map<number, number>();
  const prev = new Map<number, number>();
  for (const l of links) {
    if (next.has(l.a) || prev.has(l.b)) continue;
    next.set(l.a, l.b);
    prev.set(l.b, l.a);
  }
  const out: Record<string, string[]> = {};
  let pid = 0;
  for (let i = 0; i < parts.length; i++) {
    if (prev.has(i)) continue;
    const chain: string[] = [];
    for (let j: number | undefined = i; j !== undefined; j = next.get(j)) chain.push(parts[j].key);
    out[String(++pid)] = chain;
  }
  return out;
}

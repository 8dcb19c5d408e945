/**
 * Reader of an identity ground-truth folder (test/fixtures/identity/<video>/, format in its README.md):
 * `gt.txt` (MOT Challenge ground truth), `frames.txt`, `identities.csv`. Strict: any malformed line throws.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { GtBox, Role, Team } from './decisions';

/** A parsed identity fixture. */
export interface IdentityFixture {
  /** Boxes in file order; `frame` is 1-based (pipeline frame_id + 1), bbox [x1, y1, x2, y2] source pixels. */
  boxes: GtBox[];
  /** Annotated MOT frame numbers, in file order. */
  frames: number[];
  identities: Map<number, { team: Team; role: Role }>;
}

const TEAMS = new Set(['A', 'B', '-']);
const ROLES = new Set(['player', 'goalkeeper', 'referee', 'other']);

/**
 * Reads and parses the three files of `dir`.
 * @throws Error naming the file and line for a malformed line (wrong field count, non-numeric field,
 *   non-positive id or frame, non-positive width/height, unknown team/role, missing header)
 */
export function readIdentityFixture(dir: string): IdentityFixture {
  const lines = (f: string) => readFileSync(path.join(dir, f), 'utf8').split('\n').filter((l) => l.trim() !== '');
  const boxes = lines('gt.txt').map((l, i) => {
    const v = l.split(',').map(Number);
    const where = `gt.txt line ${i + 1}`;
    if (v.length !== 10 || v.some((x) => !Number.isFinite(x))) throw new Error(`${where}: expected 10 numbers, got ${JSON.stringify(l)}`);
    const [frame, id, x, y, w, h, conf, ...rest] = v;
    if (!Number.isInteger(frame) || frame < 1 || !Number.isInteger(id) || id < 1) throw new Error(`${where}: frame and id must be positive integers`);
    if (!(w > 0 && h > 0)) throw new Error(`${where}: width and height must be positive`);
    if (conf !== 1 || rest.some((r) => r !== -1)) throw new Error(`${where}: fields 7-10 must be 1,-1,-1,-1`);
    return { frame, id, bbox: [x, y, x + w, y + h] as [number, number, number, number] };
  });
  const frames = lines('frames.txt').map((l, i) => {
    const f = Number(l);
    if (!Number.isInteger(f) || f < 1) throw new Error(`frames.txt line ${i + 1}: not a positive integer: ${JSON.stringify(l)}`);
    return f;
  });
  const ids = lines('identities.csv');
  if (ids[0] !== 'id,team,role') throw new Error(`identities.csv: header must be id,team,role`);
  const identities = new Map<number, { team: Team; role: Role }>();
  ids.slice(1).forEach((l, i) => {
    const [id, team, role, extra] = l.split(',');
    const where = `identities.csv line ${i + 2}`;
    if (extra !== undefined || !Number.isInteger(Number(id)) || Number(id) < 1) throw new Error(`${where}: expected id,team,role`);
    if (!TEAMS.has(team) || !ROLES.has(role)) throw new Error(`${where}: unknown team ${team} or role ${role}`);
    if (identities.has(Number(id))) throw new Error(`${where}: id ${id} listed twice`);
    identities.set(Number(id), { team: team as Team, role: role as Role });
  });
  return { boxes, frames, identities };
}

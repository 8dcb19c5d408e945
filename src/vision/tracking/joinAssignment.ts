/**
 * Joins decided by a two-way (assignment) comparison instead of per-pair mutual best: around a crossing of
 * two people, the tracklet A that ends has two starting rivals (A' and B'), and so has B; mutual best with a
 * margin refuses both joins whenever the colours of A' and B' are near, even when A' matches A and B' matches
 * B clearly better than the swap. Comparing whole assignments decides such a crossing on the evidence of
 * both people at once: join A -> A' only when every assignment that gives A or A' another partner is worse
 * by a margin.
 *
 * Formulation (the standard one of global data association, e.g. Zhang, Li and Nevatia, "Global data
 * association for multi-object tracking using network flows", CVPR 2008, where a link's cost is weighed
 * against leaving both ends unlinked): every candidate pair e = (a, b) whose appearance distance is at most
 * `maxAppearance` has the gain g(e) = `noJoinCost` - cost(e) > 0 (cost as in ./join.ts: appearance distance
 * + positionWeight x position distance; `noJoinCost` is the largest cost a gated pair can have, so leaving
 * a gated pair unjoined is never preferred to joining it when nothing else competes). M* is the matching
 * (each tracklet joined at most once on each side) of largest total gain, solved per connected component
 * of the candidate graph with the Hungarian algorithm (`munkres` npm package). A pair p = (a, b) of M* is
 * joined when, for every other candidate e that shares a or b with p, the best matching containing e has a
 * total gain at least `margin` below M*'s (Lowe's ratio test, IJCV 2004, applied to whole assignments; with
 * a single rival on each side this is mutual best with a margin, as ./join.ts decides).
 */
import munkres from 'munkres';

/** A gated candidate pair with its cost (lower is better). */
export interface CostedPair {
  from: number;
  to: number;
  cost: number;
}

/** Options of {@link assignmentJoins}. */
export interface AssignmentJoinOptions {
  /** Cost of leaving a pair unjoined; each pair's gain is this minus its cost. Must exceed every pair's cost. */
  noJoinCost: number;
  /** Gain by which M* must beat every matching that gives either end of a pair another partner. */
  margin: number;
}

/** Largest total gain of a matching over `pairs` (gains > 0), by the Hungarian algorithm on a padded square matrix. */
function bestGain(pairs: readonly { from: number; to: number; gain: number }[]): { gain: number; chosen: Set<number> } {
  if (pairs.length === 0) return { gain: 0, chosen: new Set() };
  if (pairs.length === 1) return { gain: pairs[0].gain, chosen: new Set([0]) };
  const rows = [...new Set(pairs.map((p) => p.from))];
  const cols = [...new Set(pairs.map((p) => p.to))];
  const n = Math.max(rows.length, cols.length);
  const idx = new Map<string, number>();
  const m = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  pairs.forEach((p, k) => {
    const i = rows.indexOf(p.from);
    const j = cols.indexOf(p.to);
    m[i][j] = -p.gain;
    idx.set(`${i},${j}`, k);
  });
  let gain = 0;
  const chosen = new Set<number>();
  for (const [i, j] of munkres(m)) {
    const k = idx.get(`${i},${j}`);
    if (k === undefined) continue;
    gain += pairs[k].gain;
    chosen.add(k);
  }
  return { gain, chosen };
}

/** Connected components of the pair graph (pairs sharing a `from` or a `to`), as lists of indices into `pairs`. */
function components(pairs: readonly CostedPair[]): number[][] {
  const parent = pairs.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]];
    return i;
  };
  const firstBy = new Map<string, number>();
  pairs.forEach((p, i) => {
    for (const key of [`f${p.from}`, `t${p.to}`]) {
      const j = firstBy.get(key);
      if (j === undefined) firstBy.set(key, i);
      else parent[find(i)] = find(j);
    }
  });
  const out = new Map<number, number[]>();
  pairs.forEach((_, i) => {
    const r = find(i);
    if (!out.has(r)) out.set(r, []);
    out.get(r)!.push(i);
  });
  return [...out.values()];
}

/**
 * The pairs to join (file header): those of the largest-gain matching that beat, by `margin`, every
 * matching giving one of their ends another partner.
 * @param pairs gated candidates (appearance already within the gate), each with cost < `noJoinCost`
 * @returns the joined pairs, a subset of `pairs` (each `from` and each `to` at most once), in input order
 * @throws RangeError when a pair's cost is not below `noJoinCost`, or `margin` is negative
 */
export function assignmentJoins<P extends CostedPair>(pairs: readonly P[], opts: AssignmentJoinOptions): P[] {
  if (!(opts.margin >= 0)) throw new RangeError(`margin must be >= 0, got ${opts.margin}`);
  for (const p of pairs) if (!(p.cost < opts.noJoinCost)) throw new RangeError(`pair ${p.from}->${p.to} costs ${p.cost}, not below noJoinCost ${opts.noJoinCost}`);
  const keep = new Set<number>();
  for (const comp of components(pairs)) {
    const local = comp.map((i) => ({ from: pairs[i].from, to: pairs[i].to, gain: opts.noJoinCost - pairs[i].cost, i }));
    const best = bestGain(local);
    for (const k of best.chosen) {
      const p = local[k];
      const clear = local.every((e) => {
        if (e === p || (e.from !== p.from && e.to !== p.to)) return true;
        const rest = local.filter((x) => x.from !== e.from && x.to !== e.to);
        return e.gain + bestGain(rest).gain <= best.gain - opts.margin;
      });
      if (clear) keep.add(p.i);
    }
  }
  return pairs.filter((_, i) => keep.has(i));
}

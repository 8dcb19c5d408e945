/**
 * Minimum-cost assignment with a cost limit, as ByteTrack's association stages use it (sources in
 * `./bytetrack`).
 */
import munkres from 'munkres';

/** Result of {@link linearAssignment}: index pairs [row, col] and the rows/cols left unmatched (ascending). */
export interface AssignmentResult {
  matches: [number, number][];
  unmatchedRows: number[];
  unmatchedCols: number[];
}

/**
 * Minimum-cost assignment with a cost limit, the semantics of the reference's
 * `matching.linear_assignment(cost, thresh)` = `lap.lapjv(cost, extend_cost=True, cost_limit=thresh)`:
 * the R x C matrix is extended to (R + C) x (R + C) where leaving a row or a column unmatched costs
 * thresh / 2, so a pair is only matched when its cost is at most thresh (matching it is no dearer than
 * leaving both ends unmatched), and the total cost is minimal. Solved with the Hungarian (Munkres)
 * algorithm of the `munkres` npm package.
 *
 * Speed-up (exact): a pair with cost > thresh is never part of an optimal extended assignment (two dummy
 * entries cost thresh in all), so the bipartite graph of pairs with cost <= thresh is split into connected
 * components and each is solved on its own (a 1 x 1 component is matched directly). On a typical frame
 * most components are single track-detection pairs, so the cost is far below O((R + C)^3).
 *
 * @param cost R rows, each with at least C finite costs (row = track, column = detection); use any value
 *   above `thresh` to forbid a pair
 * @param cols C, the number of columns (needed when R is 0)
 * @param thresh cost limit, > 0
 * @returns matches as [row, col] sorted by row, unmatched rows and cols ascending
 */
export function linearAssignment(cost: readonly ArrayLike<number>[], cols: number, thresh: number): AssignmentResult {
  const R = cost.length;
  const C = cols;
  const matches: [number, number][] = [];
  // Union-find over rows 0..R-1 and columns R..R+C-1, joined by feasible pairs.
  const parent = Array.from({ length: R + C }, (_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]];
    return i;
  };
  const hasEdge = new Array<boolean>(R + C).fill(false);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) {
      if (cost[r][c] <= thresh) {
        hasEdge[r] = hasEdge[R + c] = true;
        parent[find(r)] = find(R + c);
      }
    }
  }
  const comps = new Map<number, { rows: number[]; cols: number[] }>();
  for (let i = 0; i < R + C; i++) {
    if (!hasEdge[i]) continue;
    const root = find(i);
    let comp = comps.get(root);
    if (!comp) comps.set(root, (comp = { rows: [], cols: [] }));
    if (i < R) comp.rows.push(i);
    else comp.cols.push(i - R);
  }
  const half = thresh / 2;
  for (const { rows, cols: cs } of comps.values()) {
    if (rows.length === 1 && cs.length === 1) {
      matches.push([rows[0], cs[0]]);
      continue;
    }
    const nr = rows.length;
    const nc = cs.length;
    const n = nr + nc;
    const ext: Float64Array[] = [];
    for (let i = 0; i < n; i++) {
      const row = new Float64Array(n);
      if (i < nr) {
        for (let j = 0; j < nc; j++) row[j] = cost[rows[i]][cs[j]];
        row.fill(half, nc);
      } else {
        row.fill(half, 0, nc); // the bottom-right block stays 0
      }
      ext.push(row);
    }
    for (const [i, j] of munkres(ext)) {
      if (i < nr && j < nc && cost[rows[i]][cs[j]] <= thresh) matches.push([rows[i], cs[j]]);
    }
  }
  matches.sort((a, b) => a[0] - b[0]);
  const rowMatched = new Array<boolean>(R).fill(false);
  const colMatched = new Array<boolean>(C).fill(false);
  for (const [r, c] of matches) rowMatched[r] = colMatched[c] = true;
  const unmatchedRows: number[] = [];
  const unmatchedCols: number[] = [];
  for (let r = 0; r < R; r++) if (!rowMatched[r]) unmatchedRows.push(r);
  for (let c = 0; c < C; c++) if (!colMatched[c]) unmatchedCols.push(c);
  return { matches, unmatchedRows, unmatchedCols };
}

// ---------------------------------------------------------------------------------------------------------
// Tracker
// ---------------------------------------------------------------------------------------------------------

/**
 * Clustering of robust kit colours (./kit.ts) into the two teams of a match, with the people who wear
 * neither team's kit (referees, goalkeepers) kept apart as outliers. Pure and deterministic.
 *
 * 1. **Two teams**: trimmed k-means with k = 2 in CIELAB (Cuesta-Albertos, Gordaliza & Matrán, "Trimmed
 *    k-means: an attempt to robustify quantizers", Annals of Statistics 25(2), 1997): Lloyd's iterations
 *    (Lloyd, "Least squares quantization in PCM", IEEE Trans. Inf. Theory 28(2), 1982) where each
 *    iteration leaves out the `trim` share of classes farthest from their nearest centre, so the few
 *    officials and goalkeepers do not pull a team's centre. Initialisation is deterministic: every pair of
 *    classes (of at most {@link MAX_SEEDS} evenly chosen ones) seeds a run, and the run with the lowest
 *    trimmed cost wins (ties: the first pair), so the same input always gives the same teams.
 * 2. **Outliers**: a class whose distance to the nearest centre exceeds a robust threshold — the median
 *    distance plus `outlierMads` scaled median absolute deviations (Hampel's identifier; Leys et al.,
 *    "Detecting outliers: do not use standard deviation around the mean, use absolute deviation around the
 *    median", J. Exp. Soc. Psychol. 49(4), 2013, recommend 2.5), and at least `minOutlierDistance` ΔE so
 *    that tight teams do not turn measurement noise into outliers — wears neither team's kit.
 * 3. **Two teams or not**: the teams are accepted only when they are well separated: mean silhouette of the
 *    non-outlier classes at least `minSilhouette` (Rousseeuw, "Silhouettes: a graphical aid to the
 *    interpretation and validation of cluster analysis", J. Comput. Appl. Math. 20, 1987; Kaufman &
 *    Rousseeuw, "Finding Groups in Data", 1990, read an average above 0.5 as a reasonable structure), the
 *    centres at least `minTeamDistance` ΔE apart, and at least 2 classes in each team. Otherwise the video
 *    has one team (or none worth the name), and says so.
 * 4. **Roles**: team members are `player`. The outliers are `referee`, `goalkeeper` or `other` by the rules
 *    of ./roles.ts (a kit no team wears seen on two people at once, or the outlier kit seen longest, is the
 *    officials'; a kit far from both teams and unlike the officials' is a goalkeeper's, team not guessed).
 *
 * Only classes with at least `minBoxes` box colours take part in fitting; shorter classes are then placed
 * by the same rules (nearest centre within the threshold, else `other`). The thresholds' defaults, with
 * their reasons, are those of `options.teams` (src/validation.ts).
 */
import { deltaE, type Lab } from './lab';
import { markRoles } from './roles';
import type { ClassKitInput, ClassTeam } from './types';

/** Parameters of {@link assignTeams}: `options.teams` of src/validation.ts, where the defaults and their reasons are. */
export interface TeamParams {
  /** Fewest box colours for a class to take part in fitting the teams. */
  minBoxes: number;
  /** Share of classes left out of each trimmed k-means iteration, 0-0.5. */
  trim: number;
  /** Outlier threshold: median + this many scaled MADs of the distances to the nearest centre. */
  outlierMads: number;
  /** Smallest outlier threshold, ΔE. */
  minOutlierDistance: number;
  /** Smallest mean silhouette of the team members for two teams, -1 to 1. */
  minSilhouette: number;
  /** Smallest distance between the two team centres, ΔE. */
  minTeamDistance: number;
}

/** Classes seeding k-means at most (every pair of them seeds one run: 276 runs for 24). */
export const MAX_SEEDS = 24;
/** Lloyd iterations per run at most (they converge in a few). */
const MAX_ITERATIONS = 50;
/** Scale of the MAD that makes it a consistent estimator of the standard deviation for normal data. */
const MAD_SCALE = 1.4826;

export type { ClassKitInput, ClassTeam } from './types';

/**
 * Why a video has teams or not: `teams` (two separated teams), `no-pitch` (step 4 found no pitch, so no
 * match to take teams from), `too-few` (too few classes with kit colours to fit two teams), `one-team`
 * (the kits do not form two separated groups).
 */
export type TeamsStatus = 'teams' | 'no-pitch' | 'too-few' | 'one-team';

/** The teams of a video. */
export interface TeamsResult {
  status: TeamsStatus;
  /** One sentence for people, e.g. "no pitch: no teams". */
  reason: string;
  /** Team centres (CIELAB) when `status` is `teams`; the rejected split's centres for `one-team`; else null. */
  centres: { A: Lab; B: Lab } | null;
  /** The outlier threshold used, ΔE; null when there was no fit. */
  threshold: number | null;
  /** Mean silhouette of the fitted non-outlier classes; null when there was no fit. */
  silhouette: number | null;
  /** Every class given, in the order given. */
  classes: ClassTeam[];
}

function sqDist(p: Lab, q: Lab): number {
  return (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 + (p[2] - q[2]) ** 2;
}

function median(v: number[]): number {
  const s = v.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? 0 : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Result of one trimmed k-means run: centres, each point's cluster (0/1), the trimmed cost (sum of squared ΔE). */
interface Fit {
  centres: [Lab, Lab];
  label: number[];
  cost: number;
}

/**
 * Trimmed 2-means from the given seeds (module comment, step 1).
 * @param points the colours, at least 2
 * @param keep how many points (the nearest to their centre) count in each iteration
 */
export function trimmedTwoMeans(points: readonly Lab[], keep: number, seeds: [Lab, Lab]): Fit {
  const n = points.length;
  let centres: [Lab, Lab] = [[...seeds[0]], [...seeds[1]]];
  const label = new Array<number>(n).fill(0);
  const near = new Float64Array(n);
  const order = Array.from({ length: n }, (_, i) => i);
  let cost = Infinity;
  for (let it = 0; it < MAX_ITERATIONS; it++) {
    for (let i = 0; i < n; i++) {
      const d0 = sqDist(points[i], centres[0]);
      const d1 = sqDist(points[i], centres[1]);
      label[i] = d1 < d0 ? 1 : 0;
      near[i] = d1 < d0 ? d1 : d0;
    }
    order.sort((i, j) => near[i] - near[j] || i - j);
    const sum: [Lab, Lab] = [[0, 0, 0], [0, 0, 0]];
    const count = [0, 0];
    cost = 0;
    for (let r = 0; r < keep; r++) {
      const i = order[r];
      const c = label[i];
      cost += near[i];
      count[c]++;
      for (let k = 0; k < 3; k++) sum[c][k] += points[i][k];
    }
    const moved: [Lab, Lab] = [0, 1].map((c) => (count[c] ? (sum[c].map((v) => v / count[c]) as Lab) : centres[c])) as [Lab, Lab];
    // Converged: the same kept points in the same clusters give the same centres.
    const still = sqDist(moved[0], centres[0]) + sqDist(moved[1], centres[1]) < 1e-12;
    centres = moved;
    if (still) break;
  }
  return { centres, label, cost };
}

/** Best of the deterministic multi-start runs (module comment, step 1). */
function bestTwoMeans(points: readonly Lab[], trim: number): Fit {
  const keep = Math.max(2, points.length - Math.floor(trim * points.length));
  const step = Math.max(1, points.length / MAX_SEEDS);
  const seeds = Array.from({ length: Math.min(points.length, MAX_SEEDS) }, (_, i) => Math.floor(i * step));
  let best: Fit | undefined;
  for (let i = 0; i < seeds.length; i++) {
    for (let j = i + 1; j < seeds.length; j++) {
      if (sqDist(points[seeds[i]], points[seeds[j]]) === 0) continue;
      const fit = trimmedTwoMeans(points, keep, [points[seeds[i]], points[seeds[j]]]);
      if (!best || fit.cost < best.cost - 1e-9) best = fit;
    }
  }
  // All colours identical: one cluster at that colour.
  return best ?? { centres: [points[0], points[0]], label: points.map(() => 0), cost: 0 };
}

/**
 * Mean silhouette (Rousseeuw 1987) of points with labels 0/1; a point alone in its cluster scores 0.
 * @returns a number in [-1, 1]; 0 for fewer than 2 points
 */
export function meanSilhouette(points: readonly Lab[], label: readonly number[]): number {
  if (points.length < 2) return 0;
  let sum = 0;
  for (let i = 0; i < points.length; i++) {
    const acc = [0, 0];
    const n = [0, 0];
    for (let j = 0; j < points.length; j++) {
      if (j === i) continue;
      acc[label[j]] += deltaE(points[i], points[j]);
      n[label[j]]++;
    }
    const own = label[i];
    if (n[own] === 0 || n[1 - own] === 0) continue;
    const a = acc[own] / n[own];
    const b = acc[1 - own] / n[1 - own];
    sum += (b - a) / Math.max(a, b, 1e-12);
  }
  return sum / points.length;
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const roundLab = (c: Lab): Lab => [round1(c[0]), round1(c[1]), round1(c[2])];

/**
 * Team and role of every class of a video (algorithm in the module comment).
 * @param classes the video's classes with their kit colours
 * @param pitchFound whether step 4 found a pitch; without one the result is `no-pitch` with no teams
 * @param params thresholds (`options.teams`)
 * @returns the status with its reason, the centres, and a team and role per class (input order)
 */
export function assignTeams(classes: readonly ClassKitInput[], pitchFound: boolean, params: TeamParams): TeamsResult {
  const none = (status: TeamsStatus, reason: string, extra: Partial<TeamsResult> = {}): TeamsResult => ({
    status,
    reason,
    centres: null,
    threshold: null,
    silhouette: null,
    classes: classes.map((c) => ({ trackId: c.trackId, team: null, role: null, kit: c.kit && roundLab(c.kit), distance: null, fitted: false })),
    ...extra,
  });
  if (!pitchFound) return none('no-pitch', 'no pitch: no teams (step 4 found no pitch, so the people are not taken for two teams)');
  const fitIdx = classes.flatMap((c, i) => (c.kit && c.boxes >= params.minBoxes ? [i] : []));
  if (fitIdx.length < 4) return none('too-few', `too few classes for teams: ${fitIdx.length} with kit colours in at least ${params.minBoxes} boxes, 4 needed`);
  const points = fitIdx.map((i) => classes[i].kit!);
  const fit = bestTwoMeans(points, params.trim);
  const nearest = (p: Lab) => {
    const d0 = deltaE(p, fit.centres[0]);
    const d1 = deltaE(p, fit.centres[1]);
    return d1 < d0 ? { c: 1, d: d1 } : { c: 0, d: d0 };
  };
  const dist = points.map((p) => nearest(p).d);
  const med = median(dist);
  const mad = median(dist.map((d) => Math.abs(d - med)));
  const threshold = Math.max(params.minOutlierDistance, med + params.outlierMads * MAD_SCALE * mad);
  const inl = fitIdx.map((_, k) => k).filter((k) => dist[k] <= threshold);
  const sizes = [0, 1].map((c) => inl.filter((k) => fit.label[k] === c).length);
  // Team A: the cluster with more member classes; on a tie, the lighter kit.
  const aIdx = sizes[1] > sizes[0] || (sizes[1] === sizes[0] && fit.centres[1][0] > fit.centres[0][0]) ? 1 : 0;
  const centres = { A: roundLab(fit.centres[aIdx]), B: roundLab(fit.centres[1 - aIdx]) };
  const silhouette = Math.round(meanSilhouette(inl.map((k) => points[k]), inl.map((k) => fit.label[k])) * 1000) / 1000;
  const gap = deltaE(fit.centres[0], fit.centres[1]);
  const fitted = { centres, threshold: round1(threshold), silhouette };
  if (Math.min(...sizes) < 2) return none('one-team', `one team: the second kit group has ${Math.min(...sizes)} class(es) within ${round1(threshold)} ΔE of its centre, 2 needed`, fitted);
  if (gap < params.minTeamDistance) return none('one-team', `one team: the two kit groups are ${round1(gap)} ΔE apart, ${params.minTeamDistance} needed`, fitted);
  if (silhouette < params.minSilhouette) return none('one-team', `one team: the kit groups are not separated (mean silhouette ${silhouette}, ${params.minSilhouette} needed)`, fitted);

  const out: ClassTeam[] = classes.map((c) => {
    if (!c.kit) return { trackId: c.trackId, team: null, role: null, kit: null, distance: null, fitted: false };
    const { c: cl, d } = nearest(c.kit);
    const inlier = d <= threshold;
    return { trackId: c.trackId, team: inlier ? (cl === aIdx ? 'A' : 'B') : null, role: inlier ? 'player' : 'other', kit: roundLab(c.kit), distance: round1(d), fitted: c.boxes >= params.minBoxes };
  });
  markRoles(classes, out, { threshold, centres: { A: fit.centres[aIdx], B: fit.centres[1 - aIdx] }, minBoxes: params.minBoxes });
  const count = (pred: (c: ClassTeam) => boolean) => out.filter(pred).length;
  return {
    status: 'teams',
    reason: `two teams (A ${count((c) => c.team === 'A')} classes, B ${count((c) => c.team === 'B')}), ${count((c) => c.role === 'referee')} referee, ${count((c) => c.role === 'goalkeeper')} goalkeeper and ${count((c) => c.role === 'other')} other classes; centres ${round1(gap)} ΔE apart, mean silhouette ${silhouette}`,
    ...fitted,
    classes: out,
  };
}

/**
 * Roles of the classes that wear neither team's kit (the outliers of ./cluster.ts): referee, goalkeeper or
 * other. Pure and deterministic; runs after the teams are fitted.
 *
 * The Laws of the Game (IFAB, Law 4.3) require each goalkeeper to wear colours that distinguish them from
 * the other players and the match officials, and the officials wear one kit. So:
 *
 * 1. **Kit groups.** Outlier classes whose box colours are consistent (spread at most
 *    {@link MAX_OFFICIAL_SPREAD} of the outlier threshold: a class that mixes two people has a colour
 *    between theirs) and that have at least `minBoxes` box colours are grouped by kit, complete linkage at
 *    the outlier threshold. A group may hold several classes of one person that a tracker split (they never
 *    overlap in time) or several people in one kit (they may).
 * 2. **Officials.** A group with two classes seen in the same frame is the officials' kit (two people in a
 *    kit no team wears). Otherwise the group seen in the most frames is the referee's, when no group was
 *    seen twice at once: the referee follows play from kick-off to the final whistle (IFAB Law 5 and the
 *    "diagonal system of control" of its Practical Guidelines for Match Officials), so in a broadcast, which
 *    follows play too, the referee is on screen far more than a goalkeeper, who is near play only when it is
 *    near his goal. Its classes are `referee`.
 * 3. **Goalkeepers.** A remaining group whose kit lies at least {@link GOALKEEPER_DISTANCE} outlier
 *    thresholds from both team centres is a goalkeeper (at most two such groups, the farthest ones: one per
 *    team). A kit only just beyond the threshold is more likely a team kit measured badly (shadow, the
 *    colour of a board bleeding into a small shirt) than a kit chosen to be told apart at a glance. A
 *    goalkeeper's team is not guessed (null): roboflow/sports (`resolve_goalkeepers_team_id`,
 *    examples/soccer/main.py) takes the team whose players' centroid is nearer, in pitch coordinates; in
 *    image coordinates, without a pitch homography, the nearest players on screen are often the opposing
 *    attackers (tried on the soccer test clip: it named the wrong team).
 * 4. **Short classes** (fewer than `minBoxes` box colours, consistent) take the role of the referee or
 *    goalkeeper group whose nearest member kit is within the threshold.
 * 5. **Team kits measured badly.** A remaining consistent outlier whose kit lies within
 *    {@link GOALKEEPER_DISTANCE} outlier thresholds of a team centre, and nearer to that centre than to the
 *    other centre and to the kit of every referee and goalkeeper group (the per-channel median of its
 *    members' kits, as a class's kit is of its boxes), is that team's `player`: the nearest known kit
 *    explains it, and a kit that near a team was not chosen to be told apart from it (step 3). This is the
 *    nearest-class-mean rule with a reject distance. A group's median, not its nearest member, stands for
 *    it, so that one badly measured member at the group's edge does not pull the players measured like him
 *    away from their team. On the soccer test clip these outliers are red players in front of the blue
 *    boards (chroma bleed makes their shirts purple), white players tinted green by the grass in a dissolve,
 *    and shirts shaded dark; the referees and the goalkeeper among the outliers are nearer their own groups'
 *    kits and keep their roles.
 *
 * Everything else that wears no team kit stays `other` (not guessed).
 */
import type { ClassKitInput, ClassTeam } from './types';
import { classKit } from './kit';
import { deltaE, type Lab } from './lab';

/**
 * A class counts towards a kit group only when its box colours stay, in the median, within this share of
 * the outlier threshold of its kit colour (`spread` of {@link ClassKitInput}): a class that mixes two people
 * (a player and the referee, as a tracker's identity switch makes) has a kit colour between theirs and a
 * large spread. Our own constant, measured on the soccer test clip: team members spread 1-11 ΔE (median
 * 4.4), a player/referee mix 20.6, with an outlier threshold of 17.6 ΔE.
 */
export const MAX_OFFICIAL_SPREAD = 0.5;

/**
 * A goalkeeper's kit is at least this many outlier thresholds from both team centres (step 3 of the module
 * comment). Our own constant: twice the distance at which a kit stops being a team's, so that a kit counts
 * as chosen to differ only when it differs from the teams by more than a team's own kits vary.
 */
export const GOALKEEPER_DISTANCE = 2;

/**
 * Agglomerative clustering with complete linkage (the distance of two groups is that of their farthest
 * members; Sørensen 1948, as in Everitt et al., "Cluster Analysis", 5th ed., 2011, section 4.2): the two
 * nearest groups merge while that distance is at most `maxDistance`, so every two members of a group are
 * within it. Unlike single linkage, it does not chain kits step by step from one colour to another.
 * Deterministic: ties merge the pair that comes first in input order.
 * @param items the items, in order
 * @returns the groups, each in input order, ordered by their first item
 */
export function completeLinkage(items: readonly number[], dist: (a: number, b: number) => number, maxDistance: number): number[][] {
  let groups = items.map((i) => [i]);
  for (;;) {
    let best: { a: number; b: number; d: number } | undefined;
    for (let a = 0; a < groups.length; a++) {
      for (let b = a + 1; b < groups.length; b++) {
        let d = 0;
        for (const i of groups[a]) for (const j of groups[b]) d = Math.max(d, dist(i, j));
        if (d <= maxDistance && (!best || d < best.d)) best = { a, b, d };
      }
    }
    if (!best) return groups;
    const merged = [...groups[best.a], ...groups[best.b]].sort((x, y) => items.indexOf(x) - items.indexOf(y));
    groups = groups.filter((_, k) => k !== best!.a && k !== best!.b);
    groups.push(merged);
    groups.sort((x, y) => items.indexOf(x[0]) - items.indexOf(y[0]));
  }
}

/** Inputs of {@link markRoles} beyond the classes. */
export interface RoleContext {
  /** The outlier threshold, ΔE. */
  threshold: number;
  /** The team centres. */
  centres: { A: Lab; B: Lab };
  /** Fewest box colours for a class to be grouped (`minBoxes` of the team parameters). */
  minBoxes: number;
}

/**
 * Steps 1-5 of the module comment, in place on `out` (parallel to `classes`): sets `role` to `referee` or
 * `goalkeeper`, or `team` with role `player`, on outlier classes that `assignTeams` marked `other`.
 */
export function markRoles(classes: readonly ClassKitInput[], out: ClassTeam[], ctx: RoleContext): void {
  const consistent = (i: number) => out[i].role === 'other' && (classes[i].spread ?? Infinity) <= ctx.threshold * MAX_OFFICIAL_SPREAD;
  const idx = out.flatMap((_, i) => (consistent(i) && classes[i].boxes >= ctx.minBoxes ? [i] : []));
  const members = completeLinkage(idx, (a, b) => deltaE(classes[a].kit!, classes[b].kit!), ctx.threshold);
  const framesOf = (g: number[]) => new Set(g.flatMap((i) => [...classes[i].frames]));
  const together = (g: number[]) => {
    const seen = new Set<number>();
    for (const i of g) {
      const own = new Set(classes[i].frames);
      for (const f of own) if (seen.has(f)) return true;
      for (const f of own) seen.add(f);
    }
    return false;
  };
  const officials = members.filter(together);
  if (officials.length === 0 && members.length > 0) {
    const sized = members.map((g) => ({ g, n: framesOf(g).size }));
    // Most frames; ties: the group whose first class comes first (input order), for determinism.
    sized.sort((p, q) => q.n - p.n || p.g[0] - q.g[0]);
    officials.push(sized[0].g);
  }
  for (const g of officials) for (const i of g) out[i].role = 'referee';

  const farFromTeams = (g: number[]) => Math.min(...g.map((i) => Math.min(deltaE(classes[i].kit!, ctx.centres.A), deltaE(classes[i].kit!, ctx.centres.B))));
  const keepers = members
    .filter((g) => !officials.includes(g) && farFromTeams(g) >= GOALKEEPER_DISTANCE * ctx.threshold)
    .sort((p, q) => farFromTeams(q) - farFromTeams(p) || p[0] - q[0])
    .slice(0, 2);
  for (const g of keepers) {
    for (const i of g) out[i].role = 'goalkeeper';
  }

  // Step 4: short consistent classes join the nearest referee or goalkeeper group within the threshold.
  const labelled = [...officials, ...keepers].flat();
  out.forEach((c, i) => {
    if (!consistent(i) || classes[i].boxes >= ctx.minBoxes || !classes[i].kit) return;
    let best: { j: number; d: number } | undefined;
    for (const j of labelled) {
      const d = deltaE(classes[i].kit!, classes[j].kit!);
      if (d <= ctx.threshold && (!best || d < best.d)) best = { j, d };
    }
    if (best) c.role = out[best.j].role;
  });

  // Step 5: a consistent outlier nearest to one team's centre, within the goalkeeper distance, and nearer to it
  // than to the kit of every referee and goalkeeper group, is that team's player.
  const known = [...officials, ...keepers].map((g) => classKit(g.map((i) => classes[i].kit!)));
  out.forEach((c, i) => {
    if (!consistent(i) || !classes[i].kit) return;
    const kit = classes[i].kit!;
    const dA = deltaE(kit, ctx.centres.A);
    const dB = deltaE(kit, ctx.centres.B);
    const team = dA < dB ? 'A' : 'B';
    const d = Math.min(dA, dB);
    if (d === Math.max(dA, dB) || d > GOALKEEPER_DISTANCE * ctx.threshold) return;
    if (known.some((k) => deltaE(kit, k) <= d)) return;
    c.team = team;
    c.role = 'player';
  });
}


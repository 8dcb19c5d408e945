/**
 * Identity metrics of a video's classes (tracks) against identity ground truth
 * (./groundTruth.ts): does each class hold one person (purity), how many classes does a person
 * get (fragmentation), ID switches, IDF1/IDP/IDR and MOTA (src/vision/tracking/motMetrics.ts), team and role
 * accuracy per class, and whether a class's validation crops show a person missing from its train crops.
 * Pure; docs/ARCHITECTURE.md "Identity evaluation".
 *
 * Only annotated frames that were also predicted are evaluated. A predicted box and a ground-truth box
 * correspond when their IoU is at least {@link IOU_MATCH}. "Crops" are the predicted boxes of a class (the
 * boxes step 6 cuts crops from).
 */
import type { BBox } from '../../vision/detection/geometry';
import { iou } from '../../vision/detection/geometry';
import { MotAccumulator, maxMatchMinCost, type MotSummary } from '../../vision/tracking/motMetrics';
import type { IdentityGroundTruth, IdentityRole, TeamLabel } from './groundTruth';

/** Minimum IoU for a predicted box to show a ground-truth person: MOT Challenge's 0.5 (Milan et al. 2016). */
export const IOU_MATCH = 0.5;

/** One predicted box. */
export interface PredictedBox {
  /** The class (dataset class = `track_id` of detections.json). */
  classId: number;
  /** [x1, y1, x2, y2] in source-frame pixels. */
  bbox: BBox;
}

/** The predicted boxes of one sampled frame (list every evaluated frame, also those with no box). */
export interface PredictedFrame {
  /** 0-based source frame index. */
  frameId: number;
  boxes: PredictedBox[];
}

/** A class's predicted team (null: none) and role (null: none). */
export interface PredictedLabel {
  team: TeamLabel;
  role: IdentityRole | null;
}

/** Where a crop went in the dataset split (src/dataset/split.ts). */
export type CropSplit = 'train' | 'val' | 'test' | 'gap' | 'excluded';

/** Optional inputs of {@link evaluateIdentity}. */
export interface IdentityEvalOptions {
  /**
   * Team and role per class, as the pipeline predicted them (role null: none predicted); classes missing
   * here count as wrong.
   */
  classLabels?: Map<number, PredictedLabel>;
  /** The split of a crop, by class and frame id; crops it returns undefined for are ignored by the check. */
  splitOf?: (classId: number, frameId: number) => CropSplit | undefined;
}

/** Purity of one class. */
export interface ClassPurity {
  classId: number;
  /** Crops matched to a person. */
  matched: number;
  /** Crops matched to nobody (false positives, or boxes that overlap a person by less than IOU_MATCH). */
  unmatched: number;
  majorityPerson: number;
  /** Crops of the majority person / matched crops. */
  purity: number;
  /** Matched crops per person, most first. */
  mix: { personId: number; crops: number }[];
}

/** Result of {@link evaluateIdentity}. */
export interface IdentityReport {
  frames: { annotated: number; evaluated: number; /** Annotated frames not among the predicted ones (not evaluated). */ notPredicted: number[] };
  boxes: { groundTruth: number; predicted: number; matched: number };
  /** Σ over classes of the majority person's matched crops / Σ matched crops (NaN when nothing matched). */
  purity: number;
  /** Classes with at least one matched crop, by class id. */
  classes: ClassPurity[];
  /** Classes whose matched crops show more than one person, least pure first. */
  impure: ClassPurity[];
  fragmentation: {
    /** Mean number of classes per person, over the persons matched at least once (NaN when none). */
    mean: number;
    max: number;
    /** Persons with at least one matched crop. */
    persons: number;
    /** Persons in the evaluated frames never matched. */
    unmatchedPersons: number[];
    /** Classes of each matched person (ascending), by person id. */
    perPerson: { personId: number; classes: number[] }[];
  };
  /** CLEAR-MOT and identity measures over the evaluated frames (ID switches = `numSwitches`). */
  mot: MotSummary;
  /**
   * Present when `classLabels` was given and the ground truth names at least one team (`A` or `B`): footage
   * whose people belong to no team (a street, vtest.avi) has no team accuracy to measure (n/a, not 0 %).
   */
  teams?: TeamAccuracy;
  /** Present when `splitOf` was given. */
  valLeak?: ValLeakReport;
}

/** Team and role accuracy over the classes with a matched crop; a class is judged by its majority person. */
export interface TeamAccuracy {
  classes: number;
  /** Share of classes whose team is right under the chosen label permutation. */
  team: number;
  role: number;
  /** Share with both right: the figure the target is stated in. */
  teamAndRole: number;
  /** Whether the predicted A/B labels were swapped to compare (the permutation with more classes right). */
  swapped: boolean;
  wrong: { classId: number; personId: number; expected: { team: TeamLabel; role: IdentityRole }; predicted: PredictedLabel | null }[];
}

/** Val crops that show a person absent from the class's train crops. */
export interface ValLeakReport {
  /** Classes with at least one val crop. */
  classesWithVal: number;
  /** Val crops matched to nobody (cannot be judged). */
  unmatchedValCrops: number;
  leaking: { classId: number; personsNotInTrain: number[]; valCrops: number }[];
}

/** A predicted box with the person it shows (or null) in its frame. */
interface Judged {
  frameId: number;
  classId: number;
  personId: number | null;
}

const swapTeam = (t: TeamLabel): TeamLabel => (t === 'A' ? 'B' : t === 'B' ? 'A' : null);
const sortedNums = (xs: Iterable<number>) => [...xs].sort((a, b) => a - b);

/**
 * Compares a video's predicted classes with its identity ground truth.
 *
 * - Per evaluated frame, predicted boxes are paired with ground-truth boxes by an optimal one-to-one
 *   assignment over pairs with IoU >= {@link IOU_MATCH} (as many pairs as possible, then the least total
 *   1 - IoU; {@link maxMatchMinCost}); a paired box shows that person. Purity, fragmentation, teams and the
 *   val check use this pairing. It has no memory of earlier frames, so it says what each crop shows.
 * - ID switches, MOTA and IDF1 use the CLEAR-MOT accumulator on the same frames (distance 1 - IoU, pairs
 *   under {@link IOU_MATCH} forbidden), which prefers earlier correspondences (py-motmetrics semantics).
 * - Class purity: Σ_class (crops of its majority person) / Σ_class (matched crops).
 * - Fragmentation: number of classes among a person's matched crops, averaged over persons.
 * - Teams: the predicted A/B names are arbitrary, so both namings are tried and the one with more classes
 *   right (team and role) is kept; roles are compared as they are; a `-` team must be predicted as none.
 *   A ground truth without any team `A` or `B` gives no team figure (n/a).
 * - Val leak: for each class with val crops, the persons of its val crops that none of its train crops show.
 *
 * @throws Error when a frame lists a class twice (the accumulator needs distinct ids)
 */
export function evaluateIdentity(gt: IdentityGroundTruth, predicted: readonly PredictedFrame[], opts: IdentityEvalOptions = {}): IdentityReport {
  const predictedById = new Map(predicted.map((f) => [f.frameId, f]));
  const gtByFrame = new Map<number, typeof gt.boxes>();
  for (const b of gt.boxes) {
    const list = gtByFrame.get(b.frameId);
    if (list) list.push(b);
    else gtByFrame.set(b.frameId, [b]);
  }
  const evaluated = gt.frameIds.filter((f) => predictedById.has(f));
  const notPredicted = gt.frameIds.filter((f) => !predictedById.has(f));
  const acc = new MotAccumulator();
  const judged: Judged[] = [];
  const personsSeen = new Set<number>();
  let gtBoxes = 0;
  let predBoxes = 0;
  for (const frameId of evaluated) {
    const g = gtByFrame.get(frameId) ?? [];
    const p = predictedById.get(frameId)!.boxes;
    gtBoxes += g.length;
    predBoxes += p.length;
    for (const b of g) personsSeen.add(b.personId);
    const dist = g.map((gb) =>
      p.map((pb) => {
        const v = iou(gb.bbox, pb.bbox);
        return v >= IOU_MATCH ? 1 - v : Number.NaN;
      }),
    );
    acc.update(
      g.map((b) => b.personId),
      p.map((b) => b.classId),
      dist,
    );
    const personOf = new Array<number | null>(p.length).fill(null);
    for (const [i, j] of maxMatchMinCost(dist)) personOf[j] = g[i].personId;
    p.forEach((b, j) => judged.push({ frameId, classId: b.classId, personId: personOf[j] }));
  }

  // Purity per class.
  const perClass = new Map<number, { counts: Map<number, number>; unmatched: number }>();
  for (const j of judged) {
    let c = perClass.get(j.classId);
    if (!c) perClass.set(j.classId, (c = { counts: new Map(), unmatched: 0 }));
    if (j.personId === null) c.unmatched++;
    else c.counts.set(j.personId, (c.counts.get(j.personId) ?? 0) + 1);
  }
  const classes: ClassPurity[] = [];
  let majoritySum = 0;
  let matchedSum = 0;
  for (const classId of sortedNums(perClass.keys())) {
    const c = perClass.get(classId)!;
    if (c.counts.size === 0) continue;
    const mix = [...c.counts.entries()].map(([personId, crops]) => ({ personId, crops })).sort((a, b) => b.crops - a.crops || a.personId - b.personId);
    const matched = mix.reduce((s, m) => s + m.crops, 0);
    majoritySum += mix[0].crops;
    matchedSum += matched;
    classes.push({ classId, matched, unmatched: c.unmatched, majorityPerson: mix[0].personId, purity: mix[0].crops / matched, mix });
  }
  const impure = classes.filter((c) => c.mix.length > 1).sort((a, b) => a.purity - b.purity || a.classId - b.classId);

  // Fragmentation.
  const classesOf = new Map<number, Set<number>>();
  for (const j of judged) {
    if (j.personId === null) continue;
    let s = classesOf.get(j.personId);
    if (!s) classesOf.set(j.personId, (s = new Set()));
    s.add(j.classId);
  }
  const perPerson = sortedNums(classesOf.keys()).map((personId) => ({ personId, classes: sortedNums(classesOf.get(personId)!) }));
  const counts = perPerson.map((p) => p.classes.length);

  const report: IdentityReport = {
    frames: { annotated: gt.frameIds.length, evaluated: evaluated.length, notPredicted },
    boxes: { groundTruth: gtBoxes, predicted: predBoxes, matched: matchedSum },
    purity: matchedSum > 0 ? majoritySum / matchedSum : Number.NaN,
    classes,
    impure,
    fragmentation: {
      mean: counts.length > 0 ? counts.reduce((a, b) => a + b, 0) / counts.length : Number.NaN,
      max: counts.length > 0 ? Math.max(...counts) : 0,
      persons: counts.length,
      unmatchedPersons: sortedNums(personsSeen).filter((p) => !classesOf.has(p)),
      perPerson,
    },
    mot: acc.summary(),
  };
  const gtHasTeams = [...gt.identities.values()].some((l) => l.team === 'A' || l.team === 'B');
  if (opts.classLabels && gtHasTeams) report.teams = teamAccuracy(classes, gt, opts.classLabels);
  if (opts.splitOf) report.valLeak = valLeak(judged, opts.splitOf);
  return report;
}

function teamAccuracy(classes: ClassPurity[], gt: IdentityGroundTruth, labels: Map<number, PredictedLabel>): TeamAccuracy {
  const judgedClasses = classes.filter((c) => gt.identities.has(c.majorityPerson));
  const score = (swap: boolean) => {
    let team = 0;
    let role = 0;
    let both = 0;
    const wrong: TeamAccuracy['wrong'] = [];
    for (const c of judgedClasses) {
      const expected = gt.identities.get(c.majorityPerson)!;
      const p = labels.get(c.classId);
      const teamOk = p !== undefined && (swap ? swapTeam(p.team) : p.team) === expected.team;
      const roleOk = p !== undefined && p.role === expected.role;
      team += teamOk ? 1 : 0;
      role += roleOk ? 1 : 0;
      both += teamOk && roleOk ? 1 : 0;
      if (!(teamOk && roleOk)) wrong.push({ classId: c.classId, personId: c.majorityPerson, expected, predicted: p ? { team: swap ? swapTeam(p.team) : p.team, role: p.role } : null });
    }
    return { team, role, both, wrong };
  };
  const plain = score(false);
  const swapped = score(true);
  const best = swapped.both > plain.both || (swapped.both === plain.both && swapped.team > plain.team) ? { ...swapped, swapped: true } : { ...plain, swapped: false };
  const n = judgedClasses.length;
  const share = (k: number) => (n > 0 ? k / n : Number.NaN);
  return { classes: n, team: share(best.team), role: share(best.role), teamAndRole: share(best.both), swapped: best.swapped, wrong: best.wrong };
}

function valLeak(judged: Judged[], splitOf: NonNullable<IdentityEvalOptions['splitOf']>): ValLeakReport {
  const train = new Map<number, Set<number>>();
  const val = new Map<number, { persons: Set<number>; crops: number }>();
  let unmatchedValCrops = 0;
  for (const j of judged) {
    const s = splitOf(j.classId, j.frameId);
    if (s === 'train' && j.personId !== null) {
      let t = train.get(j.classId);
      if (!t) train.set(j.classId, (t = new Set()));
      t.add(j.personId);
    } else if (s === 'val') {
      let v = val.get(j.classId);
      if (!v) val.set(j.classId, (v = { persons: new Set(), crops: 0 }));
      v.crops++;
      if (j.personId === null) unmatchedValCrops++;
      else v.persons.add(j.personId);
    }
  }
  const leaking: ValLeakReport['leaking'] = [];
  for (const classId of sortedNums(val.keys())) {
    const v = val.get(classId)!;
    const t = train.get(classId) ?? new Set<number>();
    const missing = sortedNums(v.persons).filter((p) => !t.has(p));
    if (missing.length > 0) leaking.push({ classId, personsNotInTrain: missing, valCrops: v.crops });
  }
  return { classesWithVal: val.size, unmatchedValCrops, leaking };
}

/** How many unbroken stretches each ground-truth person is seen in: see {@link visibleStretches}. */
export interface StretchReport {
  /** The longest gap inside one stretch, source frames. */
  maxGapFrames: number;
  /** Mean stretches per person (NaN without persons). */
  mean: number;
  /** Stretches of each person (ascending person id): first and last frame id of each. */
  perPerson: { personId: number; stretches: [number, number][] }[];
}

/**
 * The stretches in which each ground-truth person is seen: runs of its boxes in which consecutive boxes are
 * at most `maxGapFrames` source frames apart; a longer gap (the person left the view, or stood hidden)
 * starts a new stretch. A tracker whose joins bridge gaps of at most `maxGapFrames` and never re-identify a
 * person after a longer absence gets at least one class per stretch, so `mean` is the lowest fragmentation
 * (classes per person, {@link IdentityReport}) it can reach on this ground truth.
 * @param maxGapFrames the joins' longest gap, source frames (`tracker.joins.maxGapSeconds` x fps)
 * @throws RangeError when `maxGapFrames` is negative or not finite
 */
export function visibleStretches(gt: IdentityGroundTruth, maxGapFrames: number): StretchReport {
  if (!(maxGapFrames >= 0) || !Number.isFinite(maxGapFrames)) throw new RangeError(`maxGapFrames must be a finite number >= 0, got ${maxGapFrames}`);
  const frames = new Map<number, number[]>();
  for (const b of gt.boxes) {
    const list = frames.get(b.personId);
    if (list) list.push(b.frameId);
    else frames.set(b.personId, [b.frameId]);
  }
  const perPerson = sortedNums(frames.keys()).map((personId) => {
    const f = sortedNums(frames.get(personId)!);
    const stretches: [number, number][] = [[f[0], f[0]]];
    for (const id of f.slice(1)) {
      const last = stretches[stretches.length - 1];
      if (id - last[1] > maxGapFrames) stretches.push([id, id]);
      else last[1] = id;
    }
    return { personId, stretches };
  });
  const mean = perPerson.length ? perPerson.reduce((s, p) => s + p.stretches.length, 0) / perPerson.length : Number.NaN;
  return { maxGapFrames, mean, perPerson };
}

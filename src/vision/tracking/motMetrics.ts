/**
 * Multiple-object-tracking metrics over any distance: the CLEAR-MOT event accumulator (Bernardin and
 * Stiefelhagen, "Evaluating Multiple Object Tracking Performance: The CLEAR MOT Metrics", EURASIP JIVP 2008)
 * and the identity measures IDF1/IDP/IDR (Ristani et al., "Performance Measures and a Data Set for
 * Multi-Target, Multi-Camera Tracking", ECCV 2016 workshops). The per-frame rules and the summary follow
 * py-motmetrics (github.com/cheind/py-motmetrics, `motmetrics/mot.py` and `motmetrics/metrics.py`), whose
 * documented example test/motMetrics.test.ts reproduces. Pure; box distances come from the caller
 * (src/dataset/identity/metrics.ts uses 1 - IoU).
 */
import munkres from 'munkres';

/**
 * Minimum-cost assignment of maximum cardinality: among the assignments that pair as many rows with
 * columns as possible through finite entries, the one of least total cost. Non-finite entries (NaN,
 * ±Infinity) are pairs that must not be made. This is what py-motmetrics' `lap.linear_sum_assignment` does
 * (`add_expensive_edges`: forbidden pairs get the cost 2·r·c + 1, with c = 1 + the largest |finite cost| and
 * r = min(R, C), so one forbidden pair always costs more than any loss of cost among allowed ones; pairs
 * on forbidden entries are then dropped). Solved with the Hungarian algorithm of the `munkres` package.
 *
 * Not `linearAssignment` (./assignment.ts): that one leaves a pair unmatched when matching it costs more
 * than a threshold, so it can prefer one cheap match over two dearer ones; metrics pair as many as possible.
 *
 * @param cost R rows of C entries each
 * @returns [row, col] pairs on finite entries, sorted by row
 */
export function maxMatchMinCost(cost: readonly (readonly number[])[]): [number, number][] {
  const R = cost.length;
  const C = R > 0 ? cost[0].length : 0;
  if (R === 0 || C === 0) return [];
  let maxAbs = -1;
  for (const row of cost) for (const v of row) if (Number.isFinite(v)) maxAbs = Math.max(maxAbs, Math.abs(v));
  if (maxAbs < 0) return [];
  const large = 2 * Math.min(R, C) * (maxAbs + 1) + 1;
  const m = cost.map((row) => row.map((v) => (Number.isFinite(v) ? v : large)));
  return munkres(m)
    .filter(([r, c]) => Number.isFinite(cost[r][c]))
    .sort((a, b) => a[0] - b[0]);
}

/** One CLEAR-MOT event of a frame (py-motmetrics event types MATCH, SWITCH, MISS, FP). */
export type MotEvent =
  | { type: 'MATCH' | 'SWITCH'; oid: number; hid: number; distance: number }
  | { type: 'MISS'; oid: number }
  | { type: 'FP'; hid: number };

/** The summary of an accumulator ({@link MotAccumulator.summary}); counts are box counts over all frames. */
export interface MotSummary {
  numFrames: number;
  /** Ground-truth boxes (object appearances). */
  numObjects: number;
  /** Predicted boxes (hypothesis appearances). */
  numPredictions: number;
  /** Distinct ground-truth ids. */
  numUniqueObjects: number;
  /** MATCH events (SWITCH events not included). */
  numMatches: number;
  /** SWITCH events: an object matched to another hypothesis than at its last match (ID switches, IDs). */
  numSwitches: number;
  numFalsePositives: number;
  numMisses: number;
  /** MATCH + SWITCH. */
  numDetections: number;
  /** Objects tracked (matched) in at least 80 % of their appearances (MT). */
  mostlyTracked: number;
  /** Objects tracked in 20-80 % of their appearances (PT). */
  partiallyTracked: number;
  /** Objects tracked in under 20 % of their appearances (ML). */
  mostlyLost: number;
  /** Times an object goes from tracked to missed between its first and last tracked frame (FM). */
  numFragmentations: number;
  /** 1 - (misses + false positives + switches) / objects; NaN without objects. */
  mota: number;
  /** Mean distance of MATCH and SWITCH pairs (py-motmetrics' definition, not MOTChallenge's percentage); NaN without any. */
  motp: number;
  /** numDetections / (numDetections + numFalsePositives). */
  precision: number;
  /** numDetections / numObjects. */
  recall: number;
  /** Boxes of the pairs of the global identity assignment that co-occur within distance (IDTP). */
  idtp: number;
  /** Predicted boxes outside IDTP (IDFP). */
  idfp: number;
  /** Ground-truth boxes outside IDTP (IDFN). */
  idfn: number;
  /** IDTP / (IDTP + IDFP). */
  idp: number;
  /** IDTP / (IDTP + IDFN). */
  idr: number;
  /** 2·IDTP / (2·IDTP + IDFP + IDFN). */
  idf1: number;
  /** The global identity assignment, ground-truth id → hypothesis id (pairs with at least one co-occurrence). */
  idAssignment: Map<number, number>;
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : Number.NaN);

/**
 * Accumulates CLEAR-MOT events frame by frame, as py-motmetrics' `MOTAccumulator` (with `max_switch_time`
 * unbounded) does, and summarises them with the identity measures.
 *
 * Per frame ({@link update}):
 * 1. an object that was last matched to a hypothesis present in this frame, at a finite distance, stays
 *    matched to it (MATCH), even if another pairing would cost less;
 * 2. the remaining objects and hypotheses are paired by {@link maxMatchMinCost}; a pair is a SWITCH when the
 *    object was ever matched before and its last hypothesis differs, else a MATCH;
 * 3. objects left are MISSes, hypotheses left are FPs (false positives).
 *
 * Identity measures: every (object, hypothesis) pair at a finite distance in a frame is a co-occurrence;
 * the one-to-one object → hypothesis assignment with the most co-occurrences over all frames gives IDTP
 * (Ristani et al. 2016, the global min-cost assignment: minimising IDFN + IDFP is maximising IDTP).
 */
export class MotAccumulator {
  private readonly lastHyp = new Map<number, number>();
  private readonly records: FrameRecord[] = [];

  /**
   * Adds one frame.
   * @param oids ground-truth object ids in the frame (distinct)
   * @param hids hypothesis (predicted track) ids in the frame (distinct)
   * @param dist `oids.length` rows of `hids.length` distances; NaN (or any non-finite value) = must not pair
   * @returns the frame's events
   * @throws Error when an id repeats within the frame or the matrix shape does not fit
   */
  update(oids: readonly number[], hids: readonly number[], dist: readonly (readonly number[])[]): MotEvent[] {
    const frame = this.records.length;
    if (new Set(oids).size !== oids.length) throw new Error(`MotAccumulator.update: repeated object id in frame ${frame}`);
    if (new Set(hids).size !== hids.length) throw new Error(`MotAccumulator.update: repeated hypothesis id in frame ${frame}`);
    if (dist.length !== oids.length || dist.some((r) => r.length !== hids.length)) {
      throw new Error(`MotAccumulator.update: distance matrix is not ${oids.length} x ${hids.length}`);
    }
    const pairs: [number, number][] = [];
    oids.forEach((o, i) => hids.forEach((h, j) => Number.isFinite(dist[i][j]) && pairs.push([o, h])));

    const events: MotEvent[] = [];
    const oDone = new Array<boolean>(oids.length).fill(false);
    const hDone = new Array<boolean>(hids.length).fill(false);
    // 1. Continue earlier correspondences.
    oids.forEach((o, i) => {
      const prev = this.lastHyp.get(o);
      if (prev === undefined) return;
      const j = hids.findIndex((h, k) => h === prev && !hDone[k]);
      if (j < 0 || !Number.isFinite(dist[i][j])) return;
      oDone[i] = hDone[j] = true;
      events.push({ type: 'MATCH', oid: o, hid: hids[j], distance: dist[i][j] });
    });
    // 2. The rest by optimal assignment.
    const rest = dist.map((row, i) => row.map((d, j) => (oDone[i] || hDone[j] ? Number.NaN : d)));
    for (const [i, j] of maxMatchMinCost(rest)) {
      const o = oids[i];
      const h = hids[j];
      const prev = this.lastHyp.get(o);
      events.push({ type: prev !== undefined && prev !== h ? 'SWITCH' : 'MATCH', oid: o, hid: h, distance: dist[i][j] });
      oDone[i] = hDone[j] = true;
      this.lastHyp.set(o, h);
    }
    // 3. Misses and false positives.
    oids.forEach((o, i) => oDone[i] || events.push({ type: 'MISS', oid: o }));
    hids.forEach((h, j) => hDone[j] || events.push({ type: 'FP', hid: h }));
    this.records.push({ oids: [...oids], hids: [...hids], pairs, events });
    return events;
  }

  /** Every frame's events, in the order the frames were added. */
  frames(): (readonly MotEvent[])[] {
    return this.records.map((r) => r.events);
  }

  /**
   * The metrics over the frames added so far, or over the frames with index in `[from, to)` (a view, as
   * py-motmetrics' `acc.events.loc[from:to - 1]`: the events are those of the whole run, the counts and
   * co-occurrences those of the view's frames).
   */
  summary(from = 0, to = this.records.length): MotSummary {
    return summarise(this.records.slice(from, to));
  }
}

/** What {@link MotAccumulator} keeps of one frame. */
interface FrameRecord {
  oids: number[];
  hids: number[];
  /** (object, hypothesis) pairs at a finite distance: the co-occurrences of the identity measures. */
  pairs: [number, number][];
  events: MotEvent[];
}

/** The global identity assignment maximising co-occurrences (IDTP), object id → hypothesis id. */
function identityAssignment(pairCount: Map<number, Map<number, number>>, hids: number[]): { idtp: number; assignment: Map<number, number> } {
  const oids = [...pairCount.keys()];
  if (oids.length === 0 || hids.length === 0) return { idtp: 0, assignment: new Map() };
  let maxTp = 0;
  for (const m of pairCount.values()) for (const v of m.values()) maxTp = Math.max(maxTp, v);
  // Maximising the co-occurrences = minimising (maxTp - co-occurrences) over a full rectangular assignment.
  const cost = oids.map((o) => hids.map((h) => maxTp - (pairCount.get(o)?.get(h) ?? 0)));
  let idtp = 0;
  const assignment = new Map<number, number>();
  for (const [i, j] of munkres(cost)) {
    const tp = pairCount.get(oids[i])?.get(hids[j]) ?? 0;
    if (tp > 0) {
      idtp += tp;
      assignment.set(oids[i], hids[j]);
    }
  }
  return { idtp, assignment };
}

function summarise(records: readonly FrameRecord[]): MotSummary {
  const objCount = new Map<number, number>();
  const hypCount = new Map<number, number>();
  const pairCount = new Map<number, Map<number, number>>();
  let numObjects = 0;
  let numPredictions = 0;
  for (const r of records) {
    for (const o of r.oids) objCount.set(o, (objCount.get(o) ?? 0) + 1);
    for (const h of r.hids) hypCount.set(h, (hypCount.get(h) ?? 0) + 1);
    numObjects += r.oids.length;
    numPredictions += r.hids.length;
    for (const [o, h] of r.pairs) {
      let m = pairCount.get(o);
      if (!m) pairCount.set(o, (m = new Map()));
      m.set(h, (m.get(h) ?? 0) + 1);
    }
  }
  let numMatches = 0;
  let numSwitches = 0;
  let numFalsePositives = 0;
  let numMisses = 0;
  let distSum = 0;
  const tracked = new Map<number, number>();
  /** Per object, per frame it appears in: tracked (true) or missed (false). */
  const history = new Map<number, boolean[]>();
  for (const { events } of records) {
    for (const e of events) {
      if (e.type === 'FP') {
        numFalsePositives++;
        continue;
      }
      const isTracked = e.type !== 'MISS';
      if (e.type === 'MISS') numMisses++;
      else {
        if (e.type === 'MATCH') numMatches++;
        else numSwitches++;
        distSum += e.distance;
        tracked.set(e.oid, (tracked.get(e.oid) ?? 0) + 1);
      }
      let h = history.get(e.oid);
      if (!h) history.set(e.oid, (h = []));
      h.push(isTracked);
    }
  }
  const numDetections = numMatches + numSwitches;
  let mostlyTracked = 0;
  let partiallyTracked = 0;
  let mostlyLost = 0;
  for (const [o, n] of objCount) {
    const r = (tracked.get(o) ?? 0) / n;
    if (r >= 0.8) mostlyTracked++;
    else if (r >= 0.2) partiallyTracked++;
    else mostlyLost++;
  }
  // Fragmentations: tracked → missed transitions between the first and last tracked appearance
  // (py-motmetrics `num_fragmentations`).
  let numFragmentations = 0;
  for (const h of history.values()) {
    const first = h.indexOf(true);
    const last = h.lastIndexOf(true);
    for (let k = Math.max(first, 0) + 1; k <= last; k++) if (h[k - 1] && !h[k]) numFragmentations++;
  }
  const { idtp, assignment } = identityAssignment(pairCount, [...hypCount.keys()]);
  const idfn = numObjects - idtp;
  const idfp = numPredictions - idtp;
  return {
    numFrames: records.length,
    numObjects,
    numPredictions,
    numUniqueObjects: objCount.size,
    numMatches,
    numSwitches,
    numFalsePositives,
    numMisses,
    numDetections,
    mostlyTracked,
    partiallyTracked,
    mostlyLost,
    numFragmentations,
    mota: numObjects > 0 ? 1 - (numMisses + numFalsePositives + numSwitches) / numObjects : Number.NaN,
    motp: ratio(distSum, numDetections),
    precision: ratio(numDetections, numDetections + numFalsePositives),
    recall: ratio(numDetections, numObjects),
    idtp,
    idfp,
    idfn,
    idp: ratio(idtp, idtp + idfp),
    idr: ratio(idtp, idtp + idfn),
    idf1: ratio(2 * idtp, 2 * idtp + idfp + idfn),
    idAssignment: assignment,
  };
}

/** Text tables of identity reports (src/dataset/identity/metrics.ts) for `npm run eval:identity` and tests. */
import type { IdentityReport, StretchReport } from '../../src/dataset/identity/metrics';

const pct = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? 'n/a' : `${(100 * x).toFixed(1)}%`);
const num = (x: number, d = 2) => (Number.isNaN(x) ? 'n/a' : x.toFixed(d));

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  ')).join('\n');
}

/** One line per video: the headline figures. */
export function summaryTable(reports: { name: string; report: IdentityReport }[]): string {
  const head = ['video', 'frames', 'GT boxes', 'pred boxes', 'purity', 'impure', 'classes/person', 'max', 'IDsw', 'IDF1', 'IDP', 'IDR', 'MOTA', 'team+role', 'val leak'];
  const rows = reports.map(({ name, report: r }) => [
    name,
    `${r.frames.evaluated}/${r.frames.annotated}`,
    String(r.boxes.groundTruth),
    String(r.boxes.predicted),
    pct(r.purity),
    `${r.impure.length}/${r.classes.length}`,
    num(r.fragmentation.mean),
    String(r.fragmentation.max),
    String(r.mot.numSwitches),
    pct(r.mot.idf1),
    pct(r.mot.idp),
    pct(r.mot.idr),
    pct(r.mot.mota),
    r.teams ? pct(r.teams.teamAndRole) : 'n/a',
    r.valLeak ? `${r.valLeak.leaking.length}/${r.valLeak.classesWithVal}` : 'n/a',
  ]);
  return table([head, ...rows]);
}

/** The details of one video: impure classes with their person mix, the most fragmented persons, leaks, teams. */
export function detailText(name: string, r: IdentityReport, limit = 15): string {
  const out: string[] = [`== ${name}`];
  out.push(
    `frames: ${r.frames.evaluated} evaluated of ${r.frames.annotated} annotated` +
      (r.frames.notPredicted.length ? ` (${r.frames.notPredicted.length} annotated frames not among the tracked ones, first frame_id ${r.frames.notPredicted[0]})` : ''),
  );
  const m = r.mot;
  out.push(
    `CLEAR-MOT: matches ${m.numMatches}, switches ${m.numSwitches}, misses ${m.numMisses}, false positives ${m.numFalsePositives}, ` +
      `MOTA ${pct(m.mota)}, MOTP (1 - IoU) ${num(m.motp, 3)}, recall ${pct(m.recall)}, precision ${pct(m.precision)}, MT/PT/ML ${m.mostlyTracked}/${m.partiallyTracked}/${m.mostlyLost}`,
  );
  out.push(`identity: IDF1 ${pct(m.idf1)} (IDTP ${m.idtp}, IDFP ${m.idfp}, IDFN ${m.idfn})`);
  const unmatched = r.classes.reduce((s, c) => s + c.unmatched, 0);
  out.push(`purity ${pct(r.purity)} over ${r.boxes.matched} matched crops (${unmatched} crops of these classes match no person); ${r.impure.length} of ${r.classes.length} classes mix people:`);
  for (const c of r.impure.slice(0, limit)) {
    out.push(`  class ${c.classId}: ${pct(c.purity)} of ${c.matched}: ${c.mix.map((x) => `person ${x.personId} x${x.crops}`).join(', ')}`);
  }
  if (r.impure.length > limit) out.push(`  ... ${r.impure.length - limit} more`);
  const f = r.fragmentation;
  out.push(`fragmentation: ${num(f.mean)} classes per person (max ${f.max}) over ${f.persons} persons; never matched: ${f.unmatchedPersons.length ? f.unmatchedPersons.join(', ') : 'none'}`);
  const split = [...f.perPerson].filter((p) => p.classes.length > 1).sort((a, b) => b.classes.length - a.classes.length || a.personId - b.personId);
  for (const p of split.slice(0, limit)) out.push(`  person ${p.personId}: classes ${p.classes.join(', ')}`);
  if (split.length > limit) out.push(`  ... ${split.length - limit} more persons in several classes`);
  if (r.valLeak) {
    out.push(`val check: ${r.valLeak.leaking.length} of ${r.valLeak.classesWithVal} classes with a val block show a person in val absent from their train crops (${r.valLeak.unmatchedValCrops} val crops match no person):`);
    for (const l of r.valLeak.leaking.slice(0, limit)) out.push(`  class ${l.classId}: val shows person(s) ${l.personsNotInTrain.join(', ')} (${l.valCrops} val crops)`);
  }
  if (r.teams) {
    const t = r.teams;
    out.push(`teams: team ${pct(t.team)}, role ${pct(t.role)}, both ${pct(t.teamAndRole)} of ${t.classes} classes (A/B ${t.swapped ? 'swapped' : 'as named'})`);
    for (const w of t.wrong.slice(0, limit)) {
      out.push(`  class ${w.classId} (person ${w.personId}): expected ${w.expected.team ?? '-'}/${w.expected.role}, got ${w.predicted ? `${w.predicted.team ?? '-'}/${w.predicted.role ?? 'no role'}` : 'no label'}`);
    }
  } else {
    out.push('teams: n/a (no predicted team/role per class, no identities.csv, or a ground truth without teams A/B)');
  }
  return out.join('\n');
}

/**
 * The fragmentation floor of the joins (`visibleStretches` of src/dataset/identity/metrics.ts): stretches
 * per person, and the persons seen in more than one stretch with their frame ranges.
 */
export function stretchText(s: StretchReport, limit = 15): string {
  const out = [
    `floor: ${num(s.mean)} classes per person for joins that bridge gaps of at most ${s.maxGapFrames} frames and never re-identify a person after a longer absence (the ground truth's unbroken stretches per person)`,
  ];
  const several = s.perPerson.filter((p) => p.stretches.length > 1);
  for (const p of several.slice(0, limit)) out.push(`  person ${p.personId}: ${p.stretches.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(', ')}`);
  if (several.length > limit) out.push(`  ... ${several.length - limit} more persons seen in several stretches`);
  return out.join('\n');
}

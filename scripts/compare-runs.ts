/**
 * Compares the outputs of two pipeline runs on disk (the GCS emulator keeps objects as files under
 * `{DATAPREP_DATA_DIR}/gcs/{bucket}/`), to check that a change which should not alter behaviour did not:
 *
 *   npx tsx scripts/compare-runs.ts BEFORE_DIR AFTER_DIR
 *
 * where each directory is a run folder `…/train_pipeline/run_{guid}/` (or a copy of one). It reports
 * - object names only in one run (paths relative to the run folder);
 * - images (`.jpg`), the video (`.mp4`) and other binary objects that differ byte for byte;
 * - JSON objects that differ after {@link normalise}: run-specific fields (timestamps, timings, durations,
 *   storage and cache counters, event-loop and liveness figures, task queues and worker ids, code version)
 *   are dropped and each run's GUID is replaced by `RUN`;
 * - HTML reports that differ after the run GUID is replaced.
 * For a difference in a JSON object it prints the first differing paths. Exit status 0 when nothing
 * differs, 1 otherwise. Augmented images are comparable only when both runs used the same
 * `options.augment.seed` (the seed defaults to the run GUID).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Keys whose values belong to one execution, not to what it computed. */
const VOLATILE_KEYS = new Set([
  'startedAt',
  'finishedAt',
  'updatedAt',
  'durationMs',
  'inferenceMs',
  'memory',
  'io',
  'eventLoopDelayMs',
  'liveness',
  'taskQueue',
  'cachedOn',
  'codeVersion',
  'routing',
  'cache',
  'storage',
  'webUi',
]);

function listFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(dir, r));
    else out.push(r);
  }
  return out;
}

/** The run GUID of a run folder `run_{guid}`. */
function runGuidOf(dir: string): string {
  const m = /run_([a-z0-9-]+)\/?$/.exec(path.resolve(dir)) ?? /run_([a-z0-9-]+)/.exec(readFileSync(path.join(dir, '.pipeline_info.json'), 'utf8'));
  if (!m) throw new Error(`${dir}: not a run folder run_{guid}`);
  return m[1];
}

/** `value` without {@link VOLATILE_KEYS} (at any depth), the run GUID `guid` replaced by `RUN` in strings. */
export function normalise(value: unknown, guid: string): unknown {
  if (typeof value === 'string') return value.split(`run_${guid}`).join('run_RUN').split(`:${guid}`).join(':RUN').replace(new RegExp(`^${guid}$`), 'RUN');
  if (Array.isArray(value)) return value.map((v) => normalise(v, guid));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([k]) => !VOLATILE_KEYS.has(k))
        .map(([k, v]) => [k, normalise(v, guid)]),
    );
  }
  return value;
}

/** Up to `max` JSON paths where `a` and `b` differ. */
function diffPaths(a: unknown, b: unknown, at = '$', out: string[] = [], max = 8): string[] {
  if (out.length >= max) return out;
  if (a && b && typeof a === 'object' && typeof b === 'object' && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
    for (const k of keys) diffPaths((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${at}.${k}`, out, max);
    return out;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${at}: ${JSON.stringify(a)?.slice(0, 120)} != ${JSON.stringify(b)?.slice(0, 120)}`);
  return out;
}

function main(): number {
  const [before, after] = process.argv.slice(2);
  if (!before || !after) {
    console.error('usage: npx tsx scripts/compare-runs.ts BEFORE_RUN_DIR AFTER_RUN_DIR');
    return 2;
  }
  const [ga, gb] = [runGuidOf(before), runGuidOf(after)];
  const fa = new Set(listFiles(before));
  const fb = new Set(listFiles(after));
  let differences = 0;
  const onlyA = [...fa].filter((f) => !fb.has(f));
  const onlyB = [...fb].filter((f) => !fa.has(f));
  const summarise = (list: string[]) => {
    const groups = new Map<string, number>();
    for (const f of list) groups.set(f.replace(/\d+/g, 'N'), (groups.get(f.replace(/\d+/g, 'N')) ?? 0) + 1);
    return [...groups].map(([g, n]) => `  ${n} x ${g}`).join('\n');
  };
  if (onlyA.length) console.log(`only in ${before} (${onlyA.length}):\n${summarise(onlyA)}`);
  if (onlyB.length) console.log(`only in ${after} (${onlyB.length}):\n${summarise(onlyB)}`);
  differences += onlyA.length + onlyB.length;
  const counts = { identical: 0, jsonEqual: 0, differ: 0 };
  for (const f of [...fa].filter((x) => fb.has(x)).sort()) {
    const a = readFileSync(path.join(before, f));
    const b = readFileSync(path.join(after, f));
    if (a.equals(b)) {
      counts.identical++;
      continue;
    }
    if (f.endsWith('.json')) {
      const [ja, jb] = [normalise(JSON.parse(a.toString('utf8')), ga), normalise(JSON.parse(b.toString('utf8')), gb)];
      const d = diffPaths(ja, jb);
      if (d.length === 0) {
        counts.jsonEqual++;
        continue;
      }
      console.log(`JSON differs: ${f}\n${d.map((x) => `  ${x}`).join('\n')}`);
    } else if (f.endsWith('.html') && a.toString('utf8').split(ga).join('RUN') === b.toString('utf8').split(gb).join('RUN')) {
      counts.jsonEqual++;
      continue;
    } else {
      console.log(`bytes differ: ${f} (${statSync(path.join(before, f)).size} vs ${statSync(path.join(after, f)).size} bytes)`);
    }
    counts.differ++;
    differences++;
  }
  console.log(`${fa.size} vs ${fb.size} objects; ${counts.identical} byte-identical, ${counts.jsonEqual} equal after normalising, ${counts.differ} differ`);
  return differences ? 1 : 0;
}

process.exit(main());

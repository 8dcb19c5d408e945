/**
 * The class-list files written beside a dataset's split folders, so every loader numbers the classes alike:
 * `classes.txt` (one class name per line, line i = class index i) and `data.yaml` in the form of
 * Ultralytics' dataset YAML (https://docs.ultralytics.com/datasets/classify/ and the `path`/`train`/`val`/
 * `test`/`names` keys of https://docs.ultralytics.com/datasets/detect/). Pure.
 */
import { Document } from 'yaml';

/**
 * `classes.txt`: the names in class-index order, one per line, `\n`-terminated.
 * @param names class folder names in class-index order (src/dataset/split.ts `classOrder`)
 * @throws RangeError when a name is empty, holds a line break or `/`, or appears twice
 */
export function classesTxt(names: readonly string[]): string {
  checkNames(names);
  return names.map((n) => `${n}\n`).join('');
}

/**
 * `data.yaml`: `path: .` (the folder holding this file), the split folders present (`train`, `val`, and
 * `test` when given), and `names` as a map from class index to name.
 *
 * Ultralytics 8.3+ resolves a relative `path` against the YAML's own folder; older releases resolve it
 * against the working directory (see README "Loading the dataset").
 * @param names class folder names in class-index order
 * @param splits the split folders that exist, e.g. `['train', 'val']`
 * @throws RangeError as {@link classesTxt}
 */
export function dataYaml(names: readonly string[], splits: readonly string[]): string {
  checkNames(names);
  const doc: Record<string, unknown> = { path: '.' };
  for (const s of splits) doc[s] = s;
  doc.names = new Map(names.map((n, i) => [i, n]));
  const d = new Document(doc);
  d.commentBefore = ' Written by DataPrep Pipeline step 9. names[i] is class index i in every split (classes.txt line i+1).';
  return String(d);
}

function checkNames(names: readonly string[]): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (!n || /[\n\r/]/.test(n)) throw new RangeError(`class name ${JSON.stringify(n)} must be a non-empty single path segment`);
    if (seen.has(n)) throw new RangeError(`class name ${n} appears twice`);
    seen.add(n);
  }
}

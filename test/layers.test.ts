/**
 * The dependency rules of docs/ARCHITECTURE.md "Layers", checked on the import statements of src/ (cycles
 * are checked by `npm run check:cycles`, dpdm):
 * - domain code (src/vision, src/dataset) imports nothing of the Temporal layers or the infrastructure
 *   (workflows, activities, workers, storage, cache, CLI, stack);
 * - workflow code imports domain modules and activities as types only, and no Node built-in;
 * - the CLI imports no activity or worker module;
 * - no file of src/ is over 450 lines.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../src/config';

const SRC = path.join(PROJECT_ROOT, 'src');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

/** The imports of a file: module specifier, resolved folder under src/ (for relative ones), and whether type-only. */
function importsOf(file: string): { spec: string; target?: string; typeOnly: boolean }[] {
  const text = readFileSync(file, 'utf8');
  const out: { spec: string; target?: string; typeOnly: boolean }[] = [];
  for (const m of text.matchAll(/^(import|export)\s+(type\s+)?([^;]*?)\s+from\s+'([^']+)';/gms)) {
    const spec = m[4];
    const names = m[3].replace(/^\{|\}$/g, '').split(',').map((s) => s.trim()).filter(Boolean);
    const typeOnly = !!m[2] || (names.length > 0 && m[3].startsWith('{') && names.every((n) => n.startsWith('type ')));
    const target = spec.startsWith('.') ? path.relative(SRC, path.resolve(path.dirname(file), spec)) : undefined;
    out.push({ spec, target, typeOnly });
  }
  return out;
}

const under = (rel: string | undefined, ...dirs: string[]) => !!rel && dirs.some((d) => rel === d || rel.startsWith(`${d}/`));
const all = files(SRC);
const rel = (f: string) => path.relative(SRC, f);

describe('layers of src/', () => {
  it('finds the import statements it checks', () => {
    expect(importsOf(path.join(SRC, 'workflows', 'processVideo.ts')).some((i) => i.target === 'workflows/routing' && !i.typeOnly)).toBe(true);
    expect(importsOf(path.join(SRC, 'workflows', 'types.ts')).some((i) => i.target === 'vision/pitch/model' && i.typeOnly)).toBe(true);
  });

  it('domain code (vision, dataset) imports no Temporal layer and no infrastructure', () => {
    const bad = all
      .filter((f) => under(rel(f), 'vision', 'dataset'))
      .flatMap((f) => importsOf(f).filter((i) => under(i.target, 'workflows', 'activities', 'workers', 'storage', 'cache', 'cli', 'stack') || i.spec.startsWith('@temporalio/')).map((i) => `${rel(f)} -> ${i.spec}`));
    expect(bad).toEqual([]);
  });

  it('workflow code imports domain modules and activities as types only, and no Node built-in', () => {
    const bad = all
      .filter((f) => under(rel(f), 'workflows'))
      .flatMap((f) => importsOf(f).filter((i) => (under(i.target, 'vision', 'dataset', 'activities', 'storage', 'cache', 'workers') && !i.typeOnly) || i.spec.startsWith('node:')).map((i) => `${rel(f)} -> ${i.spec}`));
    expect(bad).toEqual([]);
  });

  it('the CLI reads stored files through storage, never through an activity module', () => {
    const bad = all
      .filter((f) => under(rel(f), 'cli'))
      .flatMap((f) => importsOf(f).filter((i) => under(i.target, 'activities', 'workers')).map((i) => `${rel(f)} -> ${i.spec}`));
    expect(bad).toEqual([]);
  });

  it('no file of src/ is over 450 lines', () => {
    const long = all.map((f) => [rel(f), readFileSync(f, 'utf8').split('\n').length - 1] as const).filter(([, n]) => n > 450);
    expect(long).toEqual([]);
  });
});

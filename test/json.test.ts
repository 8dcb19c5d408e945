/** Pretty JSON written piece by piece (src/util/json.ts) and the text spool (src/util/fs.ts) step 9 writes it through. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TextSpool } from '../src/util/fs';
import { prettyJsonClose, prettyJsonItem, prettyJsonOpen } from '../src/util/json';

const pieces = (head: object, key: string, items: readonly unknown[]) => prettyJsonOpen(head, key) + items.map((v, i) => prettyJsonItem(v, i)).join('') + prettyJsonClose(items.length);

describe('pretty JSON with its last array written one element at a time', () => {
  const head = { tenantId: 't', nested: { a: [1, 2, { b: null }], empty: {}, none: [] }, skipped: undefined, text: 'line\nbreak "quoted" é' };
  const images = [
    { path: 'p/a.jpg', bbox: [1.5, 2, 30, 80.25], augmentation: null },
    { path: 'p/b.jpg', bbox: [], augmentation: { flip: true, erase: [0.1, 0.2, 0.3, 0.4], note: 'x\ny' }, deep: [[1, [2, {}]], []] },
    'a string element',
    7,
  ];

  it.each([0, 1, 2, 4])('equals JSON.stringify(value, null, 2) + "\\n" with %i elements', (n) => {
    const items = images.slice(0, n);
    expect(pieces(head, 'images', items)).toBe(`${JSON.stringify({ ...head, images: items }, null, 2)}\n`);
  });

  it('works for an empty head, and refuses a head that already has the key', () => {
    expect(pieces({}, 'images', images)).toBe(`${JSON.stringify({ images }, null, 2)}\n`);
    expect(pieces({}, 'images', [])).toBe(`${JSON.stringify({ images: [] }, null, 2)}\n`);
    expect(() => prettyJsonOpen({ images: [] }, 'images')).toThrow(RangeError);
  });
});

describe('TextSpool', () => {
  it('writes every piece in order across flushes, and closes once', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'spool-')), 'out.txt');
    const spool = await TextSpool.create(file);
    const parts = Array.from({ length: 3000 }, (_, i) => `${i}:${'é'.repeat(i % 700)}\n`); // over 1 Mi characters in all
    for (const p of parts) await spool.write(p);
    await spool.close();
    await spool.close();
    expect(readFileSync(file, 'utf8')).toBe(parts.join(''));
  });

  it('abandoned, it keeps only what it had flushed', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'spool-')), 'out.txt');
    const spool = await TextSpool.create(file);
    await spool.write('not flushed yet');
    await spool.close(true);
    expect(readFileSync(file, 'utf8')).toBe('');
  });
});

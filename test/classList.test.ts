/** classes.txt and data.yaml: the class list written beside the split folders. */
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { classesTxt, dataYaml } from '../src/dataset/classList';

describe('class list files', () => {
  const names = ['track_0', 'track_10', 'track_2'];

  it('classes.txt has one name per line in class-index order', () => {
    expect(classesTxt(names)).toBe('track_0\ntrack_10\ntrack_2\n');
    expect(classesTxt([])).toBe('');
  });

  it('data.yaml parses to path, the splits given and names by index', () => {
    const y = parse(dataYaml(names, ['train', 'val']));
    expect(y).toEqual({ path: '.', train: 'train', val: 'val', names: { 0: 'track_0', 1: 'track_10', 2: 'track_2' } });
    // Integer keys, as in Ultralytics' own dataset YAMLs (names: {0: person, ...}).
    expect(dataYaml(names, ['train'])).toMatch(/^ {2}1: track_10$/m);
    expect(parse(dataYaml(names, ['train']))).not.toHaveProperty('val');
  });

  it('refuses names that would not be one folder, or that repeat', () => {
    expect(() => classesTxt(['a/b'])).toThrow(RangeError);
    expect(() => dataYaml(['x', 'x'], ['train'])).toThrow(/twice/);
    expect(() => classesTxt([''])).toThrow(RangeError);
  });
});

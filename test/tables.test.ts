/** manifest.csv and the per-split metadata.jsonl: the manifest as tables. */
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { CSV_COLUMNS, manifestCsv, manifestCsvHeader, manifestCsvRow, splitMetadataJsonl, splitMetadataLine, tableFolder, type TableImage } from '../src/dataset/tables';

const img = (over: Partial<TableImage>): TableImage => ({
  file: 'train/track_3/crop_0.jpg',
  uri: 'gs://b/p/datasets/train/track_3/crop_0.jpg',
  split: 'train',
  class_index: 2,
  class_name: 'track_3',
  track_id: 3,
  frame_id: 40,
  bbox: [1.5, 2, 30, 80.25],
  source_crop: 'p/crops/original/track_3/crop_0.jpg',
  augmentation: null,
  ...over,
});

describe('manifest tables', () => {
  const images = [
    img({}),
    img({ file: 'train/track_3/crop_0_aug0.jpg', augmentation: { flip: true, note: 'a,"b"' }, team: 'A', role: 'player' }),
    img({ file: 'val/track_3/crop_9.jpg', split: 'val', frame_id: 90 }),
  ];

  it('manifest.csv round-trips through a CSV parser with one row per image', () => {
    const rows = parse(manifestCsv(images), { columns: true }) as Record<string, string>[];
    expect(Object.keys(rows[0])).toEqual([...CSV_COLUMNS]);
    expect(rows.map((r) => r.file)).toEqual(images.map((i) => i.file));
    expect(rows[0]).toMatchObject({ split: 'train', class_index: '2', class_name: 'track_3', x1: '1.5', y2: '80.25', augmented: 'false', augmentation: '', team: '', role: '' });
    expect(JSON.parse(rows[1].augmentation)).toEqual({ flip: true, note: 'a,"b"' });
    expect(rows[1]).toMatchObject({ augmented: 'true', team: 'A', role: 'player' });
  });

  it('metadata.jsonl of a folder holds its images only, file_name relative to the folder, with the label', () => {
    const lines = splitMetadataJsonl(images, 'val').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([{ file_name: 'track_3/crop_9.jpg', label: 2, class_name: 'track_3', split: 'val', track_id: 3, frame_id: 90, bbox: [1.5, 2, 30, 80.25], augmented: false, team: null, role: null }]);
    expect(splitMetadataJsonl(images, 'train').trim().split('\n')).toHaveLength(2);
    expect(splitMetadataJsonl(images, 'test')).toBe('');
    // Augmented copies kept apart in train_aug/ are train images listed in that folder's metadata only.
    const apart = [img({}), img({ file: 'train_aug/track_3/crop_0_aug0.jpg', augmentation: { flip: true } })];
    expect(splitMetadataJsonl(apart, 'train').trim().split('\n').map((l) => JSON.parse(l).file_name)).toEqual(['track_3/crop_0.jpg']);
    expect(JSON.parse(splitMetadataJsonl(apart, 'train_aug'))).toMatchObject({ file_name: 'track_3/crop_0_aug0.jpg', split: 'train', augmented: true });
    expect(() => splitMetadataJsonl(images, 'a/b')).toThrow(RangeError);
  });

  it('row by row (as step 9 spools them) the tables parse to the same records as written whole', () => {
    expect(parse(manifestCsvHeader(), { columns: true })).toEqual([]);
    expect(parse(manifestCsvHeader()).at(0)).toEqual([...CSV_COLUMNS]);
    const spooled = manifestCsvHeader() + images.map(manifestCsvRow).join('');
    expect(parse(spooled, { columns: true })).toEqual(parse(manifestCsv(images), { columns: true }));
    expect(manifestCsvRow(images[1]).endsWith('\n')).toBe(true);
    expect(images.map(tableFolder)).toEqual(['train', 'train', 'val']);
    expect(tableFolder({ file: 'no-folder.jpg' })).toBe('');
    const val = images.filter((i) => tableFolder(i) === 'val').map(splitMetadataLine).join('');
    expect(val).toBe(splitMetadataJsonl(images, 'val'));
  });
});

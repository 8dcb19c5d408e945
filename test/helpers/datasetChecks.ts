/**
 * Checks of a finished video dataset as standard loaders read it (torchvision `ImageFolder`, Ultralytics
 * classify, Hugging Face `imagefolder`): one class list for every split, no empty class, `classes.txt` and
 * `data.yaml` matching the folders, and every manifest row resolving to a stored image.
 */
import { parse as parseCsv } from 'csv-parse/sync';
import { expect } from 'vitest';
import { parse } from 'yaml';
import { manifestSchema, parseArtifact, type Manifest } from '../../src/storage/artifacts';
import type { ObjectStore } from '../../src/storage/gcs';
import type { VideoLayout } from '../../src/storage/layout';

/**
 * Asserts the dataset of `video` loads with the same class indices in every split, and returns its manifest.
 * @param minClasses the least number of classes expected (the run must have produced a dataset)
 */
export async function expectLoadableDataset(store: ObjectStore, video: VideoLayout, minClasses = 1): Promise<Manifest> {
  const manifest = parseArtifact(manifestSchema, video.manifest, await store.getJson(video.manifest));
  const objects = (await store.list(video.datasetPrefix)).map((o) => o.name.slice(video.datasetPrefix.length));
  // Class folders per split, as a folder loader finds them: {split}/{class}/{file}.
  const folders = new Map<string, Map<string, number>>();
  for (const rel of objects) {
    const parts = rel.split('/');
    if (parts.length !== 3) continue;
    const [split, cls] = parts;
    if (cls === 'metadata.jsonl') continue;
    if (!folders.has(split)) folders.set(split, new Map());
    folders.get(split)!.set(cls, (folders.get(split)!.get(cls) ?? 0) + 1);
  }
  const sorted = (xs: Iterable<string>) => [...xs].sort();
  const train = sorted(folders.get('train')?.keys() ?? []);
  expect(train.length).toBeGreaterThanOrEqual(minClasses);
  // Identical class sets in every split, none empty (an object store has no empty folders, so a class with no
  // image in a split is a missing folder there).
  const splits = ['train', ...(manifest.counts.val > 0 ? ['val'] : []), ...((manifest.counts.test ?? 0) > 0 ? ['test'] : [])];
  const apart = manifest.options.augment.placement === 'train_aug' && manifest.images.some((i) => i.augmentation !== null);
  expect(sorted(folders.keys())).toEqual(sorted([...splits, ...(apart ? ['train_aug'] : [])]));
  for (const [, classes] of folders) expect(sorted(classes.keys())).toEqual(train);
  // classes.txt and data.yaml give the same names in the order loaders number sorted folder names.
  const classesTxt = (await store.get(video.classesTxt)).toString('utf8');
  expect(classesTxt.split('\n').filter(Boolean)).toEqual(train);
  const yaml = parse((await store.get(video.dataYaml)).toString('utf8'));
  expect(Object.values(yaml.names)).toEqual(train);
  expect(Object.keys(yaml.names).map(Number)).toEqual(train.map((_, i) => i));
  expect(yaml.train).toBe('train');
  for (const sp of splits) expect(yaml[sp]).toBe(sp);
  expect(Object.keys(yaml).sort()).toEqual(sorted(['path', 'names', ...splits]));
  // The manifest's class list and every row agree with the folders.
  expect(manifest.classes!.map((c) => c.name)).toEqual(train);
  expect(manifest.classes!.map((c) => c.index)).toEqual(train.map((_, i) => i));
  const stored = new Set(objects);
  const excluded = new Set(manifest.excludedTracks!.map((e) => e.track_id));
  for (const img of manifest.images) {
    expect(stored.has(img.file!)).toBe(true);
    expect(img.path).toBe(video.datasetPrefix + img.file);
    expect(img.uri).toBe(`gs://${store.bucket}/${img.path}`);
    const folder = img.augmentation !== null && apart ? 'train_aug' : img.split;
    expect(img.file!.split('/').slice(0, 2)).toEqual([folder, img.class_name]);
    expect(train[img.class_index!]).toBe(img.class_name);
    expect(img.class_name).toBe(`track_${img.track_id}`);
    expect(excluded.has(img.track_id)).toBe(false);
  }
  const images = objects.filter((o) => o.endsWith('.jpg'));
  expect(images.length).toBe(manifest.images.length);
  // The CSV and each split's metadata.jsonl say what the JSON says, row for row.
  const teams = manifest.teams?.tracks ?? {};
  const csv = parseCsv((await store.get(video.manifestCsv)).toString('utf8'), { columns: true }) as Record<string, string>[];
  expect(csv.length).toBe(manifest.images.length);
  csv.forEach((r, k) => {
    const img = manifest.images[k];
    expect([r.file, r.uri, r.split, Number(r.class_index), r.class_name, Number(r.track_id), Number(r.frame_id)]).toEqual([img.file, img.uri, img.split, img.class_index, img.class_name, img.track_id, img.frame_id]);
    expect([r.x1, r.y1, r.x2, r.y2].map(Number)).toEqual(img.bbox);
    expect(r.augmented).toBe(String(img.augmentation !== null));
    expect(r.augmentation === '' ? null : JSON.parse(r.augmentation)).toEqual(img.augmentation);
    expect([r.team || null, r.role || null]).toEqual([teams[img.track_id]?.team ?? null, teams[img.track_id]?.role ?? null]);
  });
  for (const split of folders.keys()) {
    const lines = (await store.get(video.splitMetadata(split as 'train' | 'val' | 'test' | 'train_aug'))).toString('utf8').trim().split('\n').map((l) => JSON.parse(l));
    const inSplit = manifest.images.filter((i) => i.file!.startsWith(`${split}/`));
    expect(lines.map((l) => `${split}/${l.file_name}`)).toEqual(inSplit.map((i) => i.file));
    expect(lines.map((l) => l.label)).toEqual(inSplit.map((i) => i.class_index));
  }
  return manifest;
}

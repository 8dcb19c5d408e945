/**
 * Checks of a finished video dataset as standard loaders read it (torchvision `ImageFolder`, Ultralytics
 * classify, Hugging Face `imagefolder`): one class list for every split, no empty class, `classes.txt` and
 * `data.yaml` matching the folders, every manifest row resolving to a stored image, the CSV and JSONL
 * agreeing with the JSON; and the video's MOT and COCO exports agreeing with `detections.json`.
 */
import { parse as parseCsv } from 'csv-parse/sync';
import { expect } from 'vitest';
import { parse } from 'yaml';
import type { CocoExport } from '../../src/dataset/exports';
import { parseMotGroundTruth } from '../../src/dataset/identity/groundTruth';
import { detectionsFileSchema, manifestSchema, parseArtifact, type Manifest } from '../../src/storage/artifacts';
import { runManifestSchema, type RunManifest } from '../../src/storage/runManifest';
import type { ObjectStore } from '../../src/storage/gcs';
import type { DatasetFolder, RunLayout, VideoLayout } from '../../src/storage/layout';

/** Where a folder dataset's files are: a video's `datasets/` or a run's `dataset/`. */
interface DatasetFiles {
  prefix: string;
  classesTxt: string;
  dataYaml: string;
  manifestCsv: string;
  metadata: (folder: string) => string;
}

/** The manifest fields both manifests (a video's and a run's) share. */
interface LoadableManifest {
  counts: { train: number; val: number; test?: number };
  classes?: { index: number; name: string }[];
  images: {
    path: string;
    file?: string;
    uri?: string;
    split: string;
    class_index?: number;
    class_name?: string;
    track_id: number;
    frame_id: number;
    bbox: number[];
    augmentation: unknown;
  }[];
}

/**
 * Asserts a folder dataset loads with the same class indices in every split: identical class folders in
 * every split (and `train_aug`), none empty; `classes.txt`, `data.yaml`, the manifest's class list and every
 * row agree with the folders; the CSV and each folder's metadata.jsonl say what the JSON says.
 * @returns the sorted class names
 */
async function expectFolderDataset(
  store: ObjectStore,
  files: DatasetFiles,
  manifest: LoadableManifest,
  o: { apart: boolean; minClasses: number; labelOf: (img: LoadableManifest['images'][number]) => { team: string | null; role: string | null } },
): Promise<string[]> {
  const objects = (await store.list(files.prefix)).map((x) => x.name.slice(files.prefix.length));
  // Class folders per split, as a folder loader finds them: {split}/{class}/{file}.
  const folders = new Map<string, Map<string, number>>();
  for (const rel of objects) {
    const parts = rel.split('/');
    if (parts.length !== 3) continue;
    const [split, cls] = parts;
    if (!folders.has(split)) folders.set(split, new Map());
    folders.get(split)!.set(cls, (folders.get(split)!.get(cls) ?? 0) + 1);
  }
  const sorted = (xs: Iterable<string>) => [...xs].sort();
  const train = sorted(folders.get('train')?.keys() ?? []);
  expect(train.length).toBeGreaterThanOrEqual(o.minClasses);
  // Identical class sets in every split, none empty (an object store has no empty folders, so a class with no
  // image in a split is a missing folder there).
  const splits = ['train', ...(manifest.counts.val > 0 ? ['val'] : []), ...((manifest.counts.test ?? 0) > 0 ? ['test'] : [])];
  expect(sorted(folders.keys())).toEqual(sorted([...splits, ...(o.apart ? ['train_aug'] : [])]));
  for (const [, classes] of folders) expect(sorted(classes.keys())).toEqual(train);
  // classes.txt and data.yaml give the same names in the order loaders number sorted folder names.
  const classesTxt = (await store.get(files.classesTxt)).toString('utf8');
  expect(classesTxt.split('\n').filter(Boolean)).toEqual(train);
  const yaml = parse((await store.get(files.dataYaml)).toString('utf8'));
  expect(Object.values(yaml.names)).toEqual(train);
  expect(Object.keys(yaml.names).map(Number)).toEqual(train.map((_, i) => i));
  for (const sp of splits) expect(yaml[sp]).toBe(sp);
  expect(Object.keys(yaml).sort()).toEqual(sorted(['path', 'names', ...splits]));
  // The manifest's class list and every row agree with the folders.
  expect(manifest.classes!.map((c) => c.name)).toEqual(train);
  expect(manifest.classes!.map((c) => c.index)).toEqual(train.map((_, i) => i));
  const stored = new Set(objects);
  for (const img of manifest.images) {
    expect(stored.has(img.file!)).toBe(true);
    expect(img.path).toBe(files.prefix + img.file);
    expect(img.uri).toBe(`gs://${store.bucket}/${img.path}`);
    const folder = img.augmentation !== null && o.apart ? 'train_aug' : img.split;
    expect(img.file!.split('/').slice(0, 2)).toEqual([folder, img.class_name]);
    expect(train[img.class_index!]).toBe(img.class_name);
  }
  expect(objects.filter((x) => x.endsWith('.jpg')).length).toBe(manifest.images.length);
  // The CSV and each folder's metadata.jsonl say what the JSON says, row for row.
  const csv = parseCsv((await store.get(files.manifestCsv)).toString('utf8'), { columns: true }) as Record<string, string>[];
  expect(csv.length).toBe(manifest.images.length);
  csv.forEach((r, k) => {
    const img = manifest.images[k];
    expect([r.file, r.uri, r.split, Number(r.class_index), r.class_name, Number(r.track_id), Number(r.frame_id)]).toEqual([img.file, img.uri, img.split, img.class_index, img.class_name, img.track_id, img.frame_id]);
    expect([r.x1, r.y1, r.x2, r.y2].map(Number)).toEqual(img.bbox);
    expect(r.augmented).toBe(String(img.augmentation !== null));
    expect(r.augmentation === '' ? null : JSON.parse(r.augmentation)).toEqual(img.augmentation);
    const label = o.labelOf(img);
    expect([r.team || null, r.role || null]).toEqual([label.team, label.role]);
  });
  for (const folder of folders.keys()) {
    const lines = (await store.get(files.metadata(folder))).toString('utf8').trim().split('\n').map((l) => JSON.parse(l));
    const inFolder = manifest.images.filter((i) => i.file!.startsWith(`${folder}/`));
    expect(lines.map((l) => `${folder}/${l.file_name}`)).toEqual(inFolder.map((i) => i.file));
    expect(lines.map((l) => l.label)).toEqual(inFolder.map((i) => i.class_index));
  }
  return train;
}

/**
 * Asserts the dataset of `video` loads with the same class indices in every split ({@link expectFolderDataset}),
 * its class names are `track_{id}` and no track left out has an image, and returns its manifest.
 * @param minClasses the least number of classes expected (the run must have produced a dataset)
 */
export async function expectLoadableDataset(store: ObjectStore, video: VideoLayout, minClasses = 1): Promise<Manifest> {
  const manifest = parseArtifact(manifestSchema, video.manifest, await store.getJson(video.manifest));
  const teams = manifest.teams?.tracks ?? {};
  const apart = manifest.options.augment.placement === 'train_aug' && manifest.images.some((i) => i.augmentation !== null);
  await expectFolderDataset(
    store,
    { prefix: video.datasetPrefix, classesTxt: video.classesTxt, dataYaml: video.dataYaml, manifestCsv: video.manifestCsv, metadata: (f) => video.splitMetadata(f as DatasetFolder) },
    manifest,
    { apart, minClasses, labelOf: (img) => ({ team: teams[img.track_id]?.team ?? null, role: teams[img.track_id]?.role ?? null }) },
  );
  const excluded = new Set(manifest.excludedTracks!.map((e) => e.track_id));
  for (const img of manifest.images) {
    expect(img.class_name).toBe(`track_${img.track_id}`);
    expect(excluded.has(img.track_id)).toBe(false);
  }
  return manifest;
}

/**
 * Asserts the run-level dataset of a run with several videos: loadable as one dataset ({@link expectFolderDataset}),
 * class names `{videoGuid}_track_{id}` that never collide, exactly the images of every video's own dataset,
 * each a byte-identical copy of the video image it names.
 */
export async function expectLoadableRunDataset(store: ObjectStore, run: RunLayout, videoGuids: string[]): Promise<RunManifest> {
  const key = run.runDatasetObject('manifest.json');
  const manifest = parseArtifact(runManifestSchema, key, await store.getJson(key));
  const videoManifests = await Promise.all(videoGuids.map(async (g) => parseArtifact(manifestSchema, run.video(g).manifest, await store.getJson(run.video(g).manifest))));
  const apart = videoManifests.some((m) => m.options.augment.placement === 'train_aug' && m.images.some((i) => i.augmentation !== null));
  const names = await expectFolderDataset(
    store,
    { prefix: run.datasetPrefix, classesTxt: run.runDatasetObject('classes.txt'), dataYaml: run.runDatasetObject('data.yaml'), manifestCsv: run.runDatasetObject('manifest.csv'), metadata: (f) => run.runDatasetObject(`${f}/metadata.jsonl`) },
    manifest,
    { apart, minClasses: 2, labelOf: (img) => ({ team: (img as RunManifest['images'][number]).team, role: (img as RunManifest['images'][number]).role }) },
  );
  // One class per (video, track): as many classes as the videos' datasets have together.
  expect(names.length).toBe(videoManifests.reduce((s, m) => s + m.classes!.length, 0));
  expect(new Set(manifest.images.map((i) => i.videoGuid))).toEqual(new Set(videoGuids));
  for (const img of manifest.images) expect(img.class_name).toBe(`${img.videoGuid}_track_${img.track_id}`);
  // Exactly every video's images, each copied from the one it names (same bytes: same MD5 in the listing).
  const want = videoManifests.flatMap((m) => m.images.map((i) => i.path)).sort();
  expect(manifest.images.map((i) => i.copied_from).sort()).toEqual(want);
  const md5 = new Map((await store.list(run.prefix)).map((x) => [x.name, x.md5]));
  for (const img of manifest.images) {
    expect(md5.get(img.path)).toBeDefined();
    expect(md5.get(img.path)).toBe(md5.get(img.copied_from));
  }
  expect(manifest.counts.train + manifest.counts.val + (manifest.counts.test ?? 0)).toBe(manifest.images.length);
  return manifest;
}

/**
 * Asserts the video's MOT and COCO exports parse and hold exactly the boxes of its `detections.json`
 * (frame, track, bbox, score), and the COCO images are its sampled frames.
 */
export async function expectExportsAgree(store: ObjectStore, video: VideoLayout): Promise<void> {
  const dets = parseArtifact(detectionsFileSchema, video.detections, await store.getJson(video.detections));
  const boxes = dets.frames.flatMap((f) => f.detections.map((d) => ({ frameId: f.frame_id, trackId: d.track_id, bbox: d.bbox, score: d.score })));
  const key = (b: { frameId: number; trackId: number }) => `${b.frameId}/${b.trackId}`;
  const want = new Map(boxes.map((b) => [key(b), b]));
  expect(want.size).toBe(boxes.length);
  // MOT: read as MOT ground truth is read (1-based frames and ids), then compared box by box.
  const motRaw = (await store.get(video.motExport)).toString('utf8');
  const mot = parseMotGroundTruth(motRaw, 'tracks_mot.txt');
  expect(mot.length).toBe(boxes.length);
  const scores = motRaw.trim().split('\n').map((l) => Number(l.split(',')[6]));
  mot.forEach((m, i) => {
    const b = want.get(key({ frameId: m.frameId, trackId: m.personId - 1 }))!;
    expect(b).toBeDefined();
    m.bbox.forEach((v, k) => expect(v).toBeCloseTo(b.bbox[k], 6));
    expect(scores[i]).toBe(b.score);
  });
  // COCO: images are the sampled frames (stored), annotations the boxes.
  const coco = (await store.getJson<CocoExport>(video.cocoExport))!;
  expect(coco.images.map((i) => i.frame_id)).toEqual(dets.frames.map((f) => f.frame_id).sort((a, b) => a - b));
  for (const img of coco.images.slice(0, 3)) expect(await store.exists(video.prefix + img.file_name)).toBe(true);
  const imageFrame = new Map(coco.images.map((i) => [i.id, i.frame_id]));
  expect(coco.annotations.length).toBe(boxes.length);
  for (const a of coco.annotations) {
    const b = want.get(key({ frameId: imageFrame.get(a.image_id)!, trackId: a.track_id }))!;
    expect(b).toBeDefined();
    expect(a.bbox[0]).toBe(b.bbox[0]);
    expect(a.bbox[1]).toBe(b.bbox[1]);
    expect(a.bbox[0] + a.bbox[2]).toBeCloseTo(b.bbox[2], 6);
    expect(a.bbox[1] + a.bbox[3]).toBeCloseTo(b.bbox[3], 6);
    expect(a.score).toBe(b.score);
    const team = dets.teams?.classes.find((c) => c.track_id === a.track_id);
    expect(a.attributes).toEqual({ track_id: a.track_id, team: team?.team ?? null, role: team?.role ?? null });
  }
}

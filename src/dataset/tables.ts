/**
 * Flat forms of the dataset manifest for consumers that read tables: `datasets/manifest.csv` (pandas
 * `read_csv`) and, per split folder, `metadata.jsonl` in the form of Hugging Face `datasets`' ImageFolder
 * metadata (https://huggingface.co/docs/datasets/image_dataset#imagefolder: a `file_name` column relative
 * to the metadata file's folder). Hugging Face drops the folder-derived labels when metadata is present, so
 * each line carries `label` (the class index) itself. Pure.
 */
import { stringify } from 'csv-stringify/sync';

/** One dataset image as the tables show it (a manifest image row, src/storage/artifacts.ts `manifestImageSchema`). */
export interface TableImage {
  /** Path relative to the dataset root `datasets/`: `{split}/track_{id}/{name}.jpg`. */
  file: string;
  /** `gs://` URI of the image. */
  uri: string;
  split: string;
  class_index: number;
  class_name: string;
  track_id: number;
  frame_id: number;
  /** `[x1, y1, x2, y2]` in source pixels. */
  bbox: readonly number[];
  source_crop: string;
  /** The augmentation of an augmented copy (any JSON value); null for the crop itself. */
  augmentation: unknown;
  team?: string | null;
  role?: string | null;
}

/** Column order of `manifest.csv`. */
export const CSV_COLUMNS = ['file', 'uri', 'split', 'class_index', 'class_name', 'track_id', 'frame_id', 'x1', 'y1', 'x2', 'y2', 'augmented', 'augmentation', 'team', 'role', 'source_crop'] as const;

/** csv-stringify options of `manifest.csv` (RFC 4180 quoting; booleans as `true`/`false`). */
const CSV_OPTIONS = { columns: [...CSV_COLUMNS], cast: { boolean: (v: boolean) => (v ? 'true' : 'false') } };

/**
 * `manifest.csv`: a header row of {@link CSV_COLUMNS}, then one row per image in the given order (RFC 4180
 * quoting by csv-stringify). `augmented` is `true`/`false`; `augmentation` is the augmentation as JSON, empty
 * for an original crop; `team` and `role` are empty when unknown. Equal to {@link manifestCsvHeader} followed
 * by {@link manifestCsvRow} of each image, which step 9 writes one at a time.
 */
export function manifestCsv(images: readonly TableImage[]): string {
  return manifestCsvHeader() + images.map(manifestCsvRow).join('');
}

/** The header line of `manifest.csv` ({@link CSV_COLUMNS}), ending in `\n`. */
export function manifestCsvHeader(): string {
  return stringify([], { ...CSV_OPTIONS, header: true });
}

/** The line of `manifest.csv` for one image ({@link manifestCsv}), ending in `\n`. */
export function manifestCsvRow(i: TableImage): string {
  const record = {
    file: i.file,
    uri: i.uri,
    split: i.split,
    class_index: i.class_index,
    class_name: i.class_name,
    track_id: i.track_id,
    frame_id: i.frame_id,
    x1: i.bbox[0],
    y1: i.bbox[1],
    x2: i.bbox[2],
    y2: i.bbox[3],
    augmented: i.augmentation !== null,
    augmentation: i.augmentation === null ? '' : JSON.stringify(i.augmentation),
    team: i.team ?? '',
    role: i.role ?? '',
    source_crop: i.source_crop,
  };
  return stringify([record], { ...CSV_OPTIONS, header: false });
}

/**
 * `{folder}/metadata.jsonl`: one JSON object per image whose `file` lies in the top-level folder `folder` (a
 * split, or `train_aug`), `file_name` relative to that folder (`track_{id}/{name}.jpg`), `label` the class
 * index, then class name, split, track, frame, bbox, whether it is an augmented copy, team and role.
 * @throws RangeError when `folder` is empty or holds `/`
 */
export function splitMetadataJsonl(images: readonly TableImage[], folder: string): string {
  if (!folder || folder.includes('/')) throw new RangeError(`folder ${JSON.stringify(folder)} must be one top-level folder name`);
  return images
    .filter((i) => tableFolder(i) === folder)
    .map(splitMetadataLine)
    .join('');
}

/** The top-level folder of an image's `file` (a split, or `train_aug`): the metadata file it belongs in. */
export function tableFolder(i: Pick<TableImage, 'file'>): string {
  const k = i.file.indexOf('/');
  return k < 0 ? '' : i.file.slice(0, k);
}

/** The line of `{folder}/metadata.jsonl` for one image ({@link splitMetadataJsonl}), its folder {@link tableFolder}; ends in `\n`. */
export function splitMetadataLine(i: TableImage): string {
  const folder = tableFolder(i);
  return `${JSON.stringify({
    file_name: i.file.slice(folder.length + 1),
    label: i.class_index,
    class_name: i.class_name,
    split: i.split,
    track_id: i.track_id,
    frame_id: i.frame_id,
    bbox: i.bbox,
    augmented: i.augmentation !== null,
    team: i.team ?? null,
    role: i.role ?? null,
  })}\n`;
}

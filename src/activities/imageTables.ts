/**
 * Step 9's per-image outputs, written as each image is planned rather than built whole (docs/ARCHITECTURE.md
 * "Memory"): the manifest's `images`, `manifest.csv` and each folder's `metadata.jsonl` are spooled to local
 * files (src/util/fs.ts `TextSpool`) and uploaded from there, so a video's memory in step 9 does not grow
 * with its number of dataset images. The bytes are those of stringifying the whole manifest and tables
 * (src/util/json.ts, src/dataset/tables.ts).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { appendFile, mkdir, mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { manifestCsvHeader, manifestCsvRow, splitMetadataLine, tableFolder } from '../dataset/tables';
import type { Manifest, ManifestImage } from '../storage/artifacts';
import type { DatasetFolder, VideoLayout } from '../storage/layout';
import { NOT_READ_AGAIN } from '../storage/runFiles';
import { TextSpool } from '../util/fs';
import { prettyJsonClose, prettyJsonItem, prettyJsonOpen } from '../util/json';
import type { StepFiles } from './runStep';

/** A manifest image as step 9 writes it: with the fields that older manifests lack. */
export type DatasetImage = ManifestImage & Required<Pick<ManifestImage, 'file' | 'uri' | 'class_index' | 'class_name'>>;

/** Team and role of a class, as the tables show them (null: unknown). */
export interface ClassLabel {
  team?: string | null;
  role?: string | null;
}

/** The spooled images and table rows of one step-9 call; {@link upload} writes them, {@link discard} drops them. */
export class ImageTables {
  private count = 0;
  private readonly metadata = new Map<string, TextSpool>();

  private constructor(
    private readonly dir: string,
    private readonly images: TextSpool,
    private readonly csv: TextSpool,
  ) {}

  /** Starts the spools in a new folder under `scratchDir` (the activity's scratch, removed after it). @throws the errno error of mkdir(2) or open(2) */
  static async create(scratchDir: string): Promise<ImageTables> {
    await mkdir(scratchDir, { recursive: true });
    const dir = await mkdtemp(path.join(scratchDir, 'tables-'));
    const images = await TextSpool.create(path.join(dir, 'images.json'));
    const csv = await TextSpool.create(path.join(dir, 'manifest.csv'));
    await csv.write(manifestCsvHeader());
    return new ImageTables(dir, images, csv);
  }

  /** Adds one image, in manifest order, with its class's team and role. @throws the errno error of a spool's write (e.g. `ENOSPC`) */
  async add(image: DatasetImage, label: ClassLabel | undefined): Promise<void> {
    await this.images.write(prettyJsonItem(image, this.count++));
    const row = { ...image, team: label?.team ?? null, role: label?.role ?? null };
    await this.csv.write(manifestCsvRow(row));
    const folder = tableFolder(row);
    let spool = this.metadata.get(folder);
    if (!spool) this.metadata.set(folder, (spool = await TextSpool.create(path.join(this.dir, `metadata-${folder}.jsonl`))));
    await spool.write(splitMetadataLine(row));
  }

  /** Whether an image was added in the top-level dataset folder `folder`. */
  hasFolder(folder: DatasetFolder): boolean {
    return this.metadata.has(folder);
  }

  /**
   * Uploads `manifest.csv`, the `metadata.jsonl` of each of `folders`, and last the manifest: `manifest` with
   * the added images as its last property `images`. None of them is kept in the run cache.
   * @throws Error when one of `folders` received no image; the errno error of a local file operation; the
   *   store's errors of an upload (Transient ones retried there first)
   */
  async upload(files: StepFiles, video: VideoLayout, folders: readonly DatasetFolder[], manifest: Omit<Manifest, 'images'>): Promise<void> {
    await this.csv.close();
    await files.writeFile(video.manifestCsv, this.csv.file, 'text/csv; charset=utf-8', NOT_READ_AGAIN);
    for (const f of folders) {
      const spool = this.metadata.get(f);
      if (!spool) throw new Error(`no image was added in dataset folder ${f}`);
      await spool.close();
      await files.writeFile(video.splitMetadata(f), spool.file, 'application/x-ndjson; charset=utf-8', NOT_READ_AGAIN);
    }
    await this.images.close();
    const whole = path.join(this.dir, 'manifest.json');
    await appendFile(whole, prettyJsonOpen(manifest, 'images'));
    await pipeline(createReadStream(this.images.file), createWriteStream(whole, { flags: 'a' }));
    await appendFile(whole, prettyJsonClose(this.count));
    await files.writeFile(video.manifest, whole, 'application/json', NOT_READ_AGAIN);
  }

  /** Closes every spool still open, without writing more (after a failure, or always last: closing twice does nothing). */
  async discard(): Promise<void> {
    for (const s of [this.images, this.csv, ...this.metadata.values()]) await s.close(true).catch(() => undefined);
  }
}

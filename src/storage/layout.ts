/**
 * The one place that builds object names of the storage layout (docs/ARCHITECTURE.md "Stored artifacts"),
 * and reads back the names it builds (`frameIdOf`, `videoGuidOf`):
 *
 * ```
 * {tenant_id}/user/process/train_pipeline/run_{run_guid}/
 * ├── .pipeline_info.json
 * ├── intermediate/step{N}_result.json
 * ├── dataset/                     run-level dataset of a run with several videos
 * └── video_{video_guid}/ {metadata.json, {guid}.mp4, selected_frames/, detections.json, crops/, datasets/, exports/}
 * ```
 *
 * Every identifier is validated before it becomes part of a name, so no name can leave the tenant's
 * `train_pipeline/` prefix. Workflow-safe (pure string work).
 */
import { invalidInput } from '../errors';
import { assertGuid, assertTenantId, GUID_PATTERN } from '../validation';

/** Dataset split names (ImageFolder top-level folders); `test` only with `split.testFraction` > 0. */
export type Split = 'train' | 'val' | 'test';

/** A dataset's top-level folders: the splits, and `train_aug` for augmented copies kept apart (`augment.placement`). */
export type DatasetFolder = Split | 'train_aug';

function assertTrackId(trackId: number): number {
  if (!Number.isInteger(trackId) || trackId < 0) throw invalidInput(`track_id ${trackId}`, 'must be a non-negative integer');
  return trackId;
}

function assertIndex(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0) throw invalidInput(`${what} ${n}`, 'must be a non-negative integer');
  return n;
}

/** Object names of one video inside a run. */
export class VideoLayout {
  /** Prefix ending in `/`: `{run}/video_{guid}/`. */
  readonly prefix: string;
  constructor(
    readonly run: RunLayout,
    readonly videoGuid: string,
  ) {
    assertGuid(videoGuid, 'videoGuid');
    this.prefix = `${run.prefix}video_${videoGuid}/`;
  }
  /** ffprobe metadata of the imported video. */
  get metadata(): string {
    return `${this.prefix}metadata.json`;
  }
  /** The imported video as MP4. */
  get video(): string {
    return `${this.prefix}${this.videoGuid}.mp4`;
  }
  /** Prefix of sampled frames. */
  get framesPrefix(): string {
    return `${this.prefix}selected_frames/`;
  }
  /** One sampled frame; `frameId` is the 0-based index of the frame in the source video. */
  frame(frameId: number): string {
    return `${this.framesPrefix}frame_${assertIndex(frameId, 'frame_id')}.jpg`;
  }
  /**
   * The frame id of a sampled frame's object name, the inverse of {@link frame}: `undefined` for any other
   * name (another folder or video, another file name, a number with a sign or leading zeros).
   */
  frameIdOf(objectName: string): number | undefined {
    if (!objectName.startsWith(this.framesPrefix)) return undefined;
    const m = /^frame_(0|[1-9][0-9]*)\.jpg$/.exec(objectName.slice(this.framesPrefix.length));
    const id = m ? Number(m[1]) : NaN;
    return Number.isSafeInteger(id) ? id : undefined;
  }
  /** Detections and tracks of all sampled frames. */
  get detections(): string {
    return `${this.prefix}detections.json`;
  }
  /** Prefix of crops of one kind. */
  cropsPrefix(kind: 'original' | 'modified'): string {
    return `${this.prefix}crops/${kind}/`;
  }
  /** Crop index (crop file to frame_id and bbox), kept next to the original crops for later steps. */
  get cropIndex(): string {
    return `${this.cropsPrefix('original')}index.json`;
  }
  /** Crop `n` (0-based per track) of track `trackId`. */
  crop(kind: 'original' | 'modified', trackId: number, n: number): string {
    return `${this.cropsPrefix(kind)}track_${assertTrackId(trackId)}/crop_${assertIndex(n, 'crop index')}.jpg`;
  }
  /** Prefix of the ImageFolder dataset. */
  get datasetPrefix(): string {
    return `${this.prefix}datasets/`;
  }
  /** One dataset image: `datasets/{folder}/track_{id}/{fileName}`. */
  datasetImage(split: DatasetFolder, trackId: number, fileName: string): string {
    if (!/^[A-Za-z0-9_.-]+\.jpg$/.test(fileName) || fileName.startsWith('.')) throw invalidInput(`dataset file name ${fileName}`, 'must be a plain .jpg name');
    return `${this.datasetPrefix}${split}/track_${assertTrackId(trackId)}/${fileName}`;
  }
  /** Per-video HTML contact sheet, next to the dataset. */
  get report(): string {
    return `${this.datasetPrefix}report.html`;
  }
  /** Ultralytics-style dataset description (`path`, `train`, `val`, `names`), next to the splits. */
  get dataYaml(): string {
    return `${this.datasetPrefix}data.yaml`;
  }
  /** The class names, one per line in class-index order, next to the splits. */
  get classesTxt(): string {
    return `${this.datasetPrefix}classes.txt`;
  }
  /** The manifest as a CSV table (src/dataset/tables.ts), next to the splits. */
  get manifestCsv(): string {
    return `${this.datasetPrefix}manifest.csv`;
  }
  /** Hugging Face ImageFolder metadata of one folder: `datasets/{folder}/metadata.jsonl`. */
  splitMetadata(split: DatasetFolder): string {
    return `${this.datasetPrefix}${split}/metadata.jsonl`;
  }
  /** Prefix of the video's standard detection exports (step 9; src/dataset/exports.ts). */
  get exportsPrefix(): string {
    return `${this.prefix}exports/`;
  }
  /** The tracked boxes in MOT Challenge text. */
  get motExport(): string {
    return `${this.exportsPrefix}tracks_mot.txt`;
  }
  /** The tracked boxes as COCO JSON (images: the sampled frames). */
  get cocoExport(): string {
    return `${this.exportsPrefix}tracks_coco.json`;
  }
  /** Dataset manifest, written last. */
  get manifest(): string {
    return `${this.datasetPrefix}manifest.json`;
  }
}

/** Object names of one run: `{tenant_id}/user/process/train_pipeline/run_{run_guid}/`. */
export class RunLayout {
  /** Prefix ending in `/`. */
  readonly prefix: string;
  /**
   * @throws PipelineError(InvalidInput) when the tenant id or run GUID breaks its pattern.
   */
  constructor(
    readonly tenantId: string,
    readonly runGuid: string,
  ) {
    assertTenantId(tenantId);
    assertGuid(runGuid, 'runGuid');
    this.prefix = `${tenantId}/user/process/train_pipeline/run_${runGuid}/`;
  }
  /** Run record: inputs, options, status, per-step status and timings. */
  get pipelineInfo(): string {
    return `${this.prefix}.pipeline_info.json`;
  }
  /** Result of step `n` (1-9), keyed by video GUID inside the object. */
  stepResult(n: number): string {
    if (!Number.isInteger(n) || n < 1 || n > 9) throw invalidInput(`step ${n}`, 'must be 1-9');
    return `${this.prefix}intermediate/step${n}_result.json`;
  }
  /**
   * Checkpoint chunk `k` of a step of one video (partial results a retried step resumes from; deleted when
   * the step completes): `intermediate/checkpoints/{videoGuid}/{step}_{k}.json`.
   */
  checkpoint(videoGuid: string, step: string, k: number): string {
    assertGuid(videoGuid, 'videoGuid');
    if (!/^[A-Za-z]+$/.test(step)) throw invalidInput(`checkpoint step ${step}`, 'must be letters only');
    return `${this.checkpointPrefix(videoGuid)}${step}_${assertIndex(k, 'checkpoint chunk')}.json`;
  }
  /**
   * Checkpoint chunk `k` of segment `segment` of step 5 (docs/ARCHITECTURE.md "Segments"):
   * `intermediate/checkpoints/{videoGuid}/segment_{segment}/detect_{k}.json`.
   */
  segmentCheckpoint(videoGuid: string, segment: number, k: number): string {
    return `${this.segmentCheckpointPrefix(videoGuid, segment)}detect_${assertIndex(k, 'checkpoint chunk')}.json`;
  }
  /** Prefix of the checkpoint chunks of one segment of step 5 (deleted when the segment completes). */
  segmentCheckpointPrefix(videoGuid: string, segment: number): string {
    return `${this.checkpointPrefix(videoGuid)}segment_${assertIndex(segment, 'segment')}/`;
  }
  /**
   * The tracking of segment `segment` of a video (an intermediate artifact of step 5, merged into
   * `detections.json`): `intermediate/segments/{videoGuid}/segment_{segment}.json`.
   */
  segment(videoGuid: string, segment: number): string {
    return `${this.prefix}intermediate/segments/${assertGuid(videoGuid, 'videoGuid')}/segment_${assertIndex(segment, 'segment')}.json`;
  }
  /**
   * The frames of `detections.json` that class batch `batch` cuts its crops from (docs/ARCHITECTURE.md "Class
   * batches"; written by step 5, read by the batch's `cropBatch`): `intermediate/detections/{videoGuid}/batch_{batch}.json`.
   */
  detectionsBatch(videoGuid: string, batch: number): string {
    return `${this.prefix}intermediate/detections/${assertGuid(videoGuid, 'videoGuid')}/batch_${assertIndex(batch, 'class batch')}.json`;
  }
  /**
   * The crops that class batch `batch` of step 6 cut (docs/ARCHITECTURE.md "Class batches"; merged into the
   * crop index): `intermediate/crops/{videoGuid}/batch_{batch}.json`.
   */
  cropBatch(videoGuid: string, batch: number): string {
    return `${this.prefix}intermediate/crops/${assertGuid(videoGuid, 'videoGuid')}/batch_${assertIndex(batch, 'class batch')}.json`;
  }
  /**
   * What class batch `batch` of step 7 removed of each of its crops (docs/ARCHITECTURE.md "Class batches"):
   * `intermediate/background/{videoGuid}/batch_{batch}.json`.
   */
  backgroundBatch(videoGuid: string, batch: number): string {
    return `${this.prefix}intermediate/background/${assertGuid(videoGuid, 'videoGuid')}/batch_${assertIndex(batch, 'class batch')}.json`;
  }
  /**
   * Augmented copy `k` of crop `n` of track `trackId`, made by a class batch of step 8 (docs/ARCHITECTURE.md
   * "Class batches"; step 9 copies it into the dataset):
   * `intermediate/augmented/{videoGuid}/track_{id}/crop_{n}_aug{k}.jpg`.
   */
  augmented(videoGuid: string, trackId: number, n: number, k: number): string {
    return `${this.augmentedPrefix(videoGuid)}track_${assertTrackId(trackId)}/crop_${assertIndex(n, 'crop index')}_aug${assertIndex(k, 'augmented copy')}.jpg`;
  }
  /** Prefix of the augmented copies that class batches of step 8 made of one video (deleted by step 9). */
  augmentedPrefix(videoGuid: string): string {
    return `${this.prefix}intermediate/augmented/${assertGuid(videoGuid, 'videoGuid')}/`;
  }
  /** Prefix of one video's checkpoint chunks. */
  checkpointPrefix(videoGuid: string): string {
    return `${this.prefix}intermediate/checkpoints/${assertGuid(videoGuid, 'videoGuid')}/`;
  }
  /** Layout of one video of this run. */
  video(videoGuid: string): VideoLayout {
    return new VideoLayout(this, videoGuid);
  }
  /** Prefix of the run-level dataset of a run with several videos (src/dataset/merge.ts). */
  get datasetPrefix(): string {
    return `${this.prefix}dataset/`;
  }
  /**
   * One object of the run-level dataset, `dataset/{file}`: an image `{folder}/{videoGuid}_track_{id}/{name}.jpg`,
   * a folder's `metadata.jsonl`, or a top-level file (`classes.txt`, `data.yaml`, `manifest.csv`, `manifest.json`).
   * @throws PipelineError(InvalidInput) for any other name (a segment that is empty, `.` or `..`, or unexpected characters)
   */
  runDatasetObject(file: string): string {
    const parts = file.split('/');
    const ok =
      parts.length >= 1 &&
      parts.length <= 3 &&
      parts.every((p) => /^[A-Za-z0-9_.-]+$/.test(p) && p !== '.' && p !== '..') &&
      (parts.length !== 3 || (/^(train|val|test|train_aug)$/.test(parts[0]) && /\.jpg$/.test(parts[2])));
    if (!ok) throw invalidInput(`run dataset file ${file}`, 'must be {folder}/{class}/{name}.jpg, {folder}/metadata.jsonl or a top-level file name');
    return `${this.datasetPrefix}${file}`;
  }
  /**
   * The video GUID of an object inside one of this run's video folders (`{prefix}video_{guid}/...`), the
   * inverse of {@link video}`(guid).prefix`; `undefined` for any other name.
   */
  videoGuidOf(objectName: string): string | undefined {
    if (!objectName.startsWith(`${this.prefix}video_`)) return undefined;
    const rest = objectName.slice(this.prefix.length + 'video_'.length);
    const slash = rest.indexOf('/');
    const guid = slash > 0 ? rest.slice(0, slash) : '';
    return GUID_PATTERN.test(guid) ? guid : undefined;
  }
}

/**
 * Object name of a local file the CLI uploads for tenant `tenantId` (its inbox, inside the tenant's own
 * folder, which the default source policy lets the tenant import from):
 * `{tenant_id}/user/uploads/{first 16 hex digits of the file's sha256}/{fileName}`. The content hash keeps
 * different files of the same name apart and makes a second upload of the same file unnecessary.
 * @param contentSha256 the file's sha256, lowercase hex (64 digits).
 * @param fileName a plain file name: letters, digits, `.`, `_` and `-`, not starting with `.`.
 * @throws PipelineError(InvalidInput) when an argument breaks its rule.
 */
export function uploadObject(tenantId: string, contentSha256: string, fileName: string): string {
  assertTenantId(tenantId);
  if (!/^[0-9a-f]{64}$/.test(contentSha256)) throw invalidInput(`sha256 ${contentSha256}`, 'must be 64 lowercase hex digits');
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/.test(fileName)) throw invalidInput(`upload file name ${fileName}`, 'must be a plain file name (letters, digits, ".", "_", "-"; not starting with ".")');
  return `${tenantId}/user/uploads/${contentSha256.slice(0, 16)}/${fileName}`;
}

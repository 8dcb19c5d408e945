/**
 * Small, serialisable payloads exchanged between workflows and activities (paths, counts, hashes — never
 * image bytes; Temporal rejects payloads over 2 MB; docs/ARCHITECTURE.md "Layers"). Workflow-safe: types
 * only; domain types (the pitch model) are imported from their domain as types.
 */
import type { ClassBatch } from '../dataset/batches';
import type { PipelineOptions } from '../validation';
import type { PitchModel } from '../vision/pitch/model';
import type { StepName } from './steps';

export type { StepName } from './steps';

/** Identifies one video of one run; every per-video activity receives it. */
export interface VideoRef {
  tenantId: string;
  runGuid: string;
  videoGuid: string;
  /** Temporal workflow id of the parent run (recorded in `.pipeline_info.json`). */
  workflowId: string;
}

/** Input of every per-video step activity. */
export interface StepInput extends VideoRef {
  source: string;
  /** Corrected tracks (MOT Challenge form) that step 5 takes instead of detecting and tracking; see `VideoInput.tracks`. */
  tracks?: string;
  options: PipelineOptions;
  /** Pitch model from step 4, for steps that need it (small: a few numbers). */
  grass?: PitchModel;
}

/** Per-step storage counters reported in step results. */
export interface StepIo {
  gcsRequests: number;
  bytesUploaded: number;
  bytesDownloaded: number;
  cacheHits: number;
  cacheMisses: number;
  /** Payload bytes this step read from the worker's run cache instead of GCS. */
  bytesFromCache: number;
  /** Artifacts (frames, crops, the video, JSON) this step had to download from GCS: cache misses that hit GCS. */
  artifactDownloads: number;
  /**
   * Uploads and copies a retried attempt skipped because the object was already stored with the same bytes
   * (size and MD5); 0 on first attempts. Absent in results recorded before it existed.
   */
  uploadsSkipped: number;
}

/** Fields common to every step result. */
export interface StepResultBase {
  step: number;
  name: StepName;
  videoGuid: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  io: StepIo;
  /** Task queue the step ran from: a worker-specific queue, or the shared one after a re-route. */
  taskQueue?: string;
  /** Worker-specific queue of the worker whose run cache now holds this step's artifacts (cache on). */
  cachedOn?: string;
  /**
   * Event-loop delay of the worker process while the step ran, p99 and maximum in milliseconds (all work of
   * the process counts, not only this step's). Heartbeats and the notice of a cancel wait this long at most.
   */
  eventLoopDelayMs?: { p99: number; max: number };
  /**
   * Liveness of the attempt that completed (src/activities/liveness.ts), ms: the longest gap between two
   * heartbeats sent and between two progress reports. Absent outside a worker (no liveness interceptor).
   */
  liveness?: { maxHeartbeatGapMs: number; maxProgressGapMs: number };
}

/** Result of step 1. */
export interface ImportResult extends StepResultBase {
  object: string;
  metadataObject: string;
  sha256: string;
  sizeBytes: number;
  mode: 'copy' | 'transcode';
  frameCount: number;
  width: number;
  height: number;
  fps: number;
  durationSec: number;
}

/** Result of step 2. */
export interface LoadResult extends StepResultBase {
  /** Whether the worker already had the local copy. */
  alreadyLocal: boolean;
  sizeBytes: number;
}

/** Result of step 3. */
export interface FramesResult extends StepResultBase {
  frames: number;
  stride: number;
  firstFrameId: number | null;
  lastFrameId: number | null;
  prefix: string;
  /**
   * The video's time segments (`options.segments`, src/vision/tracking/stitch.ts `planSegments`) in source
   * frame indices, both ends included; one segment for a video no longer than a segment. Absent in results
   * of older runs (the video is then tracked in one piece).
   */
  segments?: SegmentRange[];
}

/** A time segment of a video in source frame indices, both ends included (the stitch module's `SegmentRange`). */
export interface SegmentRange {
  /** 0-based position of the segment in the video. */
  index: number;
  from: number;
  to: number;
}

/** Input of step 5 (`detectPlayers`): with `segments`, the segments `detectSegment` tracked, to stitch. */
export interface DetectInput extends StepInput {
  segments?: SegmentRange[];
}

/** Input of `detectSegment`: a step input with step 4's pitch model and the segment to track. */
export interface SegmentInput extends StepInput {
  segment: SegmentRange;
}

/**
 * Result of `detectSegment` (part of step 5; recorded under `segments.{index}` of the video's entry in
 * `intermediate/step5_result.json`). Its `name` is `detectPlayers`, the step it belongs to.
 */
export interface SegmentResult extends StepResultBase {
  segment: SegmentRange;
  /** Sampled frames of the segment. */
  frames: number;
  detections: number;
  /** The segment's tracking, `intermediate/segments/{videoGuid}/segment_{index}.json`. */
  object: string;
}

/** Fan-out progress of a video's segments (a video tracked in one piece has none). */
export interface SegmentProgress {
  total: number;
  done: number;
  /** Sampled frames of the segments done (overlap frames count in both of their segments). */
  framesDone: number;
}

/** Result of step 4. */
export interface GrassResult extends StepResultBase {
  grass: PitchModel;
  framesSampled: number;
}

/** Result of step 5. */
export interface DetectResult extends StepResultBase {
  frames: number;
  detections: number;
  /** Classes (after fragment joins). */
  tracks: number;
  /** Tracklets, tracklet cuts and fragment joins (absent in results of older runs). */
  tracklets?: number;
  cuts?: number;
  joins?: number;
  model: string;
  modelSha256: string;
  object: string;
  /**
   * The video's class batches (`options.batches`, src/dataset/batches.ts `planClassBatches`); one batch for a
   * video with fewer tracked boxes than a batch. Absent in results of older runs (the video is then one batch).
   */
  classBatches?: ClassBatch[];
}

/** Result of step 6. */
export interface CropsResult extends StepResultBase {
  crops: number;
  tracks: number;
  rejected: Record<string, number>;
  /** Crop index object (crop file to frame_id and bbox), written next to the crops. */
  index: string;
}

/**
 * Input of steps 6 to 9 of a video of several class batches (`batches`, from step 5): step 6 merges the
 * crops `cropBatch` cut, step 7 gathers what `backgroundBatch` removed, step 8 counts the augmented copies `augmentBatch` made (in
 * `intermediate/augmented/{videoGuid}/`), step 9 copies them into the dataset.
 */
export interface BatchedInput extends StepInput {
  batches?: ClassBatch[];
}

/** Input of `cropBatch`, `backgroundBatch` and `augmentBatch`: a step input with step 4's pitch model and the batch of classes. */
export interface BatchInput extends StepInput {
  batch: ClassBatch;
}

/**
 * Result of `cropBatch` (part of step 6; recorded under `batches.{index}` of the video's entry in
 * `intermediate/step6_result.json`). Its `name` is `extractCrops`, the step it belongs to.
 */
export interface CropBatchResult extends StepResultBase {
  batch: ClassBatch;
  crops: number;
  /** The batch's crops, `intermediate/crops/{videoGuid}/batch_{index}.json`. */
  object: string;
}

/**
 * Result of `backgroundBatch` (part of step 7; recorded under `batches.{index}` of the video's entry in
 * `intermediate/step7_result.json`). Its `name` is `removeCropBackground`, the step it belongs to.
 */
export interface BackgroundBatchResult extends StepResultBase {
  batch: ClassBatch;
  /** Crops of the batch. */
  crops: number;
  /** The removed share per crop, `intermediate/background/{videoGuid}/batch_{index}.json`; null when nothing is removed. */
  object: string | null;
}

/**
 * Result of `augmentBatch` (part of step 8; recorded under `batches.{index}` of the video's entry in
 * `intermediate/step8_result.json`). Its `name` is `augmentCrops`, the step it belongs to.
 */
export interface BatchResult extends StepResultBase {
  batch: ClassBatch;
  /** Augmented copies made, and the train crops they were made of. */
  augmented: number;
  sources: number;
}

/** Fan-out progress of a video's class batches (a video of one batch has none). */
export interface BatchProgress {
  total: number;
  done: number;
}

/** Result of step 7. */
export interface BackgroundResult extends StepResultBase {
  mode: 'grass' | 'segmentation' | 'both' | 'none';
  crops: number;
}

/** Result of step 8. */
export interface AugmentResult extends StepResultBase {
  augmented: number;
  sources: number;
}

/** Result of step 9. */
export interface SplitResult extends StepResultBase {
  train: number;
  val: number;
  /** Images in the test split; present only with `split.testFraction` > 0. */
  test?: number;
  /** Classes of the dataset (the same in every split). Absent in results of older runs. */
  classes?: number;
  trainOnlyTracks: number[];
  /** Tracks left out of the dataset (the manifest's `excludedTracks` gives the reasons). Absent in results of older runs. */
  excludedTracks?: number[];
  manifest: string;
}

/** Per-video counts in progress and in the run summary. */
export interface VideoCounts {
  frames?: number;
  detections?: number;
  tracks?: number;
  crops?: number;
  train?: number;
  val?: number;
  /** Images in the test split, when the run has one. */
  test?: number;
  /** Classes of the dataset, the same in every split (step 9). */
  classes?: number;
}

/**
 * Whether step 4 found a pitch in a video (in the `progress` query and the run summary once step 4 is done).
 * Without a pitch, step 5 keeps every person (no feet-on-pitch filter) and step 7 keys no grass.
 */
export interface VideoPitch {
  found: boolean;
  /** Sampled frames that are pitch-like by shape, of `framesSampled` (absent in models of older runs). */
  framesPitchLike?: number;
  framesSampled: number;
  /** One sentence saying why (`grass.pitch.reason` of the step-4 result). */
  reason?: string;
}

/** Status of a run or of a video in it. */
export type RunStatus = 'running' | 'completed' | 'failed' | 'cancelled';

/** Per-video progress as the `progress` query reports it. */
export interface VideoProgress {
  videoGuid: string;
  source: string;
  status: RunStatus | 'pending';
  currentStep: StepName | null;
  stepsDone: number;
  totalSteps: number;
  counts: VideoCounts;
  /** Step 4's pitch decision, once step 4 is done. */
  pitch?: VideoPitch;
  /** Storage and cache counters summed over the steps done so far. */
  io?: StepIo;
  /** Where the video's steps go (worker-specific queues or the shared ones) and re-routes after worker loss. */
  routing?: VideoRouting;
  /** Segments of step 5 done, when the video is tracked in several (`options.segments`). */
  segments?: SegmentProgress;
  /** Class batches done of the step now fanned out (6 or 8), when the video has several (`options.batches`). */
  batches?: BatchProgress;
  error?: string;
}

/** Task queues of a video's steps (docs/ARCHITECTURE.md "Routing"). */
export interface VideoRouting {
  /** Queue of the CPU steps: a worker's own queue `{taskQueue}@{workerId}` or the shared `{taskQueue}`. */
  cpu: string;
  gpu: string;
  cpuWorker?: string;
  gpuWorker?: string;
  /** Re-routes from a lost worker's queue to the shared queue, in order. */
  reroutes: { step: StepName; from: string; to: string; reason: string }[];
}

/** Answer of the `progress` query of `trainPipeline`. */
export interface RunProgress {
  runGuid: string;
  tenantId: string;
  status: RunStatus;
  videos: VideoProgress[];
  /** Steps done over steps in the run, 0-1. */
  fraction: number;
  cancelRequested?: CancelRequest;
}

/** Payload of the `cancel` signal. */
export interface CancelRequest {
  reason?: string;
  /** Who asked (a user or service name); optional. */
  by?: string;
}

/** Per-video part of the run summary. */
export interface VideoSummary {
  videoGuid: string;
  source: string;
  status: RunStatus;
  counts: VideoCounts;
  /** Step 4's pitch decision; absent when the video stopped before step 4. */
  pitch?: VideoPitch;
  io?: StepIo;
  routing?: VideoRouting;
  error?: string;
}

/** Result of `trainPipeline` (docs/ARCHITECTURE.md "Workflow contract"). */
export interface RunSummary {
  status: RunStatus;
  tenantId: string;
  runGuid: string;
  workflowId: string;
  bucket: string;
  outputPrefix: string;
  videos: VideoSummary[];
  /** Run-cache counters summed over every step of every video ({@link StepIo}). */
  cache: { hits: number; misses: number; bytesFromCache: number; artifactDownloads: number };
  storage: { requests: number; bytesUploaded: number; bytesDownloaded: number };
  /** The run-level dataset: present when a run with several videos completed (src/activities/runDataset.ts). */
  dataset?: RunDatasetResult;
}

/** Argument of the `mergeRunDataset` activity: the run and its videos, in input order. */
export interface RunDatasetInput {
  tenantId: string;
  runGuid: string;
  videoGuids: string[];
}

/** Result of `mergeRunDataset`: where the run-level dataset is and its counts. */
export interface RunDatasetResult {
  /** `gs://{bucket}/{run prefix}dataset/`. */
  prefix: string;
  /** Bucket key of `dataset/manifest.json`. */
  manifest: string;
  classes: number;
  train: number;
  val: number;
  test?: number;
}

/** Input of the per-video child workflow `processVideo`. */
export interface ProcessVideoInput extends VideoRef {
  source: string;
  /** See `VideoInput.tracks` (src/validation.ts). */
  tracks?: string;
  options: PipelineOptions;
}

/**
 * Argument of the `recordRunStart` activity. The input travels once: the options and the list of videos
 * with their sources that `.pipeline_info.json` records are derived from it by the activity, so the
 * payload stays under the input size limit (`MAX_INPUT_BYTES`, src/validation.ts) plus 66 bytes per video.
 */
export interface RunStartRecord {
  tenantId: string;
  runGuid: string;
  workflowId: string;
  /** The workflow input as the workflow received and validated it. */
  input: unknown;
  /** GUID of each video of `input.videos`, in order: given, or derived by the workflow. */
  videoGuids: string[];
}

/** Run-level record written at start and end of `trainPipeline` into `.pipeline_info.json`. */
export interface RunRecord {
  tenantId: string;
  runGuid: string;
  workflowId: string;
  status: RunStatus;
  input?: unknown;
  options?: PipelineOptions;
  videos?: { videoGuid: string; source: string }[];
  error?: { type: string; message: string };
  cancellation?: { reason?: string; by?: string; at: string };
  summary?: RunSummary;
}

/**
 * The stored artifacts of a run (docs/ARCHITECTURE.md "Stored artifacts") as zod schemas: every reader
 * validates what it reads ({@link parseArtifact}), and the types the writers build are inferred from the
 * same schemas, so a file format is written down once. Object names come from ./layout.ts.
 *
 * | artifact | object | written by |
 * |---|---|---|
 * | {@link MetadataFile} | `video_{guid}/metadata.json` | step 1 |
 * | {@link DetectionsFile} | `video_{guid}/detections.json` | step 5 |
 * | {@link CropIndex} | `video_{guid}/crops/original/index.json` | step 6 |
 * | {@link Manifest} | `video_{guid}/datasets/manifest.json` | step 9, last |
 * | {@link StepResultFile} | `intermediate/step{N}_result.json` | every step (`runStep`) |
 * | {@link PipelineInfo} | `.pipeline_info.json` | run start and end, every step's status |
 * | checkpoint chunks | `intermediate/checkpoints/{guid}/{step}_{k}.json` | steps 5 and 7 (./checkpoints.ts) |
 *
 * Fields added after a format was first written are optional here (runs started by older code may be resumed
 * by newer workers). Records that several writers update (`.pipeline_info.json`, step results) are loose:
 * fields this module does not name are kept as they are.
 */
import { z } from 'zod';
import { ErrorType, PipelineError } from '../errors';
import type { Augmentation } from '../dataset/augment';
import type { BackgroundDecision } from '../dataset/background';
import type { VideoMetadata } from '../vision/media/probe';
import type { PitchModel } from '../vision/pitch/model';
import type { ObjectStore } from './gcs';

/**
 * Parses `value`, read from object `objectName`, with `schema`.
 * @returns the parsed value (for strict object schemas: without fields the schema does not name)
 * @throws PipelineError(Internal, objectName) naming the first field that does not match (a stored artifact
 *   that does not match its format is a fault of the pipeline, not of the input)
 */
export function parseArtifact<S extends z.ZodType>(schema: S, objectName: string, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue.path.length ? issue.path.map(String).join('.') : '(root)';
  throw new PipelineError(ErrorType.Internal, objectName, `does not match its stored format at ${where}: ${issue.message}`);
}

const int = z.number().int();
/** A count or index: an integer >= 0. */
export const count = z.number().int().min(0);
/** `[x1, y1, x2, y2]` in source pixels. */
export const bbox = z.tuple([z.number(), z.number(), z.number(), z.number()]);

/** What ffprobe told about the imported video (`VideoMetadata` of src/vision/media/probe.ts). */
export const videoMetadataSchema = z.object({
  durationSec: z.number(), fps: z.number(),
  width: count, height: count,
  codedWidth: count, codedHeight: count,
  rotation: z.number(),
  codec: z.string(),
  pixelFormat: z.string(),
  videoStreamIndex: count,
  hasAudio: z.boolean(),
  audioStreamIndex: count.nullable(),
  audioCodec: z.string().nullable(),
  frameCount: count,
  headerFrameCount: count.nullable(),
  /** Absent in runs imported before the field existed. */
  variableFrameRate: z.boolean().optional(),
  container: z.string(),
  sizeBytes: count,
});
// The stored metadata holds every field the prober reports (compile-time check).
({}) as VideoMetadata satisfies z.input<typeof videoMetadataSchema>;

/** `metadata.json`: the video's metadata, its source and the imported MP4. */
export const metadataFileSchema = videoMetadataSchema.extend({
  source: z.string(),
  /** sha256 of the source file, hex. */
  sha256: z.string(),
  imported: z.object({ object: z.string(), mode: z.enum(['copy', 'transcode']), sha256: z.string(), sizeBytes: count }),
});
/** `metadata.json`. */
export type MetadataFile = z.output<typeof metadataFileSchema>;

const pitchParamsSchema = z.object({
  maskWidth: z.number(),
  closeRadius: z.number(),
  rowFill: z.boolean(),
  minPitchFraction: z.number(),
  fullRowCoverage: z.number(),
  minFullWidthRows: z.number(),
  minPitchFrames: z.number(),
  minGrassSaturation: z.number(),
});

/** The pitch model of step 4 (`PitchModel` of src/vision/pitch/model.ts). */
export const pitchModelSchema = z.object({
  pitchFound: z.boolean(),
  greenFraction: z.number(),
  hue: z.object({ min: z.number(), max: z.number(), median: z.number() }),
  sat: z.object({ min: z.number(), median: z.number() }),
  val: z.object({ min: z.number(), median: z.number() }),
  pitch: z
    .object({
      rule: z.enum(['largest-region-full-width-rows-v1', 'largest-region-full-width-rows-v2']),
      framesSampled: count,
      framesPitchLike: count,
      medianFraction: z.number(),
      medianFullWidthRows: z.number(),
      params: pitchParamsSchema,
      picture: z.object({ box: bbox, frameWidth: count, frameHeight: count }).optional(),
      reason: z.string(),
    })
    .optional(),
}) satisfies z.ZodType<PitchModel>;

/** A colour in CIELAB, `[L*, a*, b*]` (src/vision/teams/lab.ts). */
const lab = z.tuple([z.number(), z.number(), z.number()]);

/**
 * The teams of a video in `detections.json` (`TeamsResult` of src/vision/teams/cluster.ts, ids as stored):
 * the status and why, the team centres, and each class's team and role.
 */
export const teamsSchema = z.object({
  status: z.enum(['teams', 'no-pitch', 'too-few', 'one-team']),
  reason: z.string(),
  centres: z.object({ A: lab, B: lab }).nullable(),
  /** Outlier threshold, ΔE. */
  threshold: z.number().nullable(),
  silhouette: z.number().nullable(),
  classes: z.array(
    z.object({
      track_id: count,
      team: z.enum(['A', 'B']).nullable(),
      role: z.enum(['player', 'goalkeeper', 'referee', 'other']).nullable(),
      kit: lab.nullable(),
      /** ΔE to the nearest team centre. */
      distance: z.number().nullable(),
      fitted: z.boolean(),
    }),
  ),
});
/** The teams of a video as stored. */
export type TeamsFile = z.output<typeof teamsSchema>;

/** One sampled frame's entry of `detections.json`. */
export const frameDetectionsSchema = z.object({
  frame_id: count,
  width: count,
  height: count,
  /** Whether tiled inference ran on this frame (absent in older runs). */
  tiled: z.boolean().optional(),
  /** Boxes of confirmed tracks, bbox in source pixels. */
  detections: z.array(
    z.object({
      /** The class: the person's id after fragment joins (the tracklet id when nothing was joined). */
      track_id: count,
      /** The tracklet the box belongs to (absent in older runs, where tracklets were not cut). */
      tracklet_id: count.optional(),
      bbox,
      score: z.number(),
      class: count,
      /**
       * The box's kit colour, CIELAB `[L*, a*, b*]` (`boxKit` of src/vision/teams/kit.ts); absent when the box
       * has none, the video has no pitch, teams are off, or the run is older.
       */
      kit: lab.optional(),
    }),
  ),
  /** Boxes removed before tracking, with the filter's reason (e.g. `feet-off-pitch`; absent in older runs). */
  dropped: z.array(z.object({ bbox, score: z.number(), reason: z.string() })).optional(),
  /** True when a new shot begins at this frame (src/vision/tracking/shotChange.ts); absent otherwise and in older runs. */
  shot_change: z.literal(true).optional(),
  /** Cuts reported in this frame (checkpoint chunks only; `detections.json` lists them in `tracklets.cuts`). */
  cuts: z.array(z.object({ frame_id: count, reason: z.string(), old_tracklet_id: count, new_tracklet_id: count })).optional(),
});
/** One sampled frame's entry of `detections.json`. */
export type FrameDetections = z.output<typeof frameDetectionsSchema>;

/** The detector a step-5 result was made with: model file name, its sha256, execution provider, input side (px). */
export const detectorModelSchema = z.object({ name: z.string(), sha256: z.string(), executionProvider: z.string(), inputSize: count });
/** The detector of a step-5 result. */
export type DetectorModel = z.output<typeof detectorModelSchema>;

/**
 * `intermediate/segments/{videoGuid}/segment_{index}.json`: the tracking of one time segment of a video
 * (`detectSegment`, src/activities/segments.ts), merged into `detections.json` by step 5. Frames keep their
 * per-frame `cuts`, and `track_id` is the segment's own tracklet id.
 */
export const segmentFileSchema = z.object({
  segment: z.object({ index: count, from: count, to: count }),
  model: detectorModelSchema,
  frames: z.array(frameDetectionsSchema),
  detections: count,
  tiledFrames: count,
  dropped: z.record(z.string(), count),
  /** onnxruntime `session.run` time summed over the segment's frames (the attempt that completed), ms. */
  inferenceMs: z.number(),
});
/** One segment's tracking as stored. */
export type SegmentFile = z.output<typeof segmentFileSchema>;

/**
 * Where a video's tracks come from: step 5's detector and tracker (`tracker`), or corrected tracks in MOT form
 * given with the video (`imported`: the caller's `source`, the file's sha256, its boxes on sampled frames and
 * those on other frames, which were ignored). With imported tracks `model` names no model (`none`).
 */
export const tracksOriginSchema = z.object({
  origin: z.enum(['tracker', 'imported']),
  source: z.string().optional(),
  sha256: z.string().optional(),
  boxes: count.optional(),
  boxesNotSampled: count.optional(),
});

/** `detections.json` (step 5): per sampled frame, the tracked boxes; with the model, thresholds and tracker. */
export const detectionsFileSchema = z.object({
  model: detectorModelSchema,
  thresholds: z.object({ confidence: z.number(), iou: z.number(), classes: z.array(count), tiles: z.string(), tileSize: count, tileOverlap: z.number() }),
  tracker: z.object({
    type: z.literal('bytetrack'),
    highThreshold: z.number(),
    lowThreshold: z.number(),
    newTrackThreshold: z.number(),
    matchThreshold: z.number(),
    bufferSeconds: z.number(),
    minHits: count,
    /** The buffer in tracker updates (sampled frames): `bufferSeconds` x fps / `frameStride`. */
    trackBuffer: count,
    /** Options of tracklet cuts and fragment joins (absent in older runs). */
    cuts: z.record(z.string(), z.union([z.number(), z.boolean()])).optional(),
    joins: z.record(z.string(), z.union([z.number(), z.boolean(), z.string()])).optional(),
  }),
  /**
   * Tracklet cuts and fragment joins (absent in older runs). A cut: at `frame_id` tracklet `old_tracklet_id`
   * ended and `new_tracklet_id` continues the same ByteTrack track, for `reason`; boxes of an ambiguous stretch
   * between them are in no tracklet (src/vision/tracking/tracklets.ts).
   * A join: tracklet `from` (ended) and `to` (started `gap_frames` source frames later) are one class,
   * `track_id`; `position` in box heights from the Kalman prediction, `appearance` the Bhattacharyya distance
   * (src/vision/tracking/join.ts).
   */
  tracklets: z
    .object({
      count,
      cuts: z.array(z.object({ frame_id: count, reason: z.string(), old_tracklet_id: count, new_tracklet_id: count })),
      joins: z.array(z.object({ from: count, to: count, track_id: count, gap_frames: count, position: z.number(), appearance: z.number() })),
    })
    .optional(),
  /** The pitch model the step used; null when step 4 gave none. */
  grass: pitchModelSchema.nullable(),
  frameStride: count,
  frames: z.array(frameDetectionsSchema),
  /** Team and role per class (absent when teams are off and in older runs). */
  teams: teamsSchema.optional(),
  /** Where the tracks come from (absent in older runs: the tracker). */
  tracks: tracksOriginSchema.optional(),
});
/** `detections.json`. */
export type DetectionsFile = z.output<typeof detectionsFileSchema>;

/** One crop of the crop index. */
export const cropEntrySchema = z.object({
  track_id: count,
  /** Crop number within its track, from 0 in time order. */
  n: count,
  frame_id: count,
  /** Detection bbox in source pixels. */
  bbox,
  /** The padded, clamped region actually cut, `[x1, y1, x2, y2]` in source pixels. */
  region: bbox,
  /** Object name of the crop (`crops/original/track_{id}/crop_{n}.jpg`). */
  object: z.string(),
});
/** One crop of the crop index. */
export type CropEntry = z.output<typeof cropEntrySchema>;

/** The crop index (step 6): every kept crop, and how many were rejected by which filter. */
export const cropIndexSchema = z.object({
  videoGuid: z.string(),
  rejected: z.record(z.string(), count),
  crops: z.array(cropEntrySchema),
});
/** The crop index. */
export type CropIndex = z.output<typeof cropIndexSchema>;

/** `intermediate/crops/{guid}/batch_{k}.json`: the crops a class batch (src/dataset/batches.ts) cut in step 6, with the batch. */
export const cropBatchFileSchema = cropIndexSchema.extend({ batch: z.object({ index: int.min(0), from: int.min(0), to: int.min(0), tracks: int.min(0), boxes: int.min(0) }) });
/** One class batch's crops. */
export type CropBatchFile = z.output<typeof cropBatchFileSchema>;
/** `intermediate/background/{guid}/batch_{k}.json`: removed share per crop of a class batch in step 7; `i` is the crop's place in the batch's crop part with `indexing: 'part'`, else (older runs) in the crop index. */
export const backgroundBatchFileSchema = z.object({ videoGuid: z.string(), batch: cropBatchFileSchema.shape.batch, indexing: z.literal('part').optional(), crops: z.array(z.object({ i: int.min(0), removed: z.number() })) });
/** One class batch's background records. */
export type BackgroundBatchFile = z.output<typeof backgroundBatchFileSchema>;
/** `intermediate/detections/{guid}/batch_{k}.json` (step 5): the frames of `detections.json` holding a box of a class batch, each whole. */
export const detectionsBatchFileSchema = z.object({ videoGuid: z.string(), batch: cropBatchFileSchema.shape.batch, frames: detectionsFileSchema.shape.frames });
/** One class batch's part of `detections.json`. */
export type DetectionsBatchFile = z.output<typeof detectionsBatchFileSchema>;

/** One augmented copy's parameters (`Augmentation` of src/dataset/augment.ts). */
export const augmentationSchema = z.object({
  seed: z.string(),
  flip: z.boolean(),
  brightness: z.number(),
  saturation: z.number(),
  rotate: z.number(),
  scale: z.number(),
  blurSigma: z.number(),
  erase: z.tuple([z.number(), z.number(), z.number(), z.number()]).nullable(),
}) satisfies z.ZodType<Augmentation>;

/** How step 7 treated a video's crops (`BackgroundDecision` of src/dataset/background.ts). */
export const backgroundDecisionSchema = z.object({
  requestedMode: z.enum(['grass', 'segmentation', 'both', 'none']),
  mode: z.enum(['grass', 'segmentation', 'both', 'none']),
  removed: z.boolean(),
  reason: z.string().optional(),
}) satisfies z.ZodType<BackgroundDecision>;

/** One dataset image of the manifest. */
export const manifestImageSchema = z.object({
  /** Object name of the image in the bucket (`{run prefix}/video_{guid}/datasets/{split}/track_{id}/...jpg`). */
  path: z.string(),
  /** The image's path relative to the dataset root `datasets/` (`{split}/track_{id}/...jpg`); absent in older runs. */
  file: z.string().optional(),
  /** `gs://{bucket}/{path}`; absent in older runs. */
  uri: z.string().optional(),
  split: z.enum(['train', 'val', 'test']),
  track_id: count,
  /** Class index (position of `class_name` in `classes.txt`, the same in every split); absent in older runs. */
  class_index: count.optional(),
  /** Class folder name, `track_{track_id}`; absent in older runs. */
  class_name: z.string().optional(),
  frame_id: count,
  bbox,
  /** The crop the image was made from: background removed, or the original when nothing was removed. */
  source_crop: z.string(),
  original_crop: z.string(),
  /** The augmentation of an augmented copy; null for the crop itself. */
  augmentation: augmentationSchema.nullable(),
});
/** One dataset image of the manifest. */
export type ManifestImage = z.output<typeof manifestImageSchema>;

/** `datasets/manifest.json` (step 9, written last): every dataset image, the split and the options used. */
export const manifestSchema = z.object({
  tenantId: z.string(),
  runGuid: z.string(),
  videoGuid: z.string(),
  layout: z.literal('ImageFolder'),
  splitMethod: z.string(),
  gapFrames: count,
  gapCrops: count,
  options: z.object({
    /** `testFraction`, `unsplittable` and `minCropsPerClass` are absent in manifests of older runs (which kept unsplittable tracks in train). */
    split: z.object({ valFraction: z.number(), testFraction: z.number().optional(), minCropsToSplit: count, gapSeconds: z.number(), unsplittable: z.enum(['exclude', 'train']).optional(), minCropsPerClass: count.optional() }),
    augment: z.object({
      count: count,
      /** Absent in manifests of older runs, whose copies were in `train/`. */
      placement: z.enum(['train', 'train_aug', 'none']).optional(),
      seed: z.string().optional(),
      flipProbability: z.number(),
      colorJitter: z.number(),
      rotateDegrees: z.number(),
      scale: z.number(),
      blurProbability: z.number(),
      erasingProbability: z.number(),
    }),
  }),
  /**
   * The background treatment of the crops (`decideBackground`), with the fill colour. In manifests of older
   * runs it was `options.background` (the requested mode and fill), which said `grass` also when no grass
   * was keyed out.
   */
  background: backgroundDecisionSchema.extend({ fill: z.tuple([count, count, count]) }),
  /** `test` counts are present when the run has a test split (`split.testFraction` > 0). */
  counts: z.object({ train: count, val: count, test: count.optional(), tracks: z.record(z.string(), z.object({ train: count, val: count, test: count.optional(), gap: count })) }),
  trainOnlyTracks: z.array(count),
  /**
   * The dataset's classes in class-index order (src/dataset/split.ts `classOrder`): `classes.txt` line i and
   * `data.yaml` `names[i]`, with the images per split. Absent in older runs.
   */
  classes: z.array(z.object({ index: count, name: z.string(), track_id: count, train: count, val: count, test: count.optional() })).optional(),
  /** Tracks left out of the dataset, with their crop count and reason (src/dataset/split.ts `ExcludeReason`). Absent in older runs. */
  excludedTracks: z.array(z.object({ track_id: count, crops: count, reason: z.enum(['too-few-crops', 'unsplittable']) })).optional(),
  /**
   * Team and role per class (track id as a string), with the video's team status and its reason, as in
   * `detections.json`; absent when teams are off and in older runs.
   */
  teams: z
    .object({
      status: teamsSchema.shape.status,
      reason: z.string(),
      tracks: z.record(z.string(), z.object({ team: z.enum(['A', 'B']).nullable(), role: z.enum(['player', 'goalkeeper', 'referee', 'other']).nullable() })),
    })
    .optional(),
  /** Where the video's tracks come from, as in `detections.json` (absent in older runs: the tracker). */
  tracks: tracksOriginSchema.optional(),
  images: z.array(manifestImageSchema),
});
/** `datasets/manifest.json`. */
export type Manifest = z.output<typeof manifestSchema>;

/** Storage and cache counters of a step (`StepIo` of src/workflows/types.ts). */
const stepIoSchema = z.object({
  gcsRequests: count,
  bytesUploaded: count,
  bytesDownloaded: count,
  cacheHits: count,
  cacheMisses: count,
  bytesFromCache: count,
  artifactDownloads: count,
  /** Absent in results recorded before it existed. */
  uploadsSkipped: count.optional(),
});

/** `intermediate/step{N}_result.json`: step `N`'s result per video (with details the workflow does not get). */
export const stepResultFileSchema = z.looseObject({
  step: int.min(1).max(9),
  name: z.string(),
  videos: z.record(z.string(), z.looseObject({ videoGuid: z.string(), io: stepIoSchema.optional() })),
});

/** One step's entry in `steps.{videoGuid}` of `.pipeline_info.json`. */
export const stepStatusSchema = z.looseObject({
  step: int.min(1).max(9),
  status: z.enum(['running', 'retrying', 'completed', 'failed', 'cancelled']),
  taskQueue: z.string().optional(),
  io: stepIoSchema.optional(),
  eventLoopDelayMs: z.object({ p99: z.number(), max: z.number() }).optional(),
  error: z.object({ type: z.string().nullish(), message: z.string() }).optional(),
});
/** One step's entry of `.pipeline_info.json`. */
export type StepStatus = z.output<typeof stepStatusSchema>;

/** `.pipeline_info.json`: the run's input, options, status, per-step status and timings, and summary. */
export const pipelineInfoSchema = z.looseObject({
  tenantId: z.string().optional(),
  runGuid: z.string().optional(),
  workflowId: z.string().optional(),
  status: z.enum(['running', 'completed', 'failed', 'cancelled']).optional(),
  steps: z.record(z.string(), z.record(z.string(), stepStatusSchema)).optional(),
});

/**
 * Read-modify-write of a JSON artifact (`ObjectStore.updateJson`: optimistic concurrency), the current value
 * checked against `schema` first. `update` receives the value as stored (not a parsed copy, so fields the
 * schema does not name keep their place) and returns the new one.
 * @throws PipelineError(Internal, name) when the stored value does not match `schema` ({@link parseArtifact})
 */
export async function updateArtifact<S extends z.ZodType>(store: ObjectStore, name: string, schema: S, update: (current: z.output<S> | undefined) => z.input<S>): Promise<void> {
  await store.updateJson<unknown>(name, (cur) => {
    if (cur !== undefined) parseArtifact(schema, name, cur);
    return update(cur as z.output<S> | undefined);
  });
}

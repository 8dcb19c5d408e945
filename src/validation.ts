/**
 * The workflow input contract (docs/ARCHITECTURE.md "Workflow contract") and the identifier rules that keep every storage
 * path inside `{tenant_id}/user/process/train_pipeline/`.
 *
 * Workflow-safe: deterministic, no Node built-ins. Used by the workflow (to fail fast on bad input), by the
 * CLI (to fail before starting anything) and by the storage layout (defence in depth).
 */
import { z } from 'zod';
import { invalidInput } from './errors';
import { detectorOptionsSchema, grassMaskOptionsSchema, teamsOptionsSchema, trackerOptionsSchema } from './optionGroups';
import { parseSource } from './sources';

/** Tenant ids: 1-63 chars of letters, digits, `_` and `-`, starting with a letter or digit. No `.` or `/`. */
export const TENANT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
/** Run and video GUIDs: 1-64 chars of lowercase letters, digits and `-`, starting with a letter or digit. */
export const GUID_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;
/** Source schemes the importer accepts. A source without a scheme is a local path. */
export const SOURCE_SCHEMES = ['gs:', 'https:'] as const;
export { MAX_SOURCE_LENGTH } from './sources';

/**
 * Checks a tenant id. @throws PipelineError(InvalidInput) naming the value and the rule it breaks.
 */
export function assertTenantId(tenantId: unknown): string {
  if (typeof tenantId !== 'string' || !TENANT_ID_PATTERN.test(tenantId)) {
    throw invalidInput(`tenantId ${JSON.stringify(tenantId)}`, `must match ${TENANT_ID_PATTERN} (letters, digits, _ and -; no "." or "/")`);
  }
  return tenantId;
}

/**
 * Checks a run or video GUID. @param what label used in the error ("runGuid", "videoGuid").
 * @throws PipelineError(InvalidInput) naming the value and the rule it breaks.
 */
export function assertGuid(guid: unknown, what: string): string {
  if (typeof guid !== 'string' || !GUID_PATTERN.test(guid)) {
    throw invalidInput(`${what} ${JSON.stringify(guid)}`, `must match ${GUID_PATTERN} (lowercase letters, digits and -)`);
  }
  return guid;
}

/**
 * Largest accepted workflow input, bytes of its JSON (UTF-8). Temporal rejects any payload over 2 MB
 * (server `limit.blobSize.error`, default 2 MiB; it warns from 512 KiB) and a workflow task whose commands
 * carry one fails again on every retry. The input's largest parts (the sources) reach activities once per
 * payload: `recordRunStart` gets the input itself, and the run summary, the `progress` answer and
 * `recordRunEnd` hold each source once (twice for a video whose error message names it) next to about
 * 1.5 KB of counters and routing per video. With {@link MAX_VIDEOS_PER_RUN} videos every payload stays
 * below 1 MB (test/limits.test.ts builds that worst case).
 */
export const MAX_INPUT_BYTES = 256 * 1024;

/**
 * Most videos in one run. Each video is a child workflow that signals its parent about 11 times, so the
 * parent's history grows by about 50 events per video: 100 videos stay far below Temporal's history limits
 * (warning at 10,240 events, hard limit 51,200 events / 50 MB).
 */
export const MAX_VIDEOS_PER_RUN = 100;

/** Longest kept `reason` of a `cancel` signal, characters; longer ones are truncated. */
export const MAX_CANCEL_REASON_LENGTH = 1000;

/** Longest kept `by` of a `cancel` signal, characters; longer ones are truncated. */
export const MAX_CANCEL_BY_LENGTH = 200;

/**
 * Largest accepted `videoProgress` signal payload, bytes of JSON. A child's report holds its source (at most
 * {@link MAX_SOURCE_LENGTH} characters, up to 3 bytes each in UTF-8), counts, storage counters and routing:
 * under 16 KiB. Larger ones did not come from a child and are dropped.
 */
export const MAX_VIDEO_PROGRESS_BYTES = 32 * 1024;

/**
 * Key of the stand-in object that src/workflows/interceptors.ts puts in place of a workflow input it cannot
 * decode (unknown encoding, malformed JSON): `{ [UNDECODABLE_PAYLOAD_KEY]: reason }`. {@link validateInput}
 * refuses it as InvalidInput, so such a start fails once instead of failing its workflow task forever.
 */
export const UNDECODABLE_PAYLOAD_KEY = '__undecodablePayload';

/**
 * UTF-8 byte length of `value`'s JSON, i.e. the size of the `json/plain` payload Temporal's default payload
 * converter makes of it (pure arithmetic, so workflow code can use it; no `TextEncoder` needed).
 * @returns the byte count; `Infinity` when `value` has no JSON form (a cycle, a BigInt, nesting too deep
 *   for the stack), which callers treat as over any limit.
 */
export function jsonByteLength(value: unknown): number {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    return Infinity;
  }
  if (text === undefined) return 0;
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4; // a surrogate pair is one code point of 4 bytes
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** `text` cut to at most `max` UTF-16 units, never between the two halves of a surrogate pair. */
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  const last = cut.charCodeAt(cut.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
}

/** A `cancel` signal payload after {@link sanitizeCancelRequest}. */
export interface SanitizedCancelRequest {
  reason?: string;
  by?: string;
}

/**
 * Brings a `cancel` signal payload (anything a caller sent) to the contract `{ reason?: string, by?: string }`:
 * strings longer than {@link MAX_CANCEL_REASON_LENGTH} / {@link MAX_CANCEL_BY_LENGTH} are truncated, fields of
 * another type and unknown fields are dropped, a payload that is not an object counts as no payload. It never
 * throws: a cancel request always cancels, whatever came with it.
 * @returns the request to act on and, for a log line, what was changed (field names and sizes, never values).
 */
export function sanitizeCancelRequest(raw: unknown): { request: SanitizedCancelRequest; changes: string[] } {
  const changes: string[] = [];
  if (raw === undefined || raw === null) return { request: {}, changes };
  if (typeof raw !== 'object' || Array.isArray(raw)) return { request: {}, changes: [`payload of type ${Array.isArray(raw) ? 'array' : typeof raw} dropped (expected { reason?, by? })`] };
  const o = raw as Record<string, unknown>;
  const request: SanitizedCancelRequest = {};
  const field = (key: 'reason' | 'by', max: number): void => {
    const v = o[key];
    if (v === undefined || v === null) return;
    if (typeof v !== 'string') {
      changes.push(`${key} of type ${Array.isArray(v) ? 'array' : typeof v} dropped (expected a string)`);
      return;
    }
    if (v.length > max) changes.push(`${key} truncated from ${v.length} to ${max} characters`);
    request[key] = truncate(v, max);
  };
  field('reason', MAX_CANCEL_REASON_LENGTH);
  field('by', MAX_CANCEL_BY_LENGTH);
  const unknown = Object.keys(o).filter((k) => k !== 'reason' && k !== 'by');
  if (unknown.length) changes.push(`unknown fields dropped: ${unknown.slice(0, 5).map((k) => JSON.stringify(truncate(k, 40))).join(', ')}${unknown.length > 5 ? `, ... (${unknown.length} in all)` : ''}`);
  return { request, changes };
}

/**
 * Checks a video source's syntax and scheme by parsing it with {@link parseSource} (src/sources.ts), the
 * same parser the importer uses: `gs://bucket/object`, `https://host/...`, or a local path.
 *
 * Whether the tenant may read the source (its bucket and prefix, the local folder, the address of an https
 * host), whether it exists and whether it is too large are checked by the worker that reads it
 * (`importVideo`, src/activities/ingest.ts): this function is deterministic and does no I/O, because the
 * workflow calls it too.
 *
 * @param source the `source` field of a video as given by the caller.
 * @returns `source` unchanged.
 * @throws PipelineError(InvalidInput) naming the source and the reason (see {@link parseSource}).
 */
export function assertSource(source: unknown): string {
  parseSource(source);
  return source as string;
}

/**
 * Pipeline options with their defaults. Units are given per field; the sources of defaults are noted. Each
 * default is written once, next to its field: an absent group is parsed as `{}` (zod's `prefault`), so its
 * fields' defaults apply ({@link DEFAULT_OPTIONS}). Unknown keys are rejected ("unknown option" is bad input).
 */
export const optionsSchema = z
  .object({
    /**
     * Keep every `frameStride`-th decoded frame (frame ids 0, s, 2s, ...). Tracking needs boxes of one
     * person to overlap between samples (IoU association): at 10 fps walkers move about their own width in
     * half a second, so 2 (0.2 s at 10 fps, 0.07 s at 30 fps) is the default. See README "Options".
     */
    frameStride: z.number().int().min(1).max(10_000).default(2),
    /** Upper bound on sampled frames per video (after striding); unbounded when absent. */
    maxFrames: z.number().int().min(1).optional(),
    /** JPEG quality 1-100 for frames and crops (sharp's `quality`). */
    jpegQuality: z.number().int().min(1).max(100).default(90),
    detector: detectorOptionsSchema,
    grassMask: grassMaskOptionsSchema,
    tracker: trackerOptionsSchema,
    crops: z
      .object({
        /** Padding around each bbox as a fraction of its width/height. */
        padding: z.number().min(0).max(1).default(0.1),
        /** Crops shorter than this many pixels are dropped. */
        minHeight: z.number().int().min(1).default(32),
        /** Optional cap of crops per track (evenly spaced). */
        maxPerTrack: z.number().int().min(1).optional(),
        /** Crops whose Laplacian variance (at 128 px height) is below this are blurred (src/dataset/quality.ts). */
        minBlurVariance: z.number().min(0).default(50),
        /** Crops more than this fraction covered by another player's box are occluded. */
        maxOcclusion: z.number().min(0).max(1).default(0.5),
        /** Crops within this dHash Hamming distance of the track's previous kept crop are duplicates (0-64). */
        dedupMaxDistance: z.number().int().min(0).max(64).default(10),
      })
      .strict()
      .prefault({}),
    background: z
      .object({
        /**
         * `grass` keys out the pitch colour of step 4 (soft edges); `segmentation` uses the u2netp person mask
         * (about 0.5 s per crop on a 2-core CPU); `both` their intersection; `none` keeps crops as they are.
         */
        mode: z.enum(['grass', 'segmentation', 'both', 'none']).default('grass'),
        /** Fill colour for removed background, RGB 0-255. */
        fill: z.tuple([z.number().int().min(0).max(255), z.number().int().min(0).max(255), z.number().int().min(0).max(255)]).default([0, 0, 0]),
      })
      .strict()
      .prefault({}),
    augment: z
      .object({
        /** Augmented copies per training crop. */
        count: z.number().int().min(0).max(20).default(2),
        /**
         * Where the augmented copies go: beside their originals in `train/` (`train`), in a `train_aug/` folder
         * of the same class folders (`train_aug`), or nowhere (`none`, for trainers that augment on the fly;
         * step 8 then makes none).
         */
        placement: z.enum(['train', 'train_aug', 'none']).default('train'),
        /** Seed; defaults to the run GUID. */
        seed: z.string().max(128).optional(),
        /** See `AugmentParams` in src/dataset/augment.ts; 0 switches an augmentation off. */
        flipProbability: z.number().min(0).max(1).default(0.5),
        colorJitter: z.number().min(0).max(0.9).default(0.2),
        rotateDegrees: z.number().min(0).max(45).default(8),
        scale: z.number().min(0).max(0.5).default(0.1),
        blurProbability: z.number().min(0).max(1).default(0.2),
        erasingProbability: z.number().min(0).max(1).default(0.3),
      })
      .strict()
      .prefault({}),
    split: z
      .object({
        /** Fraction of each track's crops (the latest in time, before any test block) that go to validation. */
        valFraction: z.number().min(0).max(0.9).default(0.2),
        /**
         * Fraction of each track's crops (the latest in time) that go to a test split, a time block of its own
         * with the gap before it, as val; 0: no test split.
         */
        testFraction: z.number().min(0).max(0.9).default(0),
        /** Tracks with fewer crops than this cannot be split (see `unsplittable`). */
        minCropsToSplit: z.number().int().min(2).default(5),
        /**
         * What happens to a track that cannot be split into a train and a val block: `exclude` leaves it out
         * of the dataset (listed in the manifest's `excludedTracks`), so every class has images in every split
         * and standard loaders number the classes of train and val alike (src/dataset/split.ts); `train` keeps
         * it in train only, so val lacks its folder.
         */
        unsplittable: z.enum(['exclude', 'train']).default('exclude'),
        /** Tracks with fewer crops than this are left out of the dataset (`too-few-crops`). */
        minCropsPerClass: z.number().int().min(1).default(1),
        /**
         * Seconds of video left out between a track's train and validation blocks, so neighbouring,
         * near-identical frames never sit on both sides of the split.
         */
        gapSeconds: z.number().min(0).max(60).default(1),
      })
      .strict()
      .refine((s) => s.valFraction + s.testFraction <= 0.9, { message: 'valFraction + testFraction must be at most 0.9, so train keeps at least a tenth of each track', path: ['testFraction'] })
      .prefault({}),
    teams: teamsOptionsSchema,
    /**
     * Time segments of a long video (src/vision/tracking/stitch.ts `planSegments`): when a video is longer than
     * one segment, frame detection and tracking of each segment is its own activity that any GPU worker takes
     * (docs/ARCHITECTURE.md "Segments"), and step 5 stitches the segments' tracks on their overlaps. Measured
     * with `npm run eval:identity -- --segment-seconds S` (README "Identity evaluation"): identity quality is
     * unchanged at 10 s and longer segments with a 2 s overlap, and falls below that.
     */
    segments: z
      .object({
        /** Segment length, seconds of video. A video no longer than this is tracked in one piece. */
        seconds: z.number().min(1).max(24 * 3600).default(180),
        /** Seconds each segment extends into the next; the stitching associates tracks on these frames. */
        overlapSeconds: z.number().min(0).max(60).default(2),
      })
      .strict()
      .refine((s) => s.overlapSeconds < s.seconds, { message: 'overlapSeconds must be less than seconds', path: ['overlapSeconds'] })
      .prefault({}),
    /**
     * Class batches of a video with many tracked boxes (src/dataset/batches.ts `planClassBatches`): step 5 cuts
     * the video's classes, in track id order, into batches of about `boxes` tracked boxes; with more than one,
     * step 6's cropping and step 8's augmentation of each batch are activities that any CPU worker takes
     * (docs/ARCHITECTURE.md "Class batches"). The outputs are byte-identical to those of one batch.
     */
    batches: z
      .object({
        /** Tracked boxes after which a batch closes (a track is never split). A video with fewer is one batch. */
        boxes: z.number().int().min(1).max(10_000_000).default(5000),
      })
      .strict()
      .prefault({}),
    /**
     * Where a video's steps run (docs/ARCHITECTURE.md "Routing"; Temporal's worker-specific task queues
     * pattern, https://github.com/temporalio/samples-typescript/tree/main/worker-specific-task-queues).
     */
    routing: z
      .object({
        /**
         * Send all CPU steps of a video to one worker and all GPU steps to one worker (each worker polls a
         * queue of its own), so each step finds its inputs in that worker's run cache. Off: every step
         * goes to the shared queues and reads its inputs from GCS unless it happens to land on a worker
         * that has them.
         */
        workerAffinity: z.boolean().default(true),
        /**
         * How long a step may wait on its worker's own queue before that worker counts as lost and the
         * remaining steps go to the shared queue (schedule-to-start timeout), seconds. It includes waiting
         * for a free activity slot on that worker, so it must exceed a busy worker's usual queueing time.
         */
        scheduleToStartSeconds: z.number().int().min(1).max(3600).default(60),
        /** A step that sends no heartbeat for this long counts as failed (its worker died), seconds. */
        heartbeatTimeoutSeconds: z.number().int().min(5).max(600).default(30),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** Fully resolved options (every default applied). */
export type PipelineOptions = z.output<typeof optionsSchema>;

/**
 * The options of an input that sets none: every default. Workflow code uses it for option groups that
 * executions started before the group existed do not carry (e.g. `routing`).
 */
export const DEFAULT_OPTIONS: PipelineOptions = optionsSchema.parse({});
/** Options as a caller may give them (everything optional). */
export type PipelineOptionsInput = z.input<typeof optionsSchema>;

/** One video of a run as the caller gives it. */
export interface VideoInput {
  /** `gs://bucket/object`, `https://...` or a local path the workers can read. */
  source: string;
  /** Optional GUID for the video folder `video_{guid}`; derived when absent. */
  videoGuid?: string;
  /**
   * Optional corrected tracks in MOT Challenge form (same schemes and source policy as `source`): step 5 takes
   * them instead of running the detector and tracker (src/dataset/exports.ts `tracksFromMot`), and steps 6-9
   * make the dataset from them.
   */
  tracks?: string;
}

/** Input of the `trainPipeline` workflow (docs/ARCHITECTURE.md "Workflow contract"). */
export interface TrainPipelineInput {
  tenantId: string;
  runGuid?: string;
  videos: VideoInput[];
  options?: PipelineOptionsInput;
}

/** Input after validation: identifiers checked, options resolved; videoGuid may still need deriving. */
export interface ValidatedInput {
  tenantId: string;
  runGuid: string | undefined;
  videos: VideoInput[];
  options: PipelineOptions;
}

/**
 * Smallest `detector.tileSize`, source pixels: half the 640 px model input. A smaller tile is enlarged more
 * than 2x, which adds no detail, while the tile count (and detection time) grows with the inverse square of
 * the side: with 320 and the largest overlap a 4K frame (`MAX_FRAME_PIXELS`) is 25 x 14 tiles, against 391
 * tiles for one 768x576 frame at the schema's former minimum of 64 (120 s per frame on 2 CPU cores).
 * Executions started before it existed keep the old minimum ({@link validateInput}'s `legacy`).
 */
export const MIN_TILE_SIZE = 320;

/**
 * Validates a `trainPipeline` input: size first ({@link MAX_INPUT_BYTES}), then the identity of the run
 * (tenant id, run GUID), then fields, videos ({@link MAX_VIDEOS_PER_RUN}, sources) and options.
 * @param opts.legacy true: the rules of executions started before the limits existed (no size or count
 *   limit, no {@link MIN_TILE_SIZE}, unknown fields reported before the tenant id), which `trainPipeline`
 *   keeps for their replays.
 * @param opts.tracks false: a video's `tracks` is an unknown field, as it was before corrected tracks could be
 *   given (`trainPipeline` keeps that rule for executions recorded before its patch). Default true.
 * @throws PipelineError(InvalidInput) naming the first offending field and the reason (with the limit for
 *   a limit).
 */
export function validateInput(raw: unknown, opts: { legacy?: boolean; tracks?: boolean } = {}): ValidatedInput {
  const limits = !opts.legacy;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw invalidInput('input', 'must be a JSON object');
  const input = raw as Record<string, unknown>;
  if (typeof input[UNDECODABLE_PAYLOAD_KEY] === 'string') throw invalidInput('input', `payload could not be decoded (${input[UNDECODABLE_PAYLOAD_KEY]}); send JSON (encoding json/plain)`);
  const bytes = limits ? jsonByteLength(raw) : 0;
  if (bytes > MAX_INPUT_BYTES) {
    const what = Number.isFinite(bytes) ? `is ${bytes} bytes of JSON` : 'has no JSON form';
    throw invalidInput('input', `${what}, over the limit of ${MAX_INPUT_BYTES} bytes (MAX_INPUT_BYTES)`);
  }
  const unknownKeys = Object.keys(input).filter((k) => !['tenantId', 'runGuid', 'videos', 'options'].includes(k));
  if (!limits && unknownKeys.length) throw invalidInput(`input.${unknownKeys[0]}`, 'unknown field (allowed: tenantId, runGuid, videos, options)');
  const tenantId = assertTenantId(input.tenantId);
  const runGuid = input.runGuid === undefined ? undefined : assertGuid(input.runGuid, 'runGuid');
  if (unknownKeys.length) throw invalidInput(`input.${unknownKeys[0]}`, 'unknown field (allowed: tenantId, runGuid, videos, options)');
  if (!Array.isArray(input.videos) || input.videos.length === 0) throw invalidInput('videos', 'must be a non-empty list of { source, videoGuid? }');
  if (limits && input.videos.length > MAX_VIDEOS_PER_RUN) throw invalidInput('videos', `has ${input.videos.length} entries, over the limit of ${MAX_VIDEOS_PER_RUN} videos per run (MAX_VIDEOS_PER_RUN)`);
  const seen = new Set<string>();
  const videos = input.videos.map((v, i): VideoInput => {
    if (!v || typeof v !== 'object') throw invalidInput(`videos[${i}]`, 'must be an object { source, videoGuid?, tracks? }');
    const allowed = opts.tracks === false ? ['source', 'videoGuid'] : ['source', 'videoGuid', 'tracks'];
    const extra = Object.keys(v).filter((k) => !allowed.includes(k));
    if (extra.length) throw invalidInput(`videos[${i}].${extra[0]}`, `unknown field (allowed: ${allowed.join(', ')})`);
    const source = assertSource((v as VideoInput).source);
    const t = (v as VideoInput).tracks;
    const tracks = t === undefined ? {} : { tracks: assertSource(t) };
    const g = (v as VideoInput).videoGuid;
    if (g === undefined) return { source, ...tracks };
    const videoGuid = assertGuid(g, `videos[${i}].videoGuid`);
    if (seen.has(videoGuid)) throw invalidInput(`videos[${i}].videoGuid ${videoGuid}`, 'duplicate video GUID in one run');
    seen.add(videoGuid);
    return { source, videoGuid, ...tracks };
  });
  const parsed = optionsSchema.safeParse(input.options ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = ['options', ...issue.path.map(String)].join('.');
    const keys = issue.code === 'unrecognized_keys' ? ` ${JSON.stringify(issue.keys)}` : '';
    throw invalidInput(where, `${issue.message}${keys}`);
  }
  if (limits && parsed.data.detector.tileSize < MIN_TILE_SIZE) {
    throw invalidInput('options.detector.tileSize', `${parsed.data.detector.tileSize} is under the minimum of ${MIN_TILE_SIZE} pixels (MIN_TILE_SIZE: smaller tiles are only enlarged, at many times the cost)`);
  }
  return { tenantId, runGuid, videos, options: parsed.data };
}

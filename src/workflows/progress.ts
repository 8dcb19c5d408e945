/**
 * The `videoProgress` signal as `trainPipeline` keeps it. The signal is how a `processVideo` child reports
 * its progress to the run, but Temporal does not say who sent a signal: any caller that knows the run's
 * workflow id can send one (`temporal workflow signal --name videoProgress ...`). The run keeps a report only
 * in the shape a child sends, each field of its type and within a bound a child's report never reaches, and
 * takes the identity fields (video GUID, source, step total) from the run's own input. A failed or cancelled
 * video's summary is built from its last report, so these bounds also bound the run summary that
 * `recordRunEnd` receives: with every video of a run at its bounds it stays far below Temporal's 2 MB
 * payload limit (test/limits.test.ts), which a larger summary would break on every workflow-task retry.
 *
 * Workflow-safe: deterministic, no Node built-ins.
 */
import { isBatchedStep, STEP_NAMES } from './steps';
import type { BatchProgress, SegmentProgress, StepIo, VideoCounts, VideoPitch, VideoProgress, VideoRouting } from './types';

/** Longest kept text of a report (pitch reason, re-route reason), characters; longer ones are truncated. */
export const MAX_PROGRESS_TEXT_LENGTH = 300;

/** Longest kept task-queue or worker name of a report, characters (ours are `{TASK_QUEUE}@{host}-{pid}-{hex}`). */
export const MAX_PROGRESS_NAME_LENGTH = 300;

/**
 * Most re-routes kept per video: a video is re-routed at most once per kind of step (CPU, GPU), since a step
 * that was re-routed runs on the shared queue from then on (`onWorker` in src/workflows/processVideo.ts).
 */
export const MAX_PROGRESS_REROUTES = 2;

const COUNT_KEYS: readonly (keyof VideoCounts)[] = ['frames', 'detections', 'tracks', 'crops', 'train', 'val'];
const IO_KEYS: readonly (keyof StepIo)[] = ['gcsRequests', 'bytesUploaded', 'bytesDownloaded', 'cacheHits', 'cacheMisses', 'bytesFromCache', 'artifactDownloads', 'uploadsSkipped'];
const STATUSES: readonly VideoProgress['status'][] = ['pending', 'running', 'completed', 'failed', 'cancelled'];

function isRecord(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** A finite number >= 0, else undefined. */
function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

/** A string cut to `max` characters (never between the halves of a surrogate pair), else undefined. */
function text(v: unknown, max: number): string | undefined {
  if (typeof v !== 'string') return undefined;
  if (v.length <= max) return v;
  const cut = v.slice(0, max);
  const last = cut.charCodeAt(cut.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
}

/** The numeric fields `keys` of `v` that are finite and >= 0; others are dropped. */
function counters<K extends string>(v: unknown, keys: readonly K[]): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {};
  if (!isRecord(v)) return out;
  for (const k of keys) {
    const n = count(v[k]);
    if (n !== undefined) out[k] = n;
  }
  return out;
}

function pitchOf(v: unknown): VideoPitch | undefined {
  if (!isRecord(v) || typeof v.found !== 'boolean') return undefined;
  const pitch: VideoPitch = { found: v.found, framesSampled: count(v.framesSampled) ?? 0 };
  const pitchLike = count(v.framesPitchLike);
  if (pitchLike !== undefined) pitch.framesPitchLike = pitchLike;
  const reason = text(v.reason, MAX_PROGRESS_TEXT_LENGTH);
  if (reason !== undefined) pitch.reason = reason;
  return pitch;
}

function routingOf(v: unknown, fallback: VideoRouting | undefined): VideoRouting | undefined {
  if (!isRecord(v)) return fallback;
  const cpu = text(v.cpu, MAX_PROGRESS_NAME_LENGTH);
  const gpu = text(v.gpu, MAX_PROGRESS_NAME_LENGTH);
  if (cpu === undefined || gpu === undefined) return fallback;
  const routing: VideoRouting = { cpu, gpu, reroutes: [] };
  const cpuWorker = text(v.cpuWorker, MAX_PROGRESS_NAME_LENGTH);
  const gpuWorker = text(v.gpuWorker, MAX_PROGRESS_NAME_LENGTH);
  if (cpuWorker !== undefined) routing.cpuWorker = cpuWorker;
  if (gpuWorker !== undefined) routing.gpuWorker = gpuWorker;
  for (const r of Array.isArray(v.reroutes) ? v.reroutes.slice(0, MAX_PROGRESS_REROUTES) : []) {
    if (!isRecord(r) || !(STEP_NAMES as readonly unknown[]).includes(r.step)) continue;
    routing.reroutes.push({
      step: r.step as VideoRouting['reroutes'][number]['step'],
      from: text(r.from, MAX_PROGRESS_NAME_LENGTH) ?? '',
      to: text(r.to, MAX_PROGRESS_NAME_LENGTH) ?? '',
      reason: text(r.reason, MAX_PROGRESS_TEXT_LENGTH) ?? '',
    });
  }
  return routing;
}

/**
 * Brings a `videoProgress` report (anything a caller sent) to the shape of {@link VideoProgress}: `videoGuid`,
 * `source` and `totalSteps` are those of `known` (the run's own entry for that video); `status` and
 * `currentStep` must be one of their values (else `known`'s are kept); `stepsDone` an integer from 0 to
 * `totalSteps`; counts and storage counters finite numbers >= 0 under their known keys; `pitch` and `routing`
 * of their shape with texts cut to {@link MAX_PROGRESS_TEXT_LENGTH} / {@link MAX_PROGRESS_NAME_LENGTH} and at
 * most {@link MAX_PROGRESS_REROUTES} re-routes; `error` and unknown fields are dropped (the run writes a
 * video's error itself, from the child's failure). A child's own report passes unchanged. Never throws.
 * @param raw the signal's payload.
 * @param known the run's current entry for the video the report names.
 * @returns the entry to keep.
 */
export function sanitizeVideoProgress(raw: unknown, known: VideoProgress): VideoProgress {
  const p = isRecord(raw) ? raw : {};
  const out: VideoProgress = {
    videoGuid: known.videoGuid,
    source: known.source,
    status: STATUSES.includes(p.status as VideoProgress['status']) ? (p.status as VideoProgress['status']) : known.status,
    currentStep: p.currentStep === null || (STEP_NAMES as readonly unknown[]).includes(p.currentStep) ? (p.currentStep as VideoProgress['currentStep']) : known.currentStep,
    stepsDone: typeof p.stepsDone === 'number' && Number.isInteger(p.stepsDone) && p.stepsDone >= 0 && p.stepsDone <= known.totalSteps ? p.stepsDone : known.stepsDone,
    totalSteps: known.totalSteps,
    counts: counters(p.counts, COUNT_KEYS),
  };
  const pitch = pitchOf(p.pitch);
  if (pitch) out.pitch = pitch;
  if (isRecord(p.io)) out.io = { gcsRequests: 0, bytesUploaded: 0, bytesDownloaded: 0, cacheHits: 0, cacheMisses: 0, bytesFromCache: 0, artifactDownloads: 0, uploadsSkipped: 0, ...counters(p.io, IO_KEYS) };
  const routing = routingOf(p.routing, known.routing);
  if (routing) out.routing = routing;
  const segments = segmentsOf(p.segments);
  if (segments) out.segments = segments;
  const batches = partsOf(p.batches);
  if (batches) out.batches = batches;
  return out;
}

/** Class batch progress of a report: integers >= 0 with `done` at most `total`; undefined for anything else. */
function partsOf(raw: unknown): BatchProgress | undefined {
  if (!isRecord(raw)) return undefined;
  const total = countOf(raw.total);
  const done = countOf(raw.done);
  if (total === undefined || done === undefined || done > total) return undefined;
  return { total, done };
}

/** `x` when it is a safe integer >= 0. */
function countOf(x: unknown): number | undefined {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : undefined;
}

/** Segment progress of a report: integers >= 0 with `done` at most `total`; undefined for anything else. */
function segmentsOf(raw: unknown): SegmentProgress | undefined {
  const parts = partsOf(raw);
  const framesDone = isRecord(raw) ? countOf(raw.framesDone) : undefined;
  if (!parts || framesDone === undefined) return undefined;
  return { ...parts, framesDone };
}

/**
 * Steps done of a video, counting a fanned-out step in part: the segments done of step 5, or the class batches
 * done of step 6, 7 or 8, as a fraction of one step. The `progress` query's `fraction` sums this over the videos.
 */
export function stepsDoneOf(p: VideoProgress): number {
  const s = p.currentStep === 'detectPlayers' ? p.segments : isBatchedStep(p.currentStep) ? p.batches : undefined;
  if (!s || !s.total) return p.stepsDone;
  // The stitching that ends step 5 (the merge that ends steps 6-8) is not a part: the parts make up to 90 % of the step.
  return p.stepsDone + (0.9 * s.done) / s.total;
}

/**
 * The one place where errors are classified as retryable or not.
 *
 * Activities throw {@link PipelineError}s (or plain errors from libraries); {@link toApplicationFailure}
 * turns any of them into a Temporal `ApplicationFailure` whose `type` is one of {@link ErrorType} and whose
 * `nonRetryable` flag follows from the classification below. Workflows pass {@link NON_RETRYABLE_ERROR_TYPES}
 * to every activity retry policy, so the classification also holds when a failure crosses a worker boundary.
 *
 * This module is imported by workflow code: it must stay deterministic and free of Node built-ins.
 * Classification rules follow the GCS retry guidance (https://cloud.google.com/storage/docs/retry-strategy):
 * HTTP 408, 429 and 5xx and connection-level errors are transient; every other 4xx is permanent.
 */
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, RetryState, TimeoutFailure, TimeoutType } from '@temporalio/common';

/** Failure types that appear as `ApplicationFailure.type` in Temporal history and the Web UI. */
export const ErrorType = {
  /** The workflow input (tenant id, GUID, options, source) is malformed. Never retried. */
  InvalidInput: 'InvalidInput',
  /** The media cannot be used: not a video, no video stream, zero frames, undecodable. Never retried. */
  BadMedia: 'BadMedia',
  /** A model file is missing or does not match its declared shape or hash. Never retried. */
  ModelError: 'ModelError',
  /** Storage or network fault that is expected to go away (GCS 5xx, 429, connection reset). Retried. */
  Transient: 'Transient',
  /**
   * The worker's own disk failed it: no space left, quota exceeded, a read-only or otherwise unwritable cache or
   * scratch folder. The message names the folder and the errno. Retried: space may free up, and another worker
   * (another disk) may take the step; when every attempt fails, the run fails with this message.
   */
  LocalDisk: 'LocalDisk',
  /** An internal invariant was broken: a bug. Retried (a new worker build may fix it). */
  Internal: 'Internal',
  /**
   * An activity attempt made no progress for the stall limit (`ACTIVITY_STALL_SECONDS`, see
   * src/activities/liveness.ts) and was given up. Retried: a hang may be a one-off (a stuck connection).
   */
  Stalled: 'Stalled',
  /**
   * A step ran out of attempts on a Temporal timeout (no heartbeat within the heartbeat timeout, no worker took
   * it, or it ran past its start-to-close timeout). Only the workflow's step failure carries it.
   */
  Timeout: 'Timeout',
} as const;

/** One of the values of {@link ErrorType}. */
export type ErrorType = (typeof ErrorType)[keyof typeof ErrorType];

/** Failure types that an activity retry policy must not retry. */
export const NON_RETRYABLE_ERROR_TYPES: string[] = [ErrorType.InvalidInput, ErrorType.BadMedia, ErrorType.ModelError];

/**
 * An error raised by pipeline code with an explicit classification.
 *
 * `subject` names the input at fault (a path, a GUID, an option name) and is part of the message, so the
 * Web UI shows what was wrong and with what, e.g. `BadMedia: /videos/x.avi: no video stream`.
 */
export class PipelineError extends Error {
  /** @param type classification; @param subject the input at fault; @param reason what is wrong with it. */
  constructor(
    readonly type: ErrorType,
    readonly subject: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${subject}: ${reason}`, options);
    this.name = type;
  }

  /** True when retrying cannot help. */
  get nonRetryable(): boolean {
    return NON_RETRYABLE_ERROR_TYPES.includes(this.type);
  }
}

/** Shorthand for a non-retryable {@link ErrorType.InvalidInput} error about `subject`. */
export function invalidInput(subject: string, reason: string): PipelineError {
  return new PipelineError(ErrorType.InvalidInput, subject, reason);
}

/** Shorthand for a retryable {@link ErrorType.LocalDisk} error about the worker folder `folder`. */
export function localDisk(folder: string, reason: string, cause?: unknown): PipelineError {
  return new PipelineError(ErrorType.LocalDisk, folder, reason, { cause });
}

/** Shorthand for a non-retryable {@link ErrorType.BadMedia} error about `subject`. */
export function badMedia(subject: string, reason: string, cause?: unknown): PipelineError {
  return new PipelineError(ErrorType.BadMedia, subject, reason, { cause });
}

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * errno codes (errno(3), https://man7.org/linux/man-pages/man3/errno.3.html) that can only come from the
 * worker's local disk, never from the input: classified {@link ErrorType.LocalDisk} wherever they are raised.
 */
export const LOCAL_DISK_CODES: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
};

/** The {@link LOCAL_DISK_CODES} code of `err` or of an error in its `cause` chain, if any. */
export function localDiskCode(err: unknown, depth = 0): string | undefined {
  if (!err || typeof err !== 'object' || depth > 5) return undefined;
  const e = err as { code?: unknown; cause?: unknown };
  if (typeof e.code === 'string' && e.code in LOCAL_DISK_CODES) return e.code;
  return localDiskCode(e.cause, depth + 1);
}

/**
 * Whether an error from a storage or HTTP client is worth retrying.
 *
 * Looks at `code` (HTTP status number or Node/undici error code), `status`, `response.status` and the
 * `cause` chain. Source: GCS retry strategy page (408, 429, 5xx, connection errors are retryable).
 */
export function isTransientError(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 5) return false;
  if (err instanceof PipelineError) return err.type === ErrorType.Transient;
  const e = err as { code?: unknown; status?: unknown; response?: { status?: unknown }; cause?: unknown; message?: unknown };
  const statuses = [e.code, e.status, e.response?.status].filter((v): v is number => typeof v === 'number');
  if (statuses.some((s) => s === 408 || s === 429 || s >= 500)) return true;
  if (statuses.some((s) => s >= 400 && s < 500)) return false;
  if (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
  if (typeof e.message === 'string' && /socket hang up|ECONNRESET|ECONNREFUSED|network timeout/i.test(e.message)) return true;
  return isTransientError(e.cause, depth + 1);
}

/**
 * Converts any thrown value into an `ApplicationFailure` carrying its classification.
 *
 * - {@link PipelineError}: its own type and retryability.
 * - an existing `ApplicationFailure`: returned as is (unless `attempt` is given: then copied with it).
 * - transient storage/network errors ({@link isTransientError}): type `Transient`, retryable.
 * - local disk errors ({@link LOCAL_DISK_CODES}, e.g. `ENOSPC`): type `LocalDisk`, retryable, the message
 *   starting with what the code means (activities name the folder first: `explainLocalFault` in
 *   src/activities/localDisk.ts).
 * - anything else: type `Internal`, retryable (bugs may be fixed by deploying a new worker).
 *
 * @param attempt the activity attempt that failed (Temporal `info.attempt`, from 1); when given it is added to
 *   the failure's first detail as `attempt`, so the workflow can say which attempt failed ({@link stepFailure}).
 */
export function toApplicationFailure(err: unknown, attempt?: number): ApplicationFailure {
  const failure = classify(err);
  if (attempt === undefined) return failure;
  const first = (failure.details?.[0] ?? {}) as Record<string, unknown>;
  return ApplicationFailure.create({
    type: failure.type ?? ErrorType.Internal,
    message: failure.message,
    nonRetryable: failure.nonRetryable ?? false,
    details: [{ ...first, attempt }, ...(failure.details?.slice(1) ?? [])],
    cause: failure.cause,
  });
}

function classify(err: unknown): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof PipelineError) {
    return ApplicationFailure.create({
      type: err.type,
      message: err.message,
      nonRetryable: err.nonRetryable,
      details: [{ subject: err.subject, reason: err.reason }],
      cause: err.cause instanceof Error ? err.cause : undefined,
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  const disk = localDiskCode(err);
  if (disk) {
    return ApplicationFailure.create({ type: ErrorType.LocalDisk, message: `${LOCAL_DISK_CODES[disk]} (${disk}): ${message}`, nonRetryable: false, cause: err instanceof Error ? err : undefined });
  }
  const type = isTransientError(err) ? ErrorType.Transient : ErrorType.Internal;
  return ApplicationFailure.create({ type, message, nonRetryable: false, cause: err instanceof Error ? err : undefined });
}

/** What {@link stepFailure} found out about a failed step (also its failure's first detail). */
export interface StepFailureInfo {
  step: string;
  stepNumber: number;
  /** Attempts made, when known: the failing attempt's number, or the maximum when attempts ran out. */
  attempts?: number;
  maxAttempts: number;
  /** Type of the root cause (an {@link ErrorType} value). */
  rootType: string;
  /** The root cause in words. */
  rootCause: string;
}

/** At most this many characters of last heartbeat details are quoted in a timeout's root cause. */
const QUOTED_DETAILS_CHARS = 200;

/**
 * The failure a workflow raises when one of its steps failed for good: its message names the step, the
 * attempts and the root cause (`step 6 extractCrops failed on attempt 8 of 8: Timeout: no heartbeat ...`), so
 * the run summary, `.pipeline_info.json` and the Web UI say what happened without opening the activity's
 * history. The root cause is the first `ApplicationFailure` (the activity's, classified by
 * {@link toApplicationFailure}) or Temporal `TimeoutFailure` in the cause chain of `err`; the attempt number comes from the activity's failure details (set by
 * `runStep` through {@link toApplicationFailure}) or, when the attempts ran out, is `maxAttempts`.
 * Workflow-safe (no I/O).
 *
 * @param err what the step's activity call threw (normally an `ActivityFailure`; a `ChildWorkflowFailure` around
 *   one for a part run by a child workflow)
 * @returns a non-retryable `ApplicationFailure` of the root cause's type (`Timeout` for timeouts), with
 *   `err` as its cause and a {@link StepFailureInfo} as its first detail
 */
export function stepFailure(step: string, stepNumber: number, err: unknown, maxAttempts: number): ApplicationFailure {
  // The root cause is the first classified failure below the activity failure: the activity's own
  // ApplicationFailure (whose further causes are library details, e.g. the ENOENT behind "file not found"),
  // or Temporal's TimeoutFailure.
  let root: unknown = err;
  while (root instanceof Error && !(root instanceof ApplicationFailure) && !(root instanceof TimeoutFailure) && root.cause instanceof Error) root = root.cause;
  let rootType: string = ErrorType.Internal;
  let rootCause = root instanceof Error ? root.message : String(root);
  let attempts: number | undefined;
  if (root instanceof ApplicationFailure) {
    rootType = root.type ?? ErrorType.Internal;
    const attempt = (root.details?.[0] as { attempt?: unknown } | undefined)?.attempt;
    if (typeof attempt === 'number') attempts = attempt;
  } else if (root instanceof TimeoutFailure) {
    rootType = ErrorType.Timeout;
    const last = root.lastHeartbeatDetails === undefined ? 'none' : JSON.stringify(root.lastHeartbeatDetails).slice(0, QUOTED_DETAILS_CHARS);
    rootCause =
      root.timeoutType === TimeoutType.HEARTBEAT
        ? `no heartbeat within the heartbeat timeout (the worker died, or its event loop was blocked); last heartbeat details: ${last}`
        : root.timeoutType === TimeoutType.SCHEDULE_TO_START
          ? 'no worker took the task from its queue within the schedule-to-start timeout'
          : root.timeoutType === TimeoutType.START_TO_CLOSE
            ? 'did not finish within its start-to-close timeout'
            : `timed out (${root.timeoutType})`;
  }
  // A part run by a child workflow (a segment's `trackSegment`) fails with the child's failure around the activity's.
  const activity = err instanceof ActivityFailure ? err : err instanceof ChildWorkflowFailure && err.cause instanceof ActivityFailure ? err.cause : undefined;
  if (activity?.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED) attempts = maxAttempts;
  const where = attempts !== undefined ? `on attempt ${attempts} of ${maxAttempts}` : `(attempts: ${activity?.retryState ?? 'unknown'})`;
  const info: StepFailureInfo = { step, stepNumber, attempts, maxAttempts, rootType, rootCause };
  return ApplicationFailure.create({
    type: rootType,
    message: `step ${stepNumber} ${step} failed ${where}: ${rootType}: ${rootCause}`,
    nonRetryable: true,
    details: [info],
    cause: err instanceof Error ? err : undefined,
  });
}

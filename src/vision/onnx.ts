/**
 * What every onnxruntime model of the pipeline shares (the YOLOv8 detector, the u2netp segmenter): one
 * InferenceSession per model and process (docs/ARCHITECTURE.md "Pitfalls": creating and releasing sessions repeatedly leaks
 * memory), execution providers tried in order with CPU as the last resort, and calls run one at a time.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { ErrorType, PipelineError } from '../errors';
import { sha256File } from '../util/hash';

/**
 * Minimal shape of onnxruntime's `InferenceSession.ValueMetadata` (an input or output a model declares), as
 * the model checks (`validateModelIO` of the detector, `validateSegmenterIO` of the segmenter) read it.
 */
export interface ValueMetadataLike {
  name: string;
  isTensor: boolean;
  type?: string;
  shape?: ReadonlyArray<number | string>;
}

/** Minimal logger interface (pino-compatible). */
export interface SessionLogger {
  warn(obj: object, msg: string): void;
}

/** Options of {@link openSession}. */
export interface OpenSessionOptions {
  modelPath: string;
  /** onnxruntime execution providers in preference order, e.g. `['cuda', 'cpu']`; default `['cpu']`. */
  executionProviders?: string[];
  /** onnxruntime intra-op thread count; default: onnxruntime's own (all cores). */
  intraOpNumThreads?: number;
  /** Where fallbacks from an unavailable provider are logged; default: not logged. */
  logger?: SessionLogger;
}

/** A loaded model. */
export interface OpenedSession {
  session: ort.InferenceSession;
  /** Absolute path of the model file. */
  modelPath: string;
  /** Lower-case hex sha256 of the model file. */
  modelSha256: string;
  /** The provider the session was created with (e.g. `cpu`, `cuda`). */
  executionProvider: string;
}

/**
 * Checks the file, hashes it and creates the session. Providers are tried in the given order, each attempt
 * with the remaining list (so `['cuda', 'cpu']` tries `['cuda', 'cpu']`, then `['cpu']`); `cpu` is always
 * appended as the last resort, because `['cuda', 'cpu']` fails as a whole where CUDA is not installed.
 * @throws PipelineError(ModelError, modelPath) when the file is missing or unreadable, or onnxruntime
 *   cannot load it with any provider
 */
export async function openSession(opts: OpenSessionOptions): Promise<OpenedSession> {
  const modelPath = path.resolve(opts.modelPath);
  try {
    const st = await stat(modelPath);
    if (!st.isFile()) throw new Error('not a regular file');
  } catch (err) {
    throw new PipelineError(ErrorType.ModelError, modelPath, `model file not found or unreadable: ${(err as Error).message}`, { cause: err });
  }
  const modelSha256 = await sha256File(modelPath);
  const providers = (opts.executionProviders?.length ? opts.executionProviders : ['cpu']).map((p) => p.trim().toLowerCase());
  if (!providers.includes('cpu')) providers.push('cpu');
  let lastError: unknown;
  for (let i = 0; i < providers.length; i++) {
    const eps = providers.slice(i);
    try {
      const session = await ort.InferenceSession.create(modelPath, {
        executionProviders: eps,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        ...(opts.intraOpNumThreads ? { intraOpNumThreads: opts.intraOpNumThreads } : {}),
        // onnxruntime's intra-op threads busy-wait after each run by default ("session.intra_op.allow_spinning",
        // https://onnxruntime.ai/docs/performance/tune-performance/threading.html). Between runs our own
        // pre- and post-processing needs those cores, so the threads sleep instead.
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      });
      return { session, modelPath, modelSha256, executionProvider: eps[0] };
    } catch (err) {
      lastError = err;
      if (i < providers.length - 1) {
        opts.logger?.warn({ executionProvider: eps[0], err: (err as Error).message }, `onnxruntime execution provider ${eps[0]} unavailable, falling back`);
      }
    }
  }
  throw new PipelineError(ErrorType.ModelError, modelPath, `onnxruntime cannot load the model: ${(lastError as Error)?.message ?? lastError}`, { cause: lastError });
}

/** Runs calls on one session one at a time, and releases it after the calls already queued. */
export interface SessionQueue {
  /** Runs `fn` after every earlier queued call. @throws PipelineError(Internal) after {@link release}. */
  enqueue<T>(fn: () => Promise<T>): Promise<T>;
  /** Waits for queued calls, then releases the session. Idempotent. */
  release(): Promise<void>;
}

/**
 * A {@link SessionQueue} over `opened.session`. onnxruntime-node runs a model synchronously on the main
 * thread anyway, so serialising costs nothing and makes per-call timings and `release` well defined.
 * @param what name used in the "used after release()" error, e.g. `detector`
 */
export function sessionQueue(opened: OpenedSession, what: string): SessionQueue {
  let released = false;
  let tail: Promise<unknown> = Promise.resolve();
  return {
    enqueue<T>(fn: () => Promise<T>): Promise<T> {
      const result = tail.then(() => {
        if (released) throw new PipelineError(ErrorType.Internal, opened.modelPath, `${what} used after release()`);
        return fn();
      });
      tail = result.catch(() => undefined);
      return result;
    },
    async release() {
      if (released) return;
      await tail;
      if (released) return;
      released = true;
      await opened.session.release();
    },
  };
}

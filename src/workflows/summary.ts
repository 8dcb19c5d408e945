/**
 * The run summary of `trainPipeline` (its result, and `summary` of the final `.pipeline_info.json`), built
 * from how each video's child workflow ended. Pure and workflow-safe, so the rules are unit-tested
 * (test/summary.test.ts) without a Temporal server.
 */
import { addIo, emptyIo } from './io';
import type { RunStatus, RunSummary, VideoProgress, VideoSummary } from './types';

/** How one video's child workflow ended, as `trainPipeline` classifies it. */
export type VideoOutcome =
  | { status: 'completed'; summary: VideoSummary }
  | { status: 'cancelled' }
  | { status: 'failed'; error: { type: string; message: string } };

/** One video of the run: its identity, its outcome, and its last progress report (counts so far). */
export interface SettledVideo {
  videoGuid: string;
  source: string;
  outcome: VideoOutcome;
  /** The run's last `videoProgress` entry for the video (src/workflows/progress.ts). */
  last: Pick<VideoProgress, 'counts' | 'pitch' | 'io' | 'routing'>;
}

/** What {@link summarizeRun} decides. */
export interface RunConclusion {
  status: RunStatus;
  summary: RunSummary;
  /** The first failed video's error (in input order), when the run failed or was cancelled after a failure. */
  error?: { type: string; message: string };
  /** The first failed video's summary, when there is one. */
  failedVideo?: VideoSummary;
}

/**
 * The run's status and summary from its videos' outcomes.
 *
 * - A completed video contributes its own summary; a failed or cancelled one its last progress report
 *   (counts, pitch, storage counters, routing), with the error message for a failure.
 * - Status: `cancelled` when cancellation was requested of the run (`cancelRequested`: the `cancel` signal
 *   or native cancellation) or any video was cancelled; else `failed` when any video failed; else
 *   `completed`. A failure's `error` is kept even when the run ends cancelled.
 * - Cache and storage totals are the sums of every video's counters.
 *
 * @param run the identity and output location of the run
 * @param videos the videos in input order
 * @param cancelRequested whether the run itself was asked to cancel
 */
export function summarizeRun(
  run: Pick<RunSummary, 'tenantId' | 'runGuid' | 'workflowId' | 'bucket' | 'outputPrefix'>,
  videos: readonly SettledVideo[],
  cancelRequested: boolean,
): RunConclusion {
  const summaries: VideoSummary[] = videos.map((v) => {
    if (v.outcome.status === 'completed') return v.outcome.summary;
    const cancelled = v.outcome.status === 'cancelled';
    return {
      videoGuid: v.videoGuid,
      source: v.source,
      status: cancelled ? 'cancelled' : 'failed',
      counts: v.last.counts,
      pitch: v.last.pitch,
      io: v.last.io,
      routing: v.last.routing,
      error: v.outcome.status === 'failed' ? v.outcome.error.message : undefined,
    };
  });
  const cancelled = cancelRequested || summaries.some((s) => s.status === 'cancelled');
  const firstFailure = videos.find((v) => v.outcome.status === 'failed');
  const status: RunStatus = cancelled ? 'cancelled' : firstFailure ? 'failed' : 'completed';
  const totals = summaries.reduce((t, s) => addIo(t, s.io), emptyIo());
  const summary: RunSummary = {
    status,
    tenantId: run.tenantId,
    runGuid: run.runGuid,
    workflowId: run.workflowId,
    bucket: run.bucket,
    outputPrefix: run.outputPrefix,
    videos: summaries,
    cache: { hits: totals.cacheHits, misses: totals.cacheMisses, bytesFromCache: totals.bytesFromCache, artifactDownloads: totals.artifactDownloads },
    storage: { requests: totals.gcsRequests, bytesUploaded: totals.bytesUploaded, bytesDownloaded: totals.bytesDownloaded },
  };
  const error = firstFailure?.outcome.status === 'failed' ? firstFailure.outcome.error : undefined;
  return { status, summary, error, failedVideo: summaries.find((s) => s.status === 'failed') };
}

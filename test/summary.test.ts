/**
 * The run summary of `trainPipeline` (src/workflows/summary.ts): status rules, per-video entries of videos
 * that did not complete, and the totals. Pure: no Temporal server.
 */
import { describe, expect, it } from 'vitest';
import { emptyIo } from '../src/workflows/io';
import { summarizeRun, type SettledVideo } from '../src/workflows/summary';
import type { VideoSummary } from '../src/workflows/types';

const run = { tenantId: 't', runGuid: 'r', workflowId: 'train-pipeline:t:r', bucket: 'b', outputPrefix: 'gs://b/t/user/process/train_pipeline/run_r/' };
const io = (n: number) => ({ ...emptyIo(), gcsRequests: n, bytesUploaded: 10 * n, cacheHits: n, bytesFromCache: 100 * n, artifactDownloads: 1 });

function completed(videoGuid: string, n: number): SettledVideo {
  const summary: VideoSummary = { videoGuid, source: `${videoGuid}.mp4`, status: 'completed', counts: { frames: n, train: n }, io: io(n), routing: { cpu: 'q', gpu: 'q-gpu', reroutes: [] } };
  return { videoGuid, source: summary.source, outcome: { status: 'completed', summary }, last: { counts: {} } };
}

const last = { counts: { frames: 5 }, pitch: { found: false, framesSampled: 4 }, io: io(2), routing: { cpu: 'q@w', gpu: 'q-gpu@w', reroutes: [] } };

describe('summarizeRun', () => {
  it('all videos completed: completed, their own summaries, totals summed', () => {
    const c = summarizeRun(run, [completed('a', 1), completed('b', 3)], false);
    expect(c.status).toBe('completed');
    expect(c.error).toBeUndefined();
    expect(c.failedVideo).toBeUndefined();
    expect(c.summary).toMatchObject({ ...run, status: 'completed' });
    expect(c.summary.videos.map((v) => v.counts.frames)).toEqual([1, 3]);
    expect(c.summary.cache).toEqual({ hits: 4, misses: 0, bytesFromCache: 400, artifactDownloads: 2 });
    expect(c.summary.storage).toEqual({ requests: 4, bytesUploaded: 40, bytesDownloaded: 0 });
  });

  it('a failed video: failed, with its last progress and the first failure (input order) as the error', () => {
    const c = summarizeRun(
      run,
      [
        completed('a', 1),
        { videoGuid: 'b', source: 'b.mp4', outcome: { status: 'failed', error: { type: 'BadMedia', message: 'b.mp4: no video stream' } }, last },
        { videoGuid: 'c', source: 'c.mp4', outcome: { status: 'failed', error: { type: 'Internal', message: 'later' } }, last },
      ],
      false,
    );
    expect(c.status).toBe('failed');
    expect(c.error).toEqual({ type: 'BadMedia', message: 'b.mp4: no video stream' });
    expect(c.failedVideo).toEqual({ videoGuid: 'b', source: 'b.mp4', status: 'failed', ...last, error: 'b.mp4: no video stream' });
    expect(c.summary.videos[2].error).toBe('later');
    expect(c.summary.storage.requests).toBe(1 + 2 + 2);
  });

  it('cancellation wins over failure, whether asked of the run or of a video; the failure is kept', () => {
    const failed: SettledVideo = { videoGuid: 'b', source: 'b.mp4', outcome: { status: 'failed', error: { type: 'Transient', message: 'x' } }, last };
    const byRun = summarizeRun(run, [completed('a', 1), failed], true);
    expect(byRun.status).toBe('cancelled');
    expect(byRun.error).toEqual({ type: 'Transient', message: 'x' });
    const byVideo = summarizeRun(run, [{ videoGuid: 'a', source: 'a.mp4', outcome: { status: 'cancelled' }, last }], false);
    expect(byVideo.status).toBe('cancelled');
    expect(byVideo.summary.videos[0]).toEqual({ videoGuid: 'a', source: 'a.mp4', status: 'cancelled', ...last, error: undefined });
    expect(byVideo.error).toBeUndefined();
  });
});

/**
 * Mock pipeline activities for workflow tests and history recording (scripts/record-histories.ts): every
 * step returns fixed counts and `io` statistics, records its call and the task queue it ran on, and one
 * step can be held (heartbeating) until a gate opens or the activity is cancelled.
 */
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { STEP_NAMES } from '../../src/workflows/steps';
import type { RunDatasetInput, RunRecord, RunStartRecord, StepInput } from '../../src/workflows/types';

/** The `io` statistics every mocked step reports. */
export const MOCK_STEP_IO = { gcsRequests: 1, bytesUploaded: 10, bytesDownloaded: 5, cacheHits: 2, cacheMisses: 1, bytesFromCache: 100, artifactDownloads: 1 };

/**
 * Mock activities that record calls; `gate` lets a test hold a step until it says so.
 * @param opts.hold name of the step to hold (it heartbeats until `gate` resolves or it is cancelled)
 * @returns the CPU and GPU activities and the arrays they record into: step `calls` (with their queue),
 *   cache `releases`, and run `records` (`recordRunStart`, as a `running` record that keeps the start record's
 *   `input` and `videoGuids`, and `recordRunEnd`)
 */
export function mockActivities(opts: { hold?: string; gate?: Promise<void> } = {}) {
  const calls: { name: string; input: unknown; queue: string }[] = [];
  const releases: { queue: string; videoGuid: string }[] = [];
  const records: RunRecord[] = [];
  const base = (name: string, input: StepInput) => ({
    step: STEP_NAMES.indexOf(name as never) + 1,
    name,
    videoGuid: input.videoGuid,
    startedAt: '',
    finishedAt: '',
    durationMs: 1,
    io: MOCK_STEP_IO,
  });
  const step =
    (name: string, extra: (input: StepInput) => object) =>
    async (input: StepInput) => {
      const queue = Context.current().info.taskQueue;
      calls.push({ name, input, queue });
      if (opts.hold === name) {
        // Heartbeat until released or cancelled, as real long activities do.
        const ctx = Context.current();
        let released = false;
        void opts.gate?.then(() => (released = true));
        while (!released) {
          ctx.heartbeat();
          if (ctx.cancellationSignal.aborted) throw new CancelledFailure('cancelled');
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      return { ...base(name, input), cachedOn: queue, ...extra(input) };
    };
  const cpu = {
    recordRunStart: async (r: RunStartRecord) => {
      // Recorded as the run record it starts (status `running`), with the start record's own fields.
      records.push({ ...r, status: 'running' });
      return { bucket: 'b', outputPrefix: `gs://b/${r.tenantId}/user/process/train_pipeline/run_${r.runGuid}/` };
    },
    recordRunEnd: async (r: RunRecord) => void records.push(r),
    importVideo: step('importVideo', () => ({ frameCount: 100 })),
    loadVideo: step('loadVideo', () => ({})),
    // A source whose name contains "segments" is a long video: step 3 plans three time segments of it.
    extractFramesForDetections: step('extractFramesForDetections', (input) =>
      input.source.includes('segments')
        ? {
            frames: 60,
            segments: [
              { index: 0, from: 0, to: 49 },
              { index: 1, from: 40, to: 89 },
              { index: 2, from: 80, to: 119 },
            ],
          }
        : { frames: 20 },
    ),
    // A source whose name contains "no-pitch" gets step 4's "no pitch" result.
    initializeGrassMask: step('initializeGrassMask', (input) =>
      input.source.includes('no-pitch')
        ? { grass: { pitchFound: false, pitch: { framesPitchLike: 0, reason: 'mock: no grass' } }, framesSampled: 16 }
        : { grass: { pitchFound: true, pitch: { framesPitchLike: 12, reason: 'mock: grass' } }, framesSampled: 16 },
    ),
    extractCrops: step('extractCrops', () => ({ crops: 40 })),
    cropBatch: step('cropBatch', (input) => {
      const batch = (input as StepInput & { batch: { index: number; boxes: number } }).batch;
      return { batch, crops: batch.boxes - 2, object: `batch_${batch.index}.json` };
    }),
    augmentBatch: step('augmentBatch', (input) => {
      const batch = (input as StepInput & { batch: { index: number; boxes: number } }).batch;
      return { batch, augmented: 2 * batch.boxes, sources: batch.boxes };
    }),
    augmentCrops: step('augmentCrops', () => ({})),
    createTrainingAndValidationSets: step('createTrainingAndValidationSets', () => ({ train: 30, val: 10 })),
    mergeRunDataset: async (input: RunDatasetInput) => {
      calls.push({ name: 'mergeRunDataset', input, queue: Context.current().info.taskQueue });
      const prefix = `${input.tenantId}/user/process/train_pipeline/run_${input.runGuid}/dataset/`;
      return { prefix: `gs://b/${prefix}`, manifest: `${prefix}manifest.json`, classes: 4 * input.videoGuids.length, train: 30 * input.videoGuids.length, val: 10 * input.videoGuids.length };
    },
    releaseVideoCache: async (ref: { runGuid: string; videoGuid: string }) => {
      releases.push({ queue: Context.current().info.taskQueue, videoGuid: ref.videoGuid });
      return { released: 1, workerId: 'mock' };
    },
  };
  const gpu = {
    // A source whose name contains "batches" has many tracked boxes: step 5 plans three class batches of them.
    detectPlayers: step('detectPlayers', (input) => ({
      detections: 50,
      tracks: 4,
      classBatches: input.source.includes('batches')
        ? [
            { index: 0, from: 0, to: 1, tracks: 2, boxes: 20 },
            { index: 1, from: 2, to: 2, tracks: 1, boxes: 18 },
            { index: 2, from: 3, to: 3, tracks: 1, boxes: 12 },
          ]
        : [{ index: 0, from: 0, to: 3, tracks: 4, boxes: 50 }],
    })),
    detectSegment: step('detectSegment', (input) => {
      const segment = (input as StepInput & { segment: { index: number; from: number; to: number } }).segment;
      return { segment, frames: 25, detections: 20, object: `segment_${segment.index}.json` };
    }),
    backgroundBatch: step('backgroundBatch', (input) => {
      const batch = (input as StepInput & { batch: { index: number; boxes: number } }).batch;
      return { batch, crops: batch.boxes - 2, object: `background_${batch.index}.json` };
    }),
    removeCropBackground: step('removeCropBackground', () => ({})),
  };
  return { cpu, gpu, calls, records, releases };
}

/** What {@link mockActivities} returns. */
export type MockActivities = ReturnType<typeof mockActivities>;

/**
 * `trackSegment`: the child workflow of `processVideo` that tracks one time segment of a long video (part of
 * step 5; docs/ARCHITECTURE.md "Segments"). It runs the `detectSegment` activity on the shared GPU queue, so any
 * GPU worker takes it, and returns its result. Being a workflow of its own, each segment is listed in the Web
 * UI under its own id (`…:video:{videoGuid}:segment:{index}`, src/workflows/ids.ts) with its own search
 * attributes (`TenantId`, `RunGuid` set by the parent; `PipelineStep` kept current here) and its own history.
 *
 * Deterministic workflow code: activities are imported as types only.
 */
import { proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { stepOptions } from './activityOptions';
import { PIPELINE_STEP } from './messages';
import type { SegmentInput, SegmentRange, SegmentResult } from './types';
import type { PipelineOptions } from '../validation';

/** Input of {@link trackSegment}: the activity's input and where to run it. */
export interface TrackSegmentInput {
  /** The `detectSegment` input: the video's step input, step 4's pitch model and the segment. */
  segment: SegmentInput;
  /** The shared GPU task queue of the run. */
  taskQueue: string;
  /** The segments of the video (for the activity's summary in the Web UI). */
  segments: number;
  /** The run's routing options (heartbeat timeout). */
  routing: PipelineOptions['routing'];
}

/**
 * The Web UI summary of segment `segment` of `total`, for the child and for its activity:
 * `step 5, segment k of n: frames a-b`.
 */
export function segmentSummary(segment: SegmentRange, total: number): string {
  return `step 5, segment ${segment.index + 1} of ${total}: frames ${segment.from}-${segment.to}`;
}

/** `PipelineStep` of a segment while its activity runs. */
export const SEGMENT_STEP = 'detectSegment';

/**
 * Tracks one segment: `detectSegment` with the step's activity options (retries, heartbeats; see
 * src/workflows/activityOptions.ts) and the activity id `detectSegment-{index}`.
 * @returns the activity's result
 * @throws the activity's failure when it fails for good (the parent names the step: `stepFailure`)
 */
export async function trackSegment(input: TrackSegmentInput): Promise<SegmentResult> {
  const { segment } = input.segment;
  upsertSearchAttributes([{ key: PIPELINE_STEP, value: SEGMENT_STEP }]);
  const acts = proxyActivities<Activities>({
    ...stepOptions(input.taskQueue, input.routing, false),
    activityId: `detectSegment-${segment.index}`,
    summary: segmentSummary(segment, input.segments),
  });
  const result = await acts.detectSegment(input.segment);
  upsertSearchAttributes([{ key: PIPELINE_STEP, value: 'completed' }]);
  return result;
}

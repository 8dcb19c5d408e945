/**
 * Query and signal definitions and search attribute keys of the pipeline workflows
 * (docs/ARCHITECTURE.md "Workflow contract").
 * Shared by workflows, the CLI and other services (which can signal `cancel` with only the workflow id).
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { CancelRequest, RunProgress, VideoProgress } from './types';

/** `progress` query of `trainPipeline`: per video step, steps done, counts, overall fraction. */
export const progressQuery = defineQuery<RunProgress>('progress');

/** `progress` query of the per-video child `processVideo`. */
export const videoProgressQuery = defineQuery<VideoProgress>('progress');

/**
 * `cancel` signal of `trainPipeline` (optional reason): stops in-flight work and ends the run as cancelled,
 * exactly like native cancellation (`temporal workflow cancel`). The payload is brought to `{ reason?, by? }`
 * (longer texts truncated to `MAX_CANCEL_REASON_LENGTH` / `MAX_CANCEL_BY_LENGTH`, anything else dropped,
 * `sanitizeCancelRequest` in src/validation.ts); a payload that cannot be decoded drops the whole signal.
 */
export const cancelSignal = defineSignal<[CancelRequest?]>('cancel');

/** Internal: a child `processVideo` reports its progress to its parent `trainPipeline`. */
export const videoProgressSignal = defineSignal<[VideoProgress]>('videoProgress');

/** Search attribute `TenantId` (Keyword), registered by the local stack. */
export const TENANT_ID = defineSearchAttributeKey('TenantId', SearchAttributeType.KEYWORD);
/** Search attribute `RunGuid` (Keyword). */
export const RUN_GUID = defineSearchAttributeKey('RunGuid', SearchAttributeType.KEYWORD);
/** Search attribute `PipelineStep` (Keyword): the current step, updated only on step changes. */
export const PIPELINE_STEP = defineSearchAttributeKey('PipelineStep', SearchAttributeType.KEYWORD);

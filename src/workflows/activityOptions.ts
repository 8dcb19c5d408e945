/**
 * Activity options of the pipeline's steps and of their parts, shared by `processVideo` and the per-segment
 * child workflow `trackSegment`. Deterministic workflow code.
 */
import { ActivityCancellationType, type ActivityOptions } from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from '../errors';
import type { PipelineOptions } from '../validation';

/** Attempts of a step before it fails for good (its retry policy's `maximumAttempts`). */
export const STEP_MAX_ATTEMPTS = 8;

/**
 * Activity options of a step. Heartbeats: every activity heartbeats its latest progress on a timer while it
 * makes progress (src/activities/liveness.ts), so a dead worker is noticed within `heartbeatTimeoutSeconds`
 * (default 30 s) and the step is retried (workers cap heartbeat throttling at
 * {@link https://typescript.temporal.io/api/interfaces/worker.WorkerOptions#maxheartbeatthrottleinterval | 2 s}
 * so cancellation reaches a running step within seconds). Retries back off from 1 s to 1 min; the error
 * classification in `src/errors.ts` decides what is not retried. On a worker-specific queue the step also
 * gets a schedule-to-start timeout: nobody taking it from there means the worker is gone.
 * @param taskQueue the activity's task queue
 * @param routing the run's `options.routing` (heartbeat and schedule-to-start timeouts, seconds)
 * @param ownQueue whether `taskQueue` is one worker's own queue
 */
export function stepOptions(taskQueue: string, routing: PipelineOptions['routing'], ownQueue: boolean): ActivityOptions {
  return {
    taskQueue,
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: `${routing.heartbeatTimeoutSeconds} seconds`,
    scheduleToStartTimeout: ownQueue ? `${routing.scheduleToStartSeconds} seconds` : undefined,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      maximumAttempts: STEP_MAX_ATTEMPTS,
      nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
    },
  };
}

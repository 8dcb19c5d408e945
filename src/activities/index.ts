/**
 * All activities of the pipeline, created from their dependencies (the activity-factory pattern of
 * temporalio/samples-typescript): workers pass real clients, tests may pass fakes for fault injection.
 */
import { createBatchActivities } from './batches';
import { createCropActivities } from './crops';
import { createDatasetActivities } from './dataset';
import type { ActivityDeps } from './deps';
import { createDetectActivities } from './detect';
import { createIngestActivities } from './ingest';
import { createCacheActivities } from './routing';
import { createRunActivities } from './run';
import { createRunDatasetActivities } from './runDataset';
import { createSegmentActivities } from './segments';

export type { ActivityDeps } from './deps';
export { createRoutingActivities, type RoutingActivities, type WorkerQueues } from './routing';

/** Creates every activity (the nine steps, step 5's segments, step 8's class batches, the run-level dataset, run bookkeeping) over `deps`. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createRunActivities(deps),
    ...createIngestActivities(deps),
    ...createDetectActivities(deps),
    ...createSegmentActivities(deps),
    ...createBatchActivities(deps),
    ...createCropActivities(deps),
    ...createDatasetActivities(deps),
    ...createRunDatasetActivities(deps),
    ...createCacheActivities(deps),
  };
}

/** The activity interface workflows proxy (imported by workflows as a type only). */
export type Activities = ReturnType<typeof createActivities>;

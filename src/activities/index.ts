/**
 * All activities of the pipeline, created from their dependencies (the activity-factory pattern of
 * temporalio/samples-typescript): workers pass real clients, tests may pass fakes for fault injection.
 */
import type { ActivityDeps } from './context';
import { createDatasetActivities } from './dataset';
import { createDetectActivities } from './detect';
import { createCacheActivities } from './routing';
import { createRunActivities } from './run';
import { createVideoActivities } from './video';

export type { ActivityDeps } from './context';
export { createRoutingActivities, type RoutingActivities, type WorkerQueues } from './routing';

/** Creates every activity (the nine steps plus run bookkeeping) over `deps`. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createRunActivities(deps),
    ...createVideoActivities(deps),
    ...createDetectActivities(deps),
    ...createDatasetActivities(deps),
    ...createCacheActivities(deps.cache),
  };
}

/** The activity interface workflows proxy (imported by workflows as a type only). */
export type Activities = ReturnType<typeof createActivities>;

/** Activities served on the GPU task queue (SPEC section 4). */
export const GPU_ACTIVITY_NAMES = ['detectPlayers', 'removeCropBackground'] as const satisfies readonly (keyof Activities)[];

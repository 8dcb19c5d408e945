/**
 * Worker-specific task queues (docs/ARCHITECTURE.md "Routing"), after Temporal's TypeScript sample
 * https://github.com/temporalio/samples-typescript/tree/main/worker-specific-task-queues: every worker
 * process polls, besides the shared queues, queues of its own named `{sharedQueue}@{workerId}`
 * (`workerQueueFor` in src/workflows/steps.ts). A video's workflow asks a worker for its queues once
 * (`claimWorker` on the shared CPU queue, `claimGpuWorker` on the shared GPU queue) and then sends its steps
 * there, so consecutive steps share one run cache.
 */
import { videoPrefix, type RunCache } from '../cache/runCache';

/** What a claim returns: this process's id and its own CPU and GPU queues (when it serves that role). */
export interface WorkerQueues {
  workerId: string;
  cpu?: string;
  gpu?: string;
}

/**
 * The claim activities of one worker process.
 * @param queues this process's own queues, as `createPipelineWorkers` (src/workers/worker.ts) created them
 */
export function createRoutingActivities(queues: WorkerQueues) {
  return {
    /** On the shared CPU queue: "send this video's CPU steps (and GPU steps, if I have a GPU worker) to me". */
    async claimWorker(): Promise<WorkerQueues> {
      return queues;
    },
    /** On the shared GPU queue: "send this video's GPU steps to me". */
    async claimGpuWorker(): Promise<WorkerQueues> {
      return queues;
    },
    /**
     * On each of this process's own queues: "are you there?". Taken only by this process, so an answer within
     * the schedule-to-start timeout proves it alive (`processVideo` asks after a step's heartbeat timeout).
     */
    async pingWorker(): Promise<{ workerId: string }> {
      return { workerId: queues.workerId };
    },
  };
}

/** Types of the claim activities, for workflows (imported as a type only). */
export type RoutingActivities = ReturnType<typeof createRoutingActivities>;

/**
 * The cache-release activity, served on every worker-specific queue: drops a video's entries (and files)
 * from this process's run cache. Called by `processVideo` when the video completes, fails or is cancelled.
 * @param deps the worker's run cache and its worker id (reported back)
 */
export function createCacheActivities(deps: { cache: RunCache; workerId: string }) {
  return {
    /** Releases one video of a run from this worker's cache; returns the number of entries dropped. */
    async releaseVideoCache(ref: { tenantId: string; runGuid: string; videoGuid: string }): Promise<{ released: number; workerId: string }> {
      return { released: deps.cache.release(videoPrefix(ref.tenantId, ref.runGuid, ref.videoGuid)), workerId: deps.workerId };
    },
  };
}

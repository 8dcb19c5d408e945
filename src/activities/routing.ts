/**
 * Worker-specific task queues (issue 5), after Temporal's TypeScript sample
 * https://github.com/temporalio/samples-typescript/tree/main/worker-specific-task-queues: every worker
 * process polls, besides the shared queues, queues of its own named `{sharedQueue}@{WORKER_ID}`. A video's
 * workflow asks a worker for its queues once (`claimWorker` on the shared CPU queue, `claimGpuWorker` on
 * the shared GPU queue) and then sends its steps there, so consecutive steps share one run cache.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { videoPrefix, type RunCache } from '../cache/runCache';

/**
 * This process's worker id: host name, pid and a random suffix (unique across restarts and hosts).
 * Queue names allow it: Temporal task queue names are free-form strings up to 1000 bytes.
 */
export const WORKER_ID = `${hostname().replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 40)}-${process.pid}-${randomUUID().slice(0, 6)}`;

/** The worker-specific queue that belongs to shared queue `sharedQueue` in this process. */
export function workerQueueFor(sharedQueue: string, workerId: string = WORKER_ID): string {
  return `${sharedQueue}@${workerId}`;
}

/** What a claim returns: this process's id and its own CPU and GPU queues (when it serves that role). */
export interface WorkerQueues {
  workerId: string;
  cpu?: string;
  gpu?: string;
}

/**
 * The claim activities of one worker process.
 * @param queues this process's own queues, as {@link createPipelineWorkers} created them
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
 */
export function createCacheActivities(cache: RunCache) {
  return {
    /** Releases one video of a run from this worker's cache; returns the number of entries dropped. */
    async releaseVideoCache(ref: { tenantId: string; runGuid: string; videoGuid: string }): Promise<{ released: number; workerId: string }> {
      return { released: cache.release(videoPrefix(ref.tenantId, ref.runGuid, ref.videoGuid)), workerId: WORKER_ID };
    },
  };
}

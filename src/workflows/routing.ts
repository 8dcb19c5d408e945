/**
 * The routing state of one video (`processVideo`, docs/ARCHITECTURE.md "Routing"): which queue each kind of
 * step goes to, which worker claimed it, the re-routes after a lost worker, and which worker-specific queues
 * hold the video's cached artifacts and get the cache release at the end.
 *
 * The lifecycle: {@link VideoRouter.claimCpu} / {@link VideoRouter.claimGpu} record the claims (each a
 * worker's own queues, or none: the shared queues stay); {@link VideoRouter.queueFor} gives a step's queue;
 * {@link VideoRouter.reroute} moves every step of a lost worker to the shared queues;
 * {@link VideoRouter.cached} notes where a step cached; {@link VideoRouter.releaseQueues} lists where to
 * release. The activity calls themselves stay in `processVideo`.
 *
 * Workflow-safe: deterministic, no I/O, no Node built-ins.
 */
import type { QueueKind, StepName } from './steps';
import type { VideoRouting } from './types';

/** What a claim activity answers: the claiming worker's id and its own queues (when it serves that role). */
export interface ClaimAnswer {
  workerId: string;
  cpu?: string;
  gpu?: string;
}

/** The routing state of one video; see the module comment. */
export class VideoRouter {
  /** The video's routing as progress and the summary report it (this object is updated in place). */
  readonly routing: VideoRouting;
  /** Worker-specific queues whose run caches hold artifacts of this video. */
  private readonly cachedOn = new Set<string>();
  /** Queues of workers found lost (nobody would take a release there). */
  private readonly lostQueues = new Set<string>();

  /** @param shared the shared CPU and GPU queues (the workflow's task queue and its GPU queue). */
  constructor(readonly shared: Readonly<Record<QueueKind, string>>) {
    this.routing = { cpu: shared.cpu, gpu: shared.gpu, reroutes: [] };
  }

  /**
   * Records the claim on the shared CPU queue: its CPU queue for the CPU steps and, when the same process
   * serves the GPU role too, its GPU queue for the GPU steps.
   * @returns whether a GPU worker must still be claimed on the shared GPU queue
   */
  claimCpu(answer: ClaimAnswer): boolean {
    const r = this.routing;
    r.cpu = answer.cpu ?? this.shared.cpu;
    r.cpuWorker = answer.workerId;
    if (!answer.gpu) return true;
    r.gpu = answer.gpu;
    r.gpuWorker = answer.workerId;
    return false;
  }

  /** Records the claim on the shared GPU queue (a worker's own GPU queue, or the shared one without it). */
  claimGpu(answer: ClaimAnswer): void {
    this.routing.gpu = answer.gpu ?? this.shared.gpu;
    this.routing.gpuWorker = answer.workerId;
  }

  /** The queue of the next step of `kind`. */
  queueFor(kind: QueueKind): string {
    return this.routing[kind];
  }

  /** Whether `queue` is a worker's own queue (not one of the shared ones). */
  isOwnQueue(queue: string): boolean {
    return queue !== this.shared.cpu && queue !== this.shared.gpu;
  }

  /**
   * The worker behind the `kind` queue is lost while it ran `step`: records the re-route and sends every
   * step pinned to that worker (CPU and GPU alike when one process served both) to the shared queues.
   * @param reason why the worker counts as lost (recorded with the re-route)
   * @returns the shared queue of `kind`, where `step` runs again
   */
  reroute(kind: QueueKind, step: StepName, reason: string): string {
    const r = this.routing;
    const queue = r[kind];
    const lost = kind === 'cpu' ? r.cpuWorker : r.gpuWorker;
    r.reroutes.push({ step, from: queue, to: this.shared[kind], reason });
    this.lostQueues.add(queue);
    if (r.cpuWorker === lost) {
      this.lostQueues.add(r.cpu);
      r.cpu = this.shared.cpu;
    }
    if (r.gpuWorker === lost) {
      this.lostQueues.add(r.gpu);
      r.gpu = this.shared.gpu;
    }
    return this.shared[kind];
  }

  /** The worker id behind the `kind` queue (undefined when unclaimed). */
  workerOf(kind: QueueKind): string | undefined {
    return kind === 'cpu' ? this.routing.cpuWorker : this.routing.gpuWorker;
  }

  /** Notes that a completed step cached the video's artifacts on `queue` (a step result's `cachedOn`). */
  cached(queue: string | undefined): void {
    if (queue) this.cachedOn.add(queue);
  }

  /**
   * Where the video's cache entries are released at its end, in order: every queue a step cached on, then
   * (with `ownQueuesToo`) the video's own worker queues, where a failed or cancelled step may have cached
   * too; with `ownQueuesToo`, never a lost worker's queue (a release there would only time out). Without
   * it: the cached-on queues only, lost or not (the rule of executions recorded before
   * `PATCH_RELEASE_OWN_QUEUES`, src/workflows/processVideo.ts).
   */
  releaseQueues(ownQueuesToo: boolean): string[] {
    const own = ownQueuesToo ? [this.routing.cpu, this.routing.gpu].filter((q) => this.isOwnQueue(q)) : [];
    return [...new Set([...this.cachedOn, ...own].filter((q) => !ownQueuesToo || !this.lostQueues.has(q)))];
  }
}

/**
 * The nine steps of a video and the task queues they run on, in one table that the workflow
 * (`processVideo` routes each step by it), the worker (which activities each role serves) and the CLI
 * (step labels) all read. docs/ARCHITECTURE.md "The nine steps" lists their inputs and outputs.
 *
 * Queue names: the shared CPU queue is the configured `TASK_QUEUE` (default `train-pipeline`), the shared GPU
 * queue is {@link gpuTaskQueueFor} of it, and every worker process also polls queues of its own,
 * {@link workerQueueFor} (Temporal's worker-specific task queues pattern,
 * https://github.com/temporalio/samples-typescript/tree/main/worker-specific-task-queues).
 *
 * Workflow-safe: constants and pure string work.
 */

/** Which worker role runs a step: CPU-bound work, or model inference (the GPU role). */
export type QueueKind = 'cpu' | 'gpu';

/**
 * The nine steps in order: activity name and queue kind. Index + 1 is the step number `N` of
 * `intermediate/step{N}_result.json`. Detection and background removal run models, so they go to the GPU
 * queue; everything else (and the workflows) to the CPU queue.
 */
export const STEPS = [
  { name: 'importVideo', queue: 'cpu' },
  { name: 'loadVideo', queue: 'cpu' },
  { name: 'extractFramesForDetections', queue: 'cpu' },
  { name: 'initializeGrassMask', queue: 'cpu' },
  { name: 'detectPlayers', queue: 'gpu' },
  { name: 'extractCrops', queue: 'cpu' },
  { name: 'removeCropBackground', queue: 'gpu' },
  { name: 'augmentCrops', queue: 'cpu' },
  { name: 'createTrainingAndValidationSets', queue: 'cpu' },
] as const satisfies readonly { name: string; queue: QueueKind }[];

/** One step's activity name. */
export type StepName = (typeof STEPS)[number]['name'];

/** The step names in order ({@link STEPS}). */
export const STEP_NAMES: readonly StepName[] = STEPS.map((s) => s.name);

/** Activity names of the steps that run on the GPU queue (`detectPlayers`, `removeCropBackground`). */
export type GpuStepName = Extract<(typeof STEPS)[number], { queue: 'gpu' }>['name'];

/** The steps that run on the GPU queue, in order. */
export const GPU_STEP_NAMES: readonly GpuStepName[] = STEPS.filter((s): s is Extract<(typeof STEPS)[number], { queue: 'gpu' }> => s.queue === 'gpu').map((s) => s.name);

/**
 * The steps that fan out over class batches (docs/ARCHITECTURE.md "Class batches"), each with the activity that
 * does one batch of it (src/activities/batches.ts): `cropBatch` (step 6), `backgroundBatch` (step 7, GPU role,
 * so also in {@link GPU_PART_ACTIVITIES}), `augmentBatch` (step 8).
 */
export const CLASS_BATCH_PARTS = { extractCrops: 'cropBatch', removeCropBackground: 'backgroundBatch', augmentCrops: 'augmentBatch' } as const;

/** A step that fans out over class batches. */
export type BatchedStepName = keyof typeof CLASS_BATCH_PARTS;

/** Whether `name` is a step that fans out over class batches ({@link CLASS_BATCH_PARTS}). */
export function isBatchedStep(name: string | null | undefined): name is BatchedStepName {
  return !!name && Object.hasOwn(CLASS_BATCH_PARTS, name);
}

/**
 * Activities that are part of a GPU step without being a step themselves: `detectSegment` tracks one time
 * segment of step 5 (src/activities/segments.ts), `backgroundBatch` treats one class batch of step 7
 * (src/activities/batches.ts). Workers serve them in the GPU role; every other activity, `cropBatch` and
 * `augmentBatch` (class batches of steps 6 and 8) among them, in the CPU role.
 */
export const GPU_PART_ACTIVITIES = ['detectSegment', CLASS_BATCH_PARTS.removeCropBackground] as const;

/** Step number 1-9 of a step name. */
export function stepNumber(name: StepName): number {
  return STEPS.findIndex((s) => s.name === name) + 1;
}

/** The queue kind of a step. */
export function stepQueue(name: StepName): QueueKind {
  return STEPS[stepNumber(name) - 1].queue;
}

/** Name of the shared GPU task queue that belongs to the shared CPU queue `taskQueue`: `{taskQueue}-gpu`. */
export function gpuTaskQueueFor(taskQueue: string): string {
  return `${taskQueue}-gpu`;
}

/**
 * The worker-specific queue of worker `workerId` that belongs to shared queue `sharedQueue`:
 * `{sharedQueue}@{workerId}` (Temporal task queue names are free-form strings up to 1000 bytes).
 */
export function workerQueueFor(sharedQueue: string, workerId: string): string {
  return `${sharedQueue}@${workerId}`;
}

/**
 * Jobs started one at a time by a producer loop, with at most `size` of them unsettled at once: {@link add}
 * waits (back-pressure) while the window is full, so a loop over a long video's images never holds more than
 * `size` pending promises, closures and buffers, however many images there are. Jobs finish in any order; the
 * oldest unsettled one is awaited first (the store's request queue is first-in, first-out: `p-limit`).
 *
 * The first failure is kept and thrown by the next {@link add} or by {@link settle}; jobs already started
 * still run to their end, and none start after it. Every job's rejection is handled as it happens, so none
 * surfaces as an unhandled rejection (an `onDone` that throws counts as the job's failure).
 */
export class JobWindow {
  private readonly pending: Promise<void>[] = [];
  private failure: { error: unknown } | undefined;
  private done = 0;

  /**
   * @param size most jobs unsettled at once (≥ 1)
   * @param onDone called after each job that fulfils, with the number fulfilled so far (progress, heartbeats)
   * @throws RangeError when `size` is not a positive integer
   */
  constructor(
    readonly size: number,
    private readonly onDone: (done: number) => void = () => {},
  ) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`JobWindow: size must be a positive integer, got ${size}`);
  }

  /**
   * Starts `job` once fewer than `size` jobs are unsettled.
   * @throws the first failure of an earlier job, in which case `job` is not started
   */
  async add(job: () => Promise<unknown>): Promise<void> {
    while (this.pending.length >= this.size) await this.pending.shift();
    if (this.failure) throw this.failure.error;
    this.pending.push(
      job()
        .then(() => this.onDone(++this.done))
        .catch((error: unknown) => void (this.failure ??= { error })),
    );
  }

  /**
   * Waits for every started job.
   * @throws the first failure of any job
   */
  async settle(): Promise<void> {
    await this.drain();
    if (this.failure) throw this.failure.error;
  }

  /** Waits for every started job, failed or not, and throws nothing: nothing still runs once it resolves. */
  async drain(): Promise<void> {
    while (this.pending.length > 0) await this.pending.shift();
  }

  /** Jobs fulfilled so far. */
  get fulfilled(): number {
    return this.done;
  }
}

/**
 * Runs `job` for each of `items`, in order, with at most `size` unsettled at once ({@link JobWindow}), and
 * waits for all of them: the items are read one at a time as the window frees, so neither their jobs nor
 * their results pile up however many items there are.
 *
 * @param onDone called after each job that fulfils, with the number fulfilled so far (progress, heartbeats)
 * @returns the number of jobs run
 * @throws the first failure of any job, once every job already started has settled (none start after it);
 *   RangeError when `size` is not a positive integer
 */
export async function forEachInWindow<T>(items: Iterable<T>, size: number, job: (item: T) => Promise<unknown>, onDone?: (done: number) => void): Promise<number> {
  const window = new JobWindow(size, onDone);
  try {
    for (const item of items) await window.add(() => job(item));
    await window.settle();
    return window.fulfilled;
  } catch (err) {
    // No job may still be running once the caller sees the failure.
    await window.drain();
    throw err;
  }
}

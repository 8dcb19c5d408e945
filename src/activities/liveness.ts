/**
 * Liveness of activities by design: every activity a pipeline worker runs gets an {@link ActivityLiveness}
 * (installed by {@link createLivenessInterceptor}, an activity inbound interceptor of
 * https://typescript.temporal.io/api/interfaces/worker.ActivityInboundCallsInterceptor) that
 * - sends the activity's latest progress details to the server on a timer, so a step stays alive while it
 *   makes progress even where a loop never calls `heartbeat()` itself (long CPU work between two progress
 *   reports, uploads, decodes);
 * - counts as progress every explicit `heartbeat()` (the bounded loops of image work and uploads call it per
 *   job) and every read or write of the run's artifacts (`RunFiles`);
 * - stops heartbeating and fails the attempt with a retryable `Stalled` error naming the last progress when
 *   nothing progressed for `stallMs`, so a truly hung step still times out (on the server's heartbeat timeout
 *   if the event loop itself is blocked, since then no timer runs).
 *
 * Why a timer and not only calls in loops: Temporal learns that an activity is alive only from heartbeats
 * (https://docs.temporal.io/encyclopedia/detecting-activity-failures#heartbeat-timeout), and a loop that
 * forgets to heartbeat for longer than the heartbeat timeout (30 s by default here) gets its worker declared
 * dead, although it is working. The watchdog keeps the other half of the contract: a stuck step must not be
 * kept alive forever by the timer.
 */
import { Context } from '@temporalio/activity';
import type { ActivityInboundCallsInterceptor, ActivityInterceptorsFactory } from '@temporalio/worker';
import { DEFAULT_ACTIVITY_STALL_SECONDS } from '../config';
import { ErrorType, PipelineError } from '../errors';

/** Timing of {@link ActivityLiveness}. */
export interface LivenessOptions {
  /** How often the latest progress is sent to the server, ms (the SDK throttles further: `WORKER_TUNING`). */
  intervalMs: number;
  /** No progress for this long means the attempt is stuck, ms. */
  stallMs: number;
}

/** Default send interval: 1 s, half the 2 s heartbeat throttle of `WORKER_TUNING` (src/workers/worker.ts). */
export const LIVENESS_INTERVAL_MS = 1_000;

/** Default stall limit, ms: {@link DEFAULT_ACTIVITY_STALL_SECONDS} (`ACTIVITY_STALL_SECONDS`). */
export const DEFAULT_STALL_MS = DEFAULT_ACTIVITY_STALL_SECONDS * 1000;

/** The progress state of one activity attempt; see the module comment. */
export class ActivityLiveness {
  private latest: unknown;
  private lastProgressAt: number;
  private lastBeatAt: number;
  private maxBeatGap = 0;
  private maxProgressGap = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();
  private rejectStalled!: (err: Error) => void;
  /** Rejects with a `Stalled` {@link PipelineError} when the watchdog fires; never resolves. */
  readonly stalled: Promise<never>;

  /**
   * @param ctx the activity's context (its `heartbeat` is called on the timer).
   * @param opts timing; see {@link LivenessOptions}.
   * @param now clock in ms (tests of the watchdog logic pass their own).
   */
  constructor(
    private readonly ctx: Pick<Context, 'heartbeat' | 'info'>,
    private readonly opts: LivenessOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.lastProgressAt = this.lastBeatAt = now();
    // Until this attempt reports its own details, the previous attempt's (e.g. a checkpoint) are kept alive.
    this.latest = ctx.info.heartbeatDetails;
    this.stalled = new Promise<never>((_, reject) => (this.rejectStalled = reject));
    this.stalled.catch(() => undefined); // observed by whoever races it; never an unhandled rejection
  }

  private combined: AbortSignal | undefined;

  /** Fires when the watchdog gave up on this attempt. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /**
   * One signal that fires on `cancellation` (the activity's own) or on {@link signal}; made once per attempt
   * (`AbortSignal.any` keeps its sources referenced, so it is not made per call).
   */
  signalWith(cancellation: AbortSignal): AbortSignal {
    this.combined ??= AbortSignal.any([cancellation, this.abort.signal]);
    return this.combined;
  }

  /** Records progress; `details` (when given) become the details sent with the next heartbeats. */
  progress(details?: unknown): void {
    const t = this.now();
    this.maxProgressGap = Math.max(this.maxProgressGap, t - this.lastProgressAt);
    this.lastProgressAt = t;
    if (details !== undefined) this.latest = details;
  }

  /**
   * Figures of this attempt so far, ms: the longest time between two heartbeats sent by the timer (how close
   * the step came to its heartbeat timeout) and between two progress reports (how close it came to the stall
   * limit); both count from the start.
   */
  stats(): { maxHeartbeatGapMs: number; maxProgressGapMs: number } {
    const t = this.now();
    return { maxHeartbeatGapMs: Math.max(this.maxBeatGap, t - this.lastBeatAt), maxProgressGapMs: Math.max(this.maxProgressGap, t - this.lastProgressAt) };
  }

  /** Milliseconds since the last progress. */
  idleMs(): number {
    return this.now() - this.lastProgressAt;
  }

  /** Starts the timer (unref'd: it never keeps a process alive). */
  start(): void {
    this.timer ??= setInterval(() => this.tick(), this.opts.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * One timer tick: heartbeats the latest details while progress is recent; past `stallMs` stops, aborts
   * {@link signal} and rejects {@link stalled}. Public for tests of the watchdog.
   */
  tick(): void {
    if (this.abort.signal.aborted) return;
    const idle = this.idleMs();
    if (idle <= this.opts.stallMs) {
      const t = this.now();
      this.maxBeatGap = Math.max(this.maxBeatGap, t - this.lastBeatAt);
      this.lastBeatAt = t;
      this.ctx.heartbeat(this.latest);
      return;
    }
    this.stop();
    const last = this.latest === undefined ? 'none' : JSON.stringify(this.latest).slice(0, 300);
    const err = new PipelineError(ErrorType.Stalled, `activity ${this.ctx.info.activityType}`, `no progress for ${Math.round(idle / 1000)} s (limit ${Math.round(this.opts.stallMs / 1000)} s, ACTIVITY_STALL_SECONDS); last progress: ${last}`);
    this.abort.abort(err);
    this.rejectStalled(err);
  }
}

const registry = new WeakMap<object, ActivityLiveness>();

/** The liveness of the activity running in the current async context, if any (none outside activities). */
export function currentLiveness(): ActivityLiveness | undefined {
  try {
    return registry.get(Context.current());
  } catch {
    return undefined;
  }
}

/** Records progress of the current activity (no-op outside activities or without the interceptor). */
export function reportProgress(details?: unknown): void {
  currentLiveness()?.progress(details);
}

/**
 * The activity interceptor factory that gives every activity of a worker its {@link ActivityLiveness}
 * (`WorkerOptions.interceptors.activity`). The activity's result is raced against the watchdog, so a stalled
 * attempt fails with the `Stalled` error even when its code never returns.
 */
export function createLivenessInterceptor(opts: LivenessOptions): ActivityInterceptorsFactory {
  return (ctx) => {
    const inbound: ActivityInboundCallsInterceptor = {
      async execute(input, next) {
        const liveness = new ActivityLiveness(ctx, opts);
        registry.set(ctx, liveness);
        liveness.start();
        try {
          return await Promise.race([next(input), liveness.stalled]);
        } finally {
          liveness.stop();
        }
      },
    };
    return { inbound };
  };
}

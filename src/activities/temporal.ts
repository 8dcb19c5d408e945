/**
 * The Temporal activity context as the steps use it: heartbeats with cancellation checks, the attempt
 * number, the cancellation signal, the task queue and the previous attempt's heartbeat details. Every helper
 * is safe outside an activity context (it does nothing or returns a neutral value), so domain code can be
 * tested without Temporal.
 */
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { currentLiveness, reportProgress } from './liveness';


/**
 * Records progress `details` of the current activity and sends them as a heartbeat, then throws
 * `CancelledFailure` when the activity has been cancelled or its watchdog gave up (cancellation reaches an
 * activity only through heartbeats: docs/ARCHITECTURE.md "Pitfalls"). Liveness does not depend on calling it: the activity's
 * {@link ActivityLiveness} timer keeps sending the latest details (src/activities/liveness.ts); calling it
 * marks progress and updates what is sent. Safe outside an activity context (does nothing), so domain code
 * can be tested without Temporal.
 */
export function heartbeat(details?: unknown): void {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return;
  }
  reportProgress(details);
  ctx.heartbeat(details);
  if (ctx.cancellationSignal.aborted) throw new CancelledFailure(`activity cancelled: ${String(ctx.cancellationSignal.reason ?? 'cancel requested')}`);
  const gaveUp = currentLiveness()?.signal;
  if (gaveUp?.aborted) throw gaveUp.reason;
}

/**
 * Records progress in a heartbeat without the cancellation check of {@link heartbeat}: for event callbacks
 * (e.g. ffmpeg progress lines), where a thrown CancelledFailure would escape as an uncaught exception and
 * bring the worker down. Code using it must stop through {@link cancellationSignal} instead.
 */
export function heartbeatProgress(details?: unknown): void {
  try {
    const ctx = Context.current();
    reportProgress(details);
    ctx.heartbeat(details);
  } catch {
    // outside an activity: nothing to record
  }
}

/** The current activity's attempt number (1 for the first; Temporal `info.attempt`), 1 outside activities. */
export function activityAttempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1;
  }
}

/**
 * The activity's AbortSignal: fires on cancellation and when the activity's liveness watchdog gives up on a
 * stalled attempt (so ffmpeg and downloads bound to it stop too); a never-firing one outside an activity.
 */
export function cancellationSignal(): AbortSignal {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return new AbortController().signal;
  }
  return currentLiveness()?.signalWith(ctx.cancellationSignal) ?? ctx.cancellationSignal;
}

/** The task queue the current activity was taken from (a worker-specific or a shared one), if any. */
export function activityTaskQueue(): string | undefined {
  try {
    return Context.current().info.taskQueue;
  } catch {
    return undefined;
  }
}

/** The current activity's heartbeat details from its previous attempt, if any (undefined outside activities). */
export function previousHeartbeat<T>(): T | undefined {
  try {
    return Context.current().info.heartbeatDetails as T | undefined;
  } catch {
    return undefined;
  }
}

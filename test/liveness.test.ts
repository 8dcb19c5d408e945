/**
 * Unit tests of the liveness watchdog (src/activities/liveness.ts) on a controlled clock, and of the step
 * failure that names step, attempts and root cause (src/errors.ts).
 * The same behaviour against the real dev server: test/liveness.e2e.test.ts.
 */
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, RetryState, TimeoutFailure, TimeoutType } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { ActivityLiveness } from '../src/activities/liveness';
import { ErrorType, PipelineError, stepFailure, toApplicationFailure } from '../src/errors';

/** A context that records heartbeats; `previous` plays the last attempt's heartbeat details. */
function recordingContext(previous?: unknown) {
  const beats: unknown[] = [];
  const ctx = { heartbeat: (d?: unknown) => void beats.push(d), info: { heartbeatDetails: previous, activityType: 'extractCrops' } };
  return { ctx: ctx as unknown as ConstructorParameters<typeof ActivityLiveness>[0], beats };
}

describe('ActivityLiveness', () => {
  it('heartbeats the latest details while progress is recent, then stops and fails as Stalled', async () => {
    let now = 0;
    const { ctx, beats } = recordingContext();
    const l = new ActivityLiveness(ctx, { intervalMs: 1000, stallMs: 5000 }, () => now);
    l.tick();
    l.progress({ framesDone: 1 });
    now = 4000;
    l.tick();
    l.progress(); // progress without new details keeps the old ones
    now = 9000;
    l.tick();
    expect(beats).toEqual([undefined, { framesDone: 1 }, { framesDone: 1 }]);
    expect(l.signal.aborted).toBe(false);
    now = 9001 + 1; // 5002 ms after the last progress
    l.tick();
    expect(beats).toHaveLength(3); // no heartbeat once stalled: a blocked server-side timeout follows
    expect(l.signal.aborted).toBe(true);
    const err = await l.stalled.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineError);
    expect((err as PipelineError).type).toBe(ErrorType.Stalled);
    expect((err as PipelineError).message).toBe('activity extractCrops: no progress for 5 s (limit 5 s, ACTIVITY_STALL_SECONDS); last progress: {"framesDone":1}');
    now = 20_000;
    l.progress();
    l.tick();
    expect(beats).toHaveLength(3); // a stalled attempt stays given up
  });

  it('keeps the previous attempt details alive until the attempt reports its own', () => {
    const { ctx, beats } = recordingContext({ checkpoint: { chunks: 3 } });
    const l = new ActivityLiveness(ctx, { intervalMs: 1000, stallMs: 5000 }, () => 0);
    l.tick();
    l.progress({ framesDone: 9 });
    l.tick();
    expect(beats).toEqual([{ checkpoint: { chunks: 3 } }, { framesDone: 9 }]);
  });

  it('combines the cancellation signal with its own, once', () => {
    const { ctx } = recordingContext();
    let now = 0;
    const l = new ActivityLiveness(ctx, { intervalMs: 1000, stallMs: 10 }, () => now);
    const cancel = new AbortController();
    const s = l.signalWith(cancel.signal);
    expect(l.signalWith(cancel.signal)).toBe(s);
    expect(s.aborted).toBe(false);
    now = 11;
    l.tick();
    expect(s.aborted).toBe(true);
    expect(s.reason).toBeInstanceOf(PipelineError);
  });
});

describe('stepFailure', () => {
  const activityFailure = (cause: Error, retryState: RetryState) => new ActivityFailure('activity failed', 'extractCrops', '7', retryState, 'worker', cause);

  it('names the step, the attempts and a heartbeat timeout with the last details', () => {
    const f = stepFailure('extractCrops', 6, activityFailure(new TimeoutFailure('activity Heartbeat timeout', { framesCropped: 628 }, TimeoutType.HEARTBEAT), RetryState.MAXIMUM_ATTEMPTS_REACHED), 8);
    expect(f.type).toBe(ErrorType.Timeout);
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toBe(
      'step 6 extractCrops failed on attempt 8 of 8: Timeout: no heartbeat within the heartbeat timeout (the worker died, or its event loop was blocked); last heartbeat details: {"framesCropped":628}',
    );
    expect(f.details?.[0]).toEqual(expect.objectContaining({ step: 'extractCrops', stepNumber: 6, attempts: 8, maxAttempts: 8, rootType: 'Timeout' }));
  });

  it('takes the failing attempt of a non-retryable failure from the activity failure details', () => {
    const root = toApplicationFailure(new PipelineError(ErrorType.BadMedia, '/v.avi', 'no video stream'), 1);
    const f = stepFailure('importVideo', 1, activityFailure(root, RetryState.NON_RETRYABLE_FAILURE), 8);
    expect(f.type).toBe(ErrorType.BadMedia);
    expect(f.message).toBe('step 1 importVideo failed on attempt 1 of 8: BadMedia: /v.avi: no video stream');
  });

  it('stops at the activity failure, not at the library error behind it', () => {
    const enoent = Object.assign(new Error("ENOENT: no such file or directory, realpath '/m.mp4'"), { code: 'ENOENT' });
    const root = toApplicationFailure(new PipelineError(ErrorType.BadMedia, '/m.mp4', 'file not found', { cause: enoent }), 2);
    expect(root.cause).toBe(enoent);
    const f = stepFailure('importVideo', 1, activityFailure(root, RetryState.NON_RETRYABLE_FAILURE), 8);
    expect(f.type).toBe(ErrorType.BadMedia);
    expect(f.message).toBe('step 1 importVideo failed on attempt 2 of 8: BadMedia: /m.mp4: file not found');
  });

  it('keeps the root cause of retryable failures that ran out of attempts', () => {
    const root = toApplicationFailure(new PipelineError(ErrorType.Stalled, 'activity detectPlayers', 'no progress for 300 s'), 8);
    const f = stepFailure('detectPlayers', 5, activityFailure(root, RetryState.MAXIMUM_ATTEMPTS_REACHED), 8);
    expect(f.message).toBe('step 5 detectPlayers failed on attempt 8 of 8: Stalled: activity detectPlayers: no progress for 300 s');
  });

  it('reads the attempts through the child workflow failure of a part run as a child (a segment)', () => {
    const root = new TimeoutFailure('activity Heartbeat timeout', { framesDone: 12 }, TimeoutType.HEARTBEAT);
    const child = new ChildWorkflowFailure('default', { workflowId: 'w:segment:1', runId: 'r' }, 'trackSegment', RetryState.NON_RETRYABLE_FAILURE, activityFailure(root, RetryState.MAXIMUM_ATTEMPTS_REACHED));
    const f = stepFailure('detectPlayers', 5, child, 8);
    expect(f.type).toBe(ErrorType.Timeout);
    expect(f.message).toBe('step 5 detectPlayers failed on attempt 8 of 8: Timeout: no heartbeat within the heartbeat timeout (the worker died, or its event loop was blocked); last heartbeat details: {"framesDone":12}');
  });

  it('says so when the attempts are unknown', () => {
    const f = stepFailure('loadVideo', 2, activityFailure(ApplicationFailure.create({ type: 'Internal', message: 'x' }), RetryState.TIMEOUT), 8);
    expect(f.message).toBe('step 2 loadVideo failed (attempts: TIMEOUT): Internal: x');
  });
});

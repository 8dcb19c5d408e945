import { describe, expect, it } from 'vitest';
import { forEachInWindow, JobWindow } from '../src/util/window';

/** A job that resolves (or rejects) when its `release` is called. */
function gate() {
  let release!: (err?: Error) => void;
  const done = new Promise<void>((ok, fail) => (release = (err) => (err ? fail(err) : ok())));
  return { done, release };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('JobWindow', () => {
  it('never has more than `size` jobs unsettled, and counts the fulfilled ones', async () => {
    let running = 0;
    let most = 0;
    const progress: number[] = [];
    const w = new JobWindow(3, (n) => progress.push(n));
    for (let i = 0; i < 20; i++) {
      await w.add(async () => {
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, (i * 7) % 5));
        running--;
      });
    }
    await w.settle();
    expect(most).toBe(3);
    expect(running).toBe(0);
    expect(w.fulfilled).toBe(20);
    expect(progress).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('makes the producer wait while the window is full', async () => {
    const w = new JobWindow(2);
    const gates = [gate(), gate(), gate()];
    await w.add(() => gates[0].done);
    await w.add(() => gates[1].done);
    let third = false;
    const adding = w.add(async () => void (third = true));
    await tick();
    expect(third).toBe(false);
    gates[0].release();
    await adding;
    expect(third).toBe(true);
    gates[1].release();
    await w.settle();
  });

  it('after a failure starts no further job, throws it from add and settle, and leaves no rejection unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const w = new JobWindow(2);
      const boom = new Error('copy failed');
      const slow = gate();
      await w.add(() => Promise.reject(boom));
      await w.add(() => slow.done);
      let started = false;
      await expect(w.add(async () => void (started = true))).rejects.toBe(boom);
      expect(started).toBe(false);
      slow.release(new Error('second failure'));
      await expect(w.settle()).rejects.toBe(boom);
      await tick();
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('drain waits for every started job and throws nothing', async () => {
    const w = new JobWindow(4);
    const slow = gate();
    let finished = false;
    await w.add(() => Promise.reject(new Error('x')));
    await w.add(() => slow.done.then(() => void (finished = true)));
    const draining = w.drain();
    await tick();
    slow.release();
    await draining;
    expect(finished).toBe(true);
  });

  it('an onDone that throws is the job failure', async () => {
    const w = new JobWindow(1, () => {
      throw new Error('heartbeat failed');
    });
    await w.add(async () => {});
    await expect(w.settle()).rejects.toThrow('heartbeat failed');
  });

  it('rejects a size that is not a positive integer', () => {
    expect(() => new JobWindow(0)).toThrow(RangeError);
    expect(() => new JobWindow(1.5)).toThrow(RangeError);
  });
});

describe('forEachInWindow', () => {
  it('reads the items one at a time as the window frees, and returns the number of jobs run', async () => {
    let pulled = 0;
    let finished = 0;
    let mostAhead = 0;
    function* items() {
      for (let i = 0; i < 25; i++) {
        pulled++;
        mostAhead = Math.max(mostAhead, pulled - finished);
        yield i;
      }
    }
    const seen: number[] = [];
    const n = await forEachInWindow(items(), 4, async (i) => {
      await new Promise((r) => setTimeout(r, (i * 3) % 4));
      seen.push(i);
      finished++;
    });
    expect(n).toBe(25);
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    // At most the window's jobs unsettled, plus the item being added.
    expect(mostAhead).toBeLessThanOrEqual(5);
  });

  it('on a failure starts nothing more, waits for the jobs started, then throws the failure', async () => {
    const boom = new Error('upload failed');
    const slow = gate();
    let slowDone = false;
    const started: number[] = [];
    const run = forEachInWindow([0, 1, 2, 3, 4, 5], 2, async (i) => {
      started.push(i);
      if (i === 0) return slow.done.then(() => void (slowDone = true));
      if (i === 1) throw boom;
      return undefined;
    });
    let settled = false;
    void run.catch(() => (settled = true));
    await tick();
    await tick();
    // The failure is known, but the slow job still runs: the caller is not told yet.
    expect(settled).toBe(false);
    slow.release();
    await expect(run).rejects.toBe(boom);
    expect(slowDone).toBe(true);
    expect(started).toEqual([0, 1]);
  });
});

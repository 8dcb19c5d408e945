/**
 * The process-wide image slots (src/activities/imageWork.ts): activities running at once share one bound, and
 * take turns rather than one waiting behind all of another's images.
 */
import { describe, expect, it } from 'vitest';
import { IMAGE_CONCURRENCY, IMAGE_JOB_WINDOW, imageSlot, imageSlotUse } from '../src/activities/imageWork';
import { forEachInWindow } from '../src/util/window';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('imageSlot', () => {
  it('bounds the image jobs of several activities together, and lets each progress while the others run', async () => {
    let active = 0;
    let most = 0;
    const finishedAt: Record<string, number[]> = { a: [], b: [], c: [] };
    let clock = 0;
    // Three activities, each with its own window of jobs, each job an image slot then an "upload" outside it.
    const activity = (name: string, images: number) =>
      forEachInWindow(Array.from({ length: images }, (_, i) => i), IMAGE_JOB_WINDOW, async () => {
        await imageSlot(async () => {
          most = Math.max(most, ++active);
          expect(imageSlotUse().active).toBeLessThanOrEqual(IMAGE_CONCURRENCY);
          await sleep(1);
          active--;
        });
        await sleep(1);
        finishedAt[name].push(++clock);
      });
    const counts = await Promise.all([activity('a', 120), activity('b', 120), activity('c', 40)]);
    expect(counts).toEqual([120, 120, 40]);
    expect(most).toBe(IMAGE_CONCURRENCY);
    expect(imageSlotUse()).toEqual({ active: 0, pending: 0 });
    // Fair turns: the short activity finishes long before the long ones do, not after all of them.
    expect(Math.max(...finishedAt.c)).toBeLessThan(Math.max(...finishedAt.a) * 0.6);
    // And "b", which started second, made progress early, not only once "a" was done.
    expect(finishedAt.b[0]).toBeLessThan(finishedAt.a[finishedAt.a.length - 1] / 4);
  });

  it('passes a job failure through and frees its slot', async () => {
    await expect(imageSlot(() => Promise.reject(new Error('corrupt JPEG')))).rejects.toThrow('corrupt JPEG');
    expect(imageSlotUse()).toEqual({ active: 0, pending: 0 });
    await expect(imageSlot(async () => 7)).resolves.toBe(7);
  });
});

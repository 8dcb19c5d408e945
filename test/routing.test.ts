/**
 * The routing state of `processVideo` (src/workflows/routing.ts): claims, re-routes after a lost worker, and
 * where the cache is released. Pure: no Temporal server (the workflow's use of it is covered by
 * test/workflow.test.ts and the recorded histories of test/replay.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { VideoRouter } from '../src/workflows/routing';

const shared = { cpu: 'tq', gpu: 'tq-gpu' };

describe('VideoRouter', () => {
  it('starts on the shared queues, with nothing to release', () => {
    const r = new VideoRouter(shared);
    expect(r.routing).toEqual({ cpu: 'tq', gpu: 'tq-gpu', reroutes: [] });
    expect(r.queueFor('cpu')).toBe('tq');
    expect(r.queueFor('gpu')).toBe('tq-gpu');
    expect(r.isOwnQueue('tq')).toBe(false);
    expect(r.isOwnQueue('tq-gpu')).toBe(false);
    expect(r.isOwnQueue('tq@w1')).toBe(true);
    expect(r.releaseQueues(true)).toEqual([]);
    expect(r.releaseQueues(false)).toEqual([]);
  });

  it('a worker serving both roles takes CPU and GPU steps from one claim', () => {
    const r = new VideoRouter(shared);
    expect(r.claimCpu({ workerId: 'w1', cpu: 'tq@w1', gpu: 'tq-gpu@w1' })).toBe(false);
    expect(r.routing).toMatchObject({ cpu: 'tq@w1', gpu: 'tq-gpu@w1', cpuWorker: 'w1', gpuWorker: 'w1' });
    expect(r.workerOf('gpu')).toBe('w1');
  });

  it('a CPU-only worker leaves the GPU claim to the shared GPU queue; an answer without a queue keeps the shared one', () => {
    const r = new VideoRouter(shared);
    expect(r.claimCpu({ workerId: 'c1', cpu: 'tq@c1' })).toBe(true);
    r.claimGpu({ workerId: 'g1', gpu: 'tq-gpu@g1' });
    expect(r.routing).toMatchObject({ cpu: 'tq@c1', gpu: 'tq-gpu@g1', cpuWorker: 'c1', gpuWorker: 'g1' });
    const s = new VideoRouter(shared);
    s.claimCpu({ workerId: 'c1' });
    s.claimGpu({ workerId: 'g1' });
    expect(s.routing).toMatchObject({ cpu: 'tq', gpu: 'tq-gpu', cpuWorker: 'c1', gpuWorker: 'g1' });
  });

  it('losing a worker that served both roles moves both kinds to the shared queues, once, and never releases there', () => {
    const r = new VideoRouter(shared);
    r.claimCpu({ workerId: 'w1', cpu: 'tq@w1', gpu: 'tq-gpu@w1' });
    r.cached('tq@w1');
    expect(r.reroute('cpu', 'loadVideo', 'timeout: worker w1 is gone')).toBe('tq');
    expect(r.routing).toMatchObject({ cpu: 'tq', gpu: 'tq-gpu', reroutes: [{ step: 'loadVideo', from: 'tq@w1', to: 'tq', reason: 'timeout: worker w1 is gone' }] });
    expect(r.queueFor('gpu')).toBe('tq-gpu');
    // Under the current rule a lost worker's queues get no release; executions recorded before it released
    // wherever a step had cached.
    expect(r.releaseQueues(true)).toEqual([]);
    expect(r.releaseQueues(false)).toEqual(['tq@w1']);
  });

  it('losing the GPU worker keeps the CPU worker; its queues are released, the lost one is not', () => {
    const r = new VideoRouter(shared);
    r.claimCpu({ workerId: 'c1', cpu: 'tq@c1' });
    r.claimGpu({ workerId: 'g1', gpu: 'tq-gpu@g1' });
    r.cached('tq@c1');
    r.cached(undefined);
    expect(r.reroute('gpu', 'detectPlayers', 'heartbeat timeout: worker g1 is gone')).toBe('tq-gpu');
    expect(r.routing).toMatchObject({ cpu: 'tq@c1', gpu: 'tq-gpu', cpuWorker: 'c1', gpuWorker: 'g1' });
    r.cached('tq@c1');
    expect(r.releaseQueues(true)).toEqual(['tq@c1']);
  });

  it('releases the own queues of a video whose steps cached nothing (a step failed or was cancelled) only under the current rule', () => {
    const r = new VideoRouter(shared);
    r.claimCpu({ workerId: 'w1', cpu: 'tq@w1', gpu: 'tq-gpu@w1' });
    expect(r.releaseQueues(true)).toEqual(['tq@w1', 'tq-gpu@w1']);
    expect(r.releaseQueues(false)).toEqual([]);
    r.cached('tq-gpu@w1');
    expect(r.releaseQueues(true)).toEqual(['tq-gpu@w1', 'tq@w1']);
    expect(r.releaseQueues(false)).toEqual(['tq-gpu@w1']);
  });
});

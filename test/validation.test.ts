/** The workflow input contract: identifiers, sources, options and their defaults. */
import { describe, expect, it } from 'vitest';
import { prepareInput } from '../src/cli/client';
import { PipelineError } from '../src/errors';
import { validateInput } from '../src/validation';

const ok = { tenantId: 'acme', videos: [{ source: '/v.mp4' }] };

describe('validateInput', () => {
  it('applies documented defaults', () => {
    const v = validateInput(ok);
    expect(v.options.frameStride).toBe(2);
    expect(v.options.detector).toEqual({ model: 'yolov8n.onnx', confThreshold: 0.1, iouThreshold: 0.45, classes: [0], tiles: 'auto', tileSize: 640, tileOverlap: 0.2 });
    expect(v.options.split.valFraction).toBe(0.2);
  });

  it('merges partial nested options with their defaults', () => {
    const v = validateInput({ ...ok, options: { detector: { confThreshold: 0.5 } } });
    expect(v.options.detector.confThreshold).toBe(0.5);
    expect(v.options.detector.iouThreshold).toBe(0.45);
  });

  it.each([
    [{ ...ok, extra: 1 }, /input\.extra: unknown field/],
    [{ ...ok, options: { frameStride: 0 } }, /options\.frameStride/],
    [{ ...ok, options: { detector: { bogus: 1 } } }, /options\.detector.*bogus/],
    [{ ...ok, videos: [] }, /videos: must be a non-empty list/],
    [{ ...ok, videos: [{ source: 'http://x/y.mp4' }] }, /unsupported scheme "http:"/],
    [{ ...ok, videos: [{ source: 'gs://b' }] }, /gs:\/\/bucket\/object/],
    [{ ...ok, videos: [{ source: '/a', videoGuid: 'v1' }, { source: '/b', videoGuid: 'v1' }] }, /duplicate video GUID/],
    [{ ...ok, tenantId: '..' }, /tenantId/],
    [{ ...ok, runGuid: 'Has Space' }, /runGuid/],
    [null, /must be a JSON object/],
  ])('rejects %j', (input, message) => {
    expect(() => validateInput(input)).toThrow(message);
    try {
      validateInput(input);
    } catch (err) {
      expect(err).toBeInstanceOf(PipelineError);
      expect((err as PipelineError).nonRetryable).toBe(true);
    }
  });
});

describe('prepareInput (client side)', () => {
  it('derives stable GUIDs so the same run gets the same workflow id', () => {
    const a = prepareInput({ tenantId: 'acme', videos: [{ source: 'v.mp4' }] });
    const b = prepareInput({ tenantId: 'acme', videos: [{ source: 'v.mp4' }] });
    const c = prepareInput({ tenantId: 'acme', videos: [{ source: 'v.mp4' }], options: { frameStride: 2 } });
    expect(a.runGuid).toBe(b.runGuid);
    expect(a.runGuid).not.toBe(c.runGuid);
    expect(a.runGuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(a.videos[0].source).toMatch(/^\//);
    expect(a.videos[0].videoGuid).toMatch(/^[0-9a-f]{16}$/);
  });
});

/** The workflow input contract: identifiers, sources, options and their defaults. */
import { describe, expect, it } from 'vitest';
import { prepareInput } from '../src/cli/client';
import { DEFAULT_MAX_FRAME_PIXELS, DEFAULT_MAX_SOURCE_BYTES, loadConfig, OPENCV_EXAMPLES_DIR, parseSourceRoots, sourcePolicyOf } from '../src/config';
import { ErrorType, PipelineError } from '../src/errors';
import { assertSource, MAX_SOURCE_LENGTH, validateInput } from '../src/validation';

const ok = { tenantId: 'acme', videos: [{ source: '/v.mp4' }] };

describe('validateInput', () => {
  it('applies documented defaults', () => {
    const v = validateInput(ok);
    expect(v.options.frameStride).toBe(2);
    expect(v.options.detector).toEqual({ model: 'yolov8n.onnx', confThreshold: 0.1, iouThreshold: 0.45, classes: [0], tiles: 'auto', tileSize: 640, tileOverlap: 0.2 });
    expect(v.options.split.valFraction).toBe(0.2);
  });

  it('keeps the old tile size minimum for executions started before MIN_TILE_SIZE (legacy rules)', () => {
    expect(validateInput({ ...ok, options: { detector: { tileSize: 64 } } }, { legacy: true }).options.detector.tileSize).toBe(64);
  });

  it('merges partial nested options with their defaults', () => {
    const v = validateInput({ ...ok, options: { detector: { confThreshold: 0.5 } } });
    expect(v.options.detector.confThreshold).toBe(0.5);
    expect(v.options.detector.iouThreshold).toBe(0.45);
  });

  it('takes a video\'s corrected tracks, unless told they are an unknown field (executions before the video-tracks patch)', () => {
    const input = { ...ok, videos: [{ source: '/a.mp4', tracks: 'gs://bkt/t/mot.txt' }] };
    expect(validateInput(input).videos).toEqual([{ source: '/a.mp4', tracks: 'gs://bkt/t/mot.txt' }]);
    expect(() => validateInput(input, { tracks: false })).toThrow(/videos\[0\]\.tracks: unknown field \(allowed: source, videoGuid\)/);
  });

  it.each([
    [{ ...ok, extra: 1 }, /input\.extra: unknown field/],
    [{ ...ok, options: { frameStride: 0 } }, /options\.frameStride/],
    [{ ...ok, options: { detector: { bogus: 1 } } }, /options\.detector.*bogus/],
    [{ ...ok, options: { detector: { tiles: 'on', tileSize: 64 } } }, /options\.detector\.tileSize: 64 is under the minimum of 320/],
    [{ ...ok, videos: [] }, /videos: must be a non-empty list/],
    [{ ...ok, videos: [{ source: 'http://x/y.mp4' }] }, /unsupported scheme "http:"/],
    [{ ...ok, videos: [{ source: 'gs://b' }] }, /gs:\/\/bucket\/object/],
    [{ ...ok, videos: [{ source: '/a', videoGuid: 'v1' }, { source: '/b', videoGuid: 'v1' }] }, /duplicate video GUID/],
    [{ ...ok, videos: [{ source: '/a', tracks: 'http://x/mot.txt' }] }, /unsupported scheme "http:"/],
    [{ ...ok, videos: [{ source: '/a', track: '/mot.txt' }] }, /videos\[0\]\.track: unknown field \(allowed: source, videoGuid, tracks\)/],
    [{ ...ok, options: { split: { valFraction: 0.5, testFraction: 0.5 } } }, /options\.split\.testFraction: valFraction \+ testFraction must be at most 0\.9/],
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

describe('assertSource (syntax and scheme; confinement and size are checked by the worker)', () => {
  it.each([
    '/usr/share/doc/opencv-doc/examples/data/vtest.avi',
    'relative/clip.mp4',
    './clip:1.mp4',
    'gs://dataprep-test/sources/a b.mp4',
    'https://example.org/v.mp4?sig=abc&x=1',
    'https://example.org:8443/v.mp4',
  ])('accepts %s', (source) => expect(assertSource(source)).toBe(source));

  it.each([
    ['', /must be a non-empty string/],
    [42, /must be a non-empty string/],
    ['http://example.org/v.mp4', /unsupported scheme "http:"/],
    ['HTTP://example.org/v.mp4', /unsupported scheme "http:"/],
    ['file:///etc/passwd', /unsupported scheme "file:"/],
    ['file:/etc/passwd', /unsupported scheme "file:"/],
    ['data:video/mp4;base64,AAAA', /unsupported scheme "data:"/],
    ['C:\\videos\\a.mp4', /unsupported scheme "c:"/],
    ['gs://bucket', /gs:\/\/bucket\/object/],
    ['gs://bucket/folder/', /gs:\/\/bucket\/object/],
    ['gs://Bad_Bucket/x.mp4', /gs:\/\/bucket\/object/],
    ['https:///v.mp4', /https:\/\/host\/path/],
    ['https://user:pw@example.org/v.mp4', /must not carry a user name or password/],
    ['/videos/a.mp4\u0000.txt', /control characters/],
    ['/videos/a\nb.mp4', /control characters/],
    [`/${'a'.repeat(MAX_SOURCE_LENGTH)}`, new RegExp(`longer than ${MAX_SOURCE_LENGTH} characters`)],
  ])('rejects %j with a non-retryable InvalidInput naming it', (source, reason) => {
    let err: unknown;
    try {
      assertSource(source);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PipelineError);
    expect((err as PipelineError).type).toBe(ErrorType.InvalidInput);
    expect((err as PipelineError).nonRetryable).toBe(true);
    expect((err as PipelineError).subject).toMatch(/^source /);
    expect((err as PipelineError).reason).toMatch(reason);
    expect((err as PipelineError).message).not.toContain('pw@');
  });
});

describe('source policy configuration', () => {
  it('defaults: local sources from {DATAPREP_DATA_DIR}/sources and the opencv-doc examples, only the own gs:// folder, public https, 20 GiB, 4096x2304 pixels', () => {
    const cfg = loadConfig({ DATAPREP_DATA_DIR: '/srv/dataprep' });
    expect(sourcePolicyOf(cfg)).toEqual({
      roots: ['/srv/dataprep/sources', OPENCV_EXAMPLES_DIR],
      dataDir: '/srv/dataprep',
      maxBytes: DEFAULT_MAX_SOURCE_BYTES,
      maxFramePixels: DEFAULT_MAX_FRAME_PIXELS,
      bucket: 'dataprep-pipeline',
      gcsPrefixes: [],
      httpsAllowPrivate: [],
    });
    expect(OPENCV_EXAMPLES_DIR).toBe('/usr/share/doc/opencv-doc/examples/data');
    expect([DEFAULT_MAX_SOURCE_BYTES, DEFAULT_MAX_FRAME_PIXELS]).toEqual([20 * 1024 ** 3, 4096 * 2304]);
  });
  it('reads SOURCE_ROOTS, MAX_SOURCE_BYTES, MAX_FRAME_PIXELS, GCS_SOURCE_PREFIXES and HTTPS_SOURCE_ALLOW_PRIVATE', () => {
    const cfg = loadConfig({
      SOURCE_ROOTS: '/srv/videos/:/mnt/in/../media::',
      MAX_SOURCE_BYTES: '1000',
      MAX_FRAME_PIXELS: '33177600',
      GCS_BUCKET: 'pipe',
      GCS_SOURCE_PREFIXES: 'gs://media/{tenantId}/in, gs://shared-footage/, gs://pipe/{tenantId}/user/uploads/',
      HTTPS_SOURCE_ALLOW_PRIVATE: '10.0.0.0/8, media.internal,192.168.1.5',
    });
    expect(sourcePolicyOf(cfg)).toMatchObject({
      roots: ['/srv/videos', '/mnt/media'],
      maxBytes: 1000,
      maxFramePixels: 33177600,
      bucket: 'pipe',
      gcsPrefixes: ['gs://media/{tenantId}/in/', 'gs://shared-footage/', 'gs://pipe/{tenantId}/user/uploads/'],
      httpsAllowPrivate: ['10.0.0.0/8', 'media.internal', '192.168.1.5'],
    });
  });
  it('SOURCE_ROOTS empty means the default roots, as when unset; "/" is the explicit opt-out', () => {
    expect(loadConfig({ SOURCE_ROOTS: '', DATAPREP_DATA_DIR: '/srv/d' }).sourceRoots).toEqual(loadConfig({ DATAPREP_DATA_DIR: '/srv/d' }).sourceRoots);
    expect(loadConfig({ SOURCE_ROOTS: '  ', DATAPREP_DATA_DIR: '/srv/d' }).sourceRoots).toContain('/srv/d/sources');
    expect(loadConfig({ SOURCE_ROOTS: '/' }).sourceRoots).toEqual(['/']);
  });
  it.each([
    ['gs://dataprep-pipeline/', /tenants may only read their own folder/],
    ['gs://dataprep-pipeline/other-tenant/', /tenants may only read their own folder/],
    ['gs://dataprep-pipeline/shared/{tenantId}/', /tenants may only read their own folder/],
    ['gs://media/t-{tenantId}/', /must be a whole folder name/],
    ['gs://media/a/../b/', /"\.\." segment/],
    ['gs://media//b/', /empty/],
    ['gs://media/a%2Fb/', /percent-encoded/],
    ['gs://Media/', /not a bucket name/],
    ['https://media/', /must look like gs:\/\/bucket\//],
  ])('GCS_SOURCE_PREFIXES=%s is refused at start-up', (value, reason) => {
    expect(() => loadConfig({ GCS_SOURCE_PREFIXES: value })).toThrow(reason);
  });
  it('HTTPS_SOURCE_ALLOW_PRIVATE entries must be host names, addresses or CIDR ranges', () => {
    expect(() => loadConfig({ HTTPS_SOURCE_ALLOW_PRIVATE: '10.0.0.0/33' })).toThrow(/HTTPS_SOURCE_ALLOW_PRIVATE: "10.0.0.0\/33" is not a CIDR range/);
    expect(() => loadConfig({ HTTPS_SOURCE_ALLOW_PRIVATE: 'http://x' })).toThrow(/HTTPS_SOURCE_ALLOW_PRIVATE/);
  });
  it('rejects relative roots and non-positive limits', () => {
    expect(() => parseSourceRoots('/srv:videos')).toThrow(/SOURCE_ROOTS: "videos" is not an absolute path/);
    expect(() => loadConfig({ MAX_SOURCE_BYTES: '0' })).toThrow(/MAX_SOURCE_BYTES/);
    expect(() => loadConfig({ MAX_FRAME_PIXELS: 'lots' })).toThrow(/MAX_FRAME_PIXELS/);
  });
});

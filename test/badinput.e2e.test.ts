/**
 * Bad-input matrix (issue "strict on bad input, closed between tenants"): the real `importVideo` and
 * `extractFramesForDetections` activities, called directly (no Temporal), with the test stack's GCS
 * emulator, on small files made with Debian's ffmpeg from vtest.avi (opencv-doc) or lavfi sources.
 *
 * Every case either succeeds with correct output (frame count, frame sizes in metadata.json equal to the
 * stored JPEGs, upright pictures) or fails non-retryably with a message that names the input and the
 * reason, leaving nothing that looks complete: no `{guid}.mp4`, no `metadata.json`, no dataset manifest.
 * Local sources are confined to a SOURCE_ROOTS folder for every case.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, promises as fsp, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ApplicationFailure } from '@temporalio/common';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../src/activities';
import { DEFAULT_MAX_FRAME_PIXELS, loadConfig, type SourcePolicy } from '../src/config';
import { createObjectStore } from '../src/storage/gcs';
import { RunLayout } from '../src/storage/layout';
import { validateInput } from '../src/validation';
import { createDeps } from '../src/workers/worker';
import type { ImportResult } from '../src/workflows/types';

const exec = promisify(execFile);
const VTEST = '/usr/share/doc/opencv-doc/examples/data/vtest.avi';
const DATA = path.dirname(VTEST);
const cfg = loadConfig();
const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost });

const tmp = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'badinput-')));
/** The only folder local sources may come from (SOURCE_ROOTS) in these tests. */
const root = path.join(tmp, 'root');
/** A sibling of `root` that must stay unreachable. */
const outside = path.join(tmp, 'outside');
let deps: ReturnType<typeof createDeps>;

async function ffmpeg(...args: string[]): Promise<void> {
  await exec('ffmpeg', ['-nostdin', '-v', 'error', '-y', ...args]);
}

/** Case fixtures, all under `root` unless said otherwise (paths filled in by beforeAll). */
const F = {
  truncatedMp4: 'truncated.mp4',
  zero: 'zero.mp4',
  png: 'basketball1.png',
  jpgAsVideo: 'messi5.mp4',
  audioOnly: 'audio.m4a',
  audioFirst: 'audio-first.mp4',
  rotated: 'rotated.mp4',
  yuv444: 'yuv444.mp4',
  oneFrame: 'one-frame.mp4',
  eightK: 'eight-k.mp4',
  small: 'small.mp4',
  outsideFile: '../outside/small.mp4',
  symlinkOut: 'link-to-outside.mp4',
};
for (const k of Object.keys(F) as Array<keyof typeof F>) F[k] = path.join(root, F[k]);

beforeAll(async () => {
  await fsp.mkdir(root);
  await fsp.mkdir(outside);
  const tiny = ['-vf', 'scale=160:120', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'];

  // An MP4 written without faststart keeps its index (moov) at the end: cut in half, the index is gone.
  const whole = path.join(tmp, 'whole.mp4');
  await ffmpeg('-i', VTEST, '-frames:v', '10', ...tiny, '-movflags', '-faststart', whole);
  const bytes = await fsp.readFile(whole);
  await fsp.writeFile(F.truncatedMp4, bytes.subarray(0, bytes.length >> 1));
  await fsp.writeFile(F.zero, '');
  await fsp.copyFile(path.join(DATA, 'basketball1.png'), F.png);
  await fsp.copyFile(path.join(DATA, 'messi5.jpg'), F.jpgAsVideo); // a JPEG named like a video
  await ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=440:duration=0.5', '-c:a', 'aac', F.audioOnly);
  // Stream 0 is audio, stream 1 the video (5 frames).
  await ffmpeg(
    '-f', 'lavfi', '-i', 'sine=frequency=440:duration=0.5', '-i', VTEST, '-map', '0:a', '-map', '1:v', '-frames:v', '5',
    ...tiny, '-c:a', 'aac', '-shortest', F.audioFirst,
  );
  // Upright picture 48x64 (portrait) with a white box top-left, stored turned clockwise (64x48) with a
  // 90° counter-clockwise display rotation (ffmpeg >= 6: -display_rotation; 5.1: the rotate tag).
  const stored = path.join(tmp, 'stored.mp4');
  await ffmpeg(
    '-f', 'lavfi', '-i', 'color=black:size=48x64:rate=10:duration=0.3',
    '-vf', 'drawbox=x=0:y=0:w=12:h=16:color=white:t=fill,transpose=clock', '-c:v', 'libx264', '-qp', '0', '-pix_fmt', 'yuv420p', stored,
  );
  await ffmpeg('-display_rotation', '90', '-i', stored, '-c', 'copy', F.rotated).catch(() =>
    ffmpeg('-i', stored, '-c', 'copy', '-metadata:s:v', 'rotate=90', F.rotated),
  );
  await ffmpeg('-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10:duration=0.4', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv444p', F.yuv444);
  await ffmpeg('-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10', '-frames:v', '1', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', F.oneFrame);
  await ffmpeg('-f', 'lavfi', '-i', 'color=blue:size=7680x4320:rate=1', '-frames:v', '1', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', F.eightK);
  await ffmpeg('-i', VTEST, '-frames:v', '3', ...tiny, F.small);
  await fsp.copyFile(F.small, path.join(outside, 'small.mp4'));
  await fsp.symlink(path.join(outside, 'small.mp4'), F.symlinkOut);

  deps = createDeps({ ...cfg, dataDir: path.join(tmp, 'worker'), sourceRoots: [root] });
}, 120_000);

afterAll(async () => {
  await deps?.release();
  await fsp.rm(tmp, { recursive: true, force: true });
});

/** A fresh tenant id. */
const newTenant = () => `bad${Math.random().toString(36).slice(2, 8)}`;

/** Step input for `source` in a fresh run of `tenantId` (default: a fresh tenant). */
function stepInput(source: string, tenantId = newTenant()) {
  const options = validateInput({ tenantId, videos: [{ source: '/x' }], options: { frameStride: 1 } }).options;
  return { tenantId, runGuid: 'r1', videoGuid: 'v1', workflowId: 'none', source, options };
}

/** The video's activities with `deps.sourcePolicy` replaced by `policy` merged over the defaults here. */
function activities(policy: Partial<SourcePolicy> = {}) {
  return createActivities({ ...deps, sourcePolicy: { ...deps.sourcePolicy, ...policy } });
}

/** Runs importVideo then extractFramesForDetections; returns the import result, metadata.json and the stored frames. */
async function importAndExtract(source: string, policy: Partial<SourcePolicy> = {}) {
  const acts = activities(policy);
  const input = stepInput(source);
  const imported: ImportResult = await acts.importVideo(input);
  const frames = await acts.extractFramesForDetections(input);
  const video = new RunLayout(input.tenantId, input.runGuid).video(input.videoGuid);
  const meta = (await store.getJson<Record<string, any>>(video.metadata))!;
  const names = (await store.list(video.framesPrefix)).map((o) => o.name);
  const jpegs = await Promise.all(names.map(async (n) => ({ name: n, data: await store.get(n) })));
  expect(await store.exists(video.video)).toBe(true);
  await store.deletePrefix(`${new RunLayout(input.tenantId, input.runGuid).prefix}`);
  return { imported, frames, meta, jpegs };
}

/**
 * Runs importVideo on `source` for `tenantId` (default: a fresh tenant) and checks it fails non-retryably
 * with `type`, a message naming `named` (default `source`)
 * and matching `reason`, a failed importVideo status in `.pipeline_info.json`, and no video, metadata or
 * manifest objects.
 */
async function expectImportFailure(source: string, type: 'InvalidInput' | 'BadMedia', reason: RegExp, policy: Partial<SourcePolicy> = {}, named = source, tenantId = newTenant()) {
  const input = stepInput(source, tenantId);
  const err = await activities(policy).importVideo(input).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${source} to be rejected`).toBeInstanceOf(ApplicationFailure);
  const failure = err as ApplicationFailure;
  expect(failure.type).toBe(type);
  expect(failure.nonRetryable).toBe(true);
  expect(failure.message.startsWith(`${named}: `), failure.message).toBe(true);
  expect(failure.message).toMatch(reason);
  const layout = new RunLayout(input.tenantId, input.runGuid);
  const video = layout.video(input.videoGuid);
  const info = (await store.getJson<Record<string, any>>(layout.pipelineInfo))!;
  expect(info.steps.v1.importVideo).toMatchObject({ status: 'failed', error: { type } });
  const names = (await store.list(layout.prefix)).map((o) => o.name);
  expect(names).not.toContain(video.video);
  expect(names).not.toContain(video.metadata);
  expect(names.some((n) => n.endsWith('datasets/manifest.json'))).toBe(false);
  await store.deletePrefix(layout.prefix);
  return failure;
}

/** A test body that runs {@link expectImportFailure}. */
const fails = (...args: Parameters<typeof expectImportFailure>) => async (): Promise<void> => void (await expectImportFailure(...args));

describe('importVideo rejects bad media with BadMedia naming the input', () => {
  it('a truncated MP4 (moov atom missing)', fails(F.truncatedMp4, 'BadMedia', /not a readable media file .*moov atom not found/));
  it('a zero-byte file', fails(F.zero, 'BadMedia', /empty file \(0 bytes\)/));
  it('a PNG image given as a video', fails(F.png, 'BadMedia', /still image/));
  it('a JPEG image named .mp4', fails(F.jpgAsVideo, 'BadMedia', /still image/));
  it('an audio-only file', fails(F.audioOnly, 'BadMedia', /no video stream \(audio only\)/));
  it('a missing file', fails(path.join(root, 'missing.mp4'), 'BadMedia', /file not found/));
  it('a directory', fails(path.join(root, '.'), 'BadMedia', /not a regular file/));
  it('an 8K video (7680x4320) under the default MAX_FRAME_PIXELS, before decoding it', fails(F.eightK, 'BadMedia', /frame size 7680x4320 \(33177600 pixels\) is over the limit of 9437184 pixels \(MAX_FRAME_PIXELS\)/, { maxFramePixels: DEFAULT_MAX_FRAME_PIXELS }));
});

describe('importVideo enforces the source policy with InvalidInput', () => {
  it('a path outside SOURCE_ROOTS', fails(path.join(outside, 'small.mp4'), 'InvalidInput', /outside the allowed source directories \(SOURCE_ROOTS\)/));
  it('a path escaping SOURCE_ROOTS through ".."', fails(`${root}/../outside/small.mp4`, 'InvalidInput', /outside the allowed source directories/));
  it('a relative path that leaves SOURCE_ROOTS (resolved against the working directory)', fails('outside-root.mp4', 'InvalidInput', /outside the allowed source directories/));
  it('a path outside SOURCE_ROOTS that does not exist (no probing for existence outside)', fails(path.join(outside, 'nothing.mp4'), 'InvalidInput', /outside the allowed/));
  it('a symbolic link inside SOURCE_ROOTS that points outside (the target is not echoed)', async () => {
    const failure = await expectImportFailure(F.symlinkOut, 'InvalidInput', /resolves \(through "\.\." or a symbolic link\) to a file outside the allowed source directories/);
    expect(failure.message).not.toContain(outside);
  });
  it('a file over MAX_SOURCE_BYTES', async () => {
    const size = (await fsp.stat(F.small)).size;
    await expectImportFailure(F.small, 'InvalidInput', new RegExp(`is ${size} bytes, over the limit of 1000 bytes \\(MAX_SOURCE_BYTES\\)`), { maxBytes: 1000 });
  });
  it.each([
    ['http://example.org/v.mp4', /unsupported scheme "http:"/],
    ['file:///etc/passwd', /unsupported scheme "file:"/],
    ['ftp://example.org/v.mp4', /unsupported scheme "ftp:"/],
    ['gs://bucket', /gs:\/\/bucket\/object/],
  ])('an unsupported or malformed source %s', (source, reason) => fails(source, 'InvalidInput', reason, {}, `source ${source}`)());
  it('gs:// objects: a non-video names the gs:// URL (not the download), one over MAX_SOURCE_BYTES is refused', async () => {
    // In the tenant's own folder, the one gs:// folder the default source policy opens to it.
    const tenantId = newTenant();
    const prefix = `${tenantId}/sources/`;
    await store.put(`${prefix}notes.mp4`, 'this is not a video\n');
    await store.putFile(`${prefix}small.mp4`, F.small);
    const url = (name: string) => `gs://${cfg.bucket}/${prefix}${name}`;
    await expectImportFailure(url('notes.mp4'), 'BadMedia', /not a readable media file \(Invalid data found/, {}, url('notes.mp4'), tenantId);
    const size = (await fsp.stat(F.small)).size;
    await expectImportFailure(url('small.mp4'), 'InvalidInput', new RegExp(`is ${size} bytes, over the limit of 1000 bytes`), { maxBytes: 1000 }, url('small.mp4'), tenantId);
    await store.deletePrefix(prefix);
  });
  it('an https:// URL carrying a password (not echoed back)', async () => {
    const failure = await expectImportFailure('https://user:secret@example.org/v.mp4', 'InvalidInput', /must not carry a user name or password/, {}, 'source https://***@example.org/v.mp4');
    expect(failure.message).not.toContain('secret');
  });
});

describe('importVideo accepts awkward but valid videos and extracts correct frames', () => {
  /** Checks every stored JPEG has the size metadata.json gives. */
  async function expectFrameSizes(meta: Record<string, any>, jpegs: { data: Buffer }[]) {
    for (const j of jpegs) {
      const m = await sharp(j.data).metadata();
      expect([m.width, m.height]).toEqual([meta.width, meta.height]);
    }
  }

  it('a video whose first stream is audio: the video stream (index 1) is found and used', async () => {
    const { meta, frames, jpegs } = await importAndExtract(F.audioFirst);
    expect(meta).toMatchObject({ videoStreamIndex: 1, audioStreamIndex: 0, hasAudio: true, frameCount: 5, width: 160, height: 120 });
    expect(frames.frames).toBe(5);
    expect(jpegs).toHaveLength(5);
    await expectFrameSizes(meta, jpegs);
  });

  it('a video with 90° rotation metadata: frames come out upright at the size metadata.json gives', async () => {
    const { meta, frames, jpegs } = await importAndExtract(F.rotated);
    expect(meta).toMatchObject({ rotation: 90, codedWidth: 64, codedHeight: 48, width: 48, height: 64, frameCount: 3 });
    expect(frames.frames).toBe(3);
    await expectFrameSizes(meta, jpegs);
    const { data, info } = await sharp(jpegs[0].data).raw().toBuffer({ resolveWithObject: true });
    const px = (x: number, y: number) => data[(y * info.width + x) * info.channels];
    expect(px(3, 3)).toBeGreaterThan(200); // the white box is in the top-left corner
    expect(Math.max(px(44, 3), px(3, 60), px(44, 60))).toBeLessThan(40);
  });

  it('a 4:4:4 chroma (yuv444p) H.264 video', async () => {
    const { meta, frames, jpegs, imported } = await importAndExtract(F.yuv444);
    expect(meta).toMatchObject({ pixelFormat: 'yuv444p', codec: 'h264', frameCount: 4, width: 64, height: 48 });
    expect(imported.frameCount).toBe(4);
    expect(frames.frames).toBe(4);
    await expectFrameSizes(meta, jpegs);
  });

  it('a one-frame video gives one frame', async () => {
    const { meta, frames, jpegs } = await importAndExtract(F.oneFrame);
    expect(meta.frameCount).toBe(1);
    expect([frames.frames, frames.firstFrameId, frames.lastFrameId]).toEqual([1, 0, 0]);
    expect(jpegs.map((j) => path.basename(j.name))).toEqual(['frame_0.jpg']);
    await expectFrameSizes(meta, jpegs);
  });

  it('an 8K video when MAX_FRAME_PIXELS allows it: processed at full size', async () => {
    const { meta, frames, jpegs } = await importAndExtract(F.eightK, { maxFramePixels: 7680 * 4320 });
    expect(meta).toMatchObject({ width: 7680, height: 4320, frameCount: 1 });
    expect(frames.frames).toBe(1);
    await expectFrameSizes(meta, jpegs);
  });

  it('a symbolic link inside SOURCE_ROOTS to a file inside it', async () => {
    const link = path.join(root, 'link-inside.mp4');
    await fsp.symlink(F.small, link);
    const { meta } = await importAndExtract(link);
    expect(meta).toMatchObject({ source: link, frameCount: 3 });
  });
});

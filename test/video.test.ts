/**
 * Real-ffmpeg tests of src/vision/media/ffmpeg.ts and src/vision/media/{probe,import,frames}.ts.
 *
 * Inputs: Debian `opencv-doc` footage (docs/ARCHITECTURE.md "Local stack"), fixtures synthesised with ffmpeg into a temp dir,
 * and — only when TEST_MEDIA_DIR is set (`.ci/run` sets it to ../shared/media) — the soccer broadcast clip
 * with an edit list (772 packets, 630 decodable frames).
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorType, PipelineError } from '../src/errors';
import { resolveFfmpeg } from '../src/vision/media/ffmpeg';
import { encodeJpeg } from '../src/vision/image/rgb';
import { isVariableFrameRate } from '../src/vision/media/frameRate';
import { extractFrames, type VideoFrame } from '../src/vision/media/frames';
import { importToMp4 } from '../src/vision/media/import';
import { probeVideo } from '../src/vision/media/probe';

const run = promisify(execFile);
const DATA = '/usr/share/doc/opencv-doc/examples/data';
const VTEST = path.join(DATA, 'vtest.avi');
const MEDIA_DIR = process.env.TEST_MEDIA_DIR ? path.resolve(process.env.TEST_MEDIA_DIR) : undefined;
const SOCCER = MEDIA_DIR ? path.join(MEDIA_DIR, 'soccer_broadcast_720p.mp4') : undefined;
if (!SOCCER) console.log('video.test: TEST_MEDIA_DIR is not set: skipping the soccer-broadcast (edit list) cases');

const bins = resolveFfmpeg({});
let tmp: string;

async function ffmpeg(...args: string[]): Promise<void> {
  await run(bins.ffmpeg, ['-nostdin', '-v', 'error', '-y', ...args]);
}

/** Frame index encoded in a synthetic frame's luma: Y = 16 + 4·index (limited range), read back from RGB. */
function indexFromFrame(f: VideoFrame): number {
  const centre = ((f.height >> 1) * f.width + (f.width >> 1)) * 3;
  return Math.round((f.rgb[centre] * 219) / 255 / 4);
}

/** adler32 (zlib's checksum), to compare frames with `ffmpeg -f framehash -hash adler32`. */
function adler32(buf: Buffer): string {
  let a = 1;
  let b = 0;
  for (let i = 0; i < buf.length; ) {
    const end = Math.min(i + 5552, buf.length);
    for (; i < end; i++) {
      a += buf[i];
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return (b * 65536 + a).toString(16).padStart(8, '0');
}

async function expectBadMedia(p: Promise<unknown>, file: string, reason: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${file} to be rejected`).toBeInstanceOf(PipelineError);
  const pe = err as PipelineError;
  expect(pe.type).toBe(ErrorType.BadMedia);
  expect(pe.nonRetryable).toBe(true);
  expect(pe.message).toContain(file);
  expect(pe.reason).toMatch(reason);
}

async function collect(file: string, opts: Parameters<typeof extractFrames>[1]): Promise<VideoFrame[]> {
  const out: VideoFrame[] = [];
  for await (const f of extractFrames(file, opts)) out.push(f);
  return out;
}

/** Whether any process's command line contains `needle` (pgrep exits 1 when none matches). */
function processAlive(needle: string): boolean {
  try {
    execFileSync('pgrep', ['-f', needle], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

async function waitGone(needle: string, ms: number): Promise<number> {
  const t0 = Date.now();
  while (processAlive(needle)) {
    if (Date.now() - t0 > ms) throw new Error(`a process matching ${needle} is still alive after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - t0;
}

const FIX = {
  vfr: '',
  vfrMpeg4: '',
  rotH264: '',
  rotMpeg4: '',
  audioOnly: '',
  zero: '',
  text: '',
  truncated: '',
  garbled: '',
};

beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'video-test-'));
  for (const k of Object.keys(FIX) as Array<keyof typeof FIX>) FIX[k] = path.join(tmp, k);

  // Variable frame rate: 50 frames whose gaps grow from 20 ms to ~170 ms (settb keeps ms precision);
  // frame n carries its index in its brightness. Lossless H.264, so the index reads back exactly.
  FIX.vfr += '.mp4';
  await ffmpeg(
    '-f', 'lavfi', '-i', 'color=black:size=64x48:rate=25:duration=2',
    '-vf', "geq=lum='16+4*N':cb=128:cr=128,settb=1/1000,setpts='(N*0.02+N*N*0.0015)/TB'",
    '-c:v', 'libx264', '-qp', '0', '-pix_fmt', 'yuv420p', '-fps_mode', 'passthrough', '-enc_time_base', '1:1000',
    '-video_track_timescale', '1000', FIX.vfr,
  );
  // The same frames as MPEG-4 part 2 in Matroska: import must transcode it and keep all 50 frames.
  FIX.vfrMpeg4 += '.mkv';
  await ffmpeg('-i', FIX.vfr, '-c:v', 'mpeg4', '-q:v', '1', '-fps_mode', 'passthrough', '-enc_time_base', '-1', FIX.vfrMpeg4);

  // Rotation: the intended (upright) picture is 48x64 portrait with a white box in its top-left corner.
  // It is stored turned clockwise (64x48) with metadata asking the player to turn it back 90° counter-
  // clockwise (ffmpeg 5.1: `rotate=90` tag on stream copy; ffmpeg >= 6: `-display_rotation 90`).
  const stored = path.join(tmp, 'stored');
  await ffmpeg(
    '-f', 'lavfi', '-i', 'color=black:size=48x64:rate=10:duration=1',
    '-vf', 'drawbox=x=0:y=0:w=12:h=16:color=white:t=fill,transpose=clock', '-c:v', 'libx264', '-qp', '0', '-pix_fmt', 'yuv420p', `${stored}.mp4`,
  );
  await ffmpeg('-i', `${stored}.mp4`, '-c:v', 'mpeg4', '-q:v', '1', `${stored}.m4.mp4`);
  FIX.rotH264 += '.mp4';
  FIX.rotMpeg4 += '.mp4';
  for (const [src, dst] of [[`${stored}.mp4`, FIX.rotH264], [`${stored}.m4.mp4`, FIX.rotMpeg4]]) {
    try {
      await ffmpeg('-display_rotation', '90', '-i', src, '-c', 'copy', dst);
    } catch {
      await ffmpeg('-i', src, '-c', 'copy', '-metadata:s:v', 'rotate=90', dst);
    }
  }

  FIX.audioOnly += '.m4a';
  await ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=440:duration=1', '-c:a', 'aac', FIX.audioOnly);
  FIX.zero += '.mp4';
  await fsp.writeFile(FIX.zero, '');
  FIX.text += '.avi';
  await fsp.writeFile(FIX.text, 'this is not a video\n'.repeat(50));

  // Really broken files: vtest.avi cut after 400 kB (26 of 795 frames left), and a copy with 200 runs of
  // 64 random bytes written over its frame data.
  const vtest = await fsp.readFile(VTEST);
  FIX.truncated += '.avi';
  await fsp.writeFile(FIX.truncated, vtest.subarray(0, 400_000));
  FIX.garbled += '.avi';
  const garbled = Buffer.from(vtest);
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 200; i++) {
    const at = 20_000 + Math.floor(rnd() * (garbled.length - 20_100));
    for (let j = 0; j < 64; j++) garbled[at + j] = Math.floor(rnd() * 256);
  }
  await fsp.writeFile(FIX.garbled, garbled);
}, 60_000);

afterAll(async () => {
  if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
});

describe('resolveFfmpeg', () => {
  it('finds the system binaries when nothing is configured (ffmpeg-static is optional)', () => {
    expect(['system', 'ffmpeg-static']).toContain(bins.source);
    expect(existsSync(bins.ffmpeg) && existsSync(bins.ffprobe)).toBe(true);
  });
  it('prefers configured paths and rejects a bad one', () => {
    const r = resolveFfmpeg({ ffmpegPath: '/usr/bin/ffmpeg', ffprobePath: '/usr/bin/ffprobe' });
    expect(r).toEqual({ ffmpeg: '/usr/bin/ffmpeg', ffprobe: '/usr/bin/ffprobe', source: 'env' });
    expect(() => resolveFfmpeg({ ffmpegPath: '/nonexistent/ffmpeg' })).toThrow(/FFMPEG_PATH=\/nonexistent\/ffmpeg is not an executable/);
  });
});

describe('variable frame rate: timestamps, not r_frame_rate vs avg_frame_rate', () => {
  /** A 64x48 H.264 clip from lavfi `color` with the given extra ffmpeg arguments; returns its path. */
  const clip = async (name: string, ...args: string[]) => {
    const file = path.join(tmp, name);
    await ffmpeg('-f', 'lavfi', '-i', 'color=black:size=64x48:rate=60:duration=10', ...args, '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', file);
    return file;
  };
  const rates = async (file: string) => {
    const { stdout } = await run(bins.ffprobe, ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=r_frame_rate,avg_frame_rate,time_base', '-of', 'json', file]);
    const st = JSON.parse(stdout).streams[0] as Record<string, string>;
    const q = (r: string) => r.split('/').map(Number).reduce((a, b) => a / b);
    return { r: q(st.r_frame_rate), avg: q(st.avg_frame_rate), timeBase: st.time_base };
  };

  it('is true for a phone-style 60 fps clip in a 1/600 time base with a few 11-tick gaps (average 59.97)', async () => {
    // Frame gaps of 10 ticks (1/60 s), three of them 11 ticks, at uneven places: the way phones write
    // camera timestamps. r_frame_rate 60, avg_frame_rate 59.97: 0.05 % apart, far inside the old 1 %.
    const file = await clip('phone_vfr.mp4', '-vf', "settb=1/600,setpts='N*10+gte(N\\,137)+gte(N\\,402)+gte(N\\,415)'", '-fps_mode', 'passthrough', '-enc_time_base', '1:600', '-video_track_timescale', '600');
    const { r, avg, timeBase } = await rates(file);
    expect([r, timeBase]).toEqual([60, '1/600']);
    expect(Math.abs(r - avg) / r).toBeLessThan(0.001);
    const m = await probeVideo(file);
    expect(m.frameCount).toBe(600);
    expect(m.variableFrameRate).toBe(true);
  });

  it('is true for a 60 fps clip in a 1/90000 time base whose gaps jitter by 6 %', async () => {
    const file = await clip('jitter_vfr.mp4', '-vf', "settb=1/90000,setpts='N*1500+30*mod(N*7\\,5)'", '-fps_mode', 'passthrough', '-enc_time_base', '1:90000', '-video_track_timescale', '90000');
    expect((await probeVideo(file)).variableFrameRate).toBe(true);
  });

  it('is false for constant-rate clips, whatever the rounding of their time base', async () => {
    const cfr60 = await clip('cfr60_600.mp4', '-video_track_timescale', '600'); // gaps all 10 ticks
    // 29.97 fps in milliseconds: gaps 33, 33, 34 ms; remuxed to 1/16000 (ffmpeg's choice for a 1/1000
    // source): gaps 528 and 544 ticks, all timestamps multiples of 16.
    const ntscMs = path.join(tmp, 'ntsc_ms.mp4');
    await ffmpeg('-f', 'lavfi', '-i', 'color=black:size=64x48:rate=30000/1001:duration=10', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-video_track_timescale', '1000', ntscMs);
    const ntsc16k = path.join(tmp, 'ntsc_16k.mp4');
    await ffmpeg('-i', ntscMs, '-c', 'copy', ntsc16k);
    expect((await rates(ntsc16k)).timeBase).toBe('1/16000');
    // Three frames at 29.97 fps in milliseconds: ffprobe guesses r_frame_rate 353/12 (29.42), avg 30,
    // 2 % apart, which the old 1 % rule called variable.
    const short = path.join(tmp, 'ntsc_3frames.mp4');
    await ffmpeg('-f', 'lavfi', '-i', 'color=black:size=64x48:rate=30000/1001', '-frames:v', '3', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-video_track_timescale', '1000', short);
    const sr = await rates(short);
    expect(Math.abs(sr.r - sr.avg) / sr.avg).toBeGreaterThan(0.01);
    for (const file of [cfr60, ntscMs, ntsc16k, short]) expect({ file: path.basename(file), vfr: (await probeVideo(file)).variableFrameRate }).toEqual({ file: path.basename(file), vfr: false });
  });

  it('rule on timestamp lists: equal gaps, rounding of a uniform grid, gaps the time base could write exactly', () => {
    const grid = (n: number, step: number, offset = 0) => Array.from({ length: n }, (_, i) => Math.round(offset + i * step));
    expect(isVariableFrameRate(grid(100, 10))).toBe(false);
    expect(isVariableFrameRate(grid(300, 1000 / 29.97, 0.3))).toBe(false); // 33/34 ms, evenly spread
    expect(isVariableFrameRate(grid(300, 1000 / 29.97).map((t) => t * 16))).toBe(false); // the same at 1/16000
    expect(isVariableFrameRate(grid(300, 1000 / 29.97), 1000 / 29.97)).toBe(false);
    // The same gaps, 33 and 34, in an uneven order: no uniform grid rounds to them.
    const uneven = [0];
    for (let i = 1; i < 300; i++) uneven.push(uneven[i - 1] + (i < 100 ? 34 : 33));
    expect(isVariableFrameRate(uneven)).toBe(true);
    // One 11-tick gap among 10-tick gaps: a 60 fps nominal interval of exactly 10 ticks makes it a real
    // deviation; without knowing the nominal rate it could be a 59.9 fps grid and is not flagged.
    const one = grid(100, 10).map((t, i) => (i >= 50 ? t + 1 : t));
    expect(isVariableFrameRate(one, 10)).toBe(true);
    expect(isVariableFrameRate(one)).toBe(false);
    // A dropped frame (a gap of 2 intervals), also where the time base is the frame interval (AVI).
    expect(isVariableFrameRate(grid(100, 1001).filter((_, i) => i !== 40))).toBe(true);
    expect(isVariableFrameRate(grid(100, 1).filter((_, i) => i !== 40))).toBe(true);
    // Order and duplicates do not matter; fewer than 3 timestamps tell nothing.
    expect(isVariableFrameRate([...grid(50, 10), 20, 30].reverse())).toBe(false);
    expect(isVariableFrameRate([0, 7])).toBe(false);
  });
});

describe('probeVideo', () => {
  it('reads vtest.avi and counts its frames by decoding', async () => {
    const m = await probeVideo(VTEST);
    expect(m).toMatchObject({
      width: 768, height: 576, codedWidth: 768, codedHeight: 576, rotation: 0, fps: 10, codec: 'msmpeg4v3',
      pixelFormat: 'yuv420p', videoStreamIndex: 0, hasAudio: false, frameCount: 795, headerFrameCount: 795,
      variableFrameRate: false, container: 'avi', durationSec: 79.5,
    });
    expect(m.sizeBytes).toBe((await fsp.stat(VTEST)).size);
  });

  it('reads Megamind.avi (with AC-3 audio whose decode errors must not count against the video)', async () => {
    const m = await probeVideo(path.join(DATA, 'Megamind.avi'));
    expect(m).toMatchObject({ width: 720, height: 528, frameCount: 270, hasAudio: true, audioCodec: 'ac3', audioStreamIndex: 1 });
  });

  it('accepts Megamind_bugy.avi: a valid stream whose pictures were damaged before encoding', async () => {
    // ffmpeg decodes all 270 frames with no error or corrupt-frame report; its "bugs" are distortions in
    // the picture content (e.g. a green block over frame 100) made for OpenCV's PSNR/SSIM tutorial.
    // Container- and decoder-level checks cannot (and should not) reject it; see README "Known limitations".
    const m = await probeVideo(path.join(DATA, 'Megamind_bugy.avi'));
    expect(m).toMatchObject({ width: 720, height: 528, fps: 30, frameCount: 270, hasAudio: false });
  });

  it('detects variable frame rate from packet timestamps', async () => {
    const m = await probeVideo(FIX.vfr);
    expect(m.frameCount).toBe(50);
    expect(m.variableFrameRate).toBe(true);
  });

  it('reports display size, coded size and rotation of a rotated clip', async () => {
    const m = await probeVideo(FIX.rotH264);
    expect(m.rotation).toBe(90);
    expect([m.codedWidth, m.codedHeight]).toEqual([64, 48]);
    expect([m.width, m.height]).toEqual([48, 64]);
  });

  it.skipIf(!SOCCER)('counts 630 decodable frames of the edit-listed soccer clip, not the 772 of its header', async () => {
    const m = await probeVideo(SOCCER!);
    expect(m).toMatchObject({ width: 1280, height: 720, codec: 'h264', frameCount: 630, headerFrameCount: 772, hasAudio: true, audioCodec: 'aac', variableFrameRate: false });
    expect(m.fps).toBeCloseTo(29.97, 2);
    expect(m.durationSec).toBeCloseTo(21.04, 1);
  });

  describe('rejects bad media with BadMedia naming the file', () => {
    it('missing file', () => expectBadMedia(probeVideo(path.join(tmp, 'missing.mp4')), path.join(tmp, 'missing.mp4'), /does not exist/));
    it('zero-byte file', () => expectBadMedia(probeVideo(FIX.zero), FIX.zero, /empty file/));
    it('text file', () => expectBadMedia(probeVideo(FIX.text), FIX.text, /not a readable media file \(Invalid data found/));
    it('a directory', () => expectBadMedia(probeVideo(tmp), tmp, /not a regular file/));
    it('audio only', () => expectBadMedia(probeVideo(FIX.audioOnly), FIX.audioOnly, /no video stream \(audio only\)/));
    it('JPEG still (messi5.jpg)', () => expectBadMedia(probeVideo(path.join(DATA, 'messi5.jpg')), path.join(DATA, 'messi5.jpg'), /still image/));
    it('PNG still (basketball1.png)', () => expectBadMedia(probeVideo(path.join(DATA, 'basketball1.png')), path.join(DATA, 'basketball1.png'), /still image/));
    it('truncated AVI', () => expectBadMedia(probeVideo(FIX.truncated), FIX.truncated, /truncated or damaged video: only 26 of the 795 frames/));
    it('frames over maxFramePixels (checked before decoding; the limit itself is allowed)', async () => {
      await expectBadMedia(probeVideo(FIX.vfr, { maxFramePixels: 64 * 48 - 1 }), FIX.vfr, /^frame size 64x48 \(3072 pixels\) is over the limit of 3071 pixels \(MAX_FRAME_PIXELS\)$/);
      expect((await probeVideo(FIX.vfr, { maxFramePixels: 64 * 48 })).frameCount).toBe(50);
    });
    it('AVI with garbage in its frame data', () => expectBadMedia(probeVideo(FIX.garbled), FIX.garbled, /damaged video: \d+ of \d+ frames are corrupt/));
  });
});

describe('formats that make ffmpeg open other files are refused', () => {
  /** Writes `text` to a file named like a download (no extension), so ffmpeg picks the format by content. */
  async function sourceFile(text: string): Promise<string> {
    const dir = await fsp.mkdtemp(path.join(tmp, 'playlist-'));
    await fsp.writeFile(path.join(dir, 'source'), text);
    return path.join(dir, 'source');
  }
  const hls = (file: string) => `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\n${file}\n#EXT-X-ENDLIST\n`;

  it('an HLS playlist naming another video by absolute path: InvalidInput, before the video is read', async () => {
    const file = await sourceFile(hls(FIX.vfr));
    const err = await probeVideo(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineError);
    expect([(err as PipelineError).type, (err as PipelineError).nonRetryable]).toEqual([ErrorType.InvalidInput, true]);
    expect((err as PipelineError).message).toMatch(new RegExp(`^${file}: is a hls file, not a video format the pipeline reads \\(mov, matroska, .*\\); playlists and scripts that make ffmpeg open other files or URLs \\(HLS, DASH, concat, SDP\\) are refused$`));
    // Every other ffmpeg run on a source is held to the same formats.
    await expect(collect(file, { stride: 1 })).rejects.toThrow(/Format not on whitelist/);
  });

  it('an ffconcat script naming a file beside it: InvalidInput', async () => {
    const file = await sourceFile('ffconcat version 1.0\nfile clip.mp4\n');
    await fsp.copyFile(FIX.vfr, path.join(path.dirname(file), 'clip.mp4'));
    await expect(probeVideo(file)).rejects.toThrow(/: is a concat file, not a video format the pipeline reads/);
  });
});

describe('extractFrames', () => {
  it('gives frame k·stride of a variable-frame-rate clip the id k·stride (read back from its pixels)', async () => {
    for (const stride of [1, 3, 7]) {
      const frames = await collect(FIX.vfr, { stride });
      expect(frames.map((f) => f.frameId)).toEqual(Array.from({ length: Math.ceil(50 / stride) }, (_, k) => k * stride));
      expect(frames.map(indexFromFrame)).toEqual(frames.map((f) => f.frameId));
      for (const f of frames) expect([f.width, f.height, f.rgb.length]).toEqual([64, 48, 64 * 48 * 3]);
    }
    const limited = await collect(FIX.vfr, { stride: 4, maxFrames: 5 });
    expect(limited.map(indexFromFrame)).toEqual([0, 4, 8, 12, 16]);
  });

  it('hands out upright frames of a rotated clip, at the probed display size', async () => {
    for (const file of [FIX.rotH264, FIX.rotMpeg4]) {
      const m = await probeVideo(file);
      const [f] = await collect(file, { stride: 1, maxFrames: 1 });
      expect([f.width, f.height]).toEqual([m.width, m.height]);
      expect([f.width, f.height]).toEqual([48, 64]);
      const px = (x: number, y: number) => f.rgb[(y * f.width + x) * 3];
      expect(px(3, 3)).toBeGreaterThan(200); // the white box is back in the top-left corner
      expect(Math.max(px(44, 3), px(3, 60), px(44, 60))).toBeLessThan(30);
    }
  });

  it.skipIf(!SOCCER)('matches an independent per-frame decode across the soccer clip\'s edit list', async () => {
    // Reference: adler32 of every decoded frame in RGB24 by ffmpeg's framehash muxer (no select filter).
    const { stdout } = await run(bins.ffmpeg, [
      '-nostdin', '-v', 'error', '-i', SOCCER!, '-map', '0:V:0', '-fps_mode', 'passthrough', '-pix_fmt', 'rgb24', '-f', 'framehash', '-hash', 'adler32', '-',
    ], { maxBuffer: 1 << 24 });
    const ref = stdout.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(',').pop()!.trim());
    expect(ref).toHaveLength(630);
    const frames: string[] = [];
    const ids: number[] = [];
    for await (const f of extractFrames(SOCCER!, { stride: 37 })) {
      ids.push(f.frameId);
      frames.push(adler32(f.rgb));
    }
    expect(ids).toEqual(Array.from({ length: 18 }, (_, k) => k * 37)); // 0 … 629, the last frame
    expect(frames).toEqual(ids.map((id) => ref[id]));
  });

  it('stops ffmpeg when the signal is aborted mid-stream', async () => {
    const link = path.join(tmp, `abort-${randomUUID()}.avi`);
    await fsp.symlink(VTEST, link);
    const ac = new AbortController();
    const it = extractFrames(link, { stride: 1, signal: ac.signal });
    expect((await it.next()).value?.frameId).toBe(0);
    expect((await it.next()).value?.frameId).toBe(1);
    expect(processAlive(link)).toBe(true);
    ac.abort(new Error('cancelled by test'));
    await expect(it.next()).rejects.toThrow('cancelled by test');
    expect(await waitGone(link, 2000)).toBeLessThan(2000);
  });

  it('stops ffmpeg when the consumer leaves the loop early', async () => {
    const link = path.join(tmp, `break-${randomUUID()}.avi`);
    await fsp.symlink(VTEST, link);
    for await (const f of extractFrames(link, { stride: 2 })) {
      if (f.frameId >= 4) break;
    }
    expect(await waitGone(link, 2000)).toBeLessThan(2000);
  });

  it('rejects a bad stride and fails with BadMedia when ffmpeg cannot decode', async () => {
    await expect(collect(VTEST, { stride: 0 })).rejects.toMatchObject({ type: ErrorType.InvalidInput });
    await expectBadMedia(collect(FIX.text, { stride: 1 }), FIX.text, /frame extraction failed/);
  });
});

describe('importToMp4', () => {
  it('transcodes vtest.avi (msmpeg4v3) to H.264 keeping all 795 frames', async () => {
    const meta = await probeVideo(VTEST);
    const dest = path.join(tmp, 'vtest.mp4');
    let progress = 0;
    const r = await importToMp4(VTEST, dest, meta, { onProgress: (n) => (progress = n) });
    expect(r.mode).toBe('transcode');
    expect(progress).toBe(795);
    const out = await probeVideo(dest);
    expect(out).toMatchObject({ codec: 'h264', pixelFormat: 'yuv420p', width: 768, height: 576, frameCount: 795, fps: 10 });
    expect((await fsp.readdir(tmp)).filter((n) => n.endsWith('.part'))).toEqual([]);
  });

  it('transcodes a VFR MPEG-4 clip without losing, duplicating or reordering frames', async () => {
    const meta = await probeVideo(FIX.vfrMpeg4);
    expect(meta.variableFrameRate).toBe(true);
    const dest = path.join(tmp, 'vfr-import.mp4');
    expect((await importToMp4(FIX.vfrMpeg4, dest, meta)).mode).toBe('transcode');
    const frames = await collect(dest, { stride: 3 });
    expect(frames.map(indexFromFrame)).toEqual(frames.map((f) => f.frameId));
    expect(frames).toHaveLength(17);
  });

  it('keeps rotated clips upright: metadata kept on copy, pixels turned on transcode', async () => {
    for (const [file, mode, rotation] of [[FIX.rotH264, 'copy', 90], [FIX.rotMpeg4, 'transcode', 0]] as const) {
      const dest = path.join(tmp, `rot-${mode}.mp4`);
      expect((await importToMp4(file, dest, await probeVideo(file))).mode).toBe(mode);
      const out = await probeVideo(dest);
      expect([out.width, out.height, out.rotation]).toEqual([48, 64, rotation]);
      const [f] = await collect(dest, { stride: 1, maxFrames: 1 });
      expect([f.width, f.height]).toEqual([48, 64]);
      expect(f.rgb[(3 * 48 + 3) * 3]).toBeGreaterThan(200);
    }
  });

  it.skipIf(!SOCCER)('stream-copies the soccer clip with its edit list: same 630 frames, same pictures', async () => {
    const meta = await probeVideo(SOCCER!);
    const dest = path.join(tmp, 'soccer.mp4');
    expect((await importToMp4(SOCCER!, dest, meta)).mode).toBe('copy');
    const out = await probeVideo(dest);
    expect(out).toMatchObject({ frameCount: 630, codec: 'h264', audioCodec: 'aac', width: 1280, height: 720 });
    const a = await collect(SOCCER!, { stride: 1, maxFrames: 2 });
    const b = await collect(dest, { stride: 1, maxFrames: 2 });
    expect(b.map((f) => adler32(f.rgb))).toEqual(a.map((f) => adler32(f.rgb)));
  });

  it('removes its temporary file and kills ffmpeg when aborted', async () => {
    const meta = await probeVideo(VTEST);
    const dest = path.join(tmp, 'aborted.mp4');
    const ac = new AbortController();
    const p = importToMp4(VTEST, dest, meta, { signal: ac.signal, onProgress: (n) => n > 0 && ac.abort(new Error('stop import')) });
    await expect(p).rejects.toThrow('stop import');
    expect(existsSync(dest)).toBe(false);
    expect((await fsp.readdir(tmp)).filter((n) => n.startsWith('.aborted.mp4'))).toEqual([]);
    expect(await waitGone('.aborted.mp4.', 2000)).toBeLessThan(2000);
  });
});

describe('encodeJpeg', () => {
  it('encodes RGB24 frames deterministically', async () => {
    const [f] = await collect(VTEST, { stride: 1, maxFrames: 1 });
    const a = await encodeJpeg(f, 90);
    const b = await encodeJpeg({ ...f, rgb: Buffer.from(f.rgb) }, 90);
    expect(a.equals(b)).toBe(true);
    expect(a.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    expect(await sharp(a).metadata()).toMatchObject({ width: 768, height: 576, format: 'jpeg' });
    await expect(encodeJpeg(f, 0)).rejects.toMatchObject({ type: ErrorType.InvalidInput });
  });
});

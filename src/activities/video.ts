/**
 * Steps 1-3: `importVideo`, `loadVideo`, `extractFramesForDetections` (SPEC section 4).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, realpath, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pLimit from 'p-limit';
import type { SourcePolicy } from '../config';
import { badMedia, ErrorType, invalidInput, PipelineError } from '../errors';
import { sha256File } from '../util/hash';
import { assertSource } from '../validation';
import { encodeJpeg, extractFrames, importToMp4, probeVideo } from '../vision/video';
import type { FramesResult, ImportResult, LoadResult, StepInput } from '../workflows/types';
import { activityAttempt, cancellationSignal, heartbeat, heartbeatProgress, runStep, type ActivityDeps, type RunFiles } from './context';

/** Frame uploads in flight at once in step 3 (latency of a remote bucket is hidden by parallel requests). */
const FRAME_UPLOAD_CONCURRENCY = 16;

/** Run-cache artifact holding the sorted frame ids step 3 wrote (saves a GCS listing in steps 4-5). */
export const FRAME_IDS_ARTIFACT = 'frameIds';

/** Whether `file` (absolute, normalised) is `dir` itself or lies below it. */
function isWithin(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** `realpath` of each configured root (a root that cannot be resolved is kept as written). */
async function resolvedRoots(roots: readonly string[]): Promise<string[]> {
  return Promise.all(roots.map((r) => realpath(r).catch(() => path.resolve(r))));
}

/** The message part naming `bytes` against the `MAX_SOURCE_BYTES` limit. */
function overLimit(bytes: number | string, policy: SourcePolicy): string {
  return `is ${bytes} bytes, over the limit of ${policy.maxBytes} bytes (MAX_SOURCE_BYTES)`;
}

/**
 * Resolves a local source under `policy` and returns the real path to read (symlinks and `..` resolved).
 *
 * With `policy.roots` set, the path as written (made absolute against the worker's working directory) must
 * lie in a root before the file system is asked anything, so files outside cannot even be probed for
 * existence; then its `realpath` must lie in a root too, so a symlink cannot lead out.
 *
 * @throws PipelineError(InvalidInput) naming `source`: outside the roots (as written, or once `..` and
 *   symlinks are resolved), or larger than `policy.maxBytes`.
 * @throws PipelineError(BadMedia) naming `source`: missing, unreadable, a symlink loop, or not a regular file.
 */
export async function resolveLocalSource(source: string, policy: SourcePolicy): Promise<string> {
  const written = path.resolve(source);
  const realRoots = await resolvedRoots(policy.roots);
  const roots = [...new Set([...policy.roots.map((r) => path.resolve(r)), ...realRoots])];
  const outside = `outside the allowed source directories (SOURCE_ROOTS)`;
  if (roots.length && !roots.some((r) => isWithin(r, written))) throw invalidInput(source, `is ${outside}`);
  let real: string;
  try {
    real = await realpath(written);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw badMedia(source, 'file not found', err);
    if (code === 'ELOOP') throw badMedia(source, 'symbolic link loop', err);
    throw badMedia(source, `cannot read file (${code ?? (err as Error).message})`, err);
  }
  if (realRoots.length && !realRoots.some((r) => isWithin(r, real))) {
    // The real path is not echoed: it would tell a tenant about folders outside the roots.
    throw invalidInput(source, `resolves (through ".." or a symbolic link) to a file ${outside}`);
  }
  const st = await stat(real);
  if (!st.isFile()) throw badMedia(source, 'not a regular file');
  if (st.size > policy.maxBytes) throw invalidInput(source, overLimit(st.size, policy));
  return real;
}

/**
 * Brings a source to a local file, enforcing `policy`: a local path is resolved and checked by
 * {@link resolveLocalSource} and used in place; `gs://` is downloaded through the store; `https://` is
 * fetched (its `Content-Length` and the bytes received are held to `policy.maxBytes`).
 *
 * @returns the local file to read.
 * @throws PipelineError(InvalidInput) for a scheme or syntax {@link assertSource} rejects, a source over
 *   `policy.maxBytes`, a local path outside `policy.roots`, or an https redirect to another scheme;
 *   PipelineError(BadMedia) for a missing local file or object, or an HTTP 4xx; transient network errors
 *   are retryable (Transient).
 */
async function fetchSource(files: RunFiles, source: string, tmpDir: string, policy: SourcePolicy): Promise<string> {
  assertSource(source);
  if (source.startsWith('gs://')) {
    const dest = path.join(tmpDir, 'source');
    try {
      await files.store.getUrlToFile(source, dest);
    } catch (err) {
      if ((err as { code?: unknown }).code === 404) throw badMedia(source, 'object not found');
      throw err;
    }
    // The store has no size lookup for objects of other buckets, so the limit is checked after the download.
    const { size } = await stat(dest);
    if (size > policy.maxBytes) throw invalidInput(source, overLimit(size, policy));
    return dest;
  }
  if (source.startsWith('https://')) {
    const dest = path.join(tmpDir, 'source');
    let res: Response;
    try {
      res = await fetch(source, { signal: cancellationSignal() });
    } catch (err) {
      throw new PipelineError(ErrorType.Transient, source, `download failed: ${(err as Error).message}`, { cause: err });
    }
    if (res.url && !res.url.startsWith('https://')) {
      await res.body?.cancel();
      throw invalidInput(source, 'was redirected to a URL that is not https://');
    }
    if (!res.ok || !res.body) {
      const reason = `download failed: HTTP ${res.status}`;
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) throw badMedia(source, reason);
      throw new PipelineError(ErrorType.Transient, source, reason);
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > policy.maxBytes) {
      await res.body.cancel();
      throw invalidInput(source, overLimit(declared, policy));
    }
    let received = 0;
    await pipeline(
      Readable.fromWeb(res.body as never),
      async function* limitBytes(chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          received += chunk.length;
          if (received > policy.maxBytes) throw invalidInput(source, overLimit(`more than ${policy.maxBytes}`, policy));
          yield chunk;
        }
      },
      createWriteStream(dest),
    );
    return dest;
  }
  return resolveLocalSource(source, policy);
}

/**
 * Runs `fn`, rewriting the subject of a {@link PipelineError} about the local file `local` (a download in
 * the scratch folder, or the real path behind a symlink) to `source`, so failures name the caller's input.
 */
async function namingSource<T>(source: string, local: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof PipelineError && err.subject === local && local !== source) {
      throw new PipelineError(err.type, source, err.reason, { cause: err.cause });
    }
    throw err;
  }
}

/** Creates steps 1-3 over `deps`. */
export function createVideoActivities(deps: ActivityDeps) {
  return {
    /**
     * Step 1: fetch the source, probe it (true decoded frame count, rotation, video stream), stream-copy or
     * transcode it to H.264 MP4, upload `video_{guid}/{guid}.mp4` and `metadata.json`.
     * Every source is checked against `deps.sourcePolicy` first (scheme, `SOURCE_ROOTS`, `MAX_SOURCE_BYTES`,
     * and `MAX_FRAME_PIXELS` before decoding).
     * @throws InvalidInput (non-retryable) for an unsupported scheme, a local path outside `SOURCE_ROOTS`
     *   (also through `..` or a symlink) or a source over `MAX_SOURCE_BYTES`; BadMedia (non-retryable) for
     *   missing, unreadable, non-video, zero-length, truncated or broken input and frames over
     *   `MAX_FRAME_PIXELS`. Messages name `input.source`.
     */
    async importVideo(input: StepInput): Promise<ImportResult> {
      return runStep(deps, 'importVideo', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        await mkdir(files.scratchDir, { recursive: true });
        const tmpDir = await mkdtemp(path.join(files.scratchDir, 'import-'));
        try {
          const signal = cancellationSignal();
          const local = await fetchSource(files, input.source, tmpDir, deps.sourcePolicy);
          heartbeat({ phase: 'probing' });
          const out = path.join(tmpDir, `${input.videoGuid}.mp4`);
          const { meta, mode } = await namingSource(input.source, local, async () => {
            const meta = await probeVideo(local, { signal, bins: deps.ffmpeg, maxFramePixels: deps.sourcePolicy.maxFramePixels });
            const { mode } = await importToMp4(local, out, meta, { signal, bins: deps.ffmpeg, onProgress: (framesDone) => heartbeatProgress({ phase: 'import', framesDone }) });
            return { meta, mode };
          });
          const sourceSha256 = await sha256File(local);
          heartbeat({ phase: 'uploading' });
          const outSha256 = await sha256File(out);
          const sizeBytes = (await stat(out)).size;
          const metadata = { ...meta, source: input.source, sha256: sourceSha256, imported: { object: video.video, mode, sha256: outSha256, sizeBytes } };
          await files.writeFile(video.video, out, 'video/mp4');
          await files.writeJson(video.metadata, metadata);
          return {
            result: {
              object: video.video,
              metadataObject: video.metadata,
              sha256: outSha256,
              sizeBytes,
              mode,
              frameCount: meta.frameCount,
              width: meta.width,
              height: meta.height,
              fps: meta.fps,
              durationSec: meta.durationSec,
            },
          };
        } finally {
          await rm(tmpDir, { recursive: true, force: true });
        }
      });
    },

    /**
     * Step 2: make sure this worker's run cache holds the imported video (a hit when step 1 ran here; else
     * it is downloaded from GCS). With the cache off this only checks that the video can be read.
     */
    async loadVideo(input: StepInput): Promise<LoadResult> {
      return runStep(deps, 'loadVideo', input, async (files, layout) => {
        const local = await files.withLocalFile(layout.video(input.videoGuid).video, async () => undefined);
        return { result: { alreadyLocal: local.wasCached, sizeBytes: local.sizeBytes } };
      });
    },

    /**
     * Step 3: decode the video and keep every `frameStride`-th frame as `selected_frames/frame_{frame_id}.jpg`,
     * `frame_id` being the frame's true index among the decoded frames of the source.
     *
     * On a retry it decodes again from the start (ffmpeg cannot seek to an exact frame index of every
     * codec) but skips the upload of every frame an earlier attempt already stored with the same bytes.
     */
    async extractFramesForDetections(input: StepInput): Promise<FramesResult> {
      return runStep(deps, 'extractFramesForDetections', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        const { frameStride: stride, maxFrames, jpegQuality } = input.options;
        // Uploads (and the decode for the run cache) in flight at once; the store bounds requests further.
        const limit = pLimit(FRAME_UPLOAD_CONCURRENCY);
        const ids: number[] = [];
        // A retry decodes and encodes again (deterministic) but uploads only frames not already stored with
        // the same bytes by an earlier attempt.
        if (activityAttempt() > 1) await files.loadPriorOutputs([video.framesPrefix]);
        await files.withLocalFile(video.video, async (file) => {
          const uploads: Promise<void>[] = [];
          let failed: unknown;
          for await (const frame of extractFrames(file, { stride, maxFrames, signal: cancellationSignal(), bins: deps.ffmpeg })) {
            if (failed) throw failed;
            const jpeg = await encodeJpeg(frame, jpegQuality);
            uploads.push(limit(() => files.writeFrame(video.frame(frame.frameId), jpeg)).catch((err) => void (failed = err)));
            ids.push(frame.frameId);
            heartbeat({ framesDone: ids.length, lastFrameId: frame.frameId, uploadsSkipped: files.io.uploadsSkipped });
            // Back-pressure: at most ~2 x the concurrency of encoded frames wait for upload (the queue is FIFO).
            if (limit.pendingCount > FRAME_UPLOAD_CONCURRENCY) await uploads[uploads.length - FRAME_UPLOAD_CONCURRENCY];
          }
          await Promise.all(uploads);
          if (failed) throw failed;
        });
        const count = ids.length;
        if (count === 0) throw badMedia(input.source, 'no frames could be decoded');
        files.setLocal(FRAME_IDS_ARTIFACT, ids, ids.length * 8);
        const first = ids[0];
        const last = ids[ids.length - 1];
        return { result: { frames: count, stride, firstFrameId: first, lastFrameId: last, prefix: video.framesPrefix } };
      });
    },
  };
}

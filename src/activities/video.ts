/**
 * Steps 1-3: `importVideo`, `loadVideo`, `extractFramesForDetections` (SPEC section 4).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pLimit from 'p-limit';
import { badMedia, ErrorType, PipelineError } from '../errors';
import { sha256File } from '../util/hash';
import { assertSource } from '../validation';
import { encodeJpeg, extractFrames, importToMp4, probeVideo } from '../vision/video';
import type { FramesResult, ImportResult, LoadResult, StepInput } from '../workflows/types';
import { cancellationSignal, heartbeat, runStep, type ActivityDeps, type RunFiles } from './context';

/** Frame uploads in flight at once in step 3 (latency of a remote bucket is hidden by parallel requests). */
const FRAME_UPLOAD_CONCURRENCY = 16;

/** Run-cache artifact holding the sorted frame ids step 3 wrote (saves a GCS listing in steps 4-5). */
export const FRAME_IDS_ARTIFACT = 'frameIds';

/**
 * Brings a source to a local file: a local path is used in place; `gs://` is downloaded through the store;
 * `https://` is fetched. @throws PipelineError(BadMedia) for a missing local file or an HTTP 4xx;
 * transient network errors are retryable.
 */
async function fetchSource(files: RunFiles, source: string, tmpDir: string): Promise<string> {
  assertSource(source);
  if (source.startsWith('gs://')) {
    const dest = path.join(tmpDir, 'source');
    try {
      await files.store.getUrlToFile(source, dest);
    } catch (err) {
      if ((err as { code?: unknown }).code === 404) throw badMedia(source, 'object not found');
      throw err;
    }
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
    if (!res.ok || !res.body) {
      const reason = `download failed: HTTP ${res.status}`;
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) throw badMedia(source, reason);
      throw new PipelineError(ErrorType.Transient, source, reason);
    }
    await pipeline(Readable.fromWeb(res.body as never), createWriteStream(dest));
    return dest;
  }
  const local = path.resolve(source);
  const st = await stat(local).catch(() => undefined);
  if (!st) throw badMedia(source, 'file not found');
  if (!st.isFile()) throw badMedia(source, 'not a regular file');
  return local;
}

/** Creates steps 1-3 over `deps`. */
export function createVideoActivities(deps: ActivityDeps) {
  return {
    /**
     * Step 1: fetch the source, probe it (true decoded frame count, rotation, video stream), stream-copy or
     * transcode it to H.264 MP4, upload `video_{guid}/{guid}.mp4` and `metadata.json`.
     * @throws BadMedia for unreadable, non-video, zero-length or broken input (non-retryable).
     */
    async importVideo(input: StepInput): Promise<ImportResult> {
      return runStep(deps, 'importVideo', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        await mkdir(files.scratchDir, { recursive: true });
        const tmpDir = await mkdtemp(path.join(files.scratchDir, 'import-'));
        try {
          const signal = cancellationSignal();
          const local = await fetchSource(files, input.source, tmpDir);
          heartbeat({ phase: 'probing' });
          const meta = await probeVideo(local, { signal, bins: deps.ffmpeg });
          const sourceSha256 = await sha256File(local);
          const out = path.join(tmpDir, `${input.videoGuid}.mp4`);
          const { mode } = await importToMp4(local, out, meta, { signal, bins: deps.ffmpeg, onProgress: (framesDone) => heartbeat({ phase: 'import', framesDone }) });
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
     */
    async extractFramesForDetections(input: StepInput): Promise<FramesResult> {
      return runStep(deps, 'extractFramesForDetections', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        const { frameStride: stride, maxFrames, jpegQuality } = input.options;
        // Uploads (and the decode for the run cache) in flight at once; the store bounds requests further.
        const limit = pLimit(FRAME_UPLOAD_CONCURRENCY);
        const ids: number[] = [];
        await files.withLocalFile(video.video, async (file) => {
          const uploads: Promise<void>[] = [];
          let failed: unknown;
          for await (const frame of extractFrames(file, { stride, maxFrames, signal: cancellationSignal(), bins: deps.ffmpeg })) {
            if (failed) throw failed;
            const jpeg = await encodeJpeg(frame, jpegQuality);
            uploads.push(limit(() => files.writeFrame(video.frame(frame.frameId), jpeg)).catch((err) => void (failed = err)));
            ids.push(frame.frameId);
            heartbeat({ framesDone: ids.length, lastFrameId: frame.frameId });
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

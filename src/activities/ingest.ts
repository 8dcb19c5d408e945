/**
 * Steps 1-3: `importVideo`, `loadVideo`, `extractFramesForDetections` (docs/ARCHITECTURE.md "The nine steps").
 */
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import type { SourcePolicy } from '../config';
import { badMedia, invalidInput, PipelineError } from '../errors';
import { parseSource } from '../sources';
import { metadataFileSchema, type MetadataFile } from '../storage/artifacts';
import { sha256File } from '../util/hash';
import { JobWindow } from '../util/window';
import { encodeJpeg } from '../vision/image/rgb';
import { extractFrames } from '../vision/media/frames';
import { importToMp4 } from '../vision/media/import';
import { probeVideo } from '../vision/media/probe';
import { planSegments, type SegmentRange } from '../vision/tracking/stitch';
import { DEFAULT_OPTIONS, type PipelineOptions } from '../validation';
import type { FramesResult, ImportResult, LoadResult, StepInput } from '../workflows/types';
import type { ActivityDeps } from './deps';
import { runStep, type StepFiles } from './runStep';
import { activityAttempt, cancellationSignal, heartbeat, heartbeatProgress } from './temporal';
import { authoriseGcsSource, fetchHttpsSource, overLimit, resolveLocalSource } from '../net/sourceAccess';

/** Frame uploads in flight at once in step 3 (latency of a remote bucket is hidden by parallel requests). */
const FRAME_UPLOAD_CONCURRENCY = 16;

/** Run-cache artifact holding the sorted frame ids step 3 wrote (saves a GCS listing in steps 4-5). */
export const FRAME_IDS_ARTIFACT = 'frameIds';

/**
 * Brings a source to a local file, enforcing `policy` for `tenantId`. The source is parsed with the shared
 * parser (src/sources.ts) and handled by its kind: a local path is confined and checked by
 * `resolveLocalSource` and used in place; a `gs://` object must be in a folder the tenant may read
 * (`authoriseGcsSource`) and is downloaded through the store; an `https://` URL is fetched by
 * `fetchHttpsSource` (public addresses only unless configured, every redirect checked).
 *
 * @returns the local file to read.
 * @throws PipelineError(InvalidInput) for a source the parser rejects, one the policy refuses (another
 *   tenant's folder, a local path outside `SOURCE_ROOTS` or in the data folder, a private address, a redirect
 *   to one), or one over `policy.maxBytes`; PipelineError(BadMedia) for a missing local file or object, or
 *   an HTTP 4xx; transient network errors are retryable (Transient).
 */
export async function fetchSource(files: StepFiles, source: string, tenantId: string, tmpDir: string, policy: SourcePolicy): Promise<string> {
  const parsed = parseSource(source);
  switch (parsed.kind) {
    case 'local':
      return resolveLocalSource(parsed.path, policy);
    case 'gs': {
      authoriseGcsSource(parsed, source, tenantId, policy);
      const dest = path.join(tmpDir, 'source');
      try {
        await files.store.getObjectToFile(parsed.bucket, parsed.object, dest);
      } catch (err) {
        if ((err as { code?: unknown }).code === 404) throw badMedia(source, 'object not found');
        throw err;
      }
      // The store has no size lookup for objects of other buckets, so the limit is checked after the download.
      const { size } = await stat(dest);
      if (size > policy.maxBytes) throw invalidInput(source, overLimit(size, policy));
      return dest;
    }
    case 'https': {
      const dest = path.join(tmpDir, 'source');
      await fetchHttpsSource(parsed, source, dest, policy, { signal: cancellationSignal() });
      return dest;
    }
  }
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
export function createIngestActivities(deps: ActivityDeps) {
  return {
    /**
     * Step 1: fetch the source, probe it (true decoded frame count, rotation, video stream), stream-copy or
     * transcode it to H.264 MP4, upload `video_{guid}/{guid}.mp4` and `metadata.json`.
     * Every source is checked against `deps.sourcePolicy` for `input.tenantId` first (scheme; gs:// folder,
     * `SOURCE_ROOTS` and the data folder, https addresses; `MAX_SOURCE_BYTES`; and `MAX_FRAME_PIXELS` before
     * decoding; see src/net/sourceAccess.ts).
     * @throws InvalidInput (non-retryable) for an unsupported scheme, a gs:// object outside the tenant's
     *   folders, a local path outside `SOURCE_ROOTS` or inside `DATAPREP_DATA_DIR` (also through `..` or a
     *   symlink), an https host with a non-public address (also after a redirect) or a source over
     *   `MAX_SOURCE_BYTES`; BadMedia (non-retryable) for
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
          const local = await fetchSource(files, input.source, input.tenantId, tmpDir, deps.sourcePolicy);
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
          const metadata: MetadataFile = { ...meta, source: input.source, sha256: sourceSha256, imported: { object: video.video, mode, sha256: outSha256, sizeBytes } };
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
        // Uploads in flight at once; the store bounds requests further.
        const limit = pLimit(FRAME_UPLOAD_CONCURRENCY);
        const ids: number[] = [];
        // A retry decodes and encodes again (deterministic) but uploads only frames not already stored with
        // the same bytes by an earlier attempt.
        if (activityAttempt() > 1) await files.loadPriorOutputs([video.framesPrefix]);
        await files.withLocalFile(video.video, async (file) => {
          // Back-pressure: at most 2 x the concurrency of encoded frames are uploading or waiting to (ffmpeg's
          // pipe blocks meanwhile); the first failed upload stops the loop.
          const uploads = new JobWindow(2 * FRAME_UPLOAD_CONCURRENCY);
          try {
            for await (const frame of extractFrames(file, { stride, maxFrames, signal: cancellationSignal(), bins: deps.ffmpeg })) {
              const jpeg = await encodeJpeg(frame, jpegQuality);
              await uploads.add(() => limit(() => files.writeFrame(video.frame(frame.frameId), jpeg)));
              ids.push(frame.frameId);
              heartbeat({ framesDone: ids.length, lastFrameId: frame.frameId, uploadsSkipped: files.io.uploadsSkipped });
            }
            await uploads.settle();
          } catch (err) {
            // No upload may still be running once the attempt has failed.
            await uploads.drain();
            throw err;
          }
        });
        const count = ids.length;
        if (count === 0) throw badMedia(input.source, 'no frames could be decoded');
        files.setLocal(FRAME_IDS_ARTIFACT, ids, ids.length * 8);
        const first = ids[0];
        const last = ids[ids.length - 1];
        // Time segments for step 5 (docs/ARCHITECTURE.md "Segments"); options of runs older than the group: defaults.
        const meta = await files.readJson(video.metadata, metadataFileSchema);
        const segments = segmentsOf(last + 1, meta.fps, input.options.segments ?? DEFAULT_OPTIONS.segments);
        return { result: { frames: count, stride, firstFrameId: first, lastFrameId: last, prefix: video.framesPrefix, segments } };
      });
    },
  };
}

/**
 * The time segments of a video whose frames `0 .. frameCount - 1` play at `fps` (0 or unknown: 25), for
 * `options.segments` (`planSegments`, src/vision/tracking/stitch.ts): segments of `seconds` extended by
 * `overlapSeconds` into the next, both rounded to whole frames.
 */
export function segmentsOf(frameCount: number, fps: number, o: PipelineOptions['segments']): SegmentRange[] {
  const rate = fps || 25;
  const segmentFrames = Math.max(1, Math.round(o.seconds * rate));
  return planSegments(frameCount, segmentFrames, Math.min(segmentFrames - 1, Math.round(o.overlapSeconds * rate)));
}

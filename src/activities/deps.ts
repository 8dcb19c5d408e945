/**
 * {@link ActivityDeps}: what the activity factories close over (the activity-factory pattern of
 * temporalio/samples-typescript): workers pass real clients (`createDeps` in src/workers/worker.ts), tests
 * may pass fakes for fault injection.
 */
import type { RunCache } from '../cache/runCache';
import type { SourcePolicy } from '../config';
import type { ObjectStore } from '../storage/gcs';
import type { Detector } from '../vision/detection/detector';
import type { FfmpegBinaries } from '../vision/media/ffmpeg';
import type { Segmenter } from '../vision/segmentation/u2netp';

/** Dependencies that activity factories close over (docs/ARCHITECTURE.md "Layers"). */
export interface ActivityDeps {
  /** The run store; activities take a {@link ObjectStore.scoped} view per call for accounting. */
  store: ObjectStore;
  /** The worker's run cache (in memory, plus the video files it holds on disk). */
  cache: RunCache;
  /** Folder for temporary files of activity calls (each call uses and removes its own subfolder). */
  /**
   * This worker process's id, the suffix of its own task queues `{sharedQueue}@{workerId}` (set by the
   * worker, `WORKER_ID` of src/workers/worker.ts): where a step's cached artifacts can be released.
   */
  workerId: string;
  workDir: string;
  /** Reported in `.pipeline_info.json`. */
  codeVersion: string;
  /** ffmpeg and ffprobe executables. */
  ffmpeg: FfmpegBinaries;
  /** What `importVideo` accepts as a source: confinement of local paths, size and frame-size limits. */
  sourcePolicy: SourcePolicy;
  /** The detector session for a model file name (one session per process, created on first use). */
  getDetector(modelName: string): Promise<Detector>;
  /** The background segmentation session (u2netp), one per process, created on first use. */
  getSegmenter(): Promise<Segmenter>;
  /** Name, path and sha256 of a model file in `models/`. */
  modelInfo(modelName: string): Promise<{ name: string; path: string; sha256: string }>;
}

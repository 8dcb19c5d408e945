/**
 * The run-level dataset of a run with several videos: every video's dataset images under one root, with
 * class names unique across videos (`{videoGuid}_track_{id}`) and one class list in the order loaders
 * number sorted folder names (as ./split.ts `classOrder` does for one video). Pure planning; the activity
 * copies the objects server-side.
 */

import { byCodePoint } from './split';

/** One image of a video's dataset, as its manifest lists it (src/storage/artifacts.ts `manifestImageSchema`). */
export interface VideoDatasetImage {
  /** Path relative to the video's `datasets/`: `{folder}/track_{id}/{name}.jpg`. */
  file: string;
  split: 'train' | 'val' | 'test';
  track_id: number;
  frame_id: number;
  bbox: readonly number[];
  source_crop: string;
  augmentation: unknown;
}

/** One video's dataset: its GUID, its images, and team and role per track when known. */
export interface VideoDataset {
  videoGuid: string;
  images: readonly VideoDatasetImage[];
  labelOf?: (trackId: number) => { team: string | null; role: string | null } | undefined;
}

/** An image of the run-level dataset: where it comes from and where it goes. */
export interface RunDatasetImage extends VideoDatasetImage {
  videoGuid: string;
  /** The image's `file` in its video's dataset. */
  from: string;
  /** Class index in the run dataset. */
  class_index: number;
  /** `{videoGuid}_track_{track_id}`. */
  class_name: string;
  team: string | null;
  role: string | null;
}

/** Result of {@link planRunDataset}. */
export interface RunDatasetPlan {
  /** Class names in class-index order. */
  classes: string[];
  /** Images in video order, then each video's manifest order; `file` is the path under the run dataset root. */
  images: RunDatasetImage[];
}

/**
 * Globally unique class name of a track of a video: `{videoGuid}_track_{trackId}`.
 * @throws RangeError when the GUID is empty or holds `/`
 */
export function runClassName(videoGuid: string, trackId: number): string {
  if (!videoGuid || videoGuid.includes('/')) throw new RangeError(`video GUID ${JSON.stringify(videoGuid)} cannot name a class folder`);
  return `${videoGuid}_track_${trackId}`;
}

/**
 * Plans the run-level dataset: each image keeps its top-level folder (split, or `train_aug`) and file name, in
 * the class folder {@link runClassName}; classes are sorted by name in code-point order (Python's `sorted()`,
 * the order of torchvision `ImageFolder.find_classes`).
 * @throws RangeError when two videos share a GUID, or an image's `file` is not `{folder}/{class}/{name}`
 */
export function planRunDataset(videos: readonly VideoDataset[]): RunDatasetPlan {
  const guids = new Set<string>();
  for (const v of videos) {
    if (guids.has(v.videoGuid)) throw new RangeError(`video GUID ${v.videoGuid} appears twice`);
    guids.add(v.videoGuid);
  }
  const names = new Set<string>();
  for (const v of videos) for (const i of v.images) names.add(runClassName(v.videoGuid, i.track_id));
  const classes = [...names].sort(byCodePoint);
  const index = new Map(classes.map((n, k) => [n, k]));
  const images: RunDatasetImage[] = [];
  for (const v of videos) {
    for (const i of v.images) {
      const parts = i.file.split('/');
      if (parts.length !== 3 || parts.some((p) => !p)) throw new RangeError(`image ${i.file} of video ${v.videoGuid} is not {folder}/{class}/{name}`);
      const name = runClassName(v.videoGuid, i.track_id);
      const label = v.labelOf?.(i.track_id);
      images.push({ ...i, videoGuid: v.videoGuid, from: i.file, file: `${parts[0]}/${name}/${parts[2]}`, class_index: index.get(name)!, class_name: name, team: label?.team ?? null, role: label?.role ?? null });
    }
  }
  return { classes, images };
}

/**
 * The schema of the run-level dataset's manifest (`run_{guid}/dataset/manifest.json`, src/activities/runDataset.ts),
 * beside the per-video artifacts of ./artifacts.ts (docs/ARCHITECTURE.md "Stored artifacts").
 */
import { z } from 'zod';
import { augmentationSchema, bbox, count } from './artifacts';

/**
 * `dataset/manifest.json` of a run with several videos (the run-level dataset, src/dataset/merge.ts; written
 * last): every image with its place in the run dataset and the video image it was copied from.
 */
export const runManifestSchema = z.object({
  tenantId: z.string(),
  runGuid: z.string(),
  layout: z.literal('ImageFolder'),
  /** Each video's own dataset manifest (bucket key). */
  videos: z.array(z.object({ videoGuid: z.string(), manifest: z.string(), images: count })),
  counts: z.object({ train: count, val: count, test: count.optional() }),
  /** Classes in class-index order: `classes.txt` line i and `data.yaml` `names[i]`. */
  classes: z.array(z.object({ index: count, name: z.string(), videoGuid: z.string(), track_id: count, train: count, val: count, test: count.optional() })),
  images: z.array(
    z.object({
      /** Object name in the bucket. */
      path: z.string(),
      /** Path relative to the run dataset root `dataset/`. */
      file: z.string(),
      uri: z.string(),
      split: z.enum(['train', 'val', 'test']),
      class_index: count,
      class_name: z.string(),
      videoGuid: z.string(),
      track_id: count,
      frame_id: count,
      bbox,
      /** The video dataset image this one was copied from (bucket key). */
      copied_from: z.string(),
      source_crop: z.string(),
      augmentation: augmentationSchema.nullable(),
      team: z.enum(['A', 'B']).nullable(),
      role: z.enum(['player', 'goalkeeper', 'referee', 'other']).nullable(),
    }),
  ),
});
/** `dataset/manifest.json` of a run. */
export type RunManifest = z.output<typeof runManifestSchema>;

/**
 * The run-level dataset (after every video of a run completed, for runs with several videos): the videos'
 * datasets merged under `run_{guid}/dataset/` by server-side copies (GCS `objects.rewrite`, no image bytes
 * through the worker), with class names unique across videos and one class list (src/dataset/merge.ts).
 */
import pLimit from 'p-limit';
import { classesTxt, dataYaml } from '../dataset/classList';
import { planRunDataset } from '../dataset/merge';
import { manifestCsv, splitMetadataJsonl } from '../dataset/tables';
import { toApplicationFailure } from '../errors';
import { manifestSchema, parseArtifact } from '../storage/artifacts';
import { runManifestSchema, type RunManifest } from '../storage/runManifest';
import { RunLayout } from '../storage/layout';
import type { RunDatasetInput, RunDatasetResult } from '../workflows/types';
import type { ActivityDeps } from './deps';
import { heartbeat } from './temporal';

/** Server-side copies in flight at once (each is one small request; the objects never pass through the worker). */
export const RUN_DATASET_COPY_CONCURRENCY = 16;

/** Creates the run-level dataset activity over `deps`. */
export function createRunDatasetActivities(deps: ActivityDeps) {
  return {
    /**
     * Merges the datasets of `input.videoGuids` into `dataset/` of the run. The run manifest is deleted first
     * and written last, so a merge being (re)done never looks complete; objects under `dataset/` that this
     * merge does not write are deleted before it. Deterministic: a retry writes the same objects.
     * @throws ApplicationFailure classified by src/errors.ts: InvalidInput for identifiers that break their
     *   pattern, Transient for storage faults; a missing or unreadable video manifest is Internal (the videos
     *   completed, so their manifests exist).
     */
    async mergeRunDataset(input: RunDatasetInput): Promise<RunDatasetResult> {
      try {
        const store = deps.store;
        const layout = new RunLayout(input.tenantId, input.runGuid);
        const root = layout.datasetPrefix;
        const manifestKey = layout.runDatasetObject('manifest.json');
        await store.delete([manifestKey]);
        heartbeat({ phase: 'reading manifests' });
        const videos = [];
        for (const videoGuid of input.videoGuids) {
          const video = layout.video(videoGuid);
          const m = parseArtifact(manifestSchema, video.manifest, await store.getJson(video.manifest));
          const labels = m.teams?.tracks ?? {};
          videos.push({
            videoGuid,
            manifest: video.manifest,
            images: m.images.map((i) => ({ ...i, file: i.file ?? i.path.slice(video.datasetPrefix.length) })),
            labelOf: (trackId: number) => labels[String(trackId)],
            datasetPrefix: video.datasetPrefix,
          });
        }
        const plan = planRunDataset(videos);
        const prefixOf = new Map(videos.map((v) => [v.videoGuid, v.datasetPrefix]));
        const limit = pLimit(RUN_DATASET_COPY_CONCURRENCY);
        let copied = 0;
        await Promise.all(
          plan.images.map((i) =>
            limit(async () => {
              await store.copy(prefixOf.get(i.videoGuid)! + i.from, layout.runDatasetObject(i.file));
              heartbeat({ phase: 'copying', copied: ++copied, of: plan.images.length });
            }),
          ),
        );
        const images: RunManifest['images'] = plan.images.map((i) => {
          const path = layout.runDatasetObject(i.file);
          return {
            path,
            file: i.file,
            uri: `gs://${store.bucket}/${path}`,
            split: i.split,
            class_index: i.class_index,
            class_name: i.class_name,
            videoGuid: i.videoGuid,
            track_id: i.track_id,
            frame_id: i.frame_id,
            bbox: i.bbox as [number, number, number, number],
            copied_from: prefixOf.get(i.videoGuid)! + i.from,
            source_crop: i.source_crop,
            augmentation: i.augmentation as RunManifest['images'][number]['augmentation'],
            team: i.team as RunManifest['images'][number]['team'],
            role: i.role as RunManifest['images'][number]['role'],
          };
        });
        // Images per split, overall and per class, in one pass.
        const tally = new Map<string, number>();
        for (const i of images) for (const k of [i.split, `${i.split}/${i.class_name}`]) tally.set(k, (tally.get(k) ?? 0) + 1);
        const count = (split: string, name?: string) => tally.get(name === undefined ? split : `${split}/${name}`) ?? 0;
        const splits = (['train', 'val', 'test'] as const).filter((sp) => count(sp) > 0);
        const folders = [...new Set(images.map((i) => i.file.split('/')[0]))].sort();
        const hasTest = splits.includes('test');
        const written = new Set([...images.map((i) => i.path), manifestKey]);
        const put = async (file: string, body: string, type: string) => {
          const key = layout.runDatasetObject(file);
          written.add(key);
          await store.put(key, body, { contentType: type });
        };
        await put('classes.txt', classesTxt(plan.classes), 'text/plain; charset=utf-8');
        await put('data.yaml', dataYaml(plan.classes, splits), 'application/yaml; charset=utf-8');
        await put('manifest.csv', manifestCsv(images), 'text/csv; charset=utf-8');
        for (const f of folders) await put(`${f}/metadata.jsonl`, splitMetadataJsonl(images, f), 'application/x-ndjson; charset=utf-8');
        // Leftovers of an earlier merge that this one does not contain.
        await store.delete((await store.list(root)).map((o) => o.name).filter((n) => !written.has(n)));
        const byName = new Map(plan.images.map((i) => [i.class_name, i]));
        const manifest: RunManifest = {
          tenantId: input.tenantId,
          runGuid: input.runGuid,
          layout: 'ImageFolder',
          videos: videos.map((v) => ({ videoGuid: v.videoGuid, manifest: v.manifest, images: v.images.length })),
          counts: { train: count('train'), val: count('val'), ...(hasTest ? { test: count('test') } : {}) },
          classes: plan.classes.map((name, index) => ({
            index,
            name,
            videoGuid: byName.get(name)!.videoGuid,
            track_id: byName.get(name)!.track_id,
            train: count('train', name),
            val: count('val', name),
            ...(hasTest ? { test: count('test', name) } : {}),
          })),
          images,
        };
        await store.putJson(manifestKey, parseArtifact(runManifestSchema, manifestKey, manifest));
        return { prefix: `gs://${store.bucket}/${root}`, manifest: manifestKey, classes: plan.classes.length, ...manifest.counts };
      } catch (err) {
        throw toApplicationFailure(err);
      }
    },
  };
}

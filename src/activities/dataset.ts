/**
 * Steps 8 and 9: `augmentCrops` and `createTrainingAndValidationSets` (CPU queue), and the report of step 9;
 * docs/ARCHITECTURE.md "The nine steps".
 */
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { applyAugmentation, planAugmentation, type Augmentation } from '../dataset/augment';
import { describeBackground, type BackgroundDecision } from '../dataset/background';
import { cropKey } from '../dataset/crops';
import { classMarks, renderReport, stripPicks, type ReportTrack } from '../dataset/report';
import { classesTxt, dataYaml } from '../dataset/classList';
import { cocoJsonChunks, motChunks } from '../dataset/exports';
import { className, planSplit, type SplitPlan } from '../dataset/split';
import { cropIndexSchema, detectionsFileSchema, metadataFileSchema, type CropEntry, type CropIndex, type DetectionsFile, type Manifest } from '../storage/artifacts';
import type { DatasetFolder, Split, VideoLayout } from '../storage/layout';
import { TextSpool } from '../util/fs';
import { groupBy } from '../util/group';
import { forEachInWindow, JobWindow } from '../util/window';
import { isNotFound } from '../storage/gcs';
import { NOT_READ_AGAIN } from '../storage/runFiles';
import type { BatchedInput, AugmentResult, SplitResult, StepInput } from '../workflows/types';
import { backgroundOf, readCropIndex, sourceCrop } from './crops';
import { IMAGE_JOB_WINDOW, imageSlot } from './imageWork';
import { ImageTables, type DatasetImage } from './imageTables';
import type { ActivityDeps } from './deps';
import { runStep, type StepFiles } from './runStep';
import { activityAttempt, heartbeat } from './temporal';

/**
 * The split plan of a video's crops, identical in steps 8 and 9 (step 8 augments train crops only). The
 * gap is `split.gapSeconds` converted to source frames with the video's fps from `metadata.json`.
 */
async function planFor(files: StepFiles, video: VideoLayout, input: StepInput, crops: CropEntry[]): Promise<SplitPlan & { gapFrames: number }> {
  const meta = await files.readJson(video.metadata, metadataFileSchema);
  const gapFrames = Math.round(input.options.split.gapSeconds * (meta.fps > 0 ? meta.fps : 25));
  const plan = planSplit(
    crops.map((c) => ({ trackId: c.track_id, n: c.n, frameId: c.frame_id })),
    { ...input.options.split, gapFrames },
  );
  return { ...plan, gapFrames };
}

/** Images per split of one class, and its crops left out in gaps (`test` only with a test split). */
type TrackCounts = { train: number; val: number; test?: number; gap: number };

/** Creates steps 8 and 9 over `deps`. */
export function createDatasetActivities(deps: ActivityDeps) {
  return {
    /**
     * Step 8: make `augment.count` deterministic augmented copies of every training crop (the split is
     * planned here exactly as step 9 will apply it, so validation crops are never augmented). Copies stay in
     * this worker's run cache (step 9 uploads them into the dataset); step 9 regenerates them bit-identically
     * when it runs elsewhere or the cache is off. A retry on the same worker reuses the copies an earlier
     * attempt left in the cache. With `input.batches`, class batches (`augmentBatch`, ./batches.ts) made the
     * copies in `intermediate/augmented/{videoGuid}/`; the step then only counts them.
     */
    async augmentCrops(input: BatchedInput): Promise<AugmentResult> {
      return runStep(deps, 'augmentCrops', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        const train = await trainCrops(files, video, input);
        const planned = train.length * augmentedCopies(input);
        // Class batches made the copies (augmentBatch, ./batches.ts): count what they stored.
        if (input.batches) {
          const stored = await files.store.count(layout.augmentedPrefix(input.videoGuid));
          return { result: { augmented: stored, sources: train.length }, details: { generatedHere: false, batches: input.batches.length, planned } };
        }
        // With the cache off nothing would keep the copies for step 9, which makes them anyway: plan only.
        if (!files.cache.enabled) return { result: { augmented: planned, sources: train.length }, details: { generatedHere: false } };
        const retry = activityAttempt() > 1;
        // A bounded window of copies at a time, each made in one of the process's image slots (makeAugmentedCopy).
        const made = await forEachInWindow(copyJobs(train, input), IMAGE_JOB_WINDOW, ({ c, k }) => augmentedCopy(files, video, input, c, k, retry), (n) => heartbeat({ augmented: n }));
        return { result: { augmented: made, sources: train.length }, details: { generatedHere: true } };
      });
    },

    /**
     * Step 9: ImageFolder dataset `datasets/{train,val[,test]}/track_{id}/`: background-removed crops split by
     * time inside each track; augmented copies of train crops beside them, in `train_aug/`, or none
     * (`augment.placement`); one class list for every split (tracks that cannot be split are left out by
     * default; src/dataset/split.ts) written as `datasets/classes.txt` and `datasets/data.yaml`
     * (src/dataset/classList.ts); the manifest as tables (src/dataset/tables.ts); every tracked box as MOT and
     * COCO exports (src/dataset/exports.ts); and `datasets/manifest.json` written last (a dataset without a
     * manifest is incomplete).
     *
     * The manifest is deleted first, so a dataset being (re)written never looks complete. Images already
     * stored with the same bytes (by an earlier attempt) are not uploaded or copied again, and objects of the
     * dataset folder that this plan does not write are deleted before the manifest is written. With
     * `input.batches`, augmented copies are copied from the class batches' `intermediate/augmented/` (deleted
     * once the manifest is written). The manifest's images and its tables are written one image at a time to
     * local files and uploaded from there (`ImageTables`, ./imageTables.ts), so no list of every image is held.
     */
    async createTrainingAndValidationSets(input: BatchedInput): Promise<SplitResult> {
      return runStep(deps, 'createTrainingAndValidationSets', input, async (files, layout) => {
        const video = layout.video(input.videoGuid);
        // A retry must never leave an old manifest next to half-rewritten images.
        await files.store.delete([video.manifest]);
        const background = backgroundOf(input);
        const sources = background.removed ? video.cropsPrefix('modified') : video.cropsPrefix('original');
        // The class batches' copies are not listed (a long video's listing would be held whole): each is copied,
        // and one found missing is made again.
        const prior = await files.loadPriorOutputs([video.datasetPrefix, ...(activityAttempt() > 1 ? [sources] : [])]);
        // The crop index is read once: its crops for the plan, its rejections for the report.
        const { crops, rejected } = await files.readJson(video.cropIndex, cropIndexSchema);
        const plan = await planFor(files, video, input, crops);
        const detections = await files.readJson(video.detections, detectionsFileSchema);
        const teamOf = new Map((detections.teams?.classes ?? []).map((c) => [c.track_id, c]));
        const classIndex = new Map(plan.classes.map((trackId, i) => [trackId, i]));
        const imageEntry = (name: string) => ({ path: name, file: name.slice(video.datasetPrefix.length), uri: `gs://${deps.store.bucket}/${name}` });
        const tracks: Record<string, TrackCounts> = {};
        // Objects of an earlier dataset in this folder; what this plan writes is struck off as it is planned.
        const leftovers = new Set([...prior.keys()].filter((n) => n.startsWith(video.datasetPrefix)));
        // The manifest's images and their CSV and JSONL rows go to local files as each image is planned, so a
        // long video's images are never all in memory (src/util/json.ts); uploaded once complete.
        const tables = await ImageTables.create(files.scratchDir);
        // Copies and uploads in flight, bounded so that a long video's ~10^5 images are never all pending at once.
        const jobs = new JobWindow(DATASET_JOB_WINDOW, (written) => heartbeat({ imagesWritten: written, uploadsSkipped: files.io.uploadsSkipped }));
        try {
          const add = async (image: DatasetImage) => {
            leftovers.delete(image.path);
            await tables.add(image, teamOf.get(image.track_id));
          };
          for (const c of crops) {
            const assignment = plan.assignments.get(cropKey(c.track_id, c.n)) ?? 'excluded';
            if (assignment === 'excluded') continue;
            const t = (tracks[c.track_id] ??= input.options.split.testFraction > 0 ? { train: 0, val: 0, test: 0, gap: 0 } : { train: 0, val: 0, gap: 0 });
            if (assignment === 'gap') {
              t.gap++;
              continue;
            }
            const split: Split = assignment;
            const source = sourceCrop(video, c, background);
            const base = { split, track_id: c.track_id, class_index: classIndex.get(c.track_id)!, class_name: className(c.track_id), frame_id: c.frame_id, bbox: c.bbox, source_crop: source, original_crop: c.object };
            const name = video.datasetImage(split, c.track_id, `crop_${c.n}.jpg`);
            await add({ ...imageEntry(name), ...base, augmentation: null });
            t[split] = (t[split] ?? 0) + 1;
            // The image is the source crop itself: a server-side copy, no bytes transferred.
            await jobs.add(() => files.copy(source, name, NOT_READ_AGAIN));
            if (split !== 'train') continue;
            for (let k = 0; k < augmentedCopies(input); k++) {
              const augName = video.datasetImage(input.options.augment.placement === 'train_aug' ? 'train_aug' : 'train', c.track_id, `crop_${c.n}_aug${k}.jpg`);
              const aug = planAugmentation(augmentSeed(input), augmentKey(input, c), k, input.options.augment);
              await add({ ...imageEntry(augName), ...base, augmentation: aug });
              t.train++;
              // A class batch's copy is copied server-side; one the store does not have (gone after a completed
              // attempt of this step) is made again, bit-identical.
              const make = () => augmentedCopy(files, video, input, c, k).then((buf) => files.write(augName, buf, 'image/jpeg', NOT_READ_AGAIN));
              const made = layout.augmented(input.videoGuid, c.track_id, c.n, k);
              if (input.batches) await jobs.add(() => files.copy(made, augName, NOT_READ_AGAIN).catch((err: unknown) => (isNotFound(err) ? make() : Promise.reject(err))));
              else await jobs.add(make);
            }
          }
          await jobs.settle();
          // Images per split: the classes' counts summed.
          const total = (sp: Split) => Object.values(tracks).reduce((sum, t) => sum + (t[sp] ?? 0), 0);
          const totals: Record<Split, number> = { train: total('train'), val: total('val'), test: total('test') };
          const { train, val, test } = totals;
          await files.write(video.report, await buildReport(files, video, input, background, { crops, rejected }, tracks, plan, { train, val }, detections), 'text/html; charset=utf-8', NOT_READ_AGAIN);
          const splits: Split[] = (['train', 'val', 'test'] as const).filter((sp) => totals[sp] > 0);
          const folders: DatasetFolder[] = [...splits, ...(tables.hasFolder('train_aug') ? (['train_aug'] as const) : [])];
          // Leftovers of an earlier dataset in this folder that this plan does not contain.
          for (const n of [video.report, video.manifest, video.classesTxt, video.dataYaml, video.manifestCsv, ...folders.map((f) => video.splitMetadata(f))]) leftovers.delete(n);
          await files.store.delete([...leftovers]);
          // One class list for every split, beside the split folders.
          const names = plan.classes.map(className);
          await files.write(video.classesTxt, Buffer.from(classesTxt(names)), 'text/plain; charset=utf-8');
          await files.write(video.dataYaml, Buffer.from(dataYaml(names, splits)), 'application/yaml; charset=utf-8');
          // Every tracked box (not only the dataset's crops) in MOT Challenge and COCO form, for CVAT or FiftyOne.
          // Spooled to a local file piece by piece and uploaded from there, so neither is ever one string.
          await writeSpooled(files, video.motExport, motChunks(detections.frames), 'text/plain; charset=utf-8');
          const videoRel = (name: string) => name.slice(video.prefix.length);
          const coco = cocoJsonChunks(detections.frames, { videoGuid: input.videoGuid, fileName: (f) => videoRel(video.frame(f)), labelOf: (id) => teamOf.get(id) });
          await writeSpooled(files, video.cocoExport, coco, 'application/json');
          const manifest: Omit<Manifest, 'images'> = {
            tenantId: input.tenantId,
            runGuid: input.runGuid,
            videoGuid: input.videoGuid,
            layout: 'ImageFolder',
            splitMethod: 'per-track contiguous time blocks: the latest valFraction of each track is val; train crops within gapFrames before it are left out',
            gapFrames: plan.gapFrames,
            gapCrops: plan.gapCrops,
            options: { split: input.options.split, augment: input.options.augment },
            background: { ...background, fill: input.options.background.fill },
            counts: { train, val, ...(input.options.split.testFraction > 0 ? { test } : {}), tracks },
            trainOnlyTracks: plan.trainOnlyTracks,
            tracks: detections.tracks ?? { origin: 'tracker' },
            classes: plan.classes.map((trackId, index) => {
              const { train: tr, val: va, test: te } = tracks[trackId];
              return { index, name: className(trackId), track_id: trackId, train: tr, val: va, ...(te !== undefined ? { test: te } : {}) };
            }),
            excludedTracks: plan.excludedTracks.map((e) => ({ track_id: e.trackId, crops: e.crops, reason: e.reason })),
            ...(detections.teams ? { teams: manifestTeams(detections.teams, Object.keys(tracks)) } : {}),
          };
          // The manifest as tables (a CSV for pandas, and per split the Hugging Face ImageFolder metadata with a
          // label column), then the manifest itself, last.
          await tables.upload(files, video, folders, manifest);
          // The class batches' copies are in the dataset now.
          if (input.batches) await files.store.deletePrefix(layout.augmentedPrefix(input.videoGuid));
          return {
            result: { train, val, ...(input.options.split.testFraction > 0 ? { test } : {}), classes: plan.classes.length, trainOnlyTracks: plan.trainOnlyTracks, excludedTracks: plan.excludedTracks.map((e) => e.trackId), manifest: video.manifest },
            details: { report: video.report, gapCrops: plan.gapCrops, classesTxt: video.classesTxt, dataYaml: video.dataYaml, mot: video.motExport, coco: video.cocoExport, ...(input.batches ? { batches: input.batches.length } : {}) },
          };
        } catch (err) {
          // No copy may still be running once the attempt has failed.
          await jobs.drain();
          throw err;
        } finally {
          await tables.discard();
        }
      });
    },
  };
}

/**
 * Step 9's copies and uploads unsettled at once ({@link JobWindow}): several times the store's requests in
 * flight (8, src/storage/gcs.ts), so the store always has work queued, and a constant: the jobs pending do
 * not grow with the length of the video.
 */
const DATASET_JOB_WINDOW = 64;

/** Tracks shown in the report at most (each with its first, middle and last crop). */
const REPORT_MAX_TRACKS = 300;

/** The manifest's `teams`: status, reason, and team and role of the dataset's tracks (`trackIds`). */
function manifestTeams(teams: NonNullable<DetectionsFile['teams']>, trackIds: string[]): NonNullable<Manifest['teams']> {
  const byId = new Map(teams.classes.map((c) => [String(c.track_id), c]));
  const out: NonNullable<Manifest['teams']>['tracks'] = {};
  for (const id of trackIds) out[id] = { team: byId.get(id)?.team ?? null, role: byId.get(id)?.role ?? null };
  return { status: teams.status, reason: teams.reason, tracks: out };
}

/** Gathers the report's figures (steps 5, 6 and this step) and a few crops per track, and renders it. */
async function buildReport(
  files: StepFiles,
  video: VideoLayout,
  input: StepInput,
  background: BackgroundDecision,
  { crops, rejected }: Pick<CropIndex, 'crops' | 'rejected'>,
  tracks: Record<string, TrackCounts>,
  plan: SplitPlan,
  counts: { train: number; val: number },
  detections: DetectionsFile,
): Promise<string> {
  const dropped: Record<string, number> = {};
  for (const f of detections.frames) for (const d of f.dropped ?? []) dropped[d.reason] = (dropped[d.reason] ?? 0) + 1;
  const byTrack = groupBy(crops, (c) => c.track_id);
  const teamOf = new Map((detections.teams?.classes ?? []).map((c) => [c.track_id, c]));
  // Tracklet cuts and joins, when step 5 recorded them (`tracklets`, and each box's `tracklet_id`).
  const marks = classMarks(detections.tracklets, detections.frames);
  // Each class's first and last box (not only its kept crops), for its timeline.
  const boxSpan = new Map<number, [number, number]>();
  for (const f of detections.frames) {
    for (const d of f.detections) {
      const s = boxSpan.get(d.track_id);
      boxSpan.set(d.track_id, s ? [Math.min(s[0], f.frame_id), Math.max(s[1], f.frame_id)] : [f.frame_id, f.frame_id]);
    }
  }
  const reportTracks: ReportTrack[] = [];
  for (const trackId of [...byTrack.keys()].sort((a, b) => a - b).slice(0, REPORT_MAX_TRACKS)) {
    const list = byTrack.get(trackId)!.sort((a, b) => a.frame_id - b.frame_id);
    const picks = stripPicks(list.length);
    const samples = await Promise.all(
      picks.map(async ({ index, label }) => {
        const c = list[index];
        return { frameId: c.frame_id, label, original: await files.read(c.object), modified: background.removed ? await files.read(sourceCrop(video, c, background)) : undefined };
      }),
    );
    const t = tracks[trackId] ?? { train: 0, val: 0, gap: 0 };
    const team = teamOf.get(trackId);
    const span = boxSpan.get(trackId);
    reportTracks.push({ trackId, train: t.train, val: t.val, test: t.test, gap: t.gap, samples, span, team: team?.team, role: team?.role, kit: team?.kit, marks: marks.get(trackId) });
  }
  return renderReport({
    tenantId: input.tenantId,
    runGuid: input.runGuid,
    videoGuid: input.videoGuid,
    source: input.source,
    counts: {
      frames: detections.frames.length,
      detections: detections.frames.reduce((s, f) => s + f.detections.length, 0),
      tracks: byTrack.size,
      crops: crops.length,
      train: counts.train,
      val: counts.val,
      gap: plan.gapCrops,
    },
    rejected: rejected ?? {},
    dropped,
    background: { text: describeBackground(background), removed: background.removed },
    trainOnlyTracks: plan.trainOnlyTracks,
    excludedTracks: plan.excludedTracks,
    tracks: reportTracks,
    teams: detections.teams && { status: detections.teams.status, reason: detections.teams.reason, centres: detections.teams.centres },
    frameRange: detections.frames.length ? [detections.frames[0].frame_id, detections.frames[detections.frames.length - 1].frame_id] : undefined,
  });
}


/**
 * Writes `chunks` in order to a file in the call's scratch folder (`TextSpool`, src/util/fs.ts: about 1 MiB
 * held at a time), then uploads the file as `objectName`; the file is removed by the upload or with the
 * scratch folder.
 * @throws the errno error of a local write (e.g. `ENOSPC`); the store's errors of the upload
 */
async function writeSpooled(files: StepFiles, objectName: string, chunks: Iterable<string>, contentType: string): Promise<void> {
  await mkdir(files.scratchDir, { recursive: true });
  const spool = await TextSpool.create(path.join(files.scratchDir, `spool-${randomUUID()}`));
  try {
    for (const chunk of chunks) await spool.write(chunk);
    await spool.close();
  } catch (err) {
    await spool.close(true);
    throw err;
  }
  await files.writeFile(objectName, spool.file, contentType, NOT_READ_AGAIN);
}

/**
 * The crop's identity in augmentation seeds: video GUID, track id and crop number, not its storage path, so
 * the same run GUID (or seed) gives the same augmentations under any tenant or bucket.
 */
function augmentKey(input: StepInput, c: CropEntry): string {
  return `${input.videoGuid}/${cropKey(c.track_id, c.n)}`;
}

/** Augmented copies made of each train crop: `augment.count`, or none with `augment.placement` `none`. */
export function augmentedCopies(input: StepInput): number {
  return input.options.augment.placement === 'none' ? 0 : input.options.augment.count;
}

/**
 * Each augmented copy to make of `train`: every crop with each `k` below {@link augmentedCopies}, crop by crop,
 * generated as they are taken (a long video's copies are never one list).
 */
export function* copyJobs(train: readonly CropEntry[], input: StepInput): Generator<{ c: CropEntry; k: number }> {
  const copies = augmentedCopies(input);
  for (const c of train) for (let k = 0; k < copies; k++) yield { c, k };
}

/** Seed of the run's augmentations: `options.augment.seed`, else the run GUID. */
function augmentSeed(input: StepInput): string {
  return input.options.augment.seed ?? input.runGuid;
}

/**
 * Augmented copy `k` of crop `c`: from this worker's run cache when step 8 ran here, else regenerated
 * (deterministically identical) from the crop's source ({@link sourceCrop}). Step 8, which makes them, passes
 * `lookup = false` (nothing to find yet; no cache miss counted).
 */
async function augmentedCopy(files: StepFiles, video: VideoLayout, input: StepInput, c: CropEntry, k: number, lookup = true): Promise<Buffer> {
  const artifact = `augmented/track_${c.track_id}/crop_${c.n}_aug${k}.jpg`;
  const cached = lookup ? files.getLocal<Buffer>(artifact, (b) => b.length) : undefined;
  if (cached) return cached;
  const out = await makeAugmentedCopy(files, video, input, c, k);
  files.setLocal(artifact, out, out.length);
  return out;
}

/**
 * Makes augmented copy `k` of crop `c` from its source crop ({@link sourceCrop}): deterministic, so every
 * worker makes the same bytes (`planAugmentation` seeded by the run and the crop, src/dataset/augment.ts).
 * The transform runs in one of the process's image slots (`imageSlot`, ./imageWork.ts), so a caller must not
 * hold one already.
 * @returns the copy as JPEG at `options.jpegQuality`.
 */
export async function makeAugmentedCopy(files: StepFiles, video: VideoLayout, input: StepInput, c: CropEntry, k: number): Promise<Buffer> {
  const aug: Augmentation = planAugmentation(augmentSeed(input), augmentKey(input, c), k, input.options.augment);
  const source = await files.read(sourceCrop(video, c, backgroundOf(input)));
  // The transform takes one of the process's image slots (./imageWork.ts); the read does not.
  return imageSlot(() => applyAugmentation(source, aug, input.options.background.fill, input.options.jpegQuality));
}

/**
 * The train crops among `crops` (by default the video's whole crop index), in their order, by the split plan
 * that step 9 applies ({@link planFor}). The plan decides each track from that track's crops alone
 * (`planSplit`, src/dataset/split.ts), so every crop of a subset of whole tracks (a class batch's part of the
 * index) gets the assignment it has in the whole video's plan.
 */
export async function trainCrops(files: StepFiles, video: VideoLayout, input: StepInput, crops?: CropEntry[]): Promise<CropEntry[]> {
  const list = crops ?? (await readCropIndex(files, video));
  const plan = await planFor(files, video, input, list);
  return list.filter((c) => plan.assignments.get(cropKey(c.track_id, c.n)) === 'train');
}

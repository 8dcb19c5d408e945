/**
 * Step 5 of a video longer than one segment (docs/ARCHITECTURE.md "Segments"): `detectSegment` detects and
 * tracks one time segment of the sampled frames, on any GPU worker, and writes the segment's tracking as an
 * intermediate artifact; `detectPlayers` (./detect.ts) then reads every segment's tracking through
 * {@link stitchedSegments}, which joins their tracks on the overlaps into video-wide tracklet ids, and goes
 * on as for a video tracked in one piece (fragment joins, teams, `detections.json`).
 */
import { invalidInput } from '../errors';
import { metadataFileSchema, segmentFileSchema, type FrameDetections, type SegmentFile } from '../storage/artifacts';
import type { RunLayout } from '../storage/layout';
import { stitchSegments, type StitchLink } from '../vision/tracking/stitch';
import type { SegmentInput, SegmentRange, SegmentResult } from '../workflows/types';
import type { ActivityDeps } from './deps';
import { detectOptionsOf, listFrameIds, trackSampledFrames } from './detectFrames';
import { runStep, type StepFiles } from './runStep';

/** Creates `detectSegment` over `deps`. */
export function createSegmentActivities(deps: ActivityDeps) {
  return {
    /**
     * Part of step 5: detection and tracking of the sampled frames of one time segment (`input.segment`,
     * source frame indices, both ends included) with a fresh tracker, exactly as step 5 tracks a whole video
     * (`trackSampledFrames`, ./detectFrames.ts: read-ahead, checkpoint chunks under
     * `intermediate/checkpoints/{videoGuid}/segment_{index}/detect_{k}.json`, resume after a lost worker). Writes
     * `intermediate/segments/{videoGuid}/segment_{index}.json` (frames with the segment's own tracklet ids and
     * their cuts) and records its result under `segments.{index}` of step 5's result.
     * @throws PipelineError(InvalidInput) for a segment outside the video's sampled frames
     */
    async detectSegment(input: SegmentInput): Promise<SegmentResult> {
      const seg = input.segment;
      return runStep(
        deps,
        'detectPlayers',
        input,
        async (files, layout) => {
          const video = layout.video(input.videoGuid);
          const opts = detectOptionsOf(input.options);
          const all = await listFrameIds(files, video);
          const ids = all.filter((id) => id >= seg.from && id <= seg.to);
          if (ids.length === 0) throw invalidInput(`segment ${seg.index} (frames ${seg.from}-${seg.to})`, `holds none of the video's ${all.length} sampled frames`);
          const meta = await files.readJson(video.metadata, metadataFileSchema);
          const t = await trackSampledFrames(deps, files, input, opts, ids, meta.fps, (k) => layout.segmentCheckpoint(input.videoGuid, seg.index, k));
          const object = layout.segment(input.videoGuid, seg.index);
          const file: SegmentFile = {
            segment: { index: seg.index, from: seg.from, to: seg.to },
            model: t.model,
            frames: t.frames,
            detections: t.count,
            tiledFrames: t.tiledFrames,
            dropped: t.dropReasons,
            inferenceMs: Math.round(t.inferenceMs),
          };
          await files.writeJson(object, file);
          if (t.saved) await files.store.deletePrefix(layout.segmentCheckpointPrefix(input.videoGuid, seg.index));
          return {
            result: { segment: file.segment, frames: ids.length, detections: t.count, object },
            details: { dropped: t.dropReasons, tiledFrames: t.tiledFrames, resumedFromFrame: t.resumedFromFrame, inferenceMs: file.inferenceMs },
          };
        },
        { group: 'segments', index: seg.index },
      );
    },
  };
}

/** What {@link stitchedSegments} returns: the video's frames as one tracking, and what the stitching did. */
export interface StitchedVideo {
  model: SegmentFile['model'];
  /** Every sampled frame, ascending; `track_id` a video-wide tracklet id; per-frame `cuts` in those ids. */
  frames: FrameDetections[];
  /** Boxes of `frames`. */
  count: number;
  tiledFrames: number;
  dropReasons: Record<string, number>;
  /** Model time of all segments, overlaps included (each segment's completed attempt), ms. */
  inferenceMs: number;
  /** Frame id from which each segment's frames are taken. */
  cuts: number[];
  links: StitchLink[];
  /** Cuts of a segment's tracklet that did not reach the output (it ended before the segment's cut). */
  cutsDropped: number;
}

/**
 * Reads the tracking of each of `segments` (written by `detectSegment`) and stitches it into one tracking of
 * the video (`stitchSegments`, src/vision/tracking/stitch.ts): each frame comes from one segment, tracklet ids
 * become video-wide, and each frame's cuts are renamed alike (a cut whose old tracklet is not in the output
 * is left out and counted). Deterministic: the same segment files give the same result, whichever workers
 * wrote them in whatever order.
 * @throws PipelineError(InvalidInput) when a stored segment is not the planned one
 */
export async function stitchedSegments(files: StepFiles, layout: RunLayout, videoGuid: string, segments: readonly SegmentRange[]): Promise<StitchedVideo> {
  const parts: SegmentFile[] = [];
  for (const s of segments) {
    const part = await files.readJson(layout.segment(videoGuid, s.index), segmentFileSchema);
    if (part.segment.from !== s.from || part.segment.to !== s.to || part.segment.index !== s.index) {
      throw invalidInput(`segment ${s.index} of video ${videoGuid}`, `stored for frames ${part.segment.from}-${part.segment.to}, planned ${s.from}-${s.to}`);
    }
    parts.push(part);
  }
  const stitched = stitchSegments(parts.map((p) => p.frames));
  // The segment each output frame came from: the last segment whose cut is at or before it.
  const segmentOf = (frameId: number) => {
    let k = 0;
    for (const [i, c] of stitched.cuts.entries()) if (c <= frameId) k = i;
    return k;
  };
  let cutsDropped = 0;
  const dropReasons: Record<string, number> = {};
  let count = 0;
  let tiledFrames = 0;
  const frames = stitched.frames.map((f) => {
    count += f.detections.length;
    if (f.tiled) tiledFrames++;
    for (const d of f.dropped ?? []) dropReasons[d.reason] = (dropReasons[d.reason] ?? 0) + 1;
    if (!f.cuts) return f;
    const ids = stitched.ids[segmentOf(f.frame_id)];
    const cuts = f.cuts.flatMap((c) => {
      const oldId = ids.get(c.old_tracklet_id);
      const newId = ids.get(c.new_tracklet_id);
      if (oldId === undefined || newId === undefined) {
        cutsDropped++;
        return [];
      }
      return [{ ...c, old_tracklet_id: oldId, new_tracklet_id: newId }];
    });
    const { cuts: _local, ...rest } = f;
    return cuts.length ? { ...rest, cuts } : rest;
  });
  return {
    model: parts[0].model,
    frames,
    count,
    tiledFrames,
    dropReasons,
    inferenceMs: parts.reduce((s, p) => s + p.inferenceMs, 0),
    cuts: stitched.cuts,
    links: stitched.links,
    cutsDropped,
  };
}

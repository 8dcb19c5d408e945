/**
 * The option groups of steps 4 and 5 (`detector`, `grassMask`, `tracker`, `teams`) of the pipeline options
 * (`optionsSchema`, src/validation.ts), each with its defaults written once, next to its field.
 *
 * Workflow-safe: deterministic, no Node built-ins (the workflow validates its input with them).
 */
import { z } from 'zod';

/** Step 5 detector options (`options.detector`). */
export const detectorOptionsSchema = z
  .object({
    /** File name in `models/` (a YOLOv8-format ONNX detector). */
    model: z.string().regex(/^[A-Za-z0-9._-]+\.onnx$/).default('yolov8n.onnx'),
    /**
     * Minimum class score kept from the model. 0.1 is ByteTrack's low threshold: boxes between it and
     * `tracker.highThreshold` only extend existing tracks (second association), they never start one.
     */
    confThreshold: z.number().gt(0).lt(1).default(0.1),
    /** NMS IoU threshold. */
    iouThreshold: z.number().gt(0).lt(1).default(0.45),
    /** COCO class ids to keep; 0 = person. */
    classes: z.array(z.number().int().min(0)).nonempty().default([0]),
    /**
     * Tiled inference: `auto` adds overlapping tiles when players are small in the model input (far-away
     * players on 720p/1080p broadcast frames), `on` always, `off` never. See src/vision/detection/tiling.ts.
     */
    tiles: z.enum(['auto', 'on', 'off']).default('auto'),
    /** Tile side in source pixels; at least `MIN_TILE_SIZE` (checked by `validateInput`, src/validation.ts). */
    tileSize: z.number().int().min(64).max(4096).default(640),
    /** Overlap between neighbouring tiles, fraction of the tile side. */
    tileOverlap: z.number().min(0).max(0.5).default(0.2),
  })
  .strict()
  .prefault({});

/** Step 4 pitch colour options (`options.grassMask`). */
export const grassMaskOptionsSchema = z
  .object({
    /** Range (degrees 0-360) in which the dominant green's hue peak must lie (src/vision/pitch/colour.ts). */
    hueMin: z.number().min(0).max(360).default(60),
    hueMax: z.number().min(0).max(360).default(170),
    /** Minimum saturation and value (0-1) of a grass pixel. */
    satMin: z.number().min(0).max(1).default(0.15),
    valMin: z.number().min(0).max(1).default(0.15),
    /** Minimum pitch-region fraction of a frame for the frame to be pitch-like (src/vision/pitch/fit.ts). */
    minPitchFraction: z.number().min(0).max(1).default(0.15),
  })
  .strict()
  .prefault({});

/** ByteTrack (Zhang et al., ECCV 2022, arXiv:2110.06864); defaults from the reference implementation. */
export const trackerOptionsSchema = z
  .object({
    /** Detections at or above start and extend tracks (first association); reference `track_thresh`. */
    highThreshold: z.number().gt(0).lt(1).default(0.5),
    /** Detections between this and `highThreshold` only extend tracks (second association). */
    lowThreshold: z.number().gt(0).lt(1).default(0.1),
    /** Minimum score of a detection that starts a new track; reference track_thresh + 0.1. */
    newTrackThreshold: z.number().gt(0).lt(1).default(0.6),
    /** Maximum 1 - IoU cost of a first-stage match; reference `match_thresh`. */
    matchThreshold: z.number().gt(0).max(1).default(0.8),
    /** How long a lost track may be re-found, in seconds of video (reference: 30 frames at 30 fps). */
    bufferSeconds: z.number().min(0).max(60).default(1),
    /** Consecutive matched sampled frames before a track is confirmed and gets a track_id. */
    minHits: z.number().int().min(1).max(10).default(2),
    /** Cut rather than mix: end a tracklet where continuing it is ambiguous (src/vision/tracking/tracklets.ts). */
    cuts: z
      .object({
        enabled: z.boolean().default(true),
        /**
         * IoU with another box above which a box is ambiguous (overlap; occlusion of a lost track). 0.4: on the
         * identity ground truth (test/fixtures/identity, `npm run eval:identity`) the tracklets stay as pure as at
         * 0.3 (vtest 99.8 %, soccer 100 %) with fewer cuts (vtest 106 tracklets instead of 113).
         */
        overlapIou: z.number().gt(0).max(1).default(0.4),
        /** A second candidate within this of the match's 1 - IoU cost makes the match ambiguous. */
        costMargin: z.number().min(0).max(1).default(0.1),
        /** Implausible centre jump (box heights) or relative height change from the Kalman prediction. */
        motionJump: z.number().gt(0).max(10).default(0.5),
        /** Bhattacharyya distance of a box's colours from the tracklet's running model that cuts it. */
        appearanceJump: z.number().gt(0).max(1).default(0.4),
        /** An appearance jump cuts only with another person's box centre within this many box heights. */
        appearanceRadius: z.number().min(0).max(100).default(1),
        /**
         * Shot changes (src/vision/tracking/shotChange.ts): a frame-signature distance (mean Bhattacharyya
         * distance of 4 x 4 cells' colour histograms) at or above `shotCutDistance` between consecutive sampled
         * frames, or accumulated over a dissolve whose steps are at or above `shotGradualDistance`, ends every
         * tracklet. Measured on the soccer test clip: 0.05-0.10 within a shot, 0.14-0.24 per step and 0.37
         * overall across its dissolve; vtest.avi (fixed camera) stays under 0.07. 1 switches it off.
         */
        shotCutDistance: z.number().gt(0).max(1).default(0.3),
        shotGradualDistance: z.number().gt(0).max(1).default(0.12),
      })
      .strict().prefault({}),
    /** Join fragments after tracking, when the evidence is strong (src/vision/tracking/join.ts). */
    joins: z
      .object({
        enabled: z.boolean().default(true),
        /**
         * Longest gap between a tracklet's last box and the next one's first, seconds of video. With
         * `maxDistance`, measured on the identity ground truth (`npm run eval:identity`): 3 s and 2 box heights
         * join more fragments than 2 s and 1 (classes per person vtest 5.00 to 3.82, soccer 1.19 to 1.07) at the
         * same purity and with no val leak; gaps of 2-4 s and gates of 2-2.5 all give the same purity once joins
         * across a frame-edge exit are refused (src/vision/tracking/join.ts).
         */
        maxGapSeconds: z.number().min(0).max(60).default(3),
        /** Position gate: distance from the Kalman prediction in box heights (and relative height change). */
        maxDistance: z.number().gt(0).max(10).default(2),
        /** Largest Bhattacharyya appearance distance of a join. */
        maxAppearance: z.number().gt(0).max(1).default(0.35),
        /** The chosen pair must beat every other candidate of either tracklet by this cost margin. */
        margin: z.number().min(0).max(1).default(0.1),
        /** How the margin is tested: per pair (`mutual-best`) or against whole assignments (`assignment`, src/vision/tracking/joinAssignment.ts). */
        decision: z.enum(['mutual-best', 'assignment']).default('assignment'),
      })
      .strict().prefault({}),
  })
  .strict()
  .prefault({});

/**
 * Team and role per class from kit colours (src/vision/teams/cluster.ts: method, sources). `trim` 0.2: 5 of
 * 25 people (goalkeepers, officials) wear neither team's kit; `outlierMads` 2.5: Leys et al. 2013;
 * `minSilhouette` 0.5: Kaufman & Rousseeuw 1990; the ΔE (CIE76) floors were measured on the soccer test
 * clip (members within 5-12 ΔE of their centre, centres 45 ΔE apart). `enabled` false: no kit colours,
 * no teams. `minBoxes`: boxes with a kit colour a class needs to take part in fitting.
 */
export const teamsOptionsSchema = z
  .object({
    enabled: z.boolean().default(true),
    minBoxes: z.number().int().min(1).default(3),
    trim: z.number().min(0).max(0.5).default(0.2),
    outlierMads: z.number().min(0).default(2.5),
    minOutlierDistance: z.number().min(0).default(12),
    minSilhouette: z.number().min(-1).max(1).default(0.5),
    minTeamDistance: z.number().min(0).default(20),
  })
  .strict()
  .prefault({});

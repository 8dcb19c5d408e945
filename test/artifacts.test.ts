/**
 * The storage layout reads back the names it builds, and stored artifacts are read through their schemas
 * (src/storage/layout.ts, src/storage/artifacts.ts). Pure: no stack. The schemas are checked against real
 * outputs in test/pipeline.e2e.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { ErrorType, PipelineError } from '../src/errors';
import { cropIndexSchema, detectionsFileSchema, parseArtifact, pipelineInfoSchema, type DetectionsFile } from '../src/storage/artifacts';
import { RunLayout } from '../src/storage/layout';

const layout = new RunLayout('acme', 'run-1');
const video = layout.video('v1');

describe('layout names read back', () => {
  it('frameIdOf inverts frame() and refuses every other name', () => {
    for (const id of [0, 1, 42, 123456]) expect(video.frameIdOf(video.frame(id))).toBe(id);
    for (const name of [
      `${video.framesPrefix}frame_007.jpg`,
      `${video.framesPrefix}frame_-1.jpg`,
      `${video.framesPrefix}frame_1.png`,
      `${video.framesPrefix}x/frame_1.jpg`,
      `${video.framesPrefix}frame_1.jpg.tmp`,
      layout.video('v2').frame(3),
      video.crop('original', 1, 2),
    ]) {
      expect(video.frameIdOf(name), name).toBeUndefined();
    }
  });

  it('videoGuidOf names the video folder of an object of this run only', () => {
    expect(layout.videoGuidOf(video.detections)).toBe('v1');
    expect(layout.videoGuidOf(layout.video('abc-123').frame(5))).toBe('abc-123');
    expect(layout.videoGuidOf(layout.pipelineInfo)).toBeUndefined();
    expect(layout.videoGuidOf(layout.stepResult(3))).toBeUndefined();
    expect(layout.videoGuidOf(new RunLayout('acme', 'run-2').video('v1').detections)).toBeUndefined();
    expect(layout.videoGuidOf(`${layout.prefix}video_UPPER/x`)).toBeUndefined();
  });
});

const detections: DetectionsFile = {
  model: { name: 'yolov8n.onnx', sha256: 'ab', executionProvider: 'cpu', inputSize: 640 },
  thresholds: { confidence: 0.1, iou: 0.45, classes: [0], tiles: 'auto', tileSize: 640, tileOverlap: 0.2 },
  tracker: { type: 'bytetrack', highThreshold: 0.5, lowThreshold: 0.1, newTrackThreshold: 0.6, matchThreshold: 0.8, bufferSeconds: 1, minHits: 2, trackBuffer: 5 },
  grass: null,
  frameStride: 2,
  frames: [{ frame_id: 0, width: 768, height: 576, tiled: false, detections: [{ track_id: 0, bbox: [1, 2, 30, 80], score: 0.9, class: 0 }], dropped: [] }],
};

describe('stored artifacts are read through their schemas', () => {
  it('a valid detections.json parses to the same value', () => {
    expect(parseArtifact(detectionsFileSchema, video.detections, JSON.parse(JSON.stringify(detections)))).toEqual(detections);
  });

  it('a malformed artifact is an Internal error naming the object and the field', () => {
    const bad = { ...detections, frames: [{ ...detections.frames[0], detections: [{ track_id: 0, bbox: [1, 2, 3], score: 0.9, class: 0 }] }] };
    let err: unknown;
    try {
      parseArtifact(detectionsFileSchema, video.detections, bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PipelineError);
    expect((err as PipelineError).type).toBe(ErrorType.Internal);
    expect((err as PipelineError).message).toContain(video.detections);
    expect((err as PipelineError).message).toContain('frames.0.detections.0.bbox');
    expect(() => parseArtifact(cropIndexSchema, video.cropIndex, { videoGuid: 'v1', rejected: {} })).toThrow(/crops/);
  });

  it('records that several writers update keep the fields the schema does not name', () => {
    const info = { tenantId: 'acme', runGuid: 'run-1', status: 'running', input: { any: 'thing' }, steps: { v1: { importVideo: { step: 1, status: 'completed', extra: 1 } } } };
    expect(parseArtifact(pipelineInfoSchema, layout.pipelineInfo, info)).toEqual(info);
    expect(() => parseArtifact(pipelineInfoSchema, layout.pipelineInfo, { ...info, steps: { v1: { importVideo: { step: 1, status: 'done' } } } })).toThrow(PipelineError);
  });
});

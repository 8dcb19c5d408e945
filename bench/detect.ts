/**
 * Benchmark of step 5: on the same frames in one run, prints
 *   - raw model inference time per frame (onnxruntime `session.run` only, on ready input tensors, for the
 *     same passes the step makes: full frame plus tiles where it tiles),
 *   - our whole detect step time per frame (pre-processing, inference, NMS, tiling and merging, pitch mask
 *     and feet filter, ByteTrack with tracklet cuts and colour appearance, kit colours) via
 *     `VideoTracking.track` (src/vision/videoTracking.ts), the code the activity runs, on frames as the run
 *     cache hands them to step 5 (decoded in step 3: the pipeline's normal path),
 *   - the end of the step (`VideoTracking.finish`: fragment joins, which read the frames at tracklet ends
 *     again, and teams), once per video, also per frame of the measured stretch,
 *   - the same with the JPEG decode included (a cache miss: step 5 on another worker, or the cache off),
 *   - their ratios and our overhead above raw inference (target: at most 15 %).
 *
 *   npm run bench:detect -- [VIDEO] [--frames N] [--stride S] [--tiles auto|on|off] [--threads T]
 *
 * Default video: vtest.avi (opencv-doc); try the soccer clip with
 * `npm run bench:detect -- ../shared/media/soccer_broadcast_720p.mp4`. No stack needed.
 */
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import { ByteTracker } from '../src/vision/tracking/bytetrack';
import { VideoTracking, type TrackedFrame } from '../src/vision/videoTracking';
import { createDetector } from '../src/vision/detection/detector';
import { letterbox } from '../src/vision/detection/yolo';
import { fitPitchModel } from '../src/vision/pitch/fit';
import { createPlanarWriter } from '../src/vision/detection/planar';
import { decodeImage } from '../src/vision/image/rgb';
import { detectAndTrackFrame, type FrameResult } from '../src/vision/players';
import { probeVideo } from '../src/vision/media/probe';
import type { RgbFrame } from '../src/vision/image/rgb';
import { cropRgb, planTiles } from '../src/vision/detection/tiling';
import { encodeJpeg } from '../src/vision/image/rgb';
import { extractFrames } from '../src/vision/media/frames';
import { validateInput } from '../src/validation';

const o = new Command('bench:detect')
  .argument('[video]', 'video file', '/usr/share/doc/opencv-doc/examples/data/vtest.avi')
  .option('--frames <n>', 'frames to measure', '40')
  .option('--stride <s>', 'frame stride', '2')
  .option('--tiles <mode>', 'auto | on | off', 'auto')
  .option('--threads <t>', 'onnxruntime intra-op threads (default: config)')
  .parse();
const video = o.processedArgs[0] as string;
const opts = o.opts<{ frames: string; stride: string; tiles: 'auto' | 'on' | 'off'; threads?: string }>();

const cfg = loadConfig();
const options = validateInput({ tenantId: 'bench', videos: [{ source: video }], options: { detector: { tiles: opts.tiles } } }).options;
const detector = await createDetector({
  modelPath: cfg.detectorModelPath,
  executionProviders: cfg.ortExecutionProviders,
  intraOpNumThreads: opts.threads ? Number(opts.threads) : cfg.ortIntraOpThreads,
});

// The same sampled frames the pipeline would store (JPEG at the pipeline's quality).
// The same sampled frames the pipeline stores (JPEG at the pipeline's quality), and their decoded pixels as
// step 3 puts them into the run cache.
const jpegs: { frameId: number; jpeg: Buffer; frame: RgbFrame }[] = [];
for await (const f of extractFrames(video, { stride: Number(opts.stride), maxFrames: Number(opts.frames) })) {
  const jpeg = await encodeJpeg(f, options.jpegQuality);
  jpegs.push({ frameId: f.frameId, jpeg, frame: await decodeImage(jpeg) });
}
const grass = await fitPitchModel(
  jpegs.filter((_, i) => i % Math.max(1, Math.floor(jpegs.length / 16)) === 0).map((f) => f.frame),
  options.grassMask,
);
const detectOpts = {
  confThreshold: options.detector.confThreshold,
  iouThreshold: options.detector.iouThreshold,
  classes: options.detector.classes,
  tiles: options.detector.tiles,
  tileSize: options.detector.tileSize,
  overlap: options.detector.tileOverlap,
};

// Warm-up (first runs allocate onnxruntime buffers).
for (const f of jpegs.slice(0, 3)) await detectAndTrackFrame(detector, new ByteTracker(), f.jpeg, f.frameId, { detect: detectOpts, pitch: null });

// Whole step (exactly as the activity runs it; from cached pixels and from JPEG) and raw model time for the
// same passes, interleaved frame by frame so all see the same machine conditions. Raw: ready tensors, only
// `session.run` is timed.
// Step 5's per-video code, as the activity runs it (tracker options from the pipeline's defaults and the fps).
const videoInfo = { fps: (await probeVideo(video)).fps, grass };
const tracking = new VideoTracking(options, videoInfo);
const trackingJpeg = new VideoTracking(options, videoInfo);
const tracked: TrackedFrame[] = [];
const results: FrameResult[] = [];
// The raw passes get their tensors from one reused writer too, as the detector does: a fresh WebAssembly
// memory per tensor would add page faults and garbage collection to the raw figure.
const rawWriter = await createPlanarWriter();
let wholeTotal = 0;
let jpegTotal = 0;
let rawTotal = 0;
for (const f of jpegs) {
  const t0 = performance.now();
  const { frame: stored, result: r } = await tracking.track(detector, f.frame, f.frameId);
  wholeTotal += performance.now() - t0;
  results.push(r);
  tracked.push(stored);
  const t1 = performance.now();
  await trackingJpeg.track(detector, f.jpeg, f.frameId);
  jpegTotal += performance.now() - t1;
  const frame = f.frame;
  const inputs = [frame, ...(r.detectStats.tiled ? planTiles(frame.width, frame.height, { tileSize: detectOpts.tileSize, overlap: detectOpts.overlap }).map((t) => cropRgb(frame, t)) : [])];
  for (const input of inputs) {
    const { tensor } = await letterbox(input.rgb, input.width, input.height, detector.inputSize, rawWriter);
    rawTotal += (await detector.inferRaw(tensor)).inferenceMs;
  }
}
// End of the step, once per video: joins (frames at tracklet ends read again, from the decoded pixels here) and teams.
const byId = new Map(jpegs.map((f) => [f.frameId, f.frame]));
const t2 = performance.now();
const finished = await tracking.finish(tracked, videoInfo, async (id) => byId.get(id)!);
const finishMs = performance.now() - t2;
const wholeMs = wholeTotal / jpegs.length;
const jpegMs = jpegTotal / jpegs.length;
const rawMs = rawTotal / jpegs.length;

const mean = (k: keyof FrameResult['timings']) => results.reduce((s, r) => s + r.timings[k], 0) / results.length;
const passes = results.reduce((s, r) => s + r.detectStats.passes, 0) / results.length;
const fmt = (x: number) => x.toFixed(1).padStart(7);
console.log(`video ${video}`);
console.log(`frames ${jpegs.length} (stride ${opts.stride}) ${results[0].width}x${results[0].height}, ${detector.executionProvider}, tiles ${opts.tiles}: ${passes.toFixed(2)} model passes per frame, pitch ${grass.pitchFound ? 'found' : 'not found'}`);
console.log(`raw model inference per frame   ${fmt(rawMs)} ms`);
console.log(`whole detect step per frame     ${fmt(wholeMs)} ms  (frames from the run cache: the pipeline's path)`);
console.log(`  with JPEG decode (cache miss) ${fmt(jpegMs)} ms  (overhead ${(((jpegMs - rawMs) / rawMs) * 100).toFixed(1)} %)`);
console.log(`  detect ${mean('detectMs').toFixed(1)} (of which model ${mean('inferenceMs').toFixed(1)})  pitch ${mean('pitchMs').toFixed(1)}  track ${mean('trackMs').toFixed(2)} ms`);
const ds = (k: 'preprocessMs' | 'postprocessMs' | 'cropMs' | 'mergeMs') => (results.reduce((s, r) => s + r.detectStats[k], 0) / results.length).toFixed(1);
console.log(`  detect: letterbox ${ds('preprocessMs')}  decode+NMS ${ds('postprocessMs')}  tile crops ${ds('cropMs')}  merge ${ds('mergeMs')} ms`);
console.log(`ratio whole/raw                 ${(wholeMs / rawMs).toFixed(3)}`);
console.log(`overhead above raw inference    ${(((wholeMs - rawMs) / rawMs) * 100).toFixed(1)} %  (target <= 15 %)`);
console.log(`end of step (joins, teams)       ${finishMs.toFixed(1)} ms once, ${(finishMs / jpegs.length).toFixed(2)} ms per frame (overhead with it ${(((wholeMs + finishMs / jpegs.length - rawMs) / rawMs) * 100).toFixed(1)} %)`);
console.log(`tracklets ${finished.tracklets.count}, cuts ${finished.tracklets.cuts.length}, joins ${finished.tracklets.joins.length}, teams ${finished.teams?.status ?? 'off'}, tracked boxes ${results.reduce((s, r) => s + r.tracked.length, 0)}, dropped ${results.reduce((s, r) => s + r.dropped.length, 0)}`);
await detector.release();

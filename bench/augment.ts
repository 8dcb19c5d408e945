/**
 * Benchmark of step 8's image work: augmented copies of real player crops, as `augmentBatch` makes them
 * (`applyAugmentation`, src/dataset/augment.ts, at the pipeline's default options, `IMAGE_CONCURRENCY` at a
 * time). Prints wall and CPU time per copy, and the mean JPEG re-encoding error of the copies against the same
 * copy made with lossless (PNG) pixels: the loss that the final encode adds, which is all a copy should have.
 *
 *   npm run bench:augment -- [VIDEO] [--frames N] [--stride S] [--copies K] [--rounds R]
 *
 * The crops are the detector's person boxes (yolov8n, padded and cut as step 6 does) on N sampled frames of
 * VIDEO (default vtest.avi from opencv-doc). No stack needed.
 */
import { Command } from 'commander';
import pLimit from 'p-limit';
import sharp from 'sharp';
import { loadConfig } from '../src/config';
import { IMAGE_CONCURRENCY } from '../src/activities/imageWork';
import { applyAugmentation, planAugmentation } from '../src/dataset/augment';
import { cropJpeg, padAndClamp } from '../src/dataset/crops';
import { createDetector } from '../src/vision/detection/detector';
import { decodeImage, encodeJpeg } from '../src/vision/image/rgb';
import { extractFrames } from '../src/vision/media/frames';
import { validateInput } from '../src/validation';

const o = new Command('bench:augment')
  .argument('[video]', 'video file', '/usr/share/doc/opencv-doc/examples/data/vtest.avi')
  .option('--frames <n>', 'frames to cut crops from', '40')
  .option('--stride <s>', 'frame stride', '10')
  .option('--copies <k>', 'augmented copies per crop', '2')
  .option('--rounds <r>', 'timed rounds over all copies', '3')
  .parse();
const video = o.processedArgs[0] as string;
const opts = o.opts<{ frames: string; stride: string; copies: string; rounds: string }>();
const options = validateInput({ tenantId: 'bench', videos: [{ source: video }] }).options;
const cfg = loadConfig();
const detector = await createDetector({ modelPath: cfg.detectorModelPath, executionProviders: cfg.ortExecutionProviders, intraOpNumThreads: cfg.ortIntraOpThreads });

// Real crops: the detector's person boxes on sampled frames, padded and cut as step 6 cuts them.
const crops: Buffer[] = [];
for await (const f of extractFrames(video, { stride: Number(opts.stride), maxFrames: Number(opts.frames) })) {
  const jpeg = await encodeJpeg(f, options.jpegQuality);
  const frame = await decodeImage(jpeg);
  const dets = await detector.detect(frame, { confThreshold: options.detector.confThreshold, iouThreshold: options.detector.iouThreshold, classes: options.detector.classes });
  for (const d of dets) {
    const region = padAndClamp(d.bbox, options.crops.padding, frame.width, frame.height);
    if (region && region.height >= options.crops.minHeight) crops.push(await cropJpeg(frame, region, options.jpegQuality));
  }
}
await detector.release();
const copies = Number(opts.copies);
const jobs = crops.flatMap((crop, i) => Array.from({ length: copies }, (_, k) => ({ crop, aug: planAugmentation('bench', `crop_${i}`, k, options.augment) })));
const sizes = await Promise.all(crops.map((c) => sharp(c).metadata()));
const meanW = sizes.reduce((s, m) => s + (m.width ?? 0), 0) / sizes.length;
const meanH = sizes.reduce((s, m) => s + (m.height ?? 0), 0) / sizes.length;
console.log(`${crops.length} crops (mean ${meanW.toFixed(0)} x ${meanH.toFixed(0)} px) from ${opts.frames} frames of ${video}; ${jobs.length} copies per round, ${IMAGE_CONCURRENCY} at a time, ${sharp.concurrency()} libvips thread(s) per image`);

for (let r = 0; r < Number(opts.rounds); r++) {
  const limit = pLimit(IMAGE_CONCURRENCY);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(jobs.map((j) => limit(() => applyAugmentation(j.crop, j.aug, options.background.fill, options.jpegQuality))));
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  console.log(`round ${r + 1}: ${(wall / jobs.length).toFixed(2)} ms wall and ${((cpu.user + cpu.system) / 1000 / jobs.length).toFixed(2)} ms CPU per copy (${(wall / 1000).toFixed(1)} s)`);
}

// Re-encoding error: each copy against the same copy made from the crop's pixels as PNG and encoded at quality 100
// (any stage that re-encodes its input's format in between is then lossless).
let sum = 0;
let worst = Infinity;
const sample = jobs.slice(0, 200);
for (const j of sample) {
  const png = await sharp(j.crop).png().toBuffer();
  const ref = await sharp(await applyAugmentation(png, j.aug, options.background.fill, 100)).raw().toBuffer();
  const got = await sharp(await applyAugmentation(j.crop, j.aug, options.background.fill, options.jpegQuality)).raw().toBuffer();
  let se = 0;
  for (let i = 0; i < got.length; i++) se += (got[i] - ref[i]) ** 2;
  const psnr = 10 * Math.log10((255 * 255) / Math.max(1e-9, se / got.length));
  sum += psnr;
  worst = Math.min(worst, psnr);
}
console.log(`PSNR of ${sample.length} copies against the copy at quality 100: mean ${(sum / sample.length).toFixed(1)} dB, worst ${worst.toFixed(1)} dB`);

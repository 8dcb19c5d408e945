/**
 * Benchmark of how one long video scales (speed-up over worker processes, memory against video length, and
 * the pipeline's overhead above the model), printing its figures. Each run is the real thing: `trainPipeline`
 * with default options on a benchmark-only stack, worker processes of `src/workers/main.ts` (both task
 * queues) with `ORT_INTRA_OP_THREADS` set, one video made by looping the input with ffmpeg's concat demuxer
 * (https://trac.ffmpeg.org/wiki/Concatenate, stream copy, so frames are the input's frames repeated).
 *
 *   npm run bench:scale -- [VIDEO...] [--minutes M] [--lengths 1,4,8] [--workers 1,2] [--threads T]
 *                                      [--half-minutes H] [--only speedup,memory,half] [--cache-mib N] [--heap-mib N]
 *                                      [--keep-stack]
 *
 * Figures, per video:
 *   - speed-up: the input looped to `--minutes` minutes, run with each worker count of `--workers` (one ORT
 *     thread each by default): wall time per count and the ratio to the first;
 *   - overhead: for the same single-worker run, end-to-end wall time divided by the model's own time
 *     (onnxruntime `session.run` over every pass of every sampled frame, summed by step 5 in the same run:
 *     `inferenceMs` of its step result), and each step's share of the wall time (where the time goes);
 *   - memory: peak RSS (`VmHWM` of /proc/PID/status) of each worker process at each multiple of the input's
 *     length in `--lengths`, and its ratio to the first. The run cache is part of RSS and fills up to its bound
 *     (`--cache-mib`) as the video grows; each step's line shows what it held. So does V8's garbage: with a
 *     high heap limit (V8 derives it from the machine's memory: about 4 GiB on a 24 GiB machine) V8 lets its
 *     heap grow to up to about 4 times what was live at the last full collection before it collects again
 *     (heap-controller.cc, `MaxGrowingFactor`, https://github.com/v8/v8/blob/main/src/heap/heap-controller.cc);
 *     `--heap-mib` sets the workers' limit (`--max-old-space-size`) as one would for a worker of bounded memory;
 *   - a full half: the input looped to `--half-minutes` (0 to skip): wall time, peak RSS, and the longest step
 *     against its 2-hour start-to-close timeout.
 *
 * Default video: vtest.avi (opencv-doc); add `../shared/media/soccer_broadcast_720p.mp4` for the soccer clip.
 * It starts its own stack on benchmark-only ports (Temporal 37243, Web UI 38243, GCS emulator 34453; data in
 * `.data/bench-scale-stack`) and stops it after. Long: on a 2-core machine one run of a 10-minute vtest.avi loop
 * takes about 9 minutes, and the default figures about 75 minutes in all.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { Command } from 'commander';
import type { workerMemory } from '../src/activities/runStep';
import { startRun } from '../src/cli/client';
import { loadConfig, PROJECT_ROOT } from '../src/config';
import { startStack, stopStack, type StackOptions } from '../src/stack';
import { createObjectStore } from '../src/storage/gcs';
import { RunLayout } from '../src/storage/layout';
import { probeVideo } from '../src/vision/media/probe';
import { CLASS_BATCH_PARTS, isBatchedStep, STEP_NAMES } from '../src/workflows/steps';
import type { StepResultBase } from '../src/workflows/types';
import { spawnWorkerProcess } from '../test/helpers/temporal';

const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
const o = new Command('bench:scale')
  .argument('[videos...]', 'video files', ['/usr/share/doc/opencv-doc/examples/data/vtest.avi'])
  .option('--minutes <m>', 'length of the speed-up input, minutes', '10')
  .option('--lengths <list>', 'multiples of the input length for the memory figures', '1,4,8')
  .option('--workers <list>', 'worker-process counts for the speed-up figures', '1,2')
  .option('--threads <t>', 'onnxruntime intra-op threads per worker process', '1')
  .option('--half-minutes <m>', 'length of the full-half run, minutes (0: skip)', '45')
  .option('--only <list>', 'figures to make: speedup, memory, half', 'speedup,memory,half')
  .option('--segment-seconds <s>', 'options.segments.seconds of every run (default: the pipeline default, 180 s)')
  .option('--batch-boxes <n>', 'options.batches.boxes of every run (default: the pipeline default, 5000)')
  .option('--cache-mib <n>', "each worker's run-cache bound, MiB (CACHE_MAX_BYTES; default the worker's own, 4096)")
  .option('--heap-mib <n>', "each worker's V8 heap limit, MiB (NODE_OPTIONS=--max-old-space-size; default V8's own, from the machine's memory)")
  .option('--keep-stack', 'leave the benchmark stack running')
  .parse();
const opts = o.opts<{ minutes: string; lengths: string; workers: string; threads: string; halfMinutes: string; only: string; keepStack?: boolean; segmentSeconds?: string; batchBoxes?: string; cacheMib?: string; heapMib?: string }>();
const videos = o.processedArgs[0] as string[];
const only = new Set(list(opts.only));

const STACK: StackOptions = {
  dataDir: path.join(PROJECT_ROOT, '.data', 'bench-scale-stack'),
  toolsDir: path.join(PROJECT_ROOT, '.tools'),
  temporalPort: 37243,
  uiPort: 38243,
  gcsPort: 34453,
  bucket: 'dataprep-bench-scale',
  namespace: 'default',
  withWorker: false,
};

/** Figures of one run. */
interface RunFigures {
  label: string;
  workers: number;
  sampledFrames: number;
  wallS: number;
  modelS: number;
  /** End-to-end wall time / model time. */
  overhead: number;
  /** Peak RSS of each worker process, MiB. */
  peakRssMiB: number[];
  /** Seconds per step, in step order. */
  steps: Record<string, number>;
  /** The worker's memory at each step's end (`workerMemory`, src/activities/runStep.ts), as printed. */
  memory: Record<string, string>;
  /** The longest single activity (a step, or one segment or class batch of a fanned-out step), seconds. */
  longestActivity: { name: string; seconds: number };
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** Peak resident set size of process `pid` in MiB (Linux `VmHWM`), or NaN when it cannot be read. */
function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? round(Number(m[1]) / 1024) : Number.NaN;
}

/**
 * `source` (lasting `duration` seconds) repeated until it lasts at least `seconds` (whole repeats), via the
 * concat demuxer, stream copy.
 */
async function looped(source: string, duration: number, seconds: number, dir: string): Promise<{ file: string; repeats: number }> {
  const repeats = Math.max(1, Math.ceil(seconds / duration - 1e-9));
  return { file: await loopTimes(source, repeats, dir), repeats };
}

/** `source` played `repeats` times in a row, as one file in `dir` (the input itself when `repeats` is 1). */
async function loopTimes(source: string, repeats: number, dir: string): Promise<string> {
  if (repeats === 1) return path.resolve(source);
  const listFile = path.join(dir, `list-${repeats}.txt`);
  writeFileSync(listFile, Array.from({ length: repeats }, () => `file '${path.resolve(source).replaceAll("'", "'\\''")}'`).join('\n') + '\n');
  const out = path.join(dir, `${path.parse(source).name}-x${repeats}${path.extname(source)}`);
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'concat', '-safe', '0', '-i', listFile, '-c', 'copy', out]);
  return out;
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(tmpdir(), 'bench-scale-'));
  await startStack(STACK);
  const configured = loadConfig();
  const env = {
    TEMPORAL_ADDRESS: `127.0.0.1:${STACK.temporalPort}`,
    GCS_BUCKET: STACK.bucket,
    STORAGE_EMULATOR_HOST: `http://127.0.0.1:${STACK.gcsPort}`,
    ORT_INTRA_OP_THREADS: opts.threads,
    SOURCE_ROOTS: [...configured.sourceRoots, tmp, ...videos.map((v) => path.dirname(path.resolve(v)))].join(':'),
    ...(opts.cacheMib ? { CACHE_MAX_BYTES: String(Number(opts.cacheMib) * 1024 ** 2) } : {}),
    ...(opts.heapMib ? { NODE_OPTIONS: [process.env.NODE_OPTIONS, `--max-old-space-size=${Number(opts.heapMib)}`].filter(Boolean).join(' ') } : {}),
  };
  const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
  const client = new Client({ connection, namespace: STACK.namespace });
  const store = createObjectStore({ bucket: STACK.bucket, emulatorHost: env.STORAGE_EMULATOR_HOST });

  const runOptions = {
    options: {
      ...(opts.segmentSeconds ? { segments: { seconds: Number(opts.segmentSeconds) } } : {}),
      ...(opts.batchBoxes ? { batches: { boxes: Number(opts.batchBoxes) } } : {}),
    },
  };

  /** Runs `video` through the whole pipeline with `workers` worker processes on a fresh task queue. */
  async function runOnce(label: string, video: string, workers: number): Promise<RunFigures> {
    const taskQueue = `scale-${Math.random().toString(36).slice(2, 8)}`;
    const procs = [];
    for (let i = 0; i < workers; i++) procs.push(await spawnWorkerProcess({ ...env, TASK_QUEUE: taskQueue, DATAPREP_DATA_DIR: path.join(tmp, `${taskQueue}-w${i}`) }));
    const tenantId = 'benchscale';
    const t0 = performance.now();
    let peaks: number[] = [];
    try {
      const run = await startRun(client, { ...configured, temporalAddress: env.TEMPORAL_ADDRESS, bucket: STACK.bucket, storageEmulatorHost: env.STORAGE_EMULATOR_HOST, sourceRoots: env.SOURCE_ROOTS.split(':'), taskQueue }, { tenantId, runGuid: `scale-${taskQueue}`, videos: [{ source: video }], ...runOptions });
      const summary = await run.handle.result();
      if (summary.status !== 'completed') throw new Error(`${label}: run ended ${summary.status}`);
      const wallS = (performance.now() - t0) / 1000;
      peaks = procs.map((p) => peakRssMiB(p.child.pid!));
      const v = summary.videos[0];
      const layout = new RunLayout(tenantId, summary.runGuid);
      const steps: Record<string, number> = {};
      const memory: Record<string, string> = {};
      let modelMs = 0;
      let longestActivity = { name: '', seconds: 0 };
      const activity = (n: string, ms: number) => {
        if (ms / 1000 > longestActivity.seconds) longestActivity = { name: n, seconds: round(ms / 1000) };
      };
      for (const [i, name] of STEP_NAMES.entries()) {
        type Recorded = StepResultBase & { inferenceMs?: number; memory?: ReturnType<typeof workerMemory> };
        const r = (await store.getJson<{ videos: Record<string, Recorded> }>(layout.stepResult(i + 1)))!.videos[v.videoGuid];
        steps[name] = round(r.durationMs / 1000);
        activity(name, r.durationMs);
        // A fanned-out step (step 5 in segments, steps 6-8 in class batches): the span of its parts (first start
        // to last end), before the step's own activity.
        const batchPart = isBatchedStep(name) ? CLASS_BATCH_PARTS[name] : undefined;
        // (Step 3's result also has `segments`, the plan, which is not a record of parts.)
        for (const [group, part] of [['segments', name === 'detectPlayers' ? 'detectSegment' : undefined], ['batches', batchPart]] as const) {
          if (!part) continue;
          const parts = Object.values((r as Recorded & Partial<Record<typeof group, Record<string, StepResultBase>>>)[group] ?? {});
          if (!parts.length) continue;
          const span = Math.max(...parts.map((x) => Date.parse(x.finishedAt))) - Math.min(...parts.map((x) => Date.parse(x.startedAt)));
          steps[`${part} x${parts.length}`] = round(span / 1000);
          for (const x of parts) activity(part, x.durationMs);
        }
        if (r.memory) memory[name] = `${Math.round(r.memory.rss)}/${Math.round(r.memory.heapTotal)}/${Math.round(r.memory.heapUsed)}/${Math.round(r.memory.external)}/${Math.round(r.memory.arrayBuffers)}/${Math.round(r.memory.cache ?? 0)}/${Math.round(r.memory.peakRss)}`;
        if (name !== 'detectPlayers') continue;
        modelMs = r.inferenceMs ?? Number.NaN;
      }
      return { label, workers, sampledFrames: v.counts.frames ?? 0, wallS: round(wallS), modelS: round(modelMs / 1000), overhead: round(wallS / (modelMs / 1000), 2), peakRssMiB: peaks, steps, memory, longestActivity };
    } finally {
      for (const p of procs) p.child.kill('SIGTERM');
      await Promise.all(procs.map((p) => p.exited));
    }
  }

  const print = (r: RunFigures) =>
    console.log(
      `  ${r.label}: ${r.workers} worker(s), ${r.sampledFrames} sampled frames, wall ${r.wallS} s, model ${r.modelS} s, wall/model ${r.overhead}x, ` +
        `peak RSS ${r.peakRssMiB.map((m) => `${m} MiB`).join(' / ')}\n    steps (s): ${Object.entries(r.steps)
          .map(([k, s]) => `${k} ${s}`)
          .join(', ')}` +
          // With several workers the steps may have run on different processes.
          `\n    memory at each step's end, MiB (RSS / V8 heap committed / V8 heap used / external / array buffers / run cache / peak RSS so far): ${Object.entries(r.memory)
            .map(([k, m]) => `${k} ${m}`)
            .join(', ')}`,
    );
  try {
    for (const source of videos) {
      const duration = (await probeVideo(source)).durationSec;
      if (!(duration > 0)) throw new Error(`${source}: no duration from ffprobe`);
      console.log(`\nvideo ${source} (${round(duration)} s), ORT threads per worker ${opts.threads}, run cache bound ${opts.cacheMib ? `${opts.cacheMib} MiB` : 'the default'}, V8 heap limit ${opts.heapMib ? `${opts.heapMib} MiB` : "V8's default"}`);
      if (only.has('speedup')) {
        const { file, repeats } = await looped(source, duration, Number(opts.minutes) * 60, tmp);
        console.log(`speed-up: input looped ${repeats}x (${round((duration * repeats) / 60)} min)`);
        const runs: RunFigures[] = [];
        for (const n of list(opts.workers).map(Number)) {
          const r = await runOnce(`${n} worker(s)`, file, n);
          print(r);
          runs.push(r);
        }
        for (const r of runs.slice(1)) console.log(`  speed-up ${runs[0].workers} -> ${r.workers} workers: ${round(runs[0].wallS / r.wallS, 2)}x`);
        console.log(`  overhead (1 worker): wall/model ${runs[0].overhead}x; step shares of wall: ${Object.entries(runs[0].steps).map(([k, s]) => `${k} ${Math.round((s / runs[0].wallS) * 100)}%`).join(', ')}`);
      }
      if (only.has('memory')) {
        console.log('memory: peak RSS per worker process against video length (1 worker)');
        const runs: RunFigures[] = [];
        for (const m of list(opts.lengths).map(Number)) {
          const r = await runOnce(`${m}x length`, await loopTimes(source, m, tmp), 1);
          print(r);
          runs.push(r);
        }
        for (const r of runs.slice(1)) console.log(`  peak RSS ${r.label} / ${runs[0].label}: ${round(r.peakRssMiB[0] / runs[0].peakRssMiB[0], 2)}x`);
      }
      if (only.has('half') && Number(opts.halfMinutes) > 0) {
        const { file, repeats } = await looped(source, duration, Number(opts.halfMinutes) * 60, tmp);
        const r = await runOnce(`full half (${repeats}x, ${round((duration * repeats) / 60)} min)`, file, 1);
        print(r);
        // Each activity has its own start-to-close timeout (src/workflows/activityOptions.ts); a fan-out's span is not one.
        const { name, seconds } = r.longestActivity;
        console.log(`  longest activity: ${name} ${seconds} s = ${Math.round((seconds / 7200) * 100)}% of its 2-hour start-to-close timeout`);
      }
    }
  } finally {
    await connection.close();
    if (!opts.keepStack) await stopStack(STACK);
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

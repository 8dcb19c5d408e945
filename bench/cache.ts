/**
 * Benchmark of the run cache (docs/ARCHITECTURE.md "How data flows for one video"): the same video
 * through the whole pipeline with the run cache off and on, in one invocation, printing per mode the wall
 * time, the bytes downloaded and uploaded and the GCS requests, and the ratios (on / off). Storage figures are counted at an HTTP proxy in front of the GCS emulator, so they
 * include everything a real bucket would bill (bookkeeping JSON too). The same proxy adds latency: a fixed
 * delay per request plus transfer time at a given bandwidth, so the figures reflect a cloud bucket.
 *
 *   npm run bench:cache -- [VIDEO] [--seconds S] [--latency-ms 0,40] [--mbps 0,100] [--stride S] [--keep-stack]
 *
 * `--latency-ms` and `--mbps` are lists: one pair of runs (off, on) per latency setting (bandwidth 0 = no
 * limit). Default video: the first 20 s of vtest.avi (opencv-doc). It starts its own stack on benchmark-only
 * ports (Temporal 37233, Web UI 38233, GCS emulator 34443; data in `.data/bench-stack`) and stops it after.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { Command } from 'commander';
import { createActivities } from '../src/activities';
import { startRun } from '../src/cli/client';
import { loadConfig, PROJECT_ROOT, type Config } from '../src/config';
import { startStack, stopStack, type StackOptions } from '../src/stack';
import { bundlePipelineWorkflows, createPipelineWorkers, createDeps, splitActivities } from '../src/workers/worker';
import type { RunSummary } from '../src/workflows/types';
import { startFaultyProxy } from '../test/helpers/faultyProxy';

const o = new Command('bench:cache')
  .argument('[video]', 'video file', '/usr/share/doc/opencv-doc/examples/data/vtest.avi')
  .option('--seconds <s>', 'seconds of the video to use (0: all)', '20')
  .option('--stride <s>', 'frame stride', '2')
  .option('--latency-ms <list>', 'added latency per GCS request, ms (comma-separated settings)', '0,40')
  .option('--mbps <list>', 'GCS bandwidth per setting, MB/s (0: unlimited; comma-separated, one per latency)', '0,100')
  .option('--keep-stack', 'leave the benchmark stack running')
  .parse();
const opts = o.opts<{ seconds: string; stride: string; latencyMs: string; mbps: string; keepStack?: boolean }>();
const source = o.processedArgs[0] as string;

const STACK: StackOptions = {
  dataDir: path.join(PROJECT_ROOT, '.data', 'bench-stack'),
  toolsDir: path.join(PROJECT_ROOT, '.tools'),
  temporalPort: 37233,
  uiPort: 38233,
  gcsPort: 34443,
  bucket: 'dataprep-bench',
  namespace: 'default',
  withWorker: false,
};

interface Figures {
  mode: 'off' | 'on';
  wallS: number;
  mbDown: number;
  mbUp: number;
  requests: number;
  artifactDownloads: number;
  mbFromCache: number;
}

async function main(): Promise<void> {
  process.env.LOG_LEVEL ??= 'warn'; // keep stdout to the figures (the detector logs its start at info)
  const tmp = mkdtempSync(path.join(tmpdir(), 'bench-cache-'));
  let video = source;
  if (Number(opts.seconds) > 0) {
    video = path.join(tmp, `clip${path.extname(source)}`);
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', source, '-t', opts.seconds, '-c', 'copy', video]);
  }
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  await startStack(STACK);
  const proxy = await startFaultyProxy(`http://127.0.0.1:${STACK.gcsPort}`);
  const configured = loadConfig();
  const base: Config = {
    ...configured,
    temporalAddress: `127.0.0.1:${STACK.temporalPort}`,
    bucket: STACK.bucket,
    storageEmulatorHost: proxy.url,
    dataDir: tmp,
    // The video's folder is a source root, so the workers read it in place as before (no upload by the CLI).
    sourceRoots: [...configured.sourceRoots, path.dirname(path.resolve(video))],
  };
  const workflowBundle = await bundlePipelineWorkflows();
  const clientConn = await Connection.connect({ address: base.temporalAddress });
  const client = new Client({ connection: clientConn, namespace: base.temporalNamespace });
  const latencies = opts.latencyMs.split(',').map(Number);
  const bandwidths = opts.mbps.split(',').map(Number);
  const results: { latencyMs: number; mbps: number; off: Figures; on: Figures }[] = [];

  async function runOnce(mode: 'off' | 'on', tag: string): Promise<Figures> {
    const cfg: Config = { ...base, cacheEnabled: mode === 'on', dataDir: path.join(tmp, `${tag}-${mode}`) };
    const deps = createDeps(cfg);
    const { cpu, gpu } = splitActivities(createActivities(deps));
    const connection = await NativeConnection.connect({ address: cfg.temporalAddress });
    const taskQueue = `bench-${tag}-${mode}`;
    const { workers } = await createPipelineWorkers({ connection, namespace: cfg.temporalNamespace, taskQueue, workflowBundle, cpuActivities: cpu, gpuActivities: gpu, maxConcurrentActivities: cfg.maxConcurrentActivities });
    const running = workers.map((w) => w.run());
    const before = proxy.counts();
    const t0 = performance.now();
    let summary: RunSummary;
    try {
      const run = await startRun(client, { ...cfg, taskQueue }, { tenantId: `bench${mode}`, runGuid: `${tag}-${mode}-${Date.now()}`, videos: [{ source: video }], options: { frameStride: Number(opts.stride) } });
      summary = await run.handle.result();
    } finally {
      for (const w of workers) w.shutdown();
      await Promise.allSettled(running);
      await connection.close();
      await deps.release();
    }
    const wallS = (performance.now() - t0) / 1000;
    const after = proxy.counts();
    if (summary.status !== 'completed') throw new Error(`run ${mode} ended ${summary.status}`);
    return {
      mode,
      wallS: round(wallS, 1),
      mbDown: round((after.bytesDown - before.bytesDown) / 1e6, 1),
      mbUp: round((after.bytesUp - before.bytesUp) / 1e6, 1),
      requests: after.seen - before.seen,
      artifactDownloads: summary.cache.artifactDownloads,
      mbFromCache: round(summary.cache.bytesFromCache / 1e6, 1),
    };
  }

  try {
    for (const [i, latencyMs] of latencies.entries()) {
      const mbps = bandwidths[i] ?? 0;
      proxy.setLatency(latencyMs, mbps * 1e6);
      const tag = `l${latencyMs}b${mbps}`;
      console.error(`latency ${latencyMs} ms, bandwidth ${mbps ? `${mbps} MB/s` : 'unlimited'}: cache off ...`);
      const off = await runOnce('off', tag);
      console.error(`latency ${latencyMs} ms, bandwidth ${mbps ? `${mbps} MB/s` : 'unlimited'}: cache on ...`);
      const on = await runOnce('on', tag);
      results.push({ latencyMs, mbps, off, on });
    }
  } finally {
    await clientConn.close();
    await proxy.close();
    if (!opts.keepStack) await stopStack(STACK);
    rmSync(tmp, { recursive: true, force: true });
  }

  console.log(`video: ${source}${Number(opts.seconds) > 0 ? ` (first ${opts.seconds} s)` : ''}, frame stride ${opts.stride}`);
  for (const r of results) {
    console.log(`\nGCS latency ${r.latencyMs} ms per request, bandwidth ${r.mbps ? `${r.mbps} MB/s` : 'unlimited'}`);
    console.table([r.off, r.on]);
    const pct = (on: number, off: number) => `${off ? Math.round((1 - on / off) * 100) : 0}% less`;
    console.log(
      `cache on vs off: wall ${round(r.on.wallS / r.off.wallS, 2)}x (${pct(r.on.wallS, r.off.wallS)}), ` +
        `downloaded ${round(r.on.mbDown / Math.max(r.off.mbDown, 1e-9), 2)}x (${pct(r.on.mbDown, r.off.mbDown)}), ` +
        `uploaded ${round(r.on.mbUp / Math.max(r.off.mbUp, 1e-9), 2)}x, ` +
        `transfer (down + up) ${pct(r.on.mbDown + r.on.mbUp, r.off.mbDown + r.off.mbUp)}, ` +
        `GCS requests ${round(r.on.requests / r.off.requests, 2)}x (${pct(r.on.requests, r.off.requests)})`,
    );
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

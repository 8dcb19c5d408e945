/**
 * `npm run pipeline -- [--tenant ID] [VIDEO ...]`: the main job (README "Two commands"). Starts the local stack and
 * the workers when they are not running, runs `trainPipeline` on the given videos (default: `vtest.avi`
 * from Debian's `opencv-doc`), shows progress on stderr, and prints one JSON object as the last line of
 * stdout. Exit status 0 only when the run completed. The stack keeps running afterwards
 * (`npm run stack:stop` stops it).
 */
import { existsSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig } from '../config';
import { PipelineError } from '../errors';
import { startStack, stackOptionsFromConfig } from '../stack';
import type { PipelineOptionsInput } from '../validation';
import { connectClient, followRun, printRunStats, startRun, videoLines, type RunOutcome } from './client';

/** Real footage shipped by Debian's `opencv-doc` (docs/ARCHITECTURE.md "Local stack"), the default input. */
export const DEFAULT_VIDEO = '/usr/share/doc/opencv-doc/examples/data/vtest.avi';

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

async function main(): Promise<number> {
  const program = new Command('pipeline')
    .description('Run trainPipeline on videos (default: vtest.avi from opencv-doc) and print a JSON summary line.')
    .argument('[videos...]', 'local paths, gs://bucket/object or https:// URLs')
    .option('--tenant <id>', 'tenant id', 'local')
    .option('--run-guid <guid>', 'run GUID (default: derived from tenant, videos and options, so reruns attach)')
    .option('--stride <n>', 'keep every n-th decoded frame', int)
    .option('--max-frames <n>', 'at most n sampled frames per video', int)
    .option('--options <json>', 'pipeline options as JSON (see README "Options")')
    .option('--tracks <file>', 'corrected tracks of the (one) video in MOT Challenge form, e.g. an edited exports/tracks_mot.txt: used instead of detection and tracking')
    .option('--no-progress', 'do not draw a progress bar')
    .parse();
  const o = program.opts<{ tenant: string; runGuid?: string; stride?: number; maxFrames?: number; options?: string; tracks?: string; progress: boolean }>();
  const videos = program.args.length ? program.args : [DEFAULT_VIDEO];
  if (o.tracks && videos.length !== 1) {
    console.error(`--tracks: corrected tracks belong to one video, and ${videos.length} were given`);
    return 2;
  }
  if (!program.args.length && !existsSync(DEFAULT_VIDEO)) {
    console.error(`default video ${DEFAULT_VIDEO} is missing: install Debian's opencv-doc (npm run setup does) or name a video`);
    return 2;
  }
  let options: PipelineOptionsInput = {};
  if (o.options) {
    try {
      options = JSON.parse(o.options) as PipelineOptionsInput;
    } catch (err) {
      console.error(`--options: not valid JSON: ${(err as Error).message}`);
      return 2;
    }
  }
  if (o.stride) options = { ...options, frameStride: o.stride };
  if (o.maxFrames) options = { ...options, maxFrames: o.maxFrames };

  const cfg = loadConfig();
  const services = await startStack({ ...stackOptionsFromConfig(cfg), withWorker: true });
  for (const s of services) console.error(`${s.name.padEnd(8)} ${s.state.padEnd(9)} ${s.url ?? ''} ${s.detail}`);

  const client = await connectClient(cfg);
  const input = { tenantId: o.tenant, runGuid: o.runGuid, videos: videos.map((source) => ({ source, ...(o.tracks ? { tracks: o.tracks } : {}) })), options };
  let outcome: RunOutcome;
  try {
    const run = await startRun(client, cfg, input);
    for (const s of run.staged) if (s.action !== 'kept') console.error(`${s.given}: ${s.action === 'uploaded' ? 'uploaded to' : 'already stored as'} ${s.source} (outside SOURCE_ROOTS)`);
    console.error(`${run.started ? 'started' : 'attached to existing'} ${run.workflowId}`);
    console.error(`Web UI: http://localhost:${cfg.temporalUiPort}/namespaces/${cfg.temporalNamespace}/workflows/${encodeURIComponent(run.workflowId)}`);
    outcome = await followRun(run, cfg, { showProgress: o.progress });
  } catch (err) {
    if (err instanceof PipelineError) {
      console.error(`invalid input: ${err.message}`);
      console.log(JSON.stringify({ status: 'rejected', tenantId: o.tenant, error: err.message }));
      return 2;
    }
    throw err;
  } finally {
    await client.connection.close();
  }
  if (outcome.status === 'completed') {
    await printRunStats(cfg, outcome);
    for (const v of outcome.videos) for (const line of videoLines(v)) console.error(line);
    if (outcome.dataset) console.error(`run dataset: ${outcome.dataset.prefix} (${outcome.dataset.classes} classes, train ${outcome.dataset.train}, val ${outcome.dataset.val}${outcome.dataset.test !== undefined ? `, test ${outcome.dataset.test}` : ''})`);
    console.error(`outputs: ${outcome.outputPrefix} (emulator: ${cfg.storageEmulatorHost ?? 'real GCS'})`);
  } else {
    for (const v of outcome.videos) for (const line of videoLines(v).slice(1)) console.error(line);
    console.error(`run ${outcome.status}: ${outcome.error ?? ''}`);
  }
  console.log(JSON.stringify(outcome));
  return outcome.status === 'completed' ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);

/**
 * `npm run client -- <command>`: start, follow, inspect and cancel runs on an already running stack.
 *
 *   start [--tenant ID] [--run-guid G] [--options JSON] [--stride N] [--max-frames N] [--no-wait] VIDEO...
 *                                                                                start (or attach to) a run
 *   status WORKFLOW_ID                                                           progress and status as JSON
 *   cancel WORKFLOW_ID [--reason TEXT] [--by NAME]                               send the `cancel` signal
 *
 * Unlike `npm run pipeline` it starts nothing: it talks to TEMPORAL_ADDRESS as configured.
 */
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig } from '../config';
import { invalidInput, PipelineError } from '../errors';
import { MAX_CANCEL_BY_LENGTH, MAX_CANCEL_REASON_LENGTH, type PipelineOptionsInput } from '../validation';
import { cancelSignal, progressQuery } from '../workflows/messages';
import { connectClient, followRun, printRunStats, startRun } from './client';

/** commander parser of a positive integer option. @throws InvalidArgumentError otherwise */
function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

const program = new Command('client').description('Start, inspect and cancel trainPipeline runs.');

program
  .command('start')
  .argument('<videos...>', 'local paths, gs://bucket/object or https:// URLs')
  .option('--tenant <id>', 'tenant id', 'local')
  .option('--run-guid <guid>', 'run GUID (default: derived from the input)')
  .option('--options <json>', 'pipeline options as JSON')
  .option('--stride <n>', 'keep every n-th decoded frame (options.frameStride)', positiveInt)
  .option('--max-frames <n>', 'at most n sampled frames per video (options.maxFrames)', positiveInt)
  .option('--no-wait', 'print the workflow id and return at once')
  .action(async (videos: string[], o: { tenant: string; runGuid?: string; options?: string; stride?: number; maxFrames?: number; wait: boolean }) => {
    const cfg = loadConfig();
    const client = await connectClient(cfg);
    try {
      let options = o.options ? (JSON.parse(o.options) as PipelineOptionsInput) : undefined;
      if (o.stride) options = { ...options, frameStride: o.stride };
      if (o.maxFrames) options = { ...options, maxFrames: o.maxFrames };
      const run = await startRun(client, cfg, { tenantId: o.tenant, runGuid: o.runGuid, videos: videos.map((source) => ({ source })), options });
      for (const s of run.staged) if (s.action !== 'kept') console.error(`${s.given}: ${s.action === 'uploaded' ? 'uploaded to' : 'already stored as'} ${s.source} (outside SOURCE_ROOTS)`);
    console.error(`${run.started ? 'started' : 'attached to existing'} ${run.workflowId}`);
      if (!o.wait) {
        console.log(JSON.stringify({ workflowId: run.workflowId, runGuid: run.runGuid, tenantId: run.tenantId }));
        return;
      }
      const outcome = await followRun(run, cfg, { showProgress: true });
      if (outcome.status === 'completed') await printRunStats(cfg, outcome);
      console.log(JSON.stringify(outcome));
      process.exitCode = outcome.status === 'completed' ? 0 : 1;
    } finally {
      await client.connection.close();
    }
  });

program
  .command('status')
  .argument('<workflowId>', 'e.g. train-pipeline:local:<runGuid>')
  .action(async (workflowId: string) => {
    const cfg = loadConfig();
    const client = await connectClient(cfg);
    try {
      const handle = client.workflow.getHandle(workflowId);
      const desc = await handle.describe();
      const progress = await handle.query(progressQuery).catch(() => undefined);
      console.log(JSON.stringify({ workflowId, status: desc.status.name, startTime: desc.startTime, closeTime: desc.closeTime ?? null, progress }, null, 2));
    } finally {
      await client.connection.close();
    }
  });

program
  .command('cancel')
  .argument('<workflowId>')
  .option('--reason <text>', 'why (recorded in .pipeline_info.json)')
  .option('--by <name>', 'who asks', process.env.USER ?? 'cli')
  .action(async (workflowId: string, o: { reason?: string; by?: string }) => {
    // The workflow would truncate longer texts; say so here instead of sending them.
    if ((o.reason?.length ?? 0) > MAX_CANCEL_REASON_LENGTH) throw invalidInput('--reason', `longer than ${MAX_CANCEL_REASON_LENGTH} characters (MAX_CANCEL_REASON_LENGTH)`);
    if ((o.by?.length ?? 0) > MAX_CANCEL_BY_LENGTH) throw invalidInput('--by', `longer than ${MAX_CANCEL_BY_LENGTH} characters (MAX_CANCEL_BY_LENGTH)`);
    const cfg = loadConfig();
    const client = await connectClient(cfg);
    try {
      await client.workflow.getHandle(workflowId).signal(cancelSignal, { reason: o.reason, by: o.by });
      console.error(`cancel signal sent to ${workflowId}`);
    } finally {
      await client.connection.close();
    }
  });

program.parseAsync().catch((err) => {
  console.error(err instanceof PipelineError ? `invalid input: ${err.message}` : err instanceof Error ? err.message : err);
  process.exit(1);
});

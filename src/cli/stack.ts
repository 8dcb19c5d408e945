/**
 * `tsx src/cli/stack.ts start [--no-worker] | stop | status [--json]` — manages the local stack
 * (docs/ARCHITECTURE.md "Local stack"; npm scripts `stack:start`, `stack:stop`, `stack:status`).
 *
 * Configuration comes from the environment (src/config.ts): TEMPORAL_ADDRESS (port), TEMPORAL_UI_PORT,
 * STORAGE_EMULATOR_HOST (port), GCS_BUCKET, TEMPORAL_NAMESPACE, DATAPREP_DATA_DIR, DATAPREP_TOOLS_DIR.
 *
 * Exit status: 0 on success; 1 when a command fails (message on stderr, with the tail of the failing
 * service's log); `status` exits 3 when some service is not running (stopped, stale or unhealthy).
 */
import { Command } from 'commander';
import { loadConfig } from '../config';
import { startStack, stackOptionsFromConfig, stackStatus, stopStack, type ServiceStatus, type StackOptions } from '../stack';

/** Renders statuses as an aligned text table (one row per service), followed by how to reach the stack. */
function formatStatusTable(rows: ServiceStatus[], opts: StackOptions): string {
  const header = ['SERVICE', 'STATE', 'PID', 'DETAIL'];
  const body = rows.map((r) => [r.name, r.state, r.pid ? String(r.pid) : '-', r.detail]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [
    line(header),
    ...body.map(line),
    '',
    `Temporal gRPC   127.0.0.1:${opts.temporalPort}  (namespace ${opts.namespace})`,
    `Temporal Web UI http://localhost:${opts.uiPort}`,
    `GCS emulator    http://127.0.0.1:${opts.gcsPort}  (bucket ${opts.bucket}; STORAGE_EMULATOR_HOST=http://127.0.0.1:${opts.gcsPort})`,
    `Data and logs   ${opts.dataDir}`,
    '',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const program = new Command('stack')
    .description('Manage the local stack: Temporal dev server, fake-gcs-server and the pipeline worker')
    .showHelpAfterError()
    .exitOverride();
  let code = 0;
  const options = (withWorker: boolean) => ({ ...stackOptionsFromConfig(loadConfig()), withWorker });
  const print = (rows: ServiceStatus[], opts: StackOptions, json: boolean) =>
    process.stdout.write(json ? `${JSON.stringify(rows)}\n` : formatStatusTable(rows, opts));

  program
    .command('start')
    .description('start what is not running and wait until it is healthy (idempotent)')
    .option('--no-worker', 'do not start the worker process')
    .option('--json', 'print the statuses as JSON')
    .action(async (o: { worker: boolean; json?: boolean }) => {
      const opts = options(o.worker);
      print(await startStack(opts), opts, Boolean(o.json));
    });
  program
    .command('stop')
    .description('stop every service of the stack (worker first)')
    .option('--json', 'print the statuses as JSON')
    .action(async (o: { json?: boolean }) => {
      const opts = options(true);
      print(await stopStack(opts), opts, Boolean(o.json));
    });
  program
    .command('status')
    .description('show each service; exit status 3 when one is not running')
    .option('--json', 'print the statuses as JSON')
    .action(async (o: { json?: boolean }) => {
      const opts = options(false);
      const rows = await stackStatus(opts);
      print(rows, opts, Boolean(o.json));
      if (rows.some((r) => r.state !== 'running')) code = 3;
    });

  try {
    await program.parseAsync(argv);
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : (e.exitCode ?? 1);
    }
    process.stderr.write(`stack: error: ${e.message ?? String(err)}\n`);
    return 1;
  }
  return code;
}

process.exitCode = await main(process.argv);

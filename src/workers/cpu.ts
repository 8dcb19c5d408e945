/** Worker process serving only the CPU task queue (`train-pipeline`): workflows and CPU-bound steps. */
import { runWorkers } from './worker';

runWorkers(['cpu']).catch((err) => {
  console.error(err);
  process.exit(1);
});

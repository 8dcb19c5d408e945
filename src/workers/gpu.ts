/** Worker process serving only the GPU task queue (`train-pipeline-gpu`): detection and background removal. */
import { runWorkers } from './worker';

runWorkers(['gpu']).catch((err) => {
  console.error(err);
  process.exit(1);
});

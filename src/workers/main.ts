/** Worker process serving both task queues (`train-pipeline` and `train-pipeline-gpu`): the local default. */
import { runWorkers } from './worker';

runWorkers(['cpu', 'gpu']).catch((err) => {
  console.error(err);
  process.exit(1);
});

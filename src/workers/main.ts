/** Worker process serving both task queues (`train-pipeline` and `train-pipeline-gpu`): the local default. */
import { exitOnWorkerFailure, runWorkers } from './worker';

runWorkers(['cpu', 'gpu']).catch(exitOnWorkerFailure);

/** Worker process serving only the CPU task queue (`train-pipeline`): workflows and CPU-bound steps. */
import { exitOnWorkerFailure, runWorkers } from './worker';

runWorkers(['cpu']).catch(exitOnWorkerFailure);

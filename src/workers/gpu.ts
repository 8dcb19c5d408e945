/** Worker process serving only the GPU task queue (`train-pipeline-gpu`): detection and background removal. */
import { exitOnWorkerFailure, runWorkers } from './worker';

runWorkers(['gpu']).catch(exitOnWorkerFailure);
